//! Models the host scores natively, for evaluation and for serving. A
//! trainer plugin returns one of these kinds; no plugin code runs at scoring
//! time.
//!
//! The float arrays of a model are [`Floats`]: owned (a trainer's output) or
//! a view into the verified bytes of a loaded artifact (no copy at load).
//! Both read as `&[f32]`.

use std::ops::Deref;
use std::sync::Arc;

pub use recotem_numerics::{Csr, dot, top_k};

/// Bytes held 8-byte aligned at a chosen position: the artifact loader
/// reads a file so that its payload starts on an 8-byte boundary, and the
/// payload's little-endian float arrays (4-byte aligned relative to the
/// payload start) can then be viewed in place.
#[derive(Debug, Default)]
pub struct AlignedBytes {
    words: Vec<u64>,
    start: usize,
    len: usize,
}

impl AlignedBytes {
    /// `len` zero bytes laid out so that byte `anchor` sits at an 8-byte
    /// aligned address. (The zero pages are only touched when written.)
    pub fn zeroed(len: usize, anchor: usize) -> AlignedBytes {
        let start = (8 - anchor % 8) % 8;
        AlignedBytes { words: vec![0u64; (start + len).div_ceil(8)], start, len }
    }

    /// A copy of `bytes` with byte `anchor` 8-byte aligned.
    pub fn copy_of(bytes: &[u8], anchor: usize) -> AlignedBytes {
        let mut out = AlignedBytes::zeroed(bytes.len(), anchor);
        out.as_bytes_mut().copy_from_slice(bytes);
        out
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.words)[self.start..self.start + self.len]
    }

    /// The bytes, writable.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<u64, u8>(&mut self.words)[self.start..self.start + self.len]
    }
}

/// A read-only `f32` array: owned, or viewed in place in shared bytes.
#[derive(Clone, Default)]
pub struct Floats(FloatsRepr);

#[derive(Clone)]
enum FloatsRepr {
    Owned(Vec<f32>),
    /// `len` floats at byte `offset` of `bytes`; checked 4-byte aligned and
    /// in range when made, and the bytes never change afterwards.
    Shared { bytes: Arc<AlignedBytes>, offset: usize, len: usize },
}

impl Default for FloatsRepr {
    fn default() -> Self {
        FloatsRepr::Owned(Vec::new())
    }
}

impl Floats {
    /// The `len` little-endian floats at byte `offset` of `bytes`: viewed in
    /// place when the host is little-endian and the position is 4-byte
    /// aligned, copied otherwise. `None` when the range is outside `bytes`.
    pub fn from_le_bytes(bytes: &Arc<AlignedBytes>, offset: usize, len: usize) -> Option<Floats> {
        let raw = bytes.as_bytes().get(offset..offset.checked_add(len.checked_mul(4)?)?)?;
        if cfg!(target_endian = "little") && bytemuck::try_cast_slice::<u8, f32>(raw).is_ok() {
            return Some(Floats(FloatsRepr::Shared { bytes: Arc::clone(bytes), offset, len }));
        }
        Some(Floats(FloatsRepr::Owned(raw.as_chunks::<4>().0.iter().map(|c| f32::from_le_bytes(*c)).collect())))
    }

    /// Whether the values are a view into shared bytes (not a copy).
    pub fn is_view(&self) -> bool {
        matches!(self.0, FloatsRepr::Shared { .. })
    }

    /// The values as an owned vector (copied when viewed).
    pub fn into_vec(self) -> Vec<f32> {
        match self.0 {
            FloatsRepr::Owned(v) => v,
            FloatsRepr::Shared { .. } => self.to_vec(),
        }
    }
}

impl Deref for Floats {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match &self.0 {
            FloatsRepr::Owned(v) => v,
            // In range and aligned: checked in `from_le_bytes`, immutable since.
            FloatsRepr::Shared { bytes, offset, len } => {
                bytemuck::cast_slice(&bytes.as_bytes()[*offset..*offset + *len * 4])
            }
        }
    }
}

impl AsRef<[f32]> for Floats {
    fn as_ref(&self) -> &[f32] {
        self
    }
}

impl From<Vec<f32>> for Floats {
    fn from(v: Vec<f32>) -> Floats {
        Floats(FloatsRepr::Owned(v))
    }
}

impl FromIterator<f32> for Floats {
    fn from_iter<I: IntoIterator<Item = f32>>(iter: I) -> Floats {
        Floats(FloatsRepr::Owned(iter.into_iter().collect()))
    }
}

