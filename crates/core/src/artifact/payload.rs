//! The artifact payload: a typed, versioned, bounds-checked binary encoding
//! of everything serving needs. Pure data; decoding runs no code and
//! allocates nothing larger than the input justifies.
//!
//! ```text
//! "RCTPAYLD" | version u32 LE (1) | reserved u32 (0)
//! section*   : tag u32 | reserved u32 | length u64 | body | zero pad to 8
//!   1 users   : string table
//!   2 items   : string table
//!   3 model   : kind u32 | reserved u32 | kind body
//!   4 history : CSR (known users × items)
//!   5 stats   : n_rows u64 | n_users u64 | n_items u64 | drop_count u64
//!   6 metadata: fields (string table) | per field: present bitmap
//!               (n_items bits, LSB first, zero-padded to a byte) | values
//!               (string table of n_items entries, "" where absent)
//! string table: count u32 | offsets u32 × (count + 1) | UTF-8 bytes
//! CSR         : rows u32 | cols u32 | nnz u64 | indptr u32 × (rows+1) | indices u32 × nnz | values f32 × nnz
//! kind 1 popularity       : n u32 | scores f32 × n
//! kind 2 factors          : dim u32 | n_users u32 | n_items u32 | users f32 × n_users·dim | items f32 × n_items·dim
//! kind 3 sparse item-item : CSR
//! kind 4 dense item-item  : n u32 | values f32 × n·n
//! ```
//! Sections come in this order, each exactly once; every number is
//! little-endian.

use crate::ids::Interner;
use crate::error::{Error, Result};
use std::sync::Arc;

use crate::model::{AlignedBytes, Csr, Floats, Model};

/// Payload magic.
pub const MAGIC: &[u8; 8] = b"RCTPAYLD";
/// Format version written and read (2 added data statistics and item
/// metadata).
pub const VERSION: u32 = 2;
/// Name of the format, as recorded in the header.
pub const FORMAT: &str = "recotem-payload";

const TAG_USERS: u32 = 1;
const TAG_ITEMS: u32 = 2;
const TAG_MODEL: u32 = 3;
const TAG_HISTORY: u32 = 4;
const TAG_STATS: u32 = 5;
const TAG_METADATA: u32 = 6;

/// Statistics of the data the model was trained on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataStats {
    /// Interactions kept after cleansing.
    pub n_rows: u64,
    /// Distinct users.
    pub n_users: u64,
    /// Distinct items.
    pub n_items: u64,
    /// Rows dropped by cleansing.
    pub drop_count: u64,
}

/// Item metadata served with recommendations: named string fields, one
/// column per field, one optional value per item (index = item index).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemMetadata {
    /// Field names, in the recipe's order.
    pub fields: Vec<Box<str>>,
    /// `columns[f][item]`: the value of field `f` for `item`, if any.
    pub columns: Vec<Vec<Option<Box<str>>>>,
}

/// Everything a served model needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// User ids (row index of `history` and of user factors), indexed for
    /// lookup.
    pub users: Interner,
    /// Item ids (column index everywhere), indexed for lookup.
    pub items: Interner,
    /// The model.
    pub model: Model,
    /// Known users' interactions, used to exclude seen items and to score
    /// item-item models.
    pub history: Csr,
    /// Data statistics.
    pub stats: DataStats,
    /// Item metadata (no fields when the recipe selects none).
    pub metadata: ItemMetadata,
}

// ---------------------------------------------------------------- encode

struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32s(&mut self, v: &[u32]) {
        self.0.reserve(v.len() * 4);
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn f32s(&mut self, v: &[f32]) {
        self.0.reserve(v.len() * 4);
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn pad8(&mut self) {
        while self.0.len() % 8 != 0 {
            self.0.push(0);
        }
    }
    fn section(&mut self, tag: u32, body: impl FnOnce(&mut Writer)) {
        self.u32(tag);
        self.u32(0);
        let len_at = self.0.len();
        self.u64(0);
        let start = self.0.len();
        body(self);
        let len = (self.0.len() - start) as u64;
        self.0[len_at..len_at + 8].copy_from_slice(&len.to_le_bytes());
        self.pad8();
    }
    fn strings<S: AsRef<str>>(&mut self, ids: &[S]) {
        self.u32(ids.len() as u32);
        let mut offset = 0u32;
        self.u32(0);
        for id in ids {
            offset += id.as_ref().len() as u32;
            self.u32(offset);
        }
        for id in ids {
            self.0.extend_from_slice(id.as_ref().as_bytes());
        }
    }
    /// An id table as a string table: its ends are the offsets after 0.
    fn id_table(&mut self, ids: &Interner) {
        self.u32(ids.len() as u32);
        self.u32(0);
        self.u32s(ids.ends());
        self.0.extend_from_slice(ids.text().as_bytes());
    }
    fn csr(&mut self, m: &Csr) {
        self.u32(m.rows);
        self.u32(m.cols);
        self.u64(m.indices.len() as u64);
        self.u32s(&m.indptr);
        self.u32s(&m.indices);
        self.f32s(&m.values);
    }
}

impl Payload {
    /// Build from the training outputs.
    pub fn new(users: &Interner, items: &Interner, model: Model, history: Csr, stats: DataStats, metadata: ItemMetadata) -> Self {
        Payload { users: users.clone(), items: items.clone(), model, history, stats, metadata }
    }

    /// Encode. Deterministic: the same payload gives the same bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        w.0.extend_from_slice(MAGIC);
        w.u32(VERSION);
        w.u32(0);
        w.section(TAG_USERS, |w| w.id_table(&self.users));
        w.section(TAG_ITEMS, |w| w.id_table(&self.items));
        w.section(TAG_MODEL, |w| match &self.model {
            Model::Popularity(scores) => {
                w.u32(1);
                w.u32(0);
                w.u32(scores.len() as u32);
                w.f32s(scores);
            }
            Model::Factors { dim, users, items } => {
                w.u32(2);
                w.u32(0);
                w.u32(*dim);
                w.u32((users.len() / (*dim).max(1) as usize) as u32);
                w.u32((items.len() / (*dim).max(1) as usize) as u32);
                w.f32s(users);
                w.f32s(items);
            }
            Model::SparseItemItem(m) => {
                w.u32(3);
                w.u32(0);
                w.csr(m);
            }
            Model::DenseItemItem { n, values } => {
                w.u32(4);
                w.u32(0);
                w.u32(*n);
                w.f32s(values);
            }
        });
        w.section(TAG_HISTORY, |w| w.csr(&self.history));
        w.section(TAG_STATS, |w| {
            let st = &self.stats;
            for v in [st.n_rows, st.n_users, st.n_items, st.drop_count] {
                w.u64(v);
            }
        });
        w.section(TAG_METADATA, |w| {
            w.strings(&self.metadata.fields);
            for column in &self.metadata.columns {
                let mut bits = vec![0u8; column.len().div_ceil(8)];
                for (i, v) in column.iter().enumerate() {
                    if v.is_some() {
                        bits[i / 8] |= 1 << (i % 8);
                    }
                }
                w.0.extend_from_slice(&bits);
                let values: Vec<&str> = column.iter().map(|v| v.as_deref().unwrap_or("")).collect();
                w.strings(&values);
            }
        });
        w.0
    }

    /// Decode and cross-check authenticated payload bytes (the model's
    /// arrays are copied out of them).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::decode_with(Reader { bytes, pos: 0, what: "payload header", shared: None })
    }

    /// Decode the authenticated payload at `range` of `buffer`, viewing the
    /// model's float arrays in place (they stay in `buffer`, kept alive by
    /// the model) on a little-endian host; copied where a view is not
    /// possible. Same checks and result as [`Payload::decode`].
    pub fn decode_shared(buffer: &Arc<AlignedBytes>, range: std::ops::Range<usize>) -> Result<Self> {
        let bytes = buffer.as_bytes().get(range.clone()).ok_or_else(|| bad("payload range outside the artifact"))?;
        Self::decode_with(Reader { bytes, pos: 0, what: "payload header", shared: Some((buffer, range.start)) })
    }

    fn decode_with(mut r: Reader<'_>) -> Result<Self> {
        let bytes = r.bytes;
        if r.take(8)? != MAGIC {
            return Err(bad("payload magic missing"));
        }
        let version = r.u32()?;
        if version != VERSION {
            return Err(bad(&format!("payload version {version} is not supported (this recotem reads {VERSION})")));
        }
        r.reserved()?;
        let users = r.section(TAG_USERS, "users", |r| r.id_table())?;
        let items = r.section(TAG_ITEMS, "items", |r| r.id_table())?;
        let model = r.section(TAG_MODEL, "model", |r| {
            let kind = r.u32()?;
            r.reserved()?;
            match kind {
                1 => {
                    let n = r.u32()?;
                    Ok(Model::Popularity(r.floats(n as u64)?))
                }
                2 => {
                    let (dim, nu, ni) = (r.u32()?, r.u32()?, r.u32()?);
                    let users = r.floats(nu as u64 * dim as u64)?;
                    let items = r.floats(ni as u64 * dim as u64)?;
                    Ok(Model::Factors { dim, users, items })
                }
                3 => Ok(Model::SparseItemItem(r.csr()?)),
                4 => {
                    let n = r.u32()?;
                    Ok(Model::DenseItemItem { n, values: r.floats(n as u64 * n as u64)? })
                }
                other => Err(bad(&format!("unknown model kind {other}"))),
            }
        })?;
        let history = r.section(TAG_HISTORY, "history", |r| r.csr())?;
        let stats = r.section(TAG_STATS, "stats", |r| {
            Ok(DataStats { n_rows: r.u64()?, n_users: r.u64()?, n_items: r.u64()?, drop_count: r.u64()? })
        })?;
        let n_items = items.len() as u64;
        let metadata = r.section(TAG_METADATA, "metadata", |r| {
            let fields = r.strings()?;
            let mut columns = Vec::with_capacity(fields.len());
            for _ in 0..fields.len() {
                let bits = r.take(n_items.div_ceil(8))?;
                let values = r.strings()?;
                if values.len() as u64 != n_items {
                    return Err(bad(&format!("metadata: a column has {} values for {n_items} items", values.len())));
                }
                // One encoding per value: padding bits clear, absent values empty.
                let padding = bits.last().map_or(0, |b| if n_items % 8 == 0 { 0 } else { b >> (n_items % 8) });
                let absent_but_set = values.iter().enumerate().any(|(i, v)| bits[i / 8] & (1 << (i % 8)) == 0 && !v.is_empty());
                if padding != 0 || absent_but_set {
                    return Err(bad("metadata: a presence bitmap is not canonical"));
                }
                let column = values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (bits[i / 8] & (1 << (i % 8)) != 0).then_some(v))
                    .collect();
                columns.push(column);
            }
            Ok(ItemMetadata { fields, columns })
        })?;
        if r.pos != bytes.len() {
            return Err(bad(&format!("{} unexpected bytes after the last section", bytes.len() - r.pos)));
        }
        let payload = Payload { users, items, model, history, stats, metadata };
        payload.check()?;
        Ok(payload)
    }

    /// Cross-check the sections against each other.
    fn check(&self) -> Result<()> {
        let (nu, ni) = (self.users.len() as u64, self.items.len() as u64);
        if self.history.rows as u64 != nu || self.history.cols as u64 != ni {
            return Err(bad("history shape does not match the id tables"));
        }
        self.history.validate().map_err(|e| bad(&format!("history: {e}")))?;
        let model_ok = match &self.model {
            Model::Popularity(s) => s.len() as u64 == ni,
            Model::Factors { dim, users, items } => {
                *dim > 0 && users.len() as u64 == nu * *dim as u64 && items.len() as u64 == ni * *dim as u64
            }
            Model::SparseItemItem(m) => {
                m.rows as u64 == ni && m.cols as u64 == ni && m.validate().is_ok()
            }
            Model::DenseItemItem { n, .. } => *n as u64 == ni,
        };
        if !model_ok {
            return Err(bad("the model's shape does not match the id tables"));
        }
        if self.stats.n_users != nu || self.stats.n_items != ni {
            return Err(bad("the data statistics do not match the id tables"));
        }
        // The id tables refused duplicates when they were decoded.
        Interner::from_ids(&self.metadata.fields).map_err(|e| bad(&format!("metadata fields: {e}")))?;
        Ok(())
    }
}

