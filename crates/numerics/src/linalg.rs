//! Solvers: Cholesky factorisation and in-place inverse of symmetric
//! positive-definite matrices, conjugate gradient, and orthonormalisation
//! (modified Gram–Schmidt). Matrices are row-major `f32`; only the lower
//! triangle of a symmetric input is read. Every inner loop is a [`dot`] or
//! an [`axpy`] over contiguous memory.

use crate::dense::{axpy, dot, scale};

/// A matrix that should be positive definite was not (pivot `0` based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotPositiveDefinite(pub usize);

impl std::fmt::Display for NotPositiveDefinite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "matrix is not positive definite (pivot {} is not positive)", self.0)
    }
}

/// Cholesky factorisation `A = L Lᵀ` in place: on return the lower
/// triangle of `a` (`n × n`) holds `L`; the strict upper triangle is left
/// as it was. About `n³/6` multiply-adds, all as row dot products.
pub fn cholesky_in_place(a: &mut [f32], n: usize) -> Result<(), NotPositiveDefinite> {
    assert!(a.len() >= n * n, "cholesky: matrix too short");
    for i in 0..n {
        let (done, rest) = a.split_at_mut(i * n);
        let row_i = &mut rest[..n];
        for j in 0..i {
            let row_j = &done[j * n..j * n + j + 1];
            let s = row_i[j] - dot(&row_i[..j], &row_j[..j]);
            row_i[j] = s / row_j[j];
        }
        let d = row_i[i] - dot(&row_i[..i], &row_i[..i]);
        if !(d > 0.0) || !d.is_finite() {
            return Err(NotPositiveDefinite(i));
        }
        row_i[i] = d.sqrt();
    }
    Ok(())
}

/// Solve `L Lᵀ x = b` in place (`b` becomes `x`) with the factor from
/// [`cholesky_in_place`].
pub fn cholesky_solve(l: &[f32], n: usize, b: &mut [f32]) {
    // Forward: L y = b (row dot products).
    for i in 0..n {
        let row = &l[i * n..i * n + i + 1];
        b[i] = (b[i] - dot(&row[..i], &b[..i])) / row[i];
    }
    // Backward: Lᵀ x = y, column-oriented so it still reads rows of L.
    for i in (0..n).rev() {
        let row = &l[i * n..i * n + i + 1];
        b[i] /= row[i];
        let xi = b[i];
        axpy(-xi, &row[..i], &mut b[..i]);
    }
}

/// Replace a symmetric positive-definite `a` (`n × n`, lower triangle read)
/// by its inverse (both triangles written), using only `a` and a scratch
/// vector `tmp` of length ≥ `n`: Cholesky, then the inverse of the factor,
/// then `A⁻¹ = L⁻ᵀ L⁻¹`, each in place (about `n³/2` multiply-adds in all).
pub fn spd_inverse_in_place(a: &mut [f32], n: usize, tmp: &mut [f32]) -> Result<(), NotPositiveDefinite> {
    assert!(tmp.len() >= n, "spd_inverse: scratch too short");
    cholesky_in_place(a, n)?;
    // M = L⁻¹, row by row: M_i = (e_i − Σ_{k<i} L_ik M_k) / L_ii.
    for i in 0..n {
        let (done, rest) = a.split_at_mut(i * n);
        let row_i = &mut rest[..n];
        let t = &mut tmp[..i];
        t.fill(0.0);
        for k in 0..i {
            let lik = row_i[k];
            if lik != 0.0 {
                axpy(lik, &done[k * n..k * n + k + 1], &mut t[..k + 1]);
            }
        }
        let inv = 1.0 / row_i[i];
        for (dst, &v) in row_i[..i].iter_mut().zip(t.iter()) {
            *dst = -v * inv;
        }
        row_i[i] = inv;
    }
    // A⁻¹ = Mᵀ M, lower triangle, row i from rows k ≥ i (not yet overwritten):
    // (A⁻¹)_i[0..=i] = Σ_{k≥i} M_ki M_k[0..=i].
    for i in 0..n {
        let t = &mut tmp[..i + 1];
        t.fill(0.0);
        for k in i..n {
            let row_k = &a[k * n..k * n + i + 1];
            let mki = row_k[i];
            if mki != 0.0 {
                axpy(mki, row_k, t);
            }
        }
        a[i * n..i * n + i + 1].copy_from_slice(t);
    }
    for i in 0..n {
        for j in 0..i {
            a[j * n + i] = a[i * n + j];
        }
    }
    Ok(())
}

/// Scratch vectors of the conjugate-gradient solver, allocated once per
/// trainer and reused for every system.
#[derive(Debug, Clone)]
pub struct CgWorkspace {
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
}

impl CgWorkspace {
    /// Scratch for systems of dimension `dim`.
    pub fn new(dim: usize) -> Self {
        CgWorkspace { r: vec![0.0; dim], p: vec![0.0; dim], ap: vec![0.0; dim] }
    }
}