impl PartialEq for Floats {
    fn eq(&self, other: &Floats) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for Floats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// A model the host can score.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// One score per item.
    Popularity(Floats),
    /// score(u, i) = users[u] · items[i].
    Factors {
        /// Latent dimension.
        dim: u32,
        /// `n_users × dim`, row-major.
        users: Floats,
        /// `n_items × dim`, row-major.
        items: Floats,
    },
    /// score(u, ·) = history(u) × similarity (items × items, sparse).
    SparseItemItem(Csr),
    /// score(u, ·) = history(u) × similarity (items × items, dense row-major).
    DenseItemItem {
        /// Number of items.
        n: u32,
        /// `n × n` values.
        values: Floats,
    },
}

impl Model {
    /// The kind's name, as stored in artifact headers.
    pub fn kind(&self) -> &'static str {
        match self {
            Model::Popularity(_) => "popularity",
            Model::Factors { .. } => "factors",
            Model::SparseItemItem(_) => "sparse-item-item",
            Model::DenseItemItem { .. } => "dense-item-item",
        }
    }

    /// Check a model against the data it was trained on (`n_users ×
    /// n_items`): every array has the shape the kind implies and holds only
    /// finite numbers. A trainer's model is untrusted input; this runs before
    /// it is scored or stored.
    pub fn validate(&self, n_users: u32, n_items: u32) -> Result<(), String> {
        let finite = |v: &[f32], what: &str| {
            if v.iter().all(|x| x.is_finite()) { Ok(()) } else { Err(format!("{what} contains NaN or infinite values")) }
        };
        match self {
            Model::Popularity(scores) => {
                if scores.len() != n_items as usize {
                    return Err(format!("popularity has {} scores for {n_items} items", scores.len()));
                }
                finite(scores, "popularity")
            }
            Model::Factors { dim, users, items } => {
                let dim = *dim;
                if dim == 0 {
                    return Err("factor dimension is zero".into());
                }
                let expect = |count: u32, values: &[f32], what: &str| {
                    if values.len() as u64 == count as u64 * dim as u64 {
                        Ok(())
                    } else {
                        Err(format!("{what} factors hold {} values, expected {count} × {dim}", values.len()))
                    }
                };
                expect(n_users, users, "user")?;
                expect(n_items, items, "item")?;
                finite(users, "user factors")?;
                finite(items, "item factors")
            }
            Model::SparseItemItem(csr) => {
                if csr.rows != n_items || csr.cols != n_items {
                    return Err(format!("similarity is {} × {}, expected {n_items} × {n_items}", csr.rows, csr.cols));
                }
                csr.validate().map_err(|e| format!("similarity matrix: {e}"))
            }
            Model::DenseItemItem { n, values } => {
                if *n != n_items || values.len() as u64 != n_items as u64 * n_items as u64 {
                    return Err(format!("dense similarity must be {n_items} × {n_items}"));
                }
                finite(values, "dense similarity")
            }
        }
    }

    /// Number of items the model scores.
    pub fn n_items(&self) -> u32 {
        match self {
            Model::Popularity(s) => s.len() as u32,
            Model::Factors { dim, items, .. } => (items.len() / (*dim).max(1) as usize) as u32,
            Model::SparseItemItem(m) => m.rows,
            Model::DenseItemItem { n, .. } => *n,
        }
    }

    /// Write the score of every item for `user` (with interaction history
    /// `history`) into `out` (length = number of items).
    pub fn score_user(&self, user: u32, history: (&[u32], &[f32]), out: &mut [f32]) {
        match self {
            Model::Popularity(scores) => out.copy_from_slice(scores),
            Model::Factors { dim, users, items } => {
                let d = *dim as usize;
                let start = user as usize * d;
                let Some(u) = users.get(start..start + d) else {
                    out.fill(0.0);
                    return;
                };
                score_items(u, items, d, out);
            }
            Model::SparseItemItem(sim) => {
                out.fill(0.0);
                for (&i, &w) in history.0.iter().zip(history.1) {
                    let (cols, vals) = sim.row(i);
                    for (&j, &s) in cols.iter().zip(vals) {
                        out[j as usize] += w * s;
                    }
                }
            }
            Model::DenseItemItem { n, values } => {
                out.fill(0.0);
                let n = *n as usize;
                for (&i, &w) in history.0.iter().zip(history.1) {
                    let row = &values[i as usize * n..(i as usize + 1) * n];
                    for (o, &s) in out.iter_mut().zip(row) {
                        *o += w * s;
                    }
                }
            }
        }
    }
}

