//! The iALS half-epoch kernel: solve a block of rows with a few
//! conjugate-gradient steps, warm-started from the current factors. Shared
//! by the IALS trainer (inside wasm, one thread) and the host's `linalg`
//! import (natively, one block per thread), so both compute the same thing.

use crate::dense::{axpy, dot, matvec, scale};
use crate::linalg::{CgWorkspace, conjugate_gradient};

/// The constants of one half-epoch.
#[derive(Debug, Clone, Copy)]
pub struct IalsStep<'a> {
    /// Latent dimension.
    pub k: usize,
    /// `alpha0 × Yᵀ Y` of the fixed side (`k × k`, see [`ials_gram`]).
    pub gram: &'a [f32],
    /// Weight of every pair.
    pub alpha0: f32,
    /// Regularisation.
    pub reg: f32,
    /// Number of rows of the fixed side.
    pub n_other: usize,
    /// Conjugate-gradient steps per row.
    pub cg_steps: usize,
}

/// `alpha0 × fixedᵀ fixed` (`k × k`) into `out`.
pub fn ials_gram(fixed: &[f32], k: usize, alpha0: f32, out: &mut [f32]) {
    out.fill(0.0);
    crate::dense::gram(fixed, k, out);
    scale(alpha0, out);
}

/// Update rows `first .. first + target.len() / k` of a CSR matrix
/// (`indptr`, `indices`, `values` are the whole matrix) with `fixed` held.
/// `target` holds those rows' factors (warm start) and receives the new
/// ones. A row without entries gets 0 (its minimiser).
///
/// On x86-64 hosts with AVX2 the same code runs compiled for it (chosen at
/// run time): the 8-wide partial sums fill one register instead of two, the
/// operations and their order are unchanged, so the bits are the same.
// Each argument is one input of the kernel; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn ials_solve_rows(
    step: &IalsStep<'_>,
    indptr: &[u32],
    indices: &[u32],
    values: &[f32],
    first: usize,
    fixed: &[f32],
    target: &mut [f32],
    ws: &mut CgWorkspace,
) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        unsafe { solve_rows_avx2(step, indptr, indices, values, first, fixed, target, ws) };
        return;
    }
    solve_rows(step, indptr, indices, values, first, fixed, target, ws);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
fn solve_rows_avx2(
    step: &IalsStep<'_>,
    indptr: &[u32],
    indices: &[u32],
    values: &[f32],
    first: usize,
    fixed: &[f32],
    target: &mut [f32],
    ws: &mut CgWorkspace,
) {
    solve_rows(step, indptr, indices, values, first, fixed, target, ws);
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn solve_rows(
    step: &IalsStep<'_>,
    indptr: &[u32],
    indices: &[u32],
    values: &[f32],
    first: usize,
    fixed: &[f32],
    target: &mut [f32],
    ws: &mut CgWorkspace,
) {
    let k = step.k;
    let g = step.gram;
    for (n, x) in target.chunks_exact_mut(k).enumerate() {
        let r = first + n;
        let span = indptr[r] as usize..indptr[r + 1] as usize;
        let (idx, vals) = (&indices[span.clone()], &values[span]);
        if idx.is_empty() {
            x.fill(0.0);
            continue;
        }
        let lambda = step.reg * (step.alpha0 * step.n_other as f32 + idx.len() as f32);
        conjugate_gradient(
            x,
            step.cg_steps,
            ws,
            // r = Σ c_i (1 − y_i·x) y_i − (G + λ) x
            |x, res| {
                matvec(g, x, res);
                axpy(lambda, x, res);
                scale(-1.0, res);
                for (n, (&i, &c)) in idx.iter().zip(vals).enumerate() {
                    prefetch_row(fixed, idx.get(n + PREFETCH_AHEAD), k);
                    let y = &fixed[i as usize * k..(i as usize + 1) * k];
                    axpy(c * (1.0 - dot(y, x)), y, res);
                }
            },
            // A v = (G + λ) v + Σ c_i (y_i·v) y_i
            |v, out| {
                matvec(g, v, out);
                axpy(lambda, v, out);
                for (n, (&i, &c)) in idx.iter().zip(vals).enumerate() {
                    prefetch_row(fixed, idx.get(n + PREFETCH_AHEAD), k);
                    let y = &fixed[i as usize * k..(i as usize + 1) * k];
                    axpy(c * dot(y, v), y, out);
                }
            },
        );
    }
}

/// Rows fetched ahead of use in the per-entry loops.
const PREFETCH_AHEAD: usize = 6;

/// Ask the cache for row `i` of `fixed` (`k` columns) before it is read.
/// The rows of a sparse row's entries are scattered over the fixed side:
/// without this the loops wait on memory (perf: the row loads were the
/// hottest instructions). A hint only; nothing is read, nothing changes.
#[inline(always)]
fn prefetch_row(fixed: &[f32], i: Option<&u32>, k: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(&i) = i {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = i as usize * k;
        if let Some(row) = fixed.get(start..start + k) {
            // One hint per 64-byte line (16 floats), plus the last element
            // for rows that do not start on a line.
            for line in row.chunks(16).map(|c| c.as_ptr()).chain(row.last().map(|l| l as *const f32)) {
                // SAFETY: a prefetch never faults and reads nothing; the
                // pointer is inside `fixed` anyway.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(line.cast()) };
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (fixed, i, k);
}
