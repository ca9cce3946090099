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
//! no state kept between calls except the transpose of that matrix and
//! (WIT 0.2.2) the [`IalsFactors`] handles the trainer created: both factor
//! arrays of an iALS fit, solved in place, so per half-epoch nothing
//! crosses the boundary; a handle the trainer returns becomes the model
//! without a copy ([`take_factors`]). `call-input` (0.2.2) hands a trainer
//! called by shape a copy of the matrix when it asks.
//!
//! Every size is checked before the host allocates: the shapes must match
//! the matrix, the dimension and CG steps are bounded, and the host memory
//! the call needs (the transpose, one Gram partial per block, the factors
//! held by live handles) must fit in the trainer's memory cap. The call's
//! deadline and a hard cancellation stop it between blocks (reported as the
//! trial's timeout / the run's cancellation, as if wasm had been
//! interrupted).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use recotem_numerics::{CgWorkspace, Csr, IalsStep, gram, ials_solve_rows};

use wasmtime::component::Resource;

use super::bindings::source::recotem::plugin::types::CsrMatrix;
use super::bindings::trainer::recotem::plugin::call_input::Host as CallInputHost;
use super::bindings::trainer::recotem::plugin::linalg::{Host, HostIalsFactors, IalsHalfEpoch, Side};
use super::sandbox::{HostState, TrainCall};

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

/// iALS factors held by the host for a guest (`linalg.ials-factors`,
/// WIT 0.2.2): `rows × dim` users and `cols × dim` items of the current
/// call's matrix, row-major.
pub struct IalsFactors {
    dim: usize,
    users: Vec<f32>,
    items: Vec<f32>,
}

impl IalsFactors {
    /// The latent dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Host bytes the handle holds.
    fn bytes(&self) -> usize {
        (self.users.len() + self.items.len()) * 4
    }

    /// The factors, users then items (taken by the host as the model).
    pub fn into_parts(self) -> (Vec<f32>, Vec<f32>) {
        (self.users, self.items)
    }

    /// The factors, users then items.
    pub fn parts(&self) -> (&[f32], &[f32]) {
        (&self.users, &self.items)
    }

    fn side(&self, side: Side) -> &[f32] {
        match side {
            Side::Users => &self.users,
            Side::Items => &self.items,
        }
    }

    fn side_mut(&mut self, side: Side) -> &mut Vec<f32> {
        match side {
            Side::Users => &mut self.users,
            Side::Items => &mut self.items,
        }
    }
}

/// The checked parameters of one half-epoch.
struct Checked {
    k: usize,
    n_rows: usize,
    n_other: usize,
}

/// Check `step` against the shape of the call's matrix.
fn check(matrix: &Csr, step: &IalsHalfEpoch) -> Result<Checked, String> {
    let (n_rows, n_other) = match step.side {
        Side::Users => (matrix.rows as usize, matrix.cols as usize),
        Side::Items => (matrix.cols as usize, matrix.rows as usize),
    };
    if step.dim == 0 || step.dim > MAX_DIM {
        return Err(format!("dim is {}, it must be between 1 and {MAX_DIM}", step.dim));
    }
    if step.cg_steps == 0 || step.cg_steps > MAX_CG_STEPS {
        return Err(format!("cg-steps is {}, it must be between 1 and {MAX_CG_STEPS}", step.cg_steps));
    }
    if !(step.alpha0.is_finite() && step.alpha0 >= 0.0 && step.reg.is_finite() && step.reg >= 0.0) {
        return Err("alpha0 and reg must be finite and not negative".into());
    }
    Ok(Checked { k: step.dim as usize, n_rows, n_other })
}