/// At most `steps` conjugate-gradient iterations on `A x = b`, warm-started
/// from `x` (updated in place). `residual(x, r)` writes `r = b − A x` and
/// `apply(v, out)` writes `out = A v`; `A` must be symmetric positive
/// definite. Returns the number of iterations done (it stops early once the
/// residual vanishes).
// Inlined into its callers so a caller compiled for wider SIMD (the iALS
// kernel's AVX2 path) compiles the iterations for it too.
#[inline(always)]
pub fn conjugate_gradient(
    x: &mut [f32],
    steps: usize,
    ws: &mut CgWorkspace,
    residual: impl FnOnce(&[f32], &mut [f32]),
    mut apply: impl FnMut(&[f32], &mut [f32]),
) -> usize {
    let dim = x.len();
    let (r, p, ap) = (&mut ws.r[..dim], &mut ws.p[..dim], &mut ws.ap[..dim]);
    residual(x, r);
    p.copy_from_slice(r);
    let mut rs = dot(r, r);
    for step in 0..steps {
        if !(rs > 1e-20) {
            return step;
        }
        apply(p, ap);
        let pap = dot(p, ap);
        if !(pap > 0.0) {
            return step;
        }
        let alpha = rs / pap;
        axpy(alpha, p, x);
        axpy(-alpha, ap, r);
        let rs_new = dot(r, r);
        let beta = rs_new / rs;
        // p = r + beta p
        scale(beta, p);
        axpy(1.0, r, p);
        rs = rs_new;
    }
    steps
}

/// Orthonormalise the rows of a row-major `rows × cols` matrix in place
/// (modified Gram–Schmidt, each row orthogonalised twice against the
/// earlier ones: "twice is enough" keeps `f32` rows orthogonal to working
/// precision). A row that is numerically in the span of the earlier ones
/// becomes zero. Returns the number of non-zero rows.
pub fn orthonormalize_rows(m: &mut [f32], rows: usize, cols: usize) -> usize {
    assert!(m.len() >= rows * cols, "orthonormalize: matrix too short");
    let mut rank = 0;
    for i in 0..rows {
        let (done, rest) = m.split_at_mut(i * cols);
        let row = &mut rest[..cols];
        let norm0 = dot(row, row).sqrt();
        for _pass in 0..2 {
            for j in 0..i {
                let q = &done[j * cols..(j + 1) * cols];
                let r = dot(q, row);
                if r != 0.0 {
                    axpy(-r, q, row);
                }
            }
        }
        let norm = dot(row, row).sqrt();
        if norm > 1e-5 * norm0 && norm > 0.0 && norm.is_finite() {
            scale(1.0 / norm, row);
            rank += 1;
        } else {
            row.fill(0.0);
        }
    }
    rank
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::matmul;
    use crate::rng::Rng;

    /// A random SPD matrix: RᵀR + n I.
    fn spd(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let r: Vec<f32> = (0..n * n).map(|_| rng.normal() as f32).collect();
        let mut rt = vec![0f32; n * n];
        for i in 0..n {
            for j in 0..n {
                rt[i * n + j] = r[j * n + i];
            }
        }
        let mut a = vec![0f32; n * n];
        matmul(&rt, &r, n, n, n, &mut a);
        for i in 0..n {
            a[i * n + i] += n as f32;
        }
        a
    }

    #[test]
    fn cholesky_solves_and_inverts() {
        let n = 13;
        let a = spd(n, 3);
        let x_true: Vec<f32> = (0..n).map(|i| (i as f32 * 0.5).sin()).collect();
        let mut b = vec![0f32; n];
        crate::dense::matvec(&a, &x_true, &mut b);
        let mut l = a.clone();
        cholesky_in_place(&mut l, n).unwrap();
        cholesky_solve(&l, n, &mut b);
        for (x, t) in b.iter().zip(&x_true) {
            assert!((x - t).abs() < 1e-4, "{x} vs {t}");
        }
        let mut inv = a.clone();
        let mut tmp = vec![0f32; n];
        spd_inverse_in_place(&mut inv, n, &mut tmp).unwrap();
        let mut id = vec![0f32; n * n];
        matmul(&a, &inv, n, n, n, &mut id);
        for i in 0..n {
            for j in 0..n {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((id[i * n + j] - want).abs() < 1e-4, "({i},{j}) = {}", id[i * n + j]);
            }
        }
    }

    #[test]
    fn not_positive_definite_is_reported() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert_eq!(cholesky_in_place(&mut a, 2), Err(NotPositiveDefinite(1)));
    }

    #[test]
    fn cg_converges_on_spd_systems() {
        let n = 10;
        let a = spd(n, 5);
        let x_true: Vec<f32> = (0..n).map(|i| i as f32 - 4.0).collect();
        let mut b = vec![0f32; n];
        crate::dense::matvec(&a, &x_true, &mut b);
        let mut x = vec![0f32; n];
        let mut ws = CgWorkspace::new(n);
        let apply = |v: &[f32], out: &mut [f32]| crate::dense::matvec(&a, v, out);
        conjugate_gradient(
            &mut x,
            3 * n,
            &mut ws,
            |x, r| {
                crate::dense::matvec(&a, x, r);
                for (ri, bi) in r.iter_mut().zip(&b) {
                    *ri = bi - *ri;
                }
            },
            apply,
        );
        for (x, t) in x.iter().zip(&x_true) {
            assert!((x - t).abs() < 1e-3, "{x} vs {t}");
        }
    }

    #[test]
    fn rows_become_orthonormal_and_dependent_rows_zero() {
        let (rows, cols) = (5, 40);
        let mut rng = Rng::new(9);
        let mut m: Vec<f32> = (0..rows * cols).map(|_| rng.normal() as f32).collect();
        // Row 3 = row 0 + row 1: dependent.
        for c in 0..cols {
            m[3 * cols + c] = m[c] + m[cols + c];
        }
        assert_eq!(orthonormalize_rows(&mut m, rows, cols), 4);
        for i in 0..rows {
            for j in 0..rows {
                let d = dot(&m[i * cols..(i + 1) * cols], &m[j * cols..(j + 1) * cols]);
                let want = if i == j && i != 3 { 1.0 } else { 0.0 };
                assert!((d - want).abs() < 1e-5, "({i},{j}) = {d}");
            }
        }
    }
}
