//! IALS: implicit alternating least squares with conjugate-gradient solves.
//!
//! Minimises (the iALS loss of Rendle et al., "Revisiting the Performance of
//! iALS on Item Recommendation Benchmarks", as irspack does)
//!
//! ```text
//! ½ Σ_{(u,i) observed} c_ui (x_u·y_i − 1)²  +  ½ alpha0 Σ_{all u,i} (x_u·y_i)²
//!   + ½ reg (Σ_u (alpha0·n_items + n_u) |x_u|² + Σ_i (alpha0·n_users + n_i) |y_i|²)
//! ```
//!
//! where `c_ui` is the interaction value (1 for plain implicit data),
//! `alpha0` weighs every pair (the implicit negatives) and `n_u`, `n_i` count
//! interactions. Each epoch solves every user row, then every item row, with
//! a few conjugate-gradient steps warm-started from the previous solution
//! (Takács et al.), so a row costs `O(nnz_row · k + k²)` per step instead of
//! the `O(nnz_row · k² + k³)` of a Cholesky solve.
//!
//! On a 0.2.2 host the component is called through `trainer-by-shape`: it
//! receives the matrix's shape only, the host holds the matrix and both
//! factor arrays (`linalg.ials-factors`), the component writes the seeded
//! initial factors in chunks and asks for each half-epoch, which the host
//! solves in place with the same kernel, native, on all cores; the handle
//! is the returned model (no copy either way). Called through `train` (the
//! 0.2.1 way) each half-epoch goes through `linalg.solve-ials` with the
//! factors as lists. If the host refuses a step (a size over the memory
//! cap, for instance), the rest of the fit runs in wasm on one thread, from
//! where it stopped. Every [`VALIDATE_EVERY`] epochs (and after the last)
//! the model is reported for early stopping.

use recotem_guest_sdk::numerics::{CgWorkspace, IalsStep, Rng, ials_gram, ials_solve_rows};
use recotem_guest_sdk::prelude::*;
use recotem_guest_sdk::trainer::linalg::{self, IalsFactors, IalsHalfEpoch, Side};

/// Conjugate-gradient steps per row and epoch (as irspack and `implicit`).
pub const CG_STEPS: usize = 3;
/// Standard deviation of the initial factors, divided by √k.
const INIT_STD: f64 = 0.1;
/// Epochs between two early-stop reports.
pub const VALIDATE_EVERY: usize = 2;

/// The trainer's hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Latent dimension.
    pub n_components: usize,
    /// Weight of every (user, item) pair.
    pub alpha0: f32,
    /// Regularisation, scaled per row.
    pub reg: f32,
    /// Alternating epochs.
    pub epochs: usize,
}

impl Config {
    /// Read and check the parameters.
    pub fn from_params(p: &Params) -> Result<Config, PluginError> {
        Ok(Config {
            n_components: p.int_in("n_components", 1, 1024)? as usize,
            alpha0: p.float_in("alpha0", 1e-9, 1e3)? as f32,
            reg: p.float_in("reg", 0.0, 1e3)? as f32,
            epochs: p.int_in("epochs", 1, 1000)? as usize,
        })
    }
}

/// The trainer (its `describe` is the search space).
pub struct Ials;

impl Trainer for Ials {
    fn describe() -> TrainerInfo {
        TrainerInfo::new(
            "IALS",
            env!("CARGO_PKG_VERSION"),
            "Implicit alternating least squares (iALS): user and item factors, conjugate-gradient solves.",
            ModelKind::Factors,
        )
        .with_int("n_components", "latent dimension", 4, 300, false, 64)
        .with_float("alpha0", "weight of every user-item pair, seen or not (the implicit negatives)", 3e-3, 1.0, true, 0.2)
        .with_float("reg", "L2 regularisation, scaled per row by alpha0 × (other side) + its interactions", 1e-4, 1e-1, true, 2e-2)
        .with_int("epochs", "alternating epochs (each solves all users, then all items)", 4, 24, false, 16)
    }

    fn train(interactions: CsrMatrix, params: Params, seed: u64) -> Result<Model, PluginError> {
        let cfg = Config::from_params(&params)?;
        let x = recotem_guest_sdk::trainer::interactions(interactions)?;
        let k = cfg.n_components;
        let stopping = EarlyStopping::every(VALIDATE_EVERY, cfg.epochs);
        let report = |epoch, users: &[f32], items: &[f32]| {
            stopping.after_epoch(epoch, || factor_model(users.to_vec(), items.to_vec(), k))
        };
        let (users, items) = fit(&x, &cfg, seed, log::epoch_progress(cfg.epochs), report, Backend::Host)?;
        Ok(factor_model(users, items, k))
    }