/// Bound the host memory the solve needs (Gram partials, the transpose if
/// not built yet, besides what the call already holds) by `cap`; build the
/// transpose if needed.
fn reserve(call: &mut TrainCall, step: &IalsHalfEpoch, c: &Checked, cap: usize) -> Result<(), String> {
    let matrix = call.matrix.get();
    let needs_transpose = step.side == Side::Items && call.transpose.is_none();
    let bytes = host_bytes(c.n_other, c.k, needs_transpose.then_some((matrix.indices.len(), matrix.cols as usize)))
        + held_bytes(call);
    if bytes > cap as u128 {
        return Err(format!(
            "the host would need {} MiB, more than the trainer's memory cap of {} MiB",
            bytes >> 20,
            cap >> 20
        ));
    }
    if needs_transpose {
        call.transpose =
            Some(Csr::transpose_of(matrix.rows, matrix.cols, &matrix.indptr, &matrix.indices, &matrix.values));
    }
    Ok(())
}

/// [`check`], then [`reserve`].
fn prepare(call: &mut TrainCall, step: &IalsHalfEpoch, cap: usize) -> Result<Checked, String> {
    let c = check(call.matrix.get(), step)?;
    reserve(call, step, &c, cap)?;
    Ok(c)
}

/// Bytes of a CSR's arrays.
fn csr_bytes(m: &Csr) -> usize {
    (m.indptr.len() + m.indices.len() + m.values.len()) * 4
}

/// Host bytes the call already holds for the guest: live factor handles
/// and the transpose.
fn held_bytes(call: &TrainCall) -> u128 {
    call.held_bytes as u128 + call.transpose.as_ref().map_or(0, |t| csr_bytes(t) as u128)
}

/// Solve `side` of the call's matrix: `target` updated in place with
/// `fixed` held. `Err` traps the call (deadline, cancellation).
fn run_solve(
    call: &TrainCall,
    step: &IalsHalfEpoch,
    c: &Checked,
    fixed: &[f32],
    target: &mut [f32],
    deadline: Instant,
) -> wasmtime::Result<Result<(), String>> {
    let matrix = call.matrix.get();
    let arrays = match (step.side, &call.transpose) {
        (Side::Users, _) => (&matrix.indptr[..], &matrix.indices[..], &matrix.values[..]),
        (Side::Items, Some(t)) => (&t.indptr[..], &t.indices[..], &t.values[..]),
        (Side::Items, None) => return Ok(Err("the transpose is missing".into())),
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
        fixed,
        target,
        c.k,
        step.alpha0,
        step.reg,
        c.n_other,
        step.cg_steps as usize,
        threads(),
        &stop,
    );
    match solved {
        Ok(()) => Ok(Ok(())),
        // As if wasm had been interrupted: the caller classifies these
        // as the trial's timeout and the run's cancellation.
        Err(Abort::Deadline) => Err(wasmtime::Error::new(wasmtime::Trap::Interrupt)),
        Err(Abort::Cancelled) => Err(wasmtime::Error::new(super::sandbox::Cancelled)),
    }
}

/// The message for a trainer-only function called outside `train`.
fn outside(what: &str) -> String {
    format!("{what} is available during a train call only")
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
            return Ok(Err(outside("linalg")));
        };
        let c = match prepare_arrays(call, &step, cap, &fixed, &target) {
            Ok(c) => c,
            Err(e) => return Ok(Err(format!("solve-ials: {e}"))),
        };
        Ok(run_solve(call, &step, &c, &fixed, &mut target, deadline)?.map(|()| target))
    }
}

/// [`check`] and [`reserve`] for `solve-ials`, whose factors come as
/// arguments: their lengths must match the matrix and every value must be
/// finite.
fn prepare_arrays(call: &mut TrainCall, step: &IalsHalfEpoch, cap: usize, fixed: &[f32], target: &[f32]) -> Result<Checked, String> {
    let c = check(call.matrix.get(), step)?;
    if Some(fixed.len()) != c.n_other.checked_mul(c.k) || Some(target.len()) != c.n_rows.checked_mul(c.k) {
        return Err(format!(
            "fixed has {} values and target {}, the matrix needs {} × {k} and {} × {k}",
            fixed.len(),
            target.len(),
            c.n_other,
            c.n_rows,
            k = c.k
        ));
    }
    if !fixed.iter().chain(target).all(|v| v.is_finite()) {
        return Err("the factors contain NaN or infinite values".into());
    }
    reserve(call, step, &c, cap)?;
    Ok(c)
}