/// Reusable per-thread buffers for scoring one request without allocating:
/// the score of every item, a pseudo-user vector and the top-k heap. They
/// grow to the largest model seen and keep their capacity.
#[derive(Debug, Default)]
pub struct Scratch {
    scores: Vec<f32>,
    vector: Vec<f32>,
    heap: std::collections::BinaryHeap<Worst>,
}

/// A top-k candidate, ordered so the worst kept item is on top of the heap.
#[derive(Debug, PartialEq)]
struct Worst(f32, u32);

impl Eq for Worst {}

impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Worst {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

impl Scratch {
    /// The score buffer, sized for `n` items.
    pub fn scores(&mut self, n: usize) -> &mut [f32] {
        self.scores.resize(n, 0.0);
        &mut self.scores[..n]
    }

    /// The best `k` items of the score buffer (filled by
    /// [`Model::score_user`] or [`Model::score_items`]), best first, ties to
    /// the lower index, skipping items whose score is −∞ (the caller marks
    /// excluded items so). Written into `out` (cleared first); bounded heap,
    /// no sort of all items, no allocation once the buffers have grown.
    pub fn top_k_into(&mut self, k: usize, out: &mut Vec<(u32, f32)>) {
        out.clear();
        self.heap.clear();
        if k == 0 {
            return;
        }
        for (i, &s) in self.scores.iter().enumerate() {
            if s == f32::NEG_INFINITY {
                continue;
            }
            if self.heap.len() < k {
                self.heap.push(Worst(s, i as u32));
            } else if self.heap.peek().is_some_and(|w| s > w.0) {
                self.heap.pop();
                self.heap.push(Worst(s, i as u32));
            }
        }
        while let Some(Worst(s, i)) = self.heap.pop() {
            out.push((i, s));
        }
        out.reverse();
    }
}

impl Model {
    /// Write into `scratch` the score of every item related to the `seeds`
    /// (item indices): popularity as is; factors by the dot product with the
    /// sum of the seeds' factors; item-item models by summing the seeds'
    /// similarity rows. Seeds out of range are ignored.
    pub fn score_items(&self, seeds: &[u32], scratch: &mut Scratch) {
        let n = self.n_items() as usize;
        match self {
            Model::Popularity(scores) => scratch.scores(n).copy_from_slice(scores),
            Model::Factors { dim, items, .. } => {
                let d = *dim as usize;
                scratch.vector.clear();
                scratch.vector.resize(d, 0.0);
                for &s in seeds {
                    if let Some(row) = items.get(s as usize * d..(s as usize + 1) * d) {
                        for (v, x) in scratch.vector.iter_mut().zip(row) {
                            *v += x;
                        }
                    }
                }
                let Scratch { scores, vector, .. } = scratch;
                scores.resize(n, 0.0);
                score_items(vector, items, d, scores);
            }
            Model::SparseItemItem(sim) => {
                let out = scratch.scores(n);
                out.fill(0.0);
                for &i in seeds {
                    let (cols, vals) = sim.row(i);
                    for (&j, &s) in cols.iter().zip(vals) {
                        if let Some(o) = out.get_mut(j as usize) {
                            *o += s;
                        }
                    }
                }
            }
            Model::DenseItemItem { values, .. } => {
                let out = scratch.scores(n);
                out.fill(0.0);
                for &i in seeds {
                    if let Some(row) = values.get(i as usize * n..(i as usize + 1) * n) {
                        for (o, &s) in out.iter_mut().zip(row) {
                            *o += s;
                        }
                    }
                }
            }
        }
    }
}

/// `out[i] = dot(vector, item i)` for the items that fit in `out` (one
/// blocked pass; the bits of [`dot`] for every item).
fn score_items(vector: &[f32], items: &[f32], d: usize, out: &mut [f32]) {
    let n = if d == 0 { out.len() } else { out.len().min(items.len() / d) };
    recotem_numerics::dot_block(vector, &items[..n * d], d, &mut out[..n]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> Csr {
        // user 0 saw item 0; user 1 saw items 1, 2.
        Csr { rows: 2, cols: 3, indptr: vec![0, 1, 3], indices: vec![0, 1, 2], values: vec![1.0; 3] }
    }

    #[test]
    fn factors_score_dot_products() {
        let m = Model::Factors { dim: 2, users: vec![1.0, 0.0, 0.0, 1.0].into(), items: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0].into() };
        let mut out = [0.0; 3];
        m.score_user(1, history().row(1), &mut out);
        assert_eq!(out, [2.0, 4.0, 6.0]);
    }

    #[test]
    fn item_item_scores_sum_over_history() {
        let sim = Csr { rows: 3, cols: 3, indptr: vec![0, 1, 2, 3], indices: vec![1, 0, 0], values: vec![0.5, 0.25, 2.0] };
        let h = history();
        let mut out = [0.0; 3];
        Model::SparseItemItem(sim).score_user(1, h.row(1), &mut out);
        assert_eq!(out, [2.25, 0.0, 0.0]);
        let dense = Model::DenseItemItem { n: 3, values: vec![0.0, 0.5, 0.0, 0.25, 0.0, 0.0, 2.0, 0.0, 0.0].into() };
        dense.score_user(1, h.row(1), &mut out);
        assert_eq!(out, [2.25, 0.0, 0.0]);
    }

    #[test]
    fn models_are_checked_against_the_data() {
        assert!(Model::Popularity(vec![1.0, 2.0].into()).validate(1, 3).is_err());
        assert!(Model::Popularity(vec![1.0, f32::NAN, 0.0].into()).validate(1, 3).is_err());
        assert!(Model::Popularity(vec![1.0, 2.0, 0.0].into()).validate(1, 3).is_ok());
        let bad_csr = Csr { rows: 3, cols: 3, indptr: vec![0, 2, 1, 1], indices: vec![0], values: vec![1.0] };
        assert!(Model::SparseItemItem(bad_csr).validate(1, 3).is_err());
        let f = Model::Factors { dim: 2, users: vec![0.0; 2].into(), items: vec![0.0; 5].into() };
        assert!(f.validate(1, 3).unwrap_err().contains("item factors"));
    }

    #[test]
    fn scratch_top_k_skips_excluded_and_breaks_ties_low() {
        let mut scratch = Scratch::default();
        scratch.scores(5).copy_from_slice(&[0.5, 3.0, 3.0, f32::NEG_INFINITY, 9.0]);
        let mut out = Vec::new();
        scratch.top_k_into(3, &mut out);
        assert_eq!(out, vec![(4, 9.0), (1, 3.0), (2, 3.0)]);
        scratch.top_k_into(10, &mut out);
        assert_eq!(out.len(), 4);
        scratch.top_k_into(0, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn related_scores_per_kind() {
        let mut scratch = Scratch::default();
        let m = Model::Factors { dim: 2, users: Floats::default(), items: vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0].into() };
        m.score_items(&[0, 1], &mut scratch);
        assert_eq!(scratch.scores(3), &[1.0, 1.0, 2.0]);
        let sim = Csr { rows: 3, cols: 3, indptr: vec![0, 1, 2, 3], indices: vec![1, 0, 0], values: vec![0.5, 0.25, 2.0] };
        Model::SparseItemItem(sim).score_items(&[0, 2], &mut scratch);
        assert_eq!(scratch.scores(3), &[2.0, 0.5, 0.0]);
        Model::Popularity(vec![3.0, 1.0].into()).score_items(&[7], &mut scratch);
        assert_eq!(scratch.scores(2), &[3.0, 1.0]);
    }

    #[test]
    fn floats_view_aligned_bytes_in_place_and_copy_otherwise() {
        let values = [1.5f32, -2.0, 3.25];
        let mut raw = vec![0u8; 1];
        raw.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        // Byte 1 (the first float) placed 8-byte aligned: a view.
        let aligned = Arc::new(AlignedBytes::copy_of(&raw, 1));
        let view = Floats::from_le_bytes(&aligned, 1, 3).unwrap();
        assert_eq!(&*view, &values);
        assert_eq!(view.is_view(), cfg!(target_endian = "little"));
        // Byte 0 aligned instead: the floats sit at an odd address, copied.
        let unaligned = Arc::new(AlignedBytes::copy_of(&raw, 0));
        let copy = Floats::from_le_bytes(&unaligned, 1, 3).unwrap();
        assert!(!copy.is_view());
        assert_eq!(copy, view);
        assert_eq!(copy.into_vec(), values.to_vec());
        assert!(Floats::from_le_bytes(&aligned, 1, 4).is_none());
        assert!(Floats::from_le_bytes(&aligned, usize::MAX, 1).is_none());
    }
}
