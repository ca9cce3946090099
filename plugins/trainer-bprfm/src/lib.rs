//! BPRFM: matrix factorisation with item biases, trained by stochastic
//! gradient on sampled negatives, as LightFM without features (the model
//! irspack's `BPRFMRecommender` wraps):
//!
//! - `bpr`: maximise `ln σ(s_ui − s_uj)` for a positive `i` and one
//!   uniformly drawn item `j` the user has not seen (Rendle et al.);
//! - `warp`: draw negatives until one scores within a margin of 1 of the
//!   positive (at most 10 draws), and weigh the update by
//!   `ln ⌊(n_items − 1) / draws⌋`, an estimate of the positive's rank
//!   (Weston et al.).
//!
//! `s_ui = p_u · q_i + b_i`; per-coordinate AdaGrad steps (learning rate
//! 0.05), L2 penalties `user_alpha` and `item_alpha`. Positives are visited
//! in a seeded random order each epoch. The model is returned as factors
//! with one extra dimension: users `[p_u, 1]`, items `[q_i, b_i]`.

use recotem_guest_sdk::numerics::{Rng, dot};
use recotem_guest_sdk::prelude::*;

const LEARNING_RATE: f32 = 0.05;
const WARP_MAX_SAMPLED: u32 = 10;
/// Draws to find an item the user has not seen before giving up on a step.
const NEGATIVE_TRIES: u32 = 16;
/// Epochs between two early-stop reports (and after the last).
pub const VALIDATE_EVERY: usize = 4;

/// The loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// Bayesian personalised ranking.
    Bpr,
    /// Weighted approximate-rank pairwise.
    Warp,
}

/// The trainer's hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Latent dimension (the model has one more, for the bias).
    pub n_components: usize,
    /// L2 penalty on item factors and biases.
    pub item_alpha: f32,
    /// L2 penalty on user factors.
    pub user_alpha: f32,
    /// Loss.
    pub loss: Loss,
    /// Passes over the positives.
    pub epochs: usize,
}

impl Config {
    /// Read and check the parameters.
    pub fn from_params(p: &Params) -> Result<Config, PluginError> {
        Ok(Config {
            n_components: p.int_in("n_components", 1, 1024)? as usize,
            item_alpha: p.float_in("item_alpha", 0.0, 1.0)? as f32,
            user_alpha: p.float_in("user_alpha", 0.0, 1.0)? as f32,
            loss: if p.choice("loss", &["bpr", "warp"])? == 0 { Loss::Bpr } else { Loss::Warp },
            epochs: p.int_in("epochs", 1, 10_000)? as usize,
        })
    }
}

/// The trainer (its `describe` is the search space).
pub struct Bprfm;

impl Trainer for Bprfm {
    fn describe() -> TrainerInfo {
        TrainerInfo::new(
            "BPRFM",
            env!("CARGO_PKG_VERSION"),
            "Matrix factorisation with item biases trained on sampled negatives (BPR or WARP loss).",
            ModelKind::Factors,
        )
        .with_int("n_components", "latent dimension", 4, 256, false, 64)
        .with_float("item_alpha", "L2 penalty on item factors and biases", 1e-9, 1e-2, true, 1e-6)
        .with_float("user_alpha", "L2 penalty on user factors", 1e-9, 1e-2, true, 1e-6)
        .with_choice("loss", "bpr: one negative per positive; warp: rank-weighted, several draws", &["bpr", "warp"], "warp")
        .with_int("epochs", "passes over the interactions", 8, 128, false, 16)
    }

    fn train(interactions: CsrMatrix, params: Params, seed: u64) -> Result<Model, PluginError> {
        let cfg = Config::from_params(&params)?;
        let x = recotem_guest_sdk::trainer::interactions(interactions)?;
        let k = cfg.n_components + 1;
        let stopping = EarlyStopping::every(VALIDATE_EVERY, cfg.epochs);
        let report = |epoch, fold: &dyn Fn() -> (Vec<f32>, Vec<f32>)| {
            stopping.after_epoch(epoch, || {
                let (users, items) = fold();
                factor_model(users, items, k)
            })
        };
        let (users, items) = fit(&x, &cfg, seed, log::epoch_progress(cfg.epochs), report)?;
        Ok(factor_model(users, items, k))
    }
}

/// Parameters with their AdaGrad accumulators.
struct Table {
    k: usize,
    values: Vec<f32>,
    grad_sq: Vec<f32>,
}