impl HostIalsFactors for HostState {
    fn create(&mut self, dim: u32) -> wasmtime::Result<Result<Resource<IalsFactors>, String>> {
        let cap = self.memory_cap();
        let Some(call) = self.call.as_mut() else {
            return Ok(Err(outside("ials-factors.create")));
        };
        if dim == 0 || dim > MAX_DIM {
            return Ok(Err(format!("ials-factors.create: dim is {dim}, it must be between 1 and {MAX_DIM}")));
        }
        let m = call.matrix.get();
        let values = (m.rows as u128 + m.cols as u128) * dim as u128;
        if values * 4 + held_bytes(call) > cap as u128 {
            return Ok(Err(format!(
                "ials-factors.create: {} × {dim} factors need {} MiB of host memory; with what the call holds that is more than the trainer's memory cap of {} MiB",
                m.rows as u64 + m.cols as u64,
                (values * 4) >> 20,
                cap >> 20
            )));
        }
        let k = dim as usize;
        let factors = IalsFactors { dim: k, users: vec![0.0; m.rows as usize * k], items: vec![0.0; m.cols as usize * k] };
        call.held_bytes += factors.bytes();
        Ok(Ok(self.push_resource(factors)?))
    }

    fn dim(&mut self, this: Resource<IalsFactors>) -> wasmtime::Result<u32> {
        let (table, _) = self.table_and_call();
        Ok(table.get(&this)?.dim as u32)
    }

    fn write_rows(
        &mut self,
        this: Resource<IalsFactors>,
        side: Side,
        first_row: u32,
        values: Vec<f32>,
    ) -> wasmtime::Result<Result<(), String>> {
        let (table, _) = self.table_and_call();
        let f = table.get_mut(&this)?;
        let k = f.dim;
        let dest = f.side_mut(side);
        let start = first_row as usize * k;
        if !values.len().is_multiple_of(k) {
            return Ok(Err(format!("ials-factors.write-rows: {} values is not a whole number of rows of {k}", values.len())));
        }
        let Some(slot) = dest.get_mut(start..start + values.len()) else {
            return Ok(Err(format!(
                "ials-factors.write-rows: rows {first_row}..{} are outside the {} rows of the {side:?} side",
                first_row as usize + values.len() / k,
                dest.len() / k
            )));
        };
        if !values.iter().all(|v| v.is_finite()) {
            return Ok(Err("ials-factors.write-rows: the values contain NaN or infinite values".into()));
        }
        slot.copy_from_slice(&values);
        Ok(Ok(()))
    }

    fn read_rows(
        &mut self,
        this: Resource<IalsFactors>,
        side: Side,
        first_row: u32,
        count: u32,
    ) -> wasmtime::Result<Result<Vec<f32>, String>> {
        let (table, _) = self.table_and_call();
        let f = table.get(&this)?;
        let k = f.dim;
        let src = f.side(side);
        let (start, end) = (first_row as usize * k, (first_row as usize + count as usize) * k);
        match src.get(start..end) {
            Some(rows) => Ok(Ok(rows.to_vec())),
            None => Ok(Err(format!(
                "ials-factors.read-rows: rows {first_row}..{} are outside the {} rows of the {side:?} side",
                first_row as u64 + count as u64,
                src.len() / k
            ))),
        }
    }

