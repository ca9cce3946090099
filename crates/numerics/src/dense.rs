//! Dense kernels over contiguous row-major `f32` slices.
//!
//! Every kernel is written so the compiler vectorises it without `unsafe`:
//! the reductions keep [`LANES`] independent partial sums in a fixed-size
//! array (exactly one 256-bit register natively, two `f32x4` registers in
//! wasm with `simd128`), and the element-wise loops walk `chunks_exact`
//! slices, so bounds checks disappear. The order of every floating-point
//! operation is fixed by the source, so a kernel gives bit-identical results
//! with and without SIMD, on every platform.

/// Width of the partial-sum arrays of the reductions.
pub const LANES: usize = 8;

/// Dot product of the common prefix of `a` and `b`.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let mut xa = a.chunks_exact(LANES);
    let mut xb = b.chunks_exact(LANES);
    for (x, y) in (&mut xa).zip(&mut xb) {
        for k in 0..LANES {
            acc[k] += x[k] * y[k];
        }
    }
    let mut sum = reduce(acc);
    for (x, y) in xa.remainder().iter().zip(xb.remainder()) {
        sum += x * y;
    }
    sum
}

/// Pairwise sum of the partial sums (fixed order).
#[inline]
fn reduce(acc: [f32; LANES]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `y += alpha * x` over the common prefix.
#[inline]
pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    let n = x.len().min(y.len());
    let (x, y) = (&x[..n], &mut y[..n]);
    let mut cy = y.chunks_exact_mut(LANES);
    let mut cx = x.chunks_exact(LANES);
    for (yy, xx) in (&mut cy).zip(&mut cx) {
        for k in 0..LANES {
            yy[k] += alpha * xx[k];
        }
    }
    for (yy, xx) in cy.into_remainder().iter_mut().zip(cx.remainder()) {
        *yy += alpha * xx;
    }
}

/// `x *= alpha`.
#[inline]
pub fn scale(alpha: f32, x: &mut [f32]) {
    for v in x {
        *v *= alpha;
    }
}

/// `out = A x` for a row-major `rows × x.len()` matrix `a`.
#[inline]
pub fn matvec(a: &[f32], x: &[f32], out: &mut [f32]) {
    let cols = x.len();
    if cols == 0 {
        out.fill(0.0);
        return;
    }
    for (o, row) in out.iter_mut().zip(a.chunks_exact(cols)) {
        *o = dot(row, x);
    }
}

/// `C = A B` for row-major `A` (`m × k`) and `B` (`k × n`); `c` (`m × n`)
/// is overwritten. Each row of `C` is built as a sum of rows of `B` (axpy),
/// so every inner loop is contiguous.
pub fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, c: &mut [f32]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n, "matmul: slice too short");
    for i in 0..m {
        let ci = &mut c[i * n..(i + 1) * n];
        ci.fill(0.0);
        for p in 0..k {
            let aip = a[i * k + p];
            if aip != 0.0 {
                axpy(aip, &b[p * n..(p + 1) * n], ci);
            }
        }
    }
}

/// `out += XᵀX` for a row-major `rows × dim` matrix `x`; `out` is
/// `dim × dim` (both triangles are written). `dim²` multiply-adds per row.
pub fn gram(x: &[f32], dim: usize, out: &mut [f32]) {
    assert!(out.len() >= dim * dim, "gram: output too short");
    if dim == 0 {
        return;
    }
    for row in x.chunks_exact(dim) {
        for (p, &v) in row.iter().enumerate() {
            if v != 0.0 {
                axpy(v, row, &mut out[p * dim..(p + 1) * dim]);
            }
        }
    }
}

/// `out = X Xᵀ` for a row-major `rows × cols` matrix `x`: the dot products
/// between rows, accumulated in `f64` for the small eigen-problems that use
/// it. `out` is `rows × rows`.
pub fn row_gram_f64(x: &[f32], rows: usize, cols: usize, out: &mut [f64]) {
    assert!(x.len() >= rows * cols && out.len() >= rows * rows, "row_gram: slice too short");
    for a in 0..rows {
        let ra = &x[a * cols..(a + 1) * cols];
        for b in 0..=a {
            let v = dot_f64(ra, &x[b * cols..(b + 1) * cols]);
            out[a * rows + b] = v;
            out[b * rows + a] = v;
        }
    }
}

/// Dot product accumulated in `f64` blocks: `f32` partial sums over
/// blocks of 256 elements, added in `f64` (accurate for long vectors,
/// still vectorised).
pub fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len());
    a[..n].chunks(256).zip(b[..n].chunks(256)).map(|(x, y)| dot(x, y) as f64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    #[test]
    fn dot_handles_remainders() {
        let a: Vec<f32> = (1..=7).map(|x| x as f32).collect();
        assert_eq!(dot(&a, &a), 140.0);
        for n in [0, 1, 8, 9, 17, 64, 100] {
            let a: Vec<f32> = (0..n).map(|x| (x as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|x| (x as f32 * 0.11).cos()).collect();
            assert!((dot(&a, &b) as f64 - naive_dot(&a, &b)).abs() < 1e-4, "n={n}");
            assert!((dot_f64(&a, &b) - naive_dot(&a, &b)).abs() < 1e-4, "n={n}");
        }
    }

    #[test]
    fn axpy_scale_matvec() {
        let x: Vec<f32> = (0..11).map(|v| v as f32).collect();
        let mut y = vec![1f32; 11];
        axpy(2.0, &x, &mut y);
        assert_eq!(y, (0..11).map(|v| 1.0 + 2.0 * v as f32).collect::<Vec<_>>());
        scale(0.5, &mut y);
        assert_eq!(y[3], 3.5);
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 × 3
        let mut out = [0f32; 2];
        matvec(&a, &[1.0, 0.0, -1.0], &mut out);
        assert_eq!(out, [-2.0, -2.0]);
    }

    #[test]
    fn matmul_and_grams_match_naive() {
        let (m, k, n) = (3, 4, 5);
        let a: Vec<f32> = (0..m * k).map(|v| (v as f32 * 0.3).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|v| (v as f32 * 0.7).cos()).collect();
        let mut c = vec![9f32; m * n];
        matmul(&a, &b, m, k, n, &mut c);
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
                assert!((c[i * n + j] - want).abs() < 1e-5);
            }
        }
        // XᵀX of a (3 × 4) and X Xᵀ.
        let mut g = vec![0f32; k * k];
        gram(&a, k, &mut g);
        let mut h = vec![0f64; m * m];
        row_gram_f64(&a, m, k, &mut h);
        for p in 0..k {
            for q in 0..k {
                let want: f32 = (0..m).map(|r| a[r * k + p] * a[r * k + q]).sum();
                assert!((g[p * k + q] - want).abs() < 1e-5);
            }
        }
        for r in 0..m {
            for s in 0..m {
                assert!((h[r * m + s] - naive_dot(&a[r * k..(r + 1) * k], &a[s * k..(s + 1) * k])).abs() < 1e-6);
            }
        }
    }
}