    /// The host holds the matrix and both factor arrays (WIT 0.2.2): the
    /// component only seeds the factors, asks for each half-epoch and
    /// returns the handle as the model. If the host refuses (a size over
    /// the memory cap), the fit goes on in wasm from where it stopped, on
    /// the matrix fetched from the host.
    fn train_by_shape(shape: MatrixShape, params: Params, seed: u64) -> Result<Trained, PluginError> {
        let cfg = Config::from_params(&params)?;
        let k = cfg.n_components;
        let stopping = EarlyStopping::every(VALIDATE_EVERY, cfg.epochs);
        let mut on_epoch = log::epoch_progress(cfg.epochs);
        let resume = match host_fit(&shape, &cfg, seed, &mut on_epoch, &stopping)? {
            HostFit::Done(factors) => return Ok(Trained::Factors(factors)),
            HostFit::Refused { why, resume } => {
                log::warn(&format!("the host's linalg refused ({why}); solving in wasm"));
                resume
            }
        };
        let x = recotem_guest_sdk::trainer::interactions(fetch_interactions()?)?;
        let report = |epoch, users: &[f32], items: &[f32]| {
            stopping.after_epoch(epoch, || factor_model(users.to_vec(), items.to_vec(), k))
        };
        let (users, items) = fit_from(&x, &cfg, resume, on_epoch, report, Backend::Wasm)?;
        Ok(Trained::Model(factor_model(users, items, k)))
    }
}

/// Where the half-epochs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The host's `linalg.solve-ials` (native, all cores); falls back to
    /// [`Backend::Wasm`] for the rest of the fit if the host refuses.
    Host,
    /// In this component, one thread.
    Wasm,
}

/// The seeded initial factors, drawn users first, then items, in order:
/// drawn whole ([`State::start`]) or in chunks (written to the host), the
/// values are the same.
struct Init {
    rng: Rng,
    std: f64,
}

impl Init {
    fn new(seed: u64, k: usize) -> Self {
        Init { rng: Rng::new(seed), std: INIT_STD / (k as f64).sqrt() }
    }

    /// The next `n` values.
    fn draw(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| (self.rng.normal() * self.std) as f32).collect()
    }
}

/// Where a fit stands: the factors and the next half-epoch to solve.
pub struct State {
    users: Vec<f32>,
    items: Vec<f32>,
    /// The epoch in progress (from 0).
    epoch: usize,
    /// Half-epochs of `epoch` already done (0: none, 1: the users).
    half: usize,
}

impl State {
    /// The seeded start of a fit of `n_users × n_items`.
    fn start(n_users: usize, n_items: usize, cfg: &Config, seed: u64) -> Self {
        let k = cfg.n_components;
        let mut init = Init::new(seed, k);
        let users = init.draw(n_users * k);
        let items = init.draw(n_items * k);
        State { users, items, epoch: 0, half: 0 }
    }
}

/// Rows per `write-rows` / `read-rows` call: 4 MiB of factors at 64
/// dimensions, so the component never holds a whole side.
const CHUNK_VALUES: usize = 1 << 20;

/// How a fit on host-held factors ended.
enum HostFit {
    /// All epochs done (or stopped early): the factors are the model.
    Done(IalsFactors),
    /// The host refused a step; the fit goes on in wasm from `resume`.
    Refused { why: String, resume: State },
}

/// Fit on factors the host holds ([`IalsFactors`], WIT 0.2.2).
fn host_fit(
    shape: &MatrixShape,
    cfg: &Config,
    seed: u64,
    on_epoch: &mut impl FnMut(usize) -> bool,
    stopping: &EarlyStopping,
) -> Result<HostFit, PluginError> {
    let k = cfg.n_components;
    let (n_users, n_items) = (shape.rows as usize, shape.cols as usize);
    let factors = match IalsFactors::create(k as u32) {
        Ok(f) => f,
        Err(why) => return Ok(HostFit::Refused { why, resume: State::start(n_users, n_items, cfg, seed) }),
    };
    let rows_per_chunk = (CHUNK_VALUES / k).max(1);
    let mut init = Init::new(seed, k);
    for (side, rows) in [(Side::Users, n_users), (Side::Items, n_items)] {
        for first in (0..rows).step_by(rows_per_chunk) {
            let values = init.draw(rows_per_chunk.min(rows - first) * k);
            if let Err(why) = factors.write_rows(side, first as u32, &values) {
                return Ok(HostFit::Refused { why, resume: State::start(n_users, n_items, cfg, seed) });
            }
        }
    }
    for epoch in 0..cfg.epochs {
        for (half, side) in [Side::Users, Side::Items].into_iter().enumerate() {
            if let Err(why) = factors.solve(step(side, cfg)) {
                let users = read_side(&factors, Side::Users, n_users, k)?;
                let items = read_side(&factors, Side::Items, n_items, k)?;
                return Ok(HostFit::Refused { why, resume: State { users, items, epoch, half } });
            }
        }
        if !on_epoch(epoch + 1) {
            return Err(PluginError::internal(format!("IALS stopped by the host after {} epochs", epoch + 1)));
        }
        if !stopping.after_epoch_factors(epoch + 1, &factors) {
            break;
        }
    }
    Ok(HostFit::Done(factors))
}