    fn solve(&mut self, this: Resource<IalsFactors>, step: IalsHalfEpoch) -> wasmtime::Result<Result<(), String>> {
        let deadline = self.deadline();
        let cap = self.memory_cap();
        let (table, call) = self.table_and_call();
        let Some(call) = call else {
            return Ok(Err(outside("ials-factors.solve")));
        };
        let f = table.get_mut(&this)?;
        if step.dim as usize != f.dim {
            return Ok(Err(format!("ials-factors.solve: step.dim is {}, the handle's factors have {}", step.dim, f.dim)));
        }
        let c = match prepare(call, &step, cap) {
            Ok(c) => c,
            Err(e) => return Ok(Err(format!("ials-factors.solve: {e}"))),
        };
        let (target, fixed) = match step.side {
            Side::Users => (&mut f.users, &f.items),
            Side::Items => (&mut f.items, &f.users),
        };
        if target.len() != c.n_rows * c.k || fixed.len() != c.n_other * c.k {
            return Ok(Err("ials-factors.solve: the handle was made for another matrix".into()));
        }
        run_solve(call, &step, &c, fixed, target, deadline)
    }

    fn drop(&mut self, this: Resource<IalsFactors>) -> wasmtime::Result<()> {
        take_factors(self, this).map(|_| ())
    }
}

/// Take a returned handle's factors out of the table (no copy) and stop
/// counting them.
pub fn take_factors(state: &mut HostState, this: Resource<IalsFactors>) -> wasmtime::Result<IalsFactors> {
    let (table, call) = state.table_and_call();
    let f = table.delete(this)?;
    if let Some(call) = call {
        call.held_bytes = call.held_bytes.saturating_sub(f.bytes());
    }
    Ok(f)
}

