//! A small symmetric eigen-solver (cyclic Jacobi, `f64`), for the `l × l`
//! problems of randomised SVD (`l` up to a few hundred).

/// Eigen-decomposition of a symmetric `n × n` matrix `a` (row-major, `f64`,
/// destroyed). Returns the eigenvalues in descending order and the matching
/// eigenvectors as the rows of a row-major `n × n` matrix. Cyclic Jacobi
/// rotations until the off-diagonal mass is negligible (at most 60 sweeps).
pub fn symmetric_eigen(a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    assert!(a.len() >= n * n, "symmetric_eigen: matrix too short");
    // Eigenvectors are kept as rows (vt = Vᵀ) so each rotation touches two
    // contiguous rows.
    let mut vt = vec![0f64; n * n];
    for i in 0..n {
        vt[i * n + i] = 1.0;
    }
    let total: f64 = a[..n * n].iter().map(|v| v * v).sum();
    for _sweep in 0..60 {
        let mut off = 0.0;
        for p in 0..n {
            for q in p + 1..n {
                off += a[p * n + q] * a[p * n + q];
            }
        }
        if off <= 1e-30 * total.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let (app, aqq) = (a[p * n + p], a[q * n + q]);
                let tau = (aqq - app) / (2.0 * apq);
                let t = tau.signum() / (tau.abs() + (1.0 + tau * tau).sqrt());
                let t = if tau == 0.0 { 1.0 } else { t };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = t * c;
                // Rows p and q, then columns p and q (A stays symmetric).
                rotate_rows(a, n, p, q, c, s);
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                a[p * n + q] = 0.0;
                a[q * n + p] = 0.0;
                rotate_rows(&mut vt, n, p, q, c, s);
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&x, &y| a[y * n + y].total_cmp(&a[x * n + x]).then(x.cmp(&y)));
    let values = order.iter().map(|&i| a[i * n + i]).collect();
    let mut vectors = vec![0f64; n * n];
    for (dst, &src) in order.iter().enumerate() {
        vectors[dst * n..(dst + 1) * n].copy_from_slice(&vt[src * n..(src + 1) * n]);
    }
    (values, vectors)
}

/// `(row_p, row_q) ← (c·row_p − s·row_q, s·row_p + c·row_q)`.
fn rotate_rows(m: &mut [f64], n: usize, p: usize, q: usize, c: f64, s: f64) {
    let (head, tail) = m.split_at_mut(q * n);
    let rp = &mut head[p * n..(p + 1) * n];
    let rq = &mut tail[..n];
    for (x, y) in rp.iter_mut().zip(rq.iter_mut()) {
        let (xp, xq) = (*x, *y);
        *x = c * xp - s * xq;
        *y = s * xp + c * xq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn decomposes_random_symmetric_matrices() {
        for n in [1, 2, 7, 30] {
            let mut rng = Rng::new(n as u64);
            let mut a = vec![0f64; n * n];
            for i in 0..n {
                for j in 0..=i {
                    let v = rng.normal();
                    a[i * n + j] = v;
                    a[j * n + i] = v;
                }
            }
            let orig = a.clone();
            let (values, vectors) = symmetric_eigen(&mut a, n);
            assert!(values.windows(2).all(|w| w[0] >= w[1]), "descending");
            for (k, &lambda) in values.iter().enumerate() {
                let v = &vectors[k * n..(k + 1) * n];
                let norm: f64 = v.iter().map(|x| x * x).sum();
                assert!((norm - 1.0).abs() < 1e-10);
                for i in 0..n {
                    let av: f64 = (0..n).map(|j| orig[i * n + j] * v[j]).sum();
                    assert!((av - lambda * v[i]).abs() < 1e-9, "n={n} k={k}");
                }
            }
        }
    }

    #[test]
    fn diagonal_input_sorted_descending() {
        let mut a = vec![1.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 2.0];
        let (values, vectors) = symmetric_eigen(&mut a, 3);
        assert_eq!(values, vec![3.0, 2.0, 1.0]);
        assert_eq!(&vectors[..3], &[0.0, 1.0, 0.0]);
    }
}