/// One side of host-held factors, read back in chunks.
fn read_side(factors: &IalsFactors, side: Side, rows: usize, k: usize) -> Result<Vec<f32>, PluginError> {
    let rows_per_chunk = (CHUNK_VALUES / k).max(1);
    let mut out = Vec::with_capacity(rows * k);
    for first in (0..rows).step_by(rows_per_chunk) {
        let n = rows_per_chunk.min(rows - first);
        let chunk = factors
            .read_rows(side, first as u32, n as u32)
            .map_err(|e| PluginError::internal(format!("reading the factors back from the host: {e}")))?;
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The host's description of one half-epoch.
fn step(side: Side, cfg: &Config) -> IalsHalfEpoch {
    IalsHalfEpoch { side, dim: cfg.n_components as u32, alpha0: cfg.alpha0, reg: cfg.reg, cg_steps: CG_STEPS as u32 }
}

/// Fit the factors (`n_users × k` and `n_items × k`, row-major).
/// `on_epoch(done)` is called after each epoch; returning `false` stops the
/// fit with an error (cancellation). `report(done, users, items)` returning
/// `false` ends the fit early with the current factors (early stopping).
pub fn fit(
    x: &Csr,
    cfg: &Config,
    seed: u64,
    on_epoch: impl FnMut(usize) -> bool,
    report: impl FnMut(usize, &[f32], &[f32]) -> bool,
    backend: Backend,
) -> Result<(Vec<f32>, Vec<f32>), PluginError> {
    let start = State::start(x.rows as usize, x.cols as usize, cfg, seed);
    fit_from(x, cfg, start, on_epoch, report, backend)
}

/// [`fit`] from a given state (the start, or where the host stopped).
pub fn fit_from(
    x: &Csr,
    cfg: &Config,
    state: State,
    mut on_epoch: impl FnMut(usize) -> bool,
    mut report: impl FnMut(usize, &[f32], &[f32]) -> bool,
    backend: Backend,
) -> Result<(Vec<f32>, Vec<f32>), PluginError> {
    let k = cfg.n_components;
    let State { mut users, mut items, epoch: first_epoch, half: first_half } = state;
    let mut xt: Option<Csr> = None;
    let mut solver = RowSolver::new(k);
    let mut host = backend == Backend::Host;
    for epoch in first_epoch..cfg.epochs {
        for (half, side) in [Side::Users, Side::Items].into_iter().enumerate() {
            if epoch == first_epoch && half < first_half {
                continue;
            }
            let (target, fixed) = match side {
                Side::Users => (&mut users, &items),
                Side::Items => (&mut items, &users),
            };
            if host {
                match host_half_epoch(side, cfg, fixed, target) {
                    Ok(()) => continue,
                    Err(why) => {
                        log::warn(&format!("the host's linalg.solve-ials refused ({why}); solving in wasm"));
                        host = false;
                    }
                }
            }
            let m = match side {
                Side::Users => x,
                Side::Items => xt.get_or_insert_with(|| x.transpose()),
            };
            solver.solve_side(m, target, fixed, cfg);
        }
        if !on_epoch(epoch + 1) {
            return Err(PluginError::internal(format!("IALS stopped by the host after {} epochs", epoch + 1)));
        }
        if !report(epoch + 1, &users, &items) {
            break;
        }
    }
    Ok((users, items))
}

/// One half-epoch through the host: `target` is replaced by the solution.
fn host_half_epoch(side: Side, cfg: &Config, fixed: &[f32], target: &mut Vec<f32>) -> Result<(), String> {
    let solved = linalg::solve_ials(step(side, cfg), fixed, target)?;
    if solved.len() != target.len() {
        return Err(format!("it returned {} values for {}", solved.len(), target.len()));
    }
    *target = solved;
    Ok(())
}

/// Scratch for solving one side in wasm: the scaled Gram matrix of the
/// fixed side and the conjugate-gradient vectors.
struct RowSolver {
    k: usize,
    gram: Vec<f32>,
    cg: CgWorkspace,
}

impl RowSolver {
    fn new(k: usize) -> Self {
        RowSolver { k, gram: vec![0.0; k * k], cg: CgWorkspace::new(k) }
    }

    /// Update every row of `target` (one per row of `m`) with `fixed` held
    /// (the kernel the host's `linalg` runs too).
    fn solve_side(&mut self, m: &Csr, target: &mut [f32], fixed: &[f32], cfg: &Config) {
        let k = self.k;
        ials_gram(fixed, k, cfg.alpha0, &mut self.gram);
        let step = IalsStep {
            k,
            gram: &self.gram,
            alpha0: cfg.alpha0,
            reg: cfg.reg,
            n_other: m.cols as usize,
            cg_steps: CG_STEPS,
        };
        ials_solve_rows(&step, &m.indptr, &m.indices, &m.values, 0, fixed, target, &mut self.cg);
    }
}

export_trainer!(Ials);

#[cfg(test)]
mod tests {
    use super::*;
    use recotem_guest_sdk::testing::{assert_rejected, best_unseen, co_consumed, default_params, factor_scores, with_param};

    fn small(p: &Params) -> Params {
        with_param(p, "n_components", ParamValue::Int(8))
    }

    #[test]
    fn describe_publishes_name_kind_and_space() {
        let info = Ials::describe();
        assert_eq!(info.name, "IALS");
        assert!(matches!(info.model_kind, ModelKind::Factors));
        let names: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["n_components", "alpha0", "reg", "epochs"]);
        assert!(Config::from_params(&default_params(&info)).is_ok(), "defaults must be valid");
    }

    #[test]
    fn same_seed_same_model_other_seed_other_model() {
        let data = co_consumed(1);
        let cfg = Config::from_params(&small(&default_params(&Ials::describe()))).unwrap();
        let a = fit(&data.matrix, &cfg, 7, |_| true, |_, _, _| true, Backend::Wasm).unwrap();
        let b = fit(&data.matrix, &cfg, 7, |_| true, |_, _, _| true, Backend::Wasm).unwrap();
        let c = fit(&data.matrix, &cfg, 8, |_| true, |_, _, _| true, Backend::Wasm).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.0.len(), 60 * 8);
        assert_eq!(a.1.len(), 12 * 8);
    }

    #[test]
    fn co_consumed_item_ranks_first() {
        for seed in 0..3 {
            let data = co_consumed(seed);
            let cfg = Config::from_params(&small(&default_params(&Ials::describe()))).unwrap();
            let (users, items) = fit(&data.matrix, &cfg, seed, |_| true, |_, _, _| true, Backend::Wasm).unwrap();
            let s = factor_scores(&users, &items, 8, data.probe_user);
            assert_eq!(best_unseen(&data.matrix, data.probe_user, &s), data.expected_item, "seed {seed}: {s:?}");
        }
    }

    #[test]
    fn conjugate_gradient_lowers_the_loss_each_epoch() {
        let data = co_consumed(3);
        let base = Config::from_params(&small(&default_params(&Ials::describe()))).unwrap();
        let loss = |epochs| {
            let cfg = Config { epochs, ..base.clone() };
            let (u, i) = fit(&data.matrix, &cfg, 1, |_| true, |_, _, _| true, Backend::Wasm).unwrap();
            objective(&data.matrix, &u, &i, &cfg)
        };
        let (l1, l2, l8) = (loss(1), loss(2), loss(8));
        assert!(l1 > l2 && l2 > l8, "{l1} {l2} {l8}");
    }

    /// The loss in the module documentation, computed naively.
    fn objective(x: &Csr, users: &[f32], items: &[f32], cfg: &Config) -> f64 {
        let k = cfg.n_components;
        let (nu, ni) = (x.rows as usize, x.cols as usize);
        let mut loss = 0.0f64;
        for u in 0..nu {
            let s = factor_scores(users, items, k, u as u32);
            let (idx, vals) = x.row(u as u32);
            for (i, &v) in s.iter().enumerate() {
                loss += 0.5 * cfg.alpha0 as f64 * (v as f64).powi(2);
                if let Some(p) = idx.iter().position(|&j| j as usize == i) {
                    loss += 0.5 * vals[p] as f64 * (v as f64 - 1.0).powi(2);
                }
            }
            let n2: f64 = users[u * k..(u + 1) * k].iter().map(|v| (*v as f64).powi(2)).sum();
            loss += 0.5 * cfg.reg as f64 * (cfg.alpha0 as f64 * ni as f64 + idx.len() as f64) * n2;
        }
        let xt = x.transpose();
        for i in 0..ni {
            let n2: f64 = items[i * k..(i + 1) * k].iter().map(|v| (*v as f64).powi(2)).sum();
            loss += 0.5 * cfg.reg as f64 * (cfg.alpha0 as f64 * nu as f64 + xt.row(i as u32).0.len() as f64) * n2;
        }
        loss
    }

    #[test]
    fn bad_parameters_are_rejected_with_the_name() {
        let ok = default_params(&Ials::describe());
        assert_rejected(Config::from_params, &ok, &[
            ("n_components", ParamValue::Int(0)),
            ("alpha0", ParamValue::Float(-1.0)),
            ("reg", ParamValue::Float(f64::NAN)),
            ("epochs", ParamValue::Int(0)),
            ("epochs", ParamValue::Text("ten".into())),
        ]);
        let missing = Params::new(ok.as_slice()[1..].to_vec());
        assert!(Config::from_params(&missing).unwrap_err().message.contains("n_components"));
    }

    #[test]
    fn an_early_stop_returns_the_reported_factors() {
        let data = co_consumed(4);
        let cfg = Config::from_params(&small(&default_params(&Ials::describe()))).unwrap();
        let mut at = None;
        let got = fit(&data.matrix, &cfg, 3, |_| true, |epoch, u, i| {
            at = Some((epoch, u.to_vec(), i.to_vec()));
            epoch < 2
        }, Backend::Wasm)
        .unwrap();
        let (epoch, u, i) = at.unwrap();
        assert_eq!(epoch, 2);
        assert_eq!(got, (u, i));
        let two = fit(&data.matrix, &Config { epochs: 2, ..cfg }, 3, |_| true, |_, _, _| true, Backend::Wasm).unwrap();
        assert_eq!(got, two);
    }

    #[test]
    fn a_fit_resumed_where_the_host_stopped_ends_as_an_uninterrupted_one() {
        let data = co_consumed(5);
        let x = &data.matrix;
        let cfg = Config::from_params(&small(&default_params(&Ials::describe()))).unwrap();
        let cfg = Config { epochs: 3, ..cfg };
        let whole = fit(x, &cfg, 9, |_| true, |_, _, _| true, Backend::Wasm).unwrap();
        // Stopped after epoch 1 (as if the host refused the next users half).
        let (users, items) = fit(x, &Config { epochs: 1, ..cfg.clone() }, 9, |_| true, |_, _, _| true, Backend::Wasm).unwrap();
        let mut epochs_seen = Vec::new();
        let resume = State { users: users.clone(), items: items.clone(), epoch: 1, half: 0 };
        let resumed = fit_from(x, &cfg, resume, |e| { epochs_seen.push(e); true }, |_, _, _| true, Backend::Wasm).unwrap();
        assert_eq!(resumed, whole);
        assert_eq!(epochs_seen, [2, 3]);
        // Stopped after the users half of epoch 2 (the items half refused).
        let mut users = users;
        RowSolver::new(8).solve_side(x, &mut users, &items, &cfg);
        let resume = State { users, items, epoch: 1, half: 1 };
        assert_eq!(fit_from(x, &cfg, resume, |_| true, |_, _, _| true, Backend::Wasm).unwrap(), whole);
    }

    #[test]
    fn chunked_initial_factors_equal_the_whole_draw() {
        let cfg = Config { n_components: 3, alpha0: 0.1, reg: 0.01, epochs: 1 };
        let start = State::start(7, 5, &cfg, 4);
        let mut init = Init::new(4, 3);
        let mut chunks = Vec::new();
        for n in [2, 2, 2, 1, 5] {
            chunks.extend(init.draw(n * 3));
        }
        assert_eq!(chunks[..21], start.users[..]);
        assert_eq!(chunks[21..], start.items[..]);
    }

    #[test]
    fn users_and_items_without_interactions_get_zero_factors() {
        let x = Csr::from_triplets(3, 4, &[(0, 0, 1.0), (0, 1, 1.0), (2, 1, 1.0)]);
        let cfg = Config { n_components: 4, alpha0: 0.1, reg: 0.01, epochs: 2 };
        let (users, items) = fit(&x, &cfg, 0, |_| true, |_, _, _| true, Backend::Wasm).unwrap();
        assert!(users[4..8].iter().all(|&v| v == 0.0));
        assert!(items[8..16].iter().all(|&v| v == 0.0));
        assert!(users.iter().chain(&items).all(|v| v.is_finite()));
    }
}