// ---------------------------------------------------------------- decode

fn bad(msg: &str) -> Error {
    Error::artifact(format!("malformed payload: {msg}"))
}

/// Arrays at least this long are converted on two threads.
const PARALLEL_MIN_VALUES: usize = 1 << 22;

/// Convert little-endian f32s into `dst` (same length); false when any is
/// not finite. With `parallel`, two halves on two threads: for the large
/// factor tables the copy is dominated by faulting in fresh pages, which
/// scales with cores.
fn convert_f32s(dst: &mut [f32], src: &[[u8; 4]], parallel: bool) -> bool {
    fn run(dst: &mut [f32], src: &[[u8; 4]]) -> bool {
        let mut finite = true;
        for (d, s) in dst.iter_mut().zip(src) {
            let v = f32::from_le_bytes(*s);
            finite &= v.is_finite();
            *d = v;
        }
        finite
    }
    if !parallel {
        return run(dst, src);
    }
    let mid = src.len().min(dst.len()) / 2;
    let (dst_a, dst_b) = dst.split_at_mut(mid);
    let (src_a, src_b) = src.split_at(mid);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| run(dst_b, src_b));
        let first = run(dst_a, src_a);
        // `run` cannot panic (no indexing); a failed join counts as a failed check.
        first & other.join().unwrap_or(false)
    })
}

