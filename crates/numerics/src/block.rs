//! The blocked product `U × Iᵀ` whose every entry is bit-identical to
//! [`dot`]: the kernel of factor-model scoring, shared by serving (one user
//! against every item) and evaluation (a block of users against a block of
//! items).
//!
//! The compiler does not vectorise a tile of [`dot`]s on its own (measured:
//! the portable tile ran scalar, ~1 G multiply-adds/s per core), so x86-64
//! hosts take an AVX path chosen at run time. It is the one place in this
//! crate with `unsafe`: raw-pointer loads in bounds checked on entry. The
//! path keeps [`dot`]'s arithmetic exactly: eight lane-wise partial sums
//! built with separate multiplies and adds (never fused), reduced
//! `((p0+p4)+(p1+p5))+((p2+p6)+(p3+p7))`, then the remainder added in
//! sequence. Every other target computes each entry with [`dot`] itself.
//!
//! [`dot`]: crate::dot

use crate::dense::dot;

/// `out[r·n + c] = dot(u_r, items_c)` for the `m = u.len() / d` rows of `u`
/// and the `n = items.len() / d` rows of `items` (both row-major, `d`
/// columns). Each entry has the bits of [`dot`](crate::dot) on every
/// platform. `d = 0` writes zeros.
///
/// # Panics
/// When `out` is shorter than `m · n`.
pub fn dot_block(u: &[f32], items: &[f32], d: usize, out: &mut [f32]) {
    if d == 0 {
        out.fill(0.0);
        return;
    }
    let (m, n) = (u.len() / d, items.len() / d);
    assert!(out.len() >= m * n, "dot_block: output shorter than {m} × {n}");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX (checked just above); the slice
        // lengths were checked against m, n and d above.
        unsafe { x86::dot_block_avx(u, items, d, m, n, out) };
        return;
    }
    for (r, row) in u.chunks_exact(d).enumerate() {
        for (o, item) in out[r * n..(r + 1) * n].iter_mut().zip(items.chunks_exact(d)) {
            *o = dot(row, item);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::dense::dot;

    /// Two users × four items (or one user × eight items) keep eight
    /// 8-lane partial sums in registers; a transposing reduction turns
    /// them into eight finished dot products at once.
    ///
    /// # Safety
    /// AVX must be available; `u.len() >= m·d`, `items.len() >= n·d`,
    /// `out.len() >= m·n`.
    #[target_feature(enable = "avx")]
    pub(super) unsafe fn dot_block_avx(u: &[f32], items: &[f32], d: usize, m: usize, n: usize, out: &mut [f32]) {
        debug_assert!(u.len() >= m * d && items.len() >= n * d && out.len() >= m * n);
        // SAFETY: every pointer below stays inside the slices (rows < m,
        // items < n, offsets < d), as the caller guarantees.
        unsafe {
            let chunks = d / 8;
            let (up, ip, op) = (u.as_ptr(), items.as_ptr(), out.as_mut_ptr());
            let mut r = 0;
            while r + 2 <= m {
                let rows = [up.add(r * d), up.add((r + 1) * d)];
                let mut c = 0;
                while c + 4 <= n {
                    let cols = [ip.add(c * d), ip.add((c + 1) * d), ip.add((c + 2) * d), ip.add((c + 3) * d)];
                    // Accumulators in the reduction's order: user 0 × items
                    // 0..4, then user 1 × items 0..4.
                    let mut acc = [_mm256_setzero_ps(); 8];
                    for k in 0..chunks {
                        let o = k * 8;
                        let a = [_mm256_loadu_ps(rows[0].add(o)), _mm256_loadu_ps(rows[1].add(o))];
                        for (j, col) in cols.iter().enumerate() {
                            let b = _mm256_loadu_ps(col.add(o));
                            acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(a[0], b));
                            acc[4 + j] = _mm256_add_ps(acc[4 + j], _mm256_mul_ps(a[1], b));
                        }
                    }
                    let mut sums = [0f32; 8];
                    _mm256_storeu_ps(sums.as_mut_ptr(), reduce8(acc));
                    for (e, s) in sums.iter_mut().enumerate() {
                        *s = add_tail(*s, rows[e / 4], cols[e % 4], chunks * 8, d);
                    }
                    std::ptr::copy_nonoverlapping(sums.as_ptr(), op.add(r * n + c), 4);
                    std::ptr::copy_nonoverlapping(sums.as_ptr().add(4), op.add((r + 1) * n + c), 4);
                    c += 4;
                }
                for c in c..n {
                    for (i, row) in rows.iter().enumerate() {
                        *op.add((r + i) * n + c) = dot_raw(*row, ip.add(c * d), d);
                    }
                }
                r += 2;
            }
            if r < m {
                let row = up.add(r * d);
                let mut c = 0;
                while c + 8 <= n {
                    let cols: [*const f32; 8] = std::array::from_fn(|j| ip.add((c + j) * d));
                    let mut acc = [_mm256_setzero_ps(); 8];
                    for k in 0..chunks {
                        let o = k * 8;
                        let a = _mm256_loadu_ps(row.add(o));
                        for (j, col) in cols.iter().enumerate() {
                            acc[j] = _mm256_add_ps(acc[j], _mm256_mul_ps(a, _mm256_loadu_ps(col.add(o))));
                        }
                    }
                    let mut sums = [0f32; 8];
                    _mm256_storeu_ps(sums.as_mut_ptr(), reduce8(acc));
                    for (s, col) in sums.iter_mut().zip(cols) {
                        *s = add_tail(*s, row, col, chunks * 8, d);
                    }
                    std::ptr::copy_nonoverlapping(sums.as_ptr(), op.add(r * n + c), 8);
                    c += 8;
                }
                for c in c..n {
                    *op.add(r * n + c) = dot_raw(row, ip.add(c * d), d);
                }
            }
    
        }
    }

    /// Eight partial-sum vectors `[A..H]` to `[ΣA, ΣB, …, ΣH]`, each summed
    /// `((p0+p4)+(p1+p5))+((p2+p6)+(p3+p7))` as [`dot`] reduces.
    #[inline]
    #[target_feature(enable = "avx")]
    fn reduce8(acc: [__m256; 8]) -> __m256 {
        // hadd works within 128-bit halves: pairing A with E (and so on)
        // puts A..D in the low half of the result and E..H in the high.
        let h1 = _mm256_hadd_ps(fold(acc[0], acc[4]), fold(acc[1], acc[5]));
        let h2 = _mm256_hadd_ps(fold(acc[2], acc[6]), fold(acc[3], acc[7]));
        _mm256_hadd_ps(h1, h2)
    }

    /// `[P0+P4, P1+P5, P2+P6, P3+P7, Q0+Q4, …, Q3+Q7]`.
    #[inline]
    #[target_feature(enable = "avx")]
    fn fold(p: __m256, q: __m256) -> __m256 {
        _mm256_add_ps(_mm256_permute2f128_ps::<0x20>(p, q), _mm256_permute2f128_ps::<0x31>(p, q))
    }

    /// `sum` plus the products of elements `from..d`, in sequence.
    ///
    /// # Safety
    /// `a` and `b` point at `d` readable elements.
    #[inline(always)]
    unsafe fn add_tail(mut sum: f32, a: *const f32, b: *const f32, from: usize, d: usize) -> f32 {
        for t in from..d {
            // SAFETY: t < d, as the caller guarantees.
            sum += unsafe { *a.add(t) * *b.add(t) };
        }
        sum
    }

    /// [`dot`] of two rows of `d` elements.
    ///
    /// # Safety
    /// `a` and `b` point at `d` readable elements.
    #[inline(always)]
    unsafe fn dot_raw(a: *const f32, b: *const f32, d: usize) -> f32 {
        // SAFETY: the caller guarantees d readable elements behind each.
        unsafe { dot(std::slice::from_raw_parts(a, d), std::slice::from_raw_parts(b, d)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    #[test]
    fn every_entry_has_the_bits_of_dot() {
        let mut rng = Rng::new(11);
        for d in [0, 1, 3, 7, 8, 9, 16, 17, 31, 64, 100, 128] {
            for (m, n) in [(0, 5), (1, 1), (1, 7), (1, 8), (1, 19), (2, 3), (2, 4), (3, 9), (5, 13), (8, 40)] {
                let mut draw = |len: usize| -> Vec<f32> {
                    (0..len).map(|_| ((rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0).collect()
                };
                let u = draw(m * d);
                let items = draw(n * d);
                let mut out = vec![f32::NAN; m * n];
                dot_block(&u, &items, d, &mut out);
                for r in 0..m {
                    for c in 0..n {
                        let want = if d == 0 { 0.0 } else { dot(&u[r * d..(r + 1) * d], &items[c * d..(c + 1) * d]) };
                        assert_eq!(out[r * n + c].to_bits(), want.to_bits(), "d={d} m={m} n={n} r={r} c={c}");
                    }
                }
            }
        }
    }

    #[test]
    fn non_finite_values_propagate_as_dot_does() {
        let d = 8;
        let mut u = vec![1f32; 2 * d];
        u[3] = f32::INFINITY;
        let mut items = vec![0.5f32; 4 * d];
        items[d + 3] = 0.0; // ∞ × 0 = NaN for user 0 × item 1
        let mut out = vec![0f32; 8];
        dot_block(&u, &items, d, &mut out);
        for r in 0..2 {
            for c in 0..4 {
                let want = dot(&u[r * d..(r + 1) * d], &items[c * d..(c + 1) * d]);
                assert_eq!(out[r * 4 + c].to_bits(), want.to_bits());
            }
        }
        assert!(out[1].is_nan() && out[0].is_infinite());
    }
}
