//! `recotem:plugin/linalg` (WIT 0.2.1): pure, data-only linear algebra a
//! trainer may import, run natively on all cores.
//!
//! Why it exists: inside the sandbox a trainer has one thread, and the
//! built-in IALS ran at 1.66× the CPU time of `implicit`'s ALS on 2 cores
//! (docs/architecture.md, "IALS speed"). The half-epoch of iALS is the hot
//! loop; here the host runs it with the same kernel
//! ([`recotem_numerics::ials_solve_rows`]) over row blocks on every core.
//!
//! What a call can touch: its arguments (the fixed factors, the warm-start
//! factors it returns updated) and the interaction matrix of the current
//! `train` call, which the host already holds (it lowered those arrays into
//! the component): the guest names a side, the host never receives the
//! 10 M-entry matrix again. No file, no clock beyond the call's deadline,
//! no state kept between calls except the transpose of that matrix.
//!
//! Every size is checked before the host allocates: the shapes must match
//! the matrix, the dimension and CG steps are bounded, and the host memory
//! the call needs (the transpose, one Gram partial per block) must fit in
//! the trainer's memory cap. The call's deadline and a hard cancellation
//! stop it between blocks (reported as the trial's timeout / the run's
//! cancellation, as if wasm had been interrupted).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use recotem_numerics::{CgWorkspace, Csr, IalsStep, gram, ials_solve_rows};

use super::bindings::trainer::recotem::plugin::linalg::{Host, IalsHalfEpoch, Side};
use super::sandbox::HostState;

/// Rows per block of the parallel solve and of the Gram partials. Fixed
/// (not derived from the thread count) so the result is the same on every
/// machine.
pub const BLOCK_ROWS: usize = 2048;
/// Largest latent dimension accepted.
pub const MAX_DIM: u32 = 1024;
/// Largest number of CG steps per row.
pub const MAX_CG_STEPS: u32 = 64;

/// Why a solve stopped before the end.
#[derive(Debug)]
pub enum Abort {
    /// The call's deadline passed.
    Deadline,
    /// The run was cancelled (hard stop).
    Cancelled,
}

/// Worker threads used by the host-side kernels.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `alpha0 × fixedᵀ fixed` with one partial per [`BLOCK_ROWS`] rows, summed
/// in block order (deterministic for any thread count).
pub fn parallel_gram(fixed: &[f32], k: usize, alpha0: f32, threads: usize) -> Vec<f32> {
    let blocks: Vec<&[f32]> = fixed.chunks(BLOCK_ROWS * k).collect();
    let partials: Vec<std::sync::Mutex<Vec<f32>>> = (0..blocks.len()).map(|_| std::sync::Mutex::new(Vec::new())).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, blocks.len().max(1)) {
            s.spawn(|| {
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    let Some(block) = blocks.get(b) else { break };
                    let mut g = vec![0f32; k * k];
                    gram(block, k, &mut g);
                    if let Ok(mut slot) = partials[b].lock() {
                        *slot = g;
                    }
                }
            });
        }
    });
    let mut out = vec![0f32; k * k];
    for p in partials {
        let p = p.into_inner().unwrap_or_default();
        for (o, v) in out.iter_mut().zip(&p) {
            *o += v;
        }
    }
    out.iter_mut().for_each(|v| *v *= alpha0);
    out
}