impl Table {
    fn new(rows: usize, k: usize, rng: &mut Rng) -> Self {
        let values = (0..rows * k).map(|_| (rng.next_f32() - 0.5) / k as f32).collect();
        Table { k, values, grad_sq: vec![1.0; rows * k] }
    }

    fn row(&self, r: u32) -> &[f32] {
        &self.values[r as usize * self.k..(r as usize + 1) * self.k]
    }

    /// `row += lr / √G · (coef · direction − alpha · row)`, AdaGrad per coordinate.
    fn step(&mut self, r: u32, coef: f32, direction: &[f32], alpha: f32) {
        let span = r as usize * self.k..(r as usize + 1) * self.k;
        for ((v, g2), &d) in self.values[span.clone()].iter_mut().zip(&mut self.grad_sq[span]).zip(direction) {
            let g = coef * d - alpha * *v;
            *g2 += g * g;
            *v += LEARNING_RATE * g / g2.sqrt();
        }
    }
}

/// Fit `(users, items)`, both with `n_components + 1` columns (see the
/// module documentation). `on_epoch(done)` returning `false` stops the fit
/// with an error (cancellation); `report(done, fold)` returning `false`
/// ends it early with the current factors (early stopping; `fold()` builds
/// the factors as returned).
pub fn fit(
    x: &Csr,
    cfg: &Config,
    seed: u64,
    mut on_epoch: impl FnMut(usize) -> bool,
    mut report: impl FnMut(usize, &dyn Fn() -> (Vec<f32>, Vec<f32>)) -> bool,
) -> Result<(Vec<f32>, Vec<f32>), PluginError> {
    let k = cfg.n_components;
    let (n_users, n_items) = (x.rows as usize, x.cols);
    let mut rng = Rng::new(seed);
    let mut user_t = Table::new(n_users, k, &mut rng);
    let mut item_t = Table::new(n_items as usize, k, &mut rng);
    let mut bias = vec![0f32; n_items as usize];
    let mut bias_g2 = vec![1f32; n_items as usize];
    // (user, item) of every positive, visited in a fresh order each epoch.
    let mut order: Vec<(u32, u32)> = (0..x.rows).flat_map(|u| x.row(u).0.iter().map(move |&i| (u, i))).collect();
    let (mut pu, mut diff) = (vec![0f32; k], vec![0f32; k]);
    let bias_step = |b: &mut [f32], g2: &mut [f32], i: u32, g: f32, alpha: f32| {
        let i = i as usize;
        let g = g - alpha * b[i];
        g2[i] += g * g;
        b[i] += LEARNING_RATE * g / g2[i].sqrt();
    };
    for epoch in 0..cfg.epochs {
        rng.shuffle(&mut order);
        for &(u, i) in &order {
            let seen = x.row(u).0;
            if seen.len() as u32 >= n_items {
                continue;
            }
            pu.copy_from_slice(user_t.row(u));
            let s_i = dot(&pu, item_t.row(i)) + bias[i as usize];
            // The negative and the weight of the step.
            let mut chosen = None;
            let mut draws = 0;
            let mut tries = 0;
            while tries < NEGATIVE_TRIES {
                tries += 1;
                let j = rng.below(n_items as u64) as u32;
                if seen.binary_search(&j).is_ok() {
                    continue;
                }
                draws += 1;
                let s_j = dot(&pu, item_t.row(j)) + bias[j as usize];
                match cfg.loss {
                    Loss::Bpr => {
                        // d/dx ln σ(x) = σ(−x).
                        chosen = Some((j, 1.0 / (1.0 + (s_i - s_j).exp())));
                        break;
                    }
                    Loss::Warp => {
                        if s_j > s_i - 1.0 {
                            let rank = ((n_items - 1) / draws).max(1);
                            chosen = Some((j, (rank as f32).ln().max(0.0) + 1e-3));
                            break;
                        }
                        if draws >= WARP_MAX_SAMPLED {
                            break;
                        }
                    }
                }
            }
            let Some((j, w)) = chosen else { continue };
            for ((d, a), b) in diff.iter_mut().zip(item_t.row(i)).zip(item_t.row(j)) {
                *d = a - b;
            }
            user_t.step(u, w, &diff, cfg.user_alpha);
            item_t.step(i, w, &pu, cfg.item_alpha);
            item_t.step(j, -w, &pu, cfg.item_alpha);
            bias_step(&mut bias, &mut bias_g2, i, w, cfg.item_alpha);
            bias_step(&mut bias, &mut bias_g2, j, -w, cfg.item_alpha);
        }
        if !on_epoch(epoch + 1) {
            return Err(PluginError::internal(format!("BPRFM stopped by the host after {} epochs", epoch + 1)));
        }
        if !report(epoch + 1, &|| fold(&user_t, &item_t, &bias)) {
            break;
        }
    }
    Ok(fold(&user_t, &item_t, &bias))
}