/// Whether every value is finite; two threads for large arrays.
fn all_finite(values: &[f32], parallel: bool) -> bool {
    // A fold (not `all`) so the loop vectorises.
    let check = |v: &[f32]| v.iter().fold(true, |ok, x| ok & x.is_finite());
    if !parallel {
        return check(values);
    }
    let (a, b) = values.split_at(values.len() / 2);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| check(b));
        // `check` cannot panic; a failed join counts as a failed check.
        check(a) & other.join().unwrap_or(false)
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
    /// The buffer `bytes` lies in and the offset of `bytes[0]` there, when
    /// float arrays may be viewed in place.
    shared: Option<(&'a Arc<AlignedBytes>, usize)>,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let remaining = (self.bytes.len() - self.pos) as u64;
        if n > remaining {
            return Err(bad(&format!("{} is truncated (needs {n} more bytes, {remaining} left)", self.what)));
        }
        let out = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(out)
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A reserved u32, which must be 0 (one encoding per payload).
    fn reserved(&mut self) -> Result<()> {
        match self.u32()? {
            0 => Ok(()),
            other => Err(bad(&format!("{}: a reserved field is {other}, must be 0", self.what))),
        }
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn u32s(&mut self, n: u64) -> Result<Vec<u32>> {
        let b = self.take(n.checked_mul(4).ok_or_else(|| bad("length overflow"))?)?;
        // `as_chunks` yields exact [u8; 4] arrays: the loop compiles to a
        // straight copy (no per-element bounds checks).
        Ok(b.as_chunks::<4>().0.iter().map(|c| u32::from_le_bytes(*c)).collect())
    }
    fn f32s(&mut self, n: u64) -> Result<Vec<f32>> {
        let b = self.take(n.checked_mul(4).ok_or_else(|| bad("length overflow"))?)?;
        // Every array of scores or weights must be finite (NaN or infinity
        // would poison every ranking); checked in the same pass as the copy.
        let src = b.as_chunks::<4>().0;
        let mut values = vec![0f32; src.len()];
        let finite = convert_f32s(&mut values, src, src.len() >= PARALLEL_MIN_VALUES);
        if !finite {
            return Err(bad(&format!("{}: the model holds NaN or infinite values", self.what)));
        }
        Ok(values)
    }
    /// `n` floats of the model: a view into the shared buffer when there is
    /// one (checked finite in place), else a checked copy.
    fn floats(&mut self, n: u64) -> Result<Floats> {
        let Some((buffer, base)) = self.shared else {
            return Ok(self.f32s(n)?.into());
        };
        let start = base + self.pos;
        let raw = self.take(n.checked_mul(4).ok_or_else(|| bad("length overflow"))?)?;
        let floats = Floats::from_le_bytes(buffer, start, raw.len() / 4)
            .ok_or_else(|| bad(&format!("{}: array outside the payload", self.what)))?;
        if !all_finite(&floats, floats.len() >= PARALLEL_MIN_VALUES) {
            return Err(bad(&format!("{}: the model holds NaN or infinite values", self.what)));
        }
        Ok(floats)
    }
    fn section<T>(&mut self, tag: u32, name: &'static str, body: impl FnOnce(&mut Reader<'a>) -> Result<T>) -> Result<T> {
        self.what = name;
        let found = self.u32()?;
        if found != tag {
            return Err(bad(&format!("expected the {name} section (tag {tag}), found tag {found}")));
        }
        self.reserved()?;
        let len = self.u64()?;
        let body_start = self.pos;
        let body_bytes = self.take(len)?;
        let shared = self.shared.map(|(buffer, base)| (buffer, base + body_start));
        let mut inner = Reader { bytes: body_bytes, pos: 0, what: name, shared };
        let value = body(&mut inner)?;
        if inner.pos != body_bytes.len() {
            return Err(bad(&format!("the {name} section has {} trailing bytes", body_bytes.len() - inner.pos)));
        }
        let pad = (8 - self.pos % 8) % 8;
        if self.take(pad as u64)?.iter().any(|&b| b != 0) {
            return Err(bad(&format!("non-zero padding after the {name} section")));
        }
        Ok(value)
    }
    /// A string table's offsets (checked increasing from 0) and its text
    /// (checked UTF-8).
    fn string_table(&mut self) -> Result<(Vec<u32>, &'a str)> {
        let count = self.u32()? as u64;
        let offsets = self.u32s(count + 1)?;
        if offsets[0] != 0 || offsets.windows(2).any(|w| w[0] > w[1]) {
            return Err(bad(&format!("{}: string offsets are not increasing from 0", self.what)));
        }
        let data = self.take(*offsets.last().unwrap_or(&0) as u64)?;
        let text = std::str::from_utf8(data).map_err(|_| bad(&format!("{}: ids are not UTF-8", self.what)))?;
        Ok((offsets, text))
    }
    /// An id table: the string table's bytes kept as one buffer (no
    /// allocation per id) and indexed for lookup; duplicates refused.
    fn id_table(&mut self) -> Result<Interner> {
        let (mut offsets, text) = self.string_table()?;
        offsets.remove(0);
        Interner::from_parts(text.to_owned(), offsets).map_err(|e| bad(&format!("{}: {e}", self.what)))
    }
    fn strings(&mut self) -> Result<Vec<Box<str>>> {
        let (offsets, text) = self.string_table()?;
        let mut out = Vec::with_capacity(offsets.len() - 1);
        for w in offsets.windows(2) {
            let s = text
                .get(w[0] as usize..w[1] as usize)
                .ok_or_else(|| bad(&format!("{}: an offset splits a character", self.what)))?;
            out.push(s.into());
        }
        Ok(out)
    }
    fn csr(&mut self) -> Result<Csr> {
        let rows = self.u32()?;
        let cols = self.u32()?;
        let nnz = self.u64()?;
        let indptr = self.u32s(rows as u64 + 1)?;
        let indices = self.u32s(nnz)?;
        let values = self.f32s(nnz)?;
        let m = Csr { rows, cols, indptr, indices, values };
        m.validate().map_err(|e| bad(&format!("{}: {e}", self.what)))?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Payload> {
        crate::artifact::fuzz::sample_payloads()
    }

    #[test]
    fn reserved_fields_and_non_finite_values_are_rejected() {
        let mut bytes = samples()[0].encode();
        bytes[12] = 1; // payload header reserved
        assert!(Payload::decode(&bytes).unwrap_err().to_string().contains("reserved"));
        let mut bytes = samples()[0].encode();
        bytes[20] = 1; // users section reserved
        assert!(Payload::decode(&bytes).unwrap_err().to_string().contains("reserved"));
        let mut p = samples()[0].clone();
        p.model = Model::Popularity(vec![1.0, f32::NAN, 2.0].into());
        assert!(Payload::decode(&p.encode()).unwrap_err().to_string().contains("NaN"));
    }

    #[test]
    fn metadata_bitmaps_must_be_canonical() {
        let mut p = samples()[0].clone();
        p.metadata.columns[0] = vec![Some("A".into()), None, None];
        let good = p.encode();
        assert_eq!(Payload::decode(&good).unwrap(), p);
        // The bitmap byte sits just before the column's string table
        // (count 3, offsets 0,1,1,1, then "A").
        let table: Vec<u8> = [3u32, 0, 1, 1, 1].iter().flat_map(|v| v.to_le_bytes()).chain([b'A']).collect();
        let at = good.windows(table.len()).position(|w| w == table.as_slice()).expect("column table") - 1;
        assert_eq!(good[at], 0b001);
        for (byte, why) in [(0b000, "absent value that is not empty"), (0b1001, "padding bit set")] {
            let mut b = good.clone();
            b[at] = byte;
            let e = Payload::decode(&b).unwrap_err().to_string();
            assert!(e.contains("canonical"), "{why}: {e}");
        }
    }

    #[test]
    fn two_thread_conversion_matches_one_thread() {
        for n in [0usize, 1, 2, 7, 1000] {
            let values: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 3.0).collect();
            let bytes: Vec<[u8; 4]> = values.iter().map(|v| v.to_le_bytes()).collect();
            let (mut one, mut two) = (vec![0f32; n], vec![0f32; n]);
            assert!(convert_f32s(&mut one, &bytes, false));
            assert!(convert_f32s(&mut two, &bytes, true));
            assert_eq!((&one, &two), (&values, &values));
            if n > 1 {
                // A NaN in either half is found.
                for at in [0, n - 1] {
                    let mut bad_bytes = bytes.clone();
                    bad_bytes[at] = f32::NAN.to_le_bytes();
                    assert!(!convert_f32s(&mut two, &bad_bytes, true), "NaN at {at} of {n}");
                }
            }
        }
    }

    #[test]
    fn round_trips_every_kind_deterministically() {
        for p in samples() {
            let bytes = p.encode();
            assert_eq!(bytes, p.encode());
            assert_eq!(Payload::decode(&bytes).unwrap(), p);
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = samples()[1].encode();
        for len in 0..bytes.len() {
            assert!(Payload::decode(&bytes[..len]).is_err(), "truncated at {len} accepted");
        }
    }

    #[test]
    fn huge_declared_lengths_fail_without_allocating() {
        let mut bytes = samples()[0].encode();
        // users section length field sits at 16 + 8.
        bytes[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Payload::decode(&bytes).unwrap_err().to_string().contains("truncated"));
    }

    #[test]
    fn shape_mismatch_is_rejected() {
        let mut p = samples()[0].clone();
        p.model = Model::Popularity(vec![1.0].into());
        assert!(Payload::decode(&p.encode()).unwrap_err().to_string().contains("shape"));
    }
}
