//! Sparse × dense products and item-item similarity construction.

use crate::csr::Csr;

/// `out = (X · B)ᵀ`, i.e. `out[c][r] = Σ_j X[r][j] · bt[c][j]`, for a CSR
/// `x` (`rows × cols`) and a dense `B` (`cols × l`) given transposed as the
/// row-major `bt` (`l × cols`). `out` is row-major `l × rows`. The transposed layout
/// keeps one row of `bt` in cache while all rows of `x` gather from it, and
/// gives the column vectors of `X·B` as contiguous rows, which is what
/// [`orthonormalize_rows`](crate::orthonormalize_rows) wants.
pub fn csr_mul_dense_t(x: &Csr, bt: &[f32], l: usize, out: &mut [f32]) {
    let (rows, cols) = (x.rows as usize, x.cols as usize);
    assert!(bt.len() >= l * cols && out.len() >= l * rows, "csr_mul_dense_t: slice too short");
    for c in 0..l {
        let b = &bt[c * cols..(c + 1) * cols];
        let o = &mut out[c * rows..(c + 1) * rows];
        for (r, slot) in o.iter_mut().enumerate() {
            let (idx, val) = x.row(r as u32);
            let mut acc = 0f32;
            for (&j, &v) in idx.iter().zip(val) {
                acc += v * b[j as usize];
            }
            *slot = acc;
        }
    }
}

/// The lower triangle of the dense `XᵀX` (`cols × cols`, row-major) added
/// into `out`: `out[i][j] += Σ_u X[u][i] X[u][j]` for `j ≤ i`. Costs
/// `Σ_u nnz(u)²/2` multiply-adds.
pub fn gram_lower_dense(x: &Csr, out: &mut [f32]) {
    let n = x.cols as usize;
    assert!(out.len() >= n * n, "gram_lower_dense: output too short");
    for u in 0..x.rows {
        let (idx, val) = x.row(u);
        for (a, (&i, &vi)) in idx.iter().zip(val).enumerate() {
            let row = &mut out[i as usize * n..(i as usize + 1) * n];
            for (&j, &vj) in idx[..=a].iter().zip(&val[..=a]) {
                row[j as usize] += vi * vj;
            }
        }
    }
}

/// A dense accumulator over `n` slots that remembers which slots were
/// touched, so a sparse row can be built without clearing `n` values.
#[derive(Debug, Clone)]
pub struct SparseAccumulator {
    values: Vec<f32>,
    touched: Vec<u32>,
    in_use: Vec<bool>,
    scratch: Vec<(u32, f32)>,
}

impl SparseAccumulator {
    /// An accumulator over slots `0..n`.
    pub fn new(n: usize) -> Self {
        SparseAccumulator { values: vec![0.0; n], touched: Vec::new(), in_use: vec![false; n], scratch: Vec::new() }
    }

    /// `slot += v`.
    #[inline]
    pub fn add(&mut self, slot: u32, v: f32) {
        let s = slot as usize;
        if !self.in_use[s] {
            self.in_use[s] = true;
            self.touched.push(slot);
        }
        self.values[s] += v;
    }

    /// Append the touched slots to `out` as one CSR row: each value is
    /// mapped through `finalize(slot, value)`, entries that come out zero or
    /// non-finite are dropped, and when `k` is given only the `k` largest
    /// are kept (ties to the lower slot). The row is sorted by slot. The
    /// accumulator is empty again afterwards.
    pub fn drain_row(&mut self, k: Option<usize>, mut finalize: impl FnMut(u32, f32) -> f32, out: &mut CsrBuilder) {
        self.scratch.clear();
        for &slot in &self.touched {
            let s = slot as usize;
            let v = finalize(slot, self.values[s]);
            self.values[s] = 0.0;
            self.in_use[s] = false;
            if v != 0.0 && v.is_finite() {
                self.scratch.push((slot, v));
            }
        }
        self.touched.clear();
        keep_top_k(&mut self.scratch, k);
        out.push_row(&self.scratch);
    }
}

/// Keep the `k` entries with the largest values (ties to the lower index),
/// then sort what is kept by index.
pub fn keep_top_k(entries: &mut Vec<(u32, f32)>, k: Option<usize>) {
    if let Some(k) = k {
        if entries.len() > k {
            let better = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
            if k > 0 {
                entries.select_nth_unstable_by(k - 1, better);
            }
            entries.truncate(k);
        }
    }
    entries.sort_unstable_by_key(|e| e.0);
}