/// The factors as returned: the bias folded into one more dimension.
fn fold(user_t: &Table, item_t: &Table, bias: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let k = user_t.k;
    let users = user_t.values.chunks_exact(k.max(1)).flat_map(|r| r.iter().copied().chain([1.0])).collect();
    let items = item_t.values.chunks_exact(k.max(1)).zip(bias).flat_map(|(r, &b)| r.iter().copied().chain([b])).collect();
    (users, items)
}

export_trainer!(Bprfm);

#[cfg(test)]
mod tests {
    use super::*;
    use recotem_guest_sdk::testing::{assert_rejected, best_unseen, co_consumed, default_params, factor_scores, with_param};

    #[test]
    fn describe_publishes_name_kind_and_space() {
        let info = Bprfm::describe();
        assert_eq!(info.name, "BPRFM");
        assert!(matches!(info.model_kind, ModelKind::Factors));
        let names: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["n_components", "item_alpha", "user_alpha", "loss", "epochs"]);
        assert!(Config::from_params(&default_params(&info)).is_ok());
    }

    #[test]
    fn co_consumed_item_ranks_first_with_both_losses() {
        for loss in ["bpr", "warp"] {
            let data = co_consumed(12);
            let p = with_param(&default_params(&Bprfm::describe()), "loss", ParamValue::Text(loss.into()));
            let p = with_param(&p, "n_components", ParamValue::Int(8));
            let p = with_param(&p, "epochs", ParamValue::Int(64));
            let (users, items) = fit(&data.matrix, &Config::from_params(&p).unwrap(), 2, |_| true, |_, _| true).unwrap();
            assert_eq!(users.len(), 60 * 9);
            assert!(users.chunks_exact(9).all(|r| r[8] == 1.0), "bias column");
            let s = factor_scores(&users, &items, 9, data.probe_user);
            assert_eq!(best_unseen(&data.matrix, data.probe_user, &s), 1, "{loss}: {s:?}");
        }
    }

    #[test]
    fn same_seed_same_model() {
        let data = co_consumed(13);
        let cfg = Config { n_components: 4, item_alpha: 1e-6, user_alpha: 1e-6, loss: Loss::Warp, epochs: 3 };
        let a = fit(&data.matrix, &cfg, 5, |_| true, |_, _| true).unwrap();
        assert_eq!(a, fit(&data.matrix, &cfg, 5, |_| true, |_, _| true).unwrap());
        assert_ne!(a, fit(&data.matrix, &cfg, 6, |_| true, |_, _| true).unwrap());
    }

    #[test]
    fn a_host_stop_ends_the_fit_with_an_error() {
        let data = co_consumed(14);
        let cfg = Config { n_components: 4, item_alpha: 0.0, user_alpha: 0.0, loss: Loss::Bpr, epochs: 10 };
        let err = fit(&data.matrix, &cfg, 0, |epoch| epoch < 2, |_, _| true).unwrap_err();
        assert!(err.message.contains("after 2 epochs"), "{}", err.message);
    }

    #[test]
    fn an_early_stop_returns_the_reported_model() {
        let data = co_consumed(15);
        let cfg = Config { n_components: 4, item_alpha: 0.0, user_alpha: 0.0, loss: Loss::Bpr, epochs: 10 };
        let mut reported = Vec::new();
        let mut at_three = None;
        let got = fit(&data.matrix, &cfg, 0, |_| true, |epoch, fold| {
            reported.push(epoch);
            if epoch == 3 {
                at_three = Some(fold());
            }
            epoch < 3
        })
        .unwrap();
        assert_eq!(reported, [1, 2, 3]);
        assert_eq!(Some(got), at_three);
        let full = fit(&data.matrix, &Config { epochs: 3, ..cfg }, 0, |_| true, |_, _| true).unwrap();
        assert_eq!(Some(full), at_three, "stopping after 3 epochs is a 3-epoch fit");
    }

    #[test]
    fn bad_parameters_are_rejected_with_the_name() {
        let ok = default_params(&Bprfm::describe());
        assert_rejected(Config::from_params, &ok, &[
            ("n_components", ParamValue::Int(0)),
            ("item_alpha", ParamValue::Float(-1e-3)),
            ("user_alpha", ParamValue::Float(f64::NAN)),
            ("loss", ParamValue::Text("logistic".into())),
            ("epochs", ParamValue::Int(0)),
        ]);
    }
}