/// Solve every row of `m` (one half-epoch) into `target`, blocks of
/// [`BLOCK_ROWS`] rows spread over `threads`. `stop()` is asked before each
/// block; when it answers, the solve ends with that reason.
// Each argument is one input of the kernel; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub fn solve_rows_parallel(
    m: (&[u32], &[u32], &[f32]),
    fixed: &[f32],
    target: &mut [f32],
    k: usize,
    alpha0: f32,
    reg: f32,
    n_other: usize,
    cg_steps: usize,
    threads: usize,
    stop: &(dyn Fn() -> Option<Abort> + Sync),
) -> Result<(), Abort> {
    let g = parallel_gram(fixed, k, alpha0, threads);
    let step = IalsStep { k, gram: &g, alpha0, reg, n_other, cg_steps };
    let blocks: Vec<std::sync::Mutex<&mut [f32]>> = target.chunks_mut(BLOCK_ROWS * k).map(std::sync::Mutex::new).collect();
    let next = AtomicUsize::new(0);
    let aborted = AtomicBool::new(false);
    let reason = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, blocks.len().max(1)) {
            s.spawn(|| {
                let mut ws = CgWorkspace::new(k);
                loop {
                    if aborted.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Some(why) = stop() {
                        aborted.store(true, Ordering::Relaxed);
                        if let Ok(mut r) = reason.lock() {
                            r.get_or_insert(why);
                        }
                        break;
                    }
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    let Some(block) = blocks.get(b) else { break };
                    let Ok(mut rows) = block.lock() else { break };
                    ials_solve_rows(&step, m.0, m.1, m.2, b * BLOCK_ROWS, fixed, &mut rows, &mut ws);
                }
            });
        }
    });
    match reason.into_inner().ok().flatten() {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

/// Host bytes a solve of `n_rows` rows needs besides its arguments: one
/// Gram partial per block and the transpose when it is not built yet.
fn host_bytes(n_fixed_rows: usize, k: usize, transpose: Option<(usize, usize)>) -> u128 {
    let partials = n_fixed_rows.div_ceil(BLOCK_ROWS) as u128 + 1;
    let gram = partials * (k * k) as u128 * 4;
    let t = transpose.map_or(0, |(nnz, cols)| nnz as u128 * 8 + (cols as u128 + 1) * 4);
    gram + t
}

impl Host for HostState {
    fn solve_ials(
        &mut self,
        step: IalsHalfEpoch,
        fixed: Vec<f32>,
        mut target: Vec<f32>,
    ) -> wasmtime::Result<Result<Vec<f32>, String>> {
        let deadline = self.deadline();
        let cap = self.memory_cap();
        let Some(call) = self.call.as_mut() else {
            return Ok(Err("linalg is available during a train call only".into()));
        };
        let matrix = call.matrix.clone();
        let (n_rows, n_other) = match step.side {
            Side::Users => (matrix.rows as usize, matrix.cols as usize),
            Side::Items => (matrix.cols as usize, matrix.rows as usize),
        };
        if step.dim == 0 || step.dim > MAX_DIM {
            return Ok(Err(format!("solve-ials: dim is {}, it must be between 1 and {MAX_DIM}", step.dim)));
        }
        if step.cg_steps == 0 || step.cg_steps > MAX_CG_STEPS {
            return Ok(Err(format!("solve-ials: cg-steps is {}, it must be between 1 and {MAX_CG_STEPS}", step.cg_steps)));
        }
        if !(step.alpha0.is_finite() && step.alpha0 >= 0.0 && step.reg.is_finite() && step.reg >= 0.0) {
            return Ok(Err("solve-ials: alpha0 and reg must be finite and not negative".into()));
        }
        let k = step.dim as usize;
        let want = |rows: usize| rows.checked_mul(k);
        if want(n_other) != Some(fixed.len()) || want(n_rows) != Some(target.len()) {
            return Ok(Err(format!(
                "solve-ials: fixed has {} values and target {}, the matrix needs {n_other} × {k} and {n_rows} × {k}",
                fixed.len(),
                target.len()
            )));
        }
        if !fixed.iter().chain(&target).all(|v| v.is_finite()) {
            return Ok(Err("solve-ials: the factors contain NaN or infinite values".into()));
        }
        let needs_transpose = step.side == Side::Items && call.transpose.is_none();
        let bytes = host_bytes(n_other, k, needs_transpose.then_some((matrix.indices.len(), matrix.cols as usize)));
        if bytes > cap as u128 {
            return Ok(Err(format!(
                "solve-ials: the host would need {} MiB, more than the trainer's memory cap of {} MiB",
                bytes >> 20,
                cap >> 20
            )));
        }
        if needs_transpose {
            call.transpose =
                Some(Csr::transpose_of(matrix.rows, matrix.cols, &matrix.indptr, &matrix.indices, &matrix.values));
        }
        let arrays = match (step.side, &call.transpose) {
            (Side::Users, _) => (&matrix.indptr[..], &matrix.indices[..], &matrix.values[..]),
            (Side::Items, Some(t)) => (&t.indptr[..], &t.indices[..], &t.values[..]),
            (Side::Items, None) => return Ok(Err("solve-ials: the transpose is missing".into())),
        };
        let stop = || {
            if super::cancel::hard_stop() {
                Some(Abort::Cancelled)
            } else if Instant::now() >= deadline {
                Some(Abort::Deadline)
            } else {
                None
            }
        };
        let solved = solve_rows_parallel(
            arrays,
            &fixed,
            &mut target,
            k,
            step.alpha0,
            step.reg,
            n_other,
            step.cg_steps as usize,
            threads(),
            &stop,
        );
        match solved {
            Ok(()) => Ok(Ok(target)),
            // As if wasm had been interrupted: the caller classifies these
            // as the trial's timeout and the run's cancellation.
            Err(Abort::Deadline) => Err(wasmtime::Error::new(wasmtime::Trap::Interrupt)),
            Err(Abort::Cancelled) => Err(wasmtime::Error::new(super::sandbox::Cancelled)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recotem_numerics::{Rng, ials_gram};

    fn random(rows: u32, cols: u32, density: f64, rng: &mut Rng) -> Csr {
        let mut entries = Vec::new();
        for r in 0..rows {
            for c in 0..cols {
                if rng.next_f64() < density {
                    entries.push((r, c, 1.0 + rng.next_f32() * 3.0));
                }
            }
        }
        Csr::from_triplets(rows, cols, &entries)
    }

    #[test]
    fn native_blocks_match_the_numerics_reference() {
        let mut rng = Rng::new(11);
        // More rows than one block, and an empty row, so blocks and the
        // zero rule are both exercised.
        let x = random(BLOCK_ROWS as u32 * 2 + 37, 53, 0.05, &mut rng);
        let k = 12;
        let fixed: Vec<f32> = (0..53 * k).map(|_| (rng.normal() * 0.1) as f32).collect();
        let start: Vec<f32> = (0..x.rows as usize * k).map(|_| (rng.normal() * 0.1) as f32).collect();
        let (alpha0, reg, steps) = (0.3, 0.02, 3);
        // Reference: one thread, the numerics kernel over the whole matrix.
        let mut g = vec![0f32; k * k];
        ials_gram(&fixed, k, alpha0, &mut g);
        let step = IalsStep { k, gram: &g, alpha0, reg, n_other: 53, cg_steps: steps };
        let mut reference = start.clone();
        ials_solve_rows(&step, &x.indptr, &x.indices, &x.values, 0, &fixed, &mut reference, &mut CgWorkspace::new(k));
        for threads in [1, 3] {
            let mut native = start.clone();
            let m = (&x.indptr[..], &x.indices[..], &x.values[..]);
            solve_rows_parallel(m, &fixed, &mut native, k, alpha0, reg, 53, steps, threads, &|| None).unwrap();
            let worst = native.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(worst < 1e-4, "threads {threads}: max difference {worst}");
            assert_ne!(native, start, "the solve changed nothing");
        }
        // Same input, same output, whatever the thread count.
        let run = |threads| {
            let mut t = start.clone();
            solve_rows_parallel((&x.indptr, &x.indices, &x.values), &fixed, &mut t, k, alpha0, reg, 53, steps, threads, &|| None)
                .unwrap();
            t
        };
        assert_eq!(run(1), run(4));
    }

    #[test]
    fn gram_partials_equal_the_whole_gram() {
        let mut rng = Rng::new(5);
        let k = 7;
        let fixed: Vec<f32> = (0..(BLOCK_ROWS * 3 + 5) * k).map(|_| rng.normal() as f32).collect();
        let mut whole = vec![0f32; k * k];
        ials_gram(&fixed, k, 0.5, &mut whole);
        let parts = parallel_gram(&fixed, k, 0.5, 2);
        for (a, b) in parts.iter().zip(&whole) {
            assert!((a - b).abs() <= 1e-3 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn a_stop_ends_the_solve_between_blocks() {
        let mut rng = Rng::new(2);
        let x = random(BLOCK_ROWS as u32 * 3, 20, 0.1, &mut rng);
        let k = 4;
        let fixed = vec![0.1f32; 20 * k];
        let mut t = vec![0.1f32; x.rows as usize * k];
        let r = solve_rows_parallel((&x.indptr, &x.indices, &x.values), &fixed, &mut t, k, 0.1, 0.1, 20, 2, 2, &|| {
            Some(Abort::Deadline)
        });
        assert!(matches!(r, Err(Abort::Deadline)));
    }

    #[test]
    fn host_memory_is_bounded_before_allocating() {
        assert!(host_bytes(200_000, 64, Some((10_000_000, 50_000))) < 200 << 20);
        assert!(host_bytes(1 << 30, 1024, None) > 4u128 << 30);
    }
}