/// Builds a CSR matrix row by row.
#[derive(Debug, Clone)]
pub struct CsrBuilder {
    cols: u32,
    indptr: Vec<u32>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl CsrBuilder {
    /// An empty matrix with `cols` columns.
    pub fn new(cols: u32) -> Self {
        CsrBuilder { cols, indptr: vec![0], indices: Vec::new(), values: Vec::new() }
    }

    /// Append a row of `(column, value)` entries sorted by column.
    pub fn push_row(&mut self, entries: &[(u32, f32)]) {
        for &(c, v) in entries {
            self.indices.push(c);
            self.values.push(v);
        }
        self.indptr.push(self.indices.len() as u32);
    }

    /// The finished matrix.
    pub fn finish(self) -> Csr {
        Csr { rows: self.indptr.len() as u32 - 1, cols: self.cols, indptr: self.indptr, indices: self.indices, values: self.values }
    }
}

/// The pruned co-occurrence matrix `A` (`xt.rows × x.cols`), one row at a
/// time: `A[j][i] = finalize(j, i, Σ_u xt[j][u] · x[u][i])`, where `xt` has
/// the sparsity of `x`ᵀ (its values may differ, e.g. other weights). The diagonal (`i = j`) is
/// left out and each row keeps its `k` largest entries. This is the kernel
/// of the neighbourhood models: with `x` = `xt`ᵀ it computes the item-item
/// Gram matrix one row at a time, never materialising it.
pub fn cooccurrence_top_k(
    xt: &Csr,
    x: &Csr,
    k: Option<usize>,
    mut finalize: impl FnMut(u32, u32, f32) -> f32,
) -> Csr {
    let n = x.cols;
    let mut acc = SparseAccumulator::new(n as usize);
    let mut out = CsrBuilder::new(n);
    for j in 0..xt.rows {
        let (users, weights) = xt.row(j);
        for (&u, &a) in users.iter().zip(weights) {
            let (items, vals) = x.row(u);
            for (&i, &b) in items.iter().zip(vals) {
                if i != j {
                    acc.add(i, a * b);
                }
            }
        }
        acc.drain_row(k, |i, v| finalize(j, i, v), &mut out);
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// users × items:
    /// u0: 0 1 2
    /// u1: 0 1
    /// u2: 1 3
    fn sample() -> Csr {
        Csr {
            rows: 3,
            cols: 4,
            indptr: vec![0, 3, 5, 7],
            indices: vec![0, 1, 2, 0, 1, 1, 3],
            values: vec![1.0; 7],
        }
    }

    #[test]
    fn csr_times_dense_transposed() {
        let x = sample();
        // bt: 2 × 4
        let bt = [1.0, 2.0, 3.0, 4.0, 0.5, 0.0, 0.0, 1.0];
        let mut out = vec![0f32; 2 * 3];
        csr_mul_dense_t(&x, &bt, 2, &mut out);
        assert_eq!(out, vec![6.0, 3.0, 6.0, 0.5, 0.5, 1.0]);
    }

    #[test]
    fn dense_gram_lower_triangle() {
        let x = sample();
        let mut g = vec![0f32; 16];
        gram_lower_dense(&x, &mut g);
        // co-occurrence counts, lower triangle only.
        assert_eq!(g[0], 2.0); // item 0 twice
        assert_eq!(g[4 + 0], 2.0); // (1,0)
        assert_eq!(g[4 + 1], 3.0); // item 1 thrice
        assert_eq!(g[2 * 4 + 1], 1.0);
        assert_eq!(g[3 * 4 + 1], 1.0);
        assert_eq!(g[1], 0.0, "upper triangle untouched");
    }

    #[test]
    fn cooccurrence_rows_pruned_and_sorted() {
        let x = sample();
        let xt = x.transpose();
        let full = cooccurrence_top_k(&xt, &x, None, |_, _, v| v);
        assert!(full.validate().is_ok());
        // Item 1 co-occurs with 0 (twice), 2 and 3 (once each); no diagonal.
        assert_eq!(full.row(1), (&[0u32, 2, 3][..], &[2.0f32, 1.0, 1.0][..]));
        let top1 = cooccurrence_top_k(&xt, &x, Some(1), |_, _, v| v);
        assert_eq!(top1.row(1), (&[0u32][..], &[2.0f32][..]));
        // Ties go to the lower index.
        assert_eq!(top1.row(0), (&[1u32][..], &[2.0f32][..]));
        let top2 = cooccurrence_top_k(&xt, &x, Some(2), |_, _, v| v);
        assert_eq!(top2.row(1), (&[0u32, 2][..], &[2.0f32, 1.0][..]));
        // finalize can drop entries.
        let none = cooccurrence_top_k(&xt, &x, None, |_, _, _| 0.0);
        assert_eq!(none.nnz(), 0);
        assert_eq!(none.rows, 4);
    }

    #[test]
    fn keep_top_k_edge_cases() {
        let mut e = vec![(3, 1.0), (1, 5.0), (2, 5.0), (0, -1.0)];
        keep_top_k(&mut e, Some(0));
        assert!(e.is_empty());
        let mut e = vec![(3, 1.0), (1, 5.0), (2, 5.0), (0, -1.0)];
        keep_top_k(&mut e, Some(2));
        assert_eq!(e, vec![(1, 5.0), (2, 5.0)]);
        let mut e = vec![(3, 1.0), (1, 5.0)];
        keep_top_k(&mut e, Some(10));
        assert_eq!(e, vec![(1, 5.0), (3, 1.0)]);
    }
}