impl CallInputHost for HostState {
    fn interactions(&mut self) -> wasmtime::Result<Result<CsrMatrix, String>> {
        let Some(call) = self.call.as_ref() else {
            return Ok(Err(outside("call-input.interactions")));
        };
        Ok(Ok(super::trainer::csr_to_wit(call.matrix.get())))
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

    fn step(side: Side, dim: u32) -> IalsHalfEpoch {
        IalsHalfEpoch { side, dim, alpha0: 0.3, reg: 0.02, cg_steps: 3 }
    }

    #[test]
    fn held_factors_solve_as_the_list_function_does() {
        let mut rng = Rng::new(3);
        let x = random(40, 17, 0.2, &mut rng);
        let k = 5;
        let users: Vec<f32> = (0..40 * k).map(|_| (rng.normal() * 0.1) as f32).collect();
        let items: Vec<f32> = (0..17 * k).map(|_| (rng.normal() * 0.1) as f32).collect();
        let mut s = super::super::sandbox::test_train_store(x, None, None);
        let st = s.data_mut();
        // Through lists (0.2.1).
        let u1 = st.solve_ials(step(Side::Users, k as u32), items.clone(), users.clone()).unwrap().unwrap();
        let i1 = st.solve_ials(step(Side::Items, k as u32), u1.clone(), items.clone()).unwrap().unwrap();
        // Through a handle (0.2.2), written in two chunks.
        let h = HostIalsFactors::create(st, k as u32).unwrap().unwrap();
        let again = |h: &Resource<IalsFactors>| Resource::<IalsFactors>::new_borrow(h.rep());
        assert_eq!(HostIalsFactors::dim(st, again(&h)).unwrap(), k as u32);
        st.write_rows(again(&h), Side::Users, 0, users[..10 * k].to_vec()).unwrap().unwrap();
        st.write_rows(again(&h), Side::Users, 10, users[10 * k..].to_vec()).unwrap().unwrap();
        st.write_rows(again(&h), Side::Items, 0, items.clone()).unwrap().unwrap();
        assert!(st.call.as_ref().unwrap().held_bytes == (40 + 17) * k * 4);
        st.solve(again(&h), step(Side::Users, k as u32)).unwrap().unwrap();
        st.solve(again(&h), step(Side::Items, k as u32)).unwrap().unwrap();
        assert_eq!(st.read_rows(again(&h), Side::Users, 0, 40).unwrap().unwrap(), u1);
        assert_eq!(st.read_rows(again(&h), Side::Items, 3, 2).unwrap().unwrap(), i1[3 * k..5 * k]);
        // Taking the factors (a returned model) stops counting them.
        let f = take_factors(st, h).unwrap();
        assert_eq!(f.into_parts(), (u1, i1));
        assert_eq!(st.call.as_ref().unwrap().held_bytes, 0);
    }

    #[test]
    fn misuse_of_a_handle_is_refused_with_a_message() {
        let mut rng = Rng::new(4);
        let x = random(6, 4, 0.5, &mut rng);
        let mut s = super::super::sandbox::test_train_store(x, None, None);
        let st = s.data_mut();
        let again = |h: &Resource<IalsFactors>| Resource::<IalsFactors>::new_borrow(h.rep());
        let e = HostIalsFactors::create(st, 0).unwrap().unwrap_err();
        assert!(e.contains("dim is 0"), "{e}");
        let h = HostIalsFactors::create(st, 3).unwrap().unwrap();
        // Another dimension than the handle's.
        let e = st.solve(again(&h), step(Side::Users, 4)).unwrap().unwrap_err();
        assert!(e.contains("step.dim is 4") && e.contains("3"), "{e}");
        // Rows outside the side, a partial row, a NaN.
        let e = st.write_rows(again(&h), Side::Items, 3, vec![0.1; 6]).unwrap().unwrap_err();
        assert!(e.contains("rows 3..5") && e.contains("4 rows"), "{e}");
        let e = st.write_rows(again(&h), Side::Users, 0, vec![0.1; 4]).unwrap().unwrap_err();
        assert!(e.contains("whole number of rows"), "{e}");
        let e = st.write_rows(again(&h), Side::Users, 0, vec![f32::NAN; 3]).unwrap().unwrap_err();
        assert!(e.contains("NaN"), "{e}");
        let e = st.read_rows(again(&h), Side::Users, 5, 2).unwrap().unwrap_err();
        assert!(e.contains("outside the 6 rows"), "{e}");
        let e = st.solve(again(&h), IalsHalfEpoch { cg_steps: 0, ..step(Side::Users, 3) }).unwrap().unwrap_err();
        assert!(e.contains("cg-steps"), "{e}");
        // After the train call: refused, not a trap.
        let call = st.call.take();
        let e = st.solve(again(&h), step(Side::Users, 3)).unwrap().unwrap_err();
        assert!(e.contains("during a train call only"), "{e}");
        let e = HostIalsFactors::create(st, 3).unwrap().unwrap_err();
        assert!(e.contains("during a train call only"), "{e}");
        st.call = call;
        HostIalsFactors::drop(st, h).unwrap();
        assert_eq!(st.call.as_ref().unwrap().held_bytes, 0);
    }

    #[test]
    fn held_factors_count_against_the_memory_cap() {
        let mut rng = Rng::new(5);
        let x = random(3000, 100, 0.05, &mut rng);
        // 3 100 rows × 64 × 4 bytes = 0.76 MiB: refused under a 0.5 MiB cap.
        let mut s = super::super::sandbox::test_train_store(x.clone(), Some(1 << 19), None);
        let e = HostIalsFactors::create(s.data_mut(), 64).unwrap().unwrap_err();
        assert!(e.contains("memory cap of 0 MiB") || e.contains("memory cap"), "{e}");
        // Fits alone under 1 MiB, but not with the transpose and Gram
        // partials of the item side on top: the solve refuses.
        let mut s = super::super::sandbox::test_train_store(x, Some(800 << 10), None);
        let st = s.data_mut();
        let h = HostIalsFactors::create(st, 64).unwrap().unwrap();
        let e = st.solve(Resource::new_borrow(h.rep()), step(Side::Items, 64)).unwrap().unwrap_err();
        assert!(e.contains("more than the trainer's memory cap"), "{e}");
        assert!(st.call.as_ref().unwrap().transpose.is_none(), "nothing built after a refusal");
    }

    #[test]
    fn host_memory_is_bounded_before_allocating() {
        assert!(host_bytes(200_000, 64, Some((10_000_000, 50_000))) < 200 << 20);
        assert!(host_bytes(1 << 30, 1024, None) > 4u128 << 30);
    }
}
