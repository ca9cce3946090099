//! RP3beta: a three-step random walk user → item → user → item, with the
//! arrival probability divided by the target's popularity to the power
//! `beta` (Paudel et al., "Updatable, Accurate, Diverse, and Scalable
//! Recommendations for Interactive Applications").
//!
//! ```text
//! P(u→j) = (x_uj / Σ_j' x_uj')^alpha      P(i→u) = (1 / n_i)^alpha
//! W[i][j] = Σ_u P(i→u) P(u→j) / n_j^beta
//! ```
//!
//! `n_i` counts the users of item `i`. For every target `j` the `top_k`
//! best sources `i ≠ j` are kept (column-wise, as irspack), optionally each
//! row of `W` is then scaled to sum to one.

use recotem_guest_sdk::numerics::cooccurrence_top_k;
use recotem_guest_sdk::prelude::*;

/// The trainer's hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Exponent of the transition probabilities.
    pub alpha: f32,
    /// Popularity penalty.
    pub beta: f32,
    /// Sources kept per target item.
    pub top_k: usize,
    /// Scale each row of `W` to sum to one.
    pub normalize_weight: bool,
}

impl Config {
    /// Read and check the parameters.
    pub fn from_params(p: &Params) -> Result<Config, PluginError> {
        Ok(Config {
            alpha: p.float_in("alpha", 0.0, 10.0)? as f32,
            beta: p.float_in("beta", 0.0, 10.0)? as f32,
            top_k: p.int_in("top_k", 1, 1_000_000)? as usize,
            normalize_weight: p.choice("normalize_weight", &["true", "false"])? == 0,
        })
    }
}

/// The trainer (its `describe` is the search space).
pub struct Rp3beta;

impl Trainer for Rp3beta {
    fn describe() -> TrainerInfo {
        TrainerInfo::new(
            "RP3beta",
            env!("CARGO_PKG_VERSION"),
            "Popularity-penalised three-step random walk over the user-item graph (item-item model).",
            ModelKind::SparseItemItem,
        )
        .with_float("alpha", "exponent of the transition probabilities (no effect on 0/1 data)", 0.5, 1.5, false, 1.0)
        .with_float("beta", "popularity penalty: divide by the target's user count to this power", 1e-5, 0.5, true, 0.3)
        .with_int("top_k", "sources kept per target item", 2, 1000, false, 200)
        .with_choice("normalize_weight", "scale each item's outgoing weights to sum to one", &["true", "false"], "false")
    }

    fn train(interactions: CsrMatrix, params: Params, _seed: u64) -> Result<Model, PluginError> {
        let cfg = Config::from_params(&params)?;
        let x = recotem_guest_sdk::trainer::interactions(interactions)?;
        Ok(Model::SparseItemItem(csr_matrix(fit(&x, &cfg))))
    }
}

/// The walk matrix `W` (`n_items × n_items`, row = source item).
pub fn fit(x: &Csr, cfg: &Config) -> Csr {
    // P(u→j): rows of x, l1-normalised, to the power alpha; as xt for the
    // first factor (indexed [j][u]).
    let mut p_uj = x.clone();
    for u in 0..x.rows as usize {
        let (a, b) = (x.indptr[u] as usize, x.indptr[u + 1] as usize);
        let total: f32 = x.values[a..b].iter().sum();
        for v in &mut p_uj.values[a..b] {
            *v = if total > 0.0 { (*v / total).powf(cfg.alpha) } else { 0.0 };
        }
    }
    let p_ju = p_uj.transpose();
    let mut ones = x.clone();
    ones.values.fill(1.0);
    // n_i: users per item.
    let pop: Vec<f32> = (0..p_ju.rows).map(|i| p_ju.row(i).0.len() as f32).collect();
    let (alpha, beta) = (cfg.alpha, cfg.beta);
    // Row j: Σ_u P(u→j) · 1[u saw i], then × n_i^-alpha (= P(i→u)) × n_j^-beta.
    let mut w = cooccurrence_top_k(&p_ju, &ones, Some(cfg.top_k), |j, i, v| {
        v * pop[i as usize].powf(-alpha) * pop[j as usize].powf(-beta)
    })
    .transpose();
    if cfg.normalize_weight {
        for i in 0..w.rows as usize {
            let (a, b) = (w.indptr[i] as usize, w.indptr[i + 1] as usize);
            let total: f32 = w.values[a..b].iter().sum();
            if total > 0.0 {
                for v in &mut w.values[a..b] {
                    *v /= total;
                }
            }
        }
    }
    w
}

export_trainer!(Rp3beta);

#[cfg(test)]
mod tests {
    use super::*;
    use recotem_guest_sdk::testing::{assert_rejected, best_unseen, co_consumed, default_params, sparse_item_scores, with_param};

    #[test]
    fn describe_publishes_name_kind_and_space() {
        let info = Rp3beta::describe();
        assert_eq!(info.name, "RP3beta");
        assert!(matches!(info.model_kind, ModelKind::SparseItemItem));
        let names: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["alpha", "beta", "top_k", "normalize_weight"]);
        assert!(Config::from_params(&default_params(&info)).is_ok());
    }

    #[test]
    fn co_consumed_item_ranks_first() {
        let data = co_consumed(5);
        for normalize in ["true", "false"] {
            let p = with_param(&default_params(&Rp3beta::describe()), "normalize_weight", ParamValue::Text(normalize.into()));
            let w = fit(&data.matrix, &Config::from_params(&p).unwrap());
            assert!(w.validate().is_ok());
            let s = sparse_item_scores(&w, data.matrix.row(data.probe_user));
            assert_eq!(best_unseen(&data.matrix, data.probe_user, &s), 1, "{normalize}: {s:?}");
        }
    }

    #[test]
    fn walk_probabilities_match_the_formula() {
        // u0: items 0, 1; u1: items 1, 2.
        let x = Csr::from_triplets(2, 3, &[(0, 0, 1.0), (0, 1, 1.0), (1, 1, 1.0), (1, 2, 1.0)]);
        let cfg = Config { alpha: 1.0, beta: 0.5, top_k: 10, normalize_weight: false };
        let w = fit(&x, &cfg);
        // W[0][1] = P(0→u0) P(u0→1) / n_1^0.5 = 1 · 0.5 / √2.
        let (cols, vals) = w.row(0);
        assert_eq!(cols, &[1]);
        assert!((vals[0] - 0.5 / 2f32.sqrt()).abs() < 1e-6);
        // W[1][2] = P(1→u1) P(u1→2) / n_2^0.5 = 0.5 · 0.5 / 1.
        let (cols, vals) = w.row(1);
        assert_eq!(cols, &[0, 2]);
        assert!((vals[1] - 0.25).abs() < 1e-6);
        let normalized = fit(&x, &Config { normalize_weight: true, ..cfg });
        let total: f32 = normalized.row(1).1.iter().sum();
        assert!((total - 1.0).abs() < 1e-6);
    }

    #[test]
    fn deterministic() {
        let data = co_consumed(6);
        let cfg = Config::from_params(&default_params(&Rp3beta::describe())).unwrap();
        assert_eq!(fit(&data.matrix, &cfg), fit(&data.matrix, &cfg));
    }

    #[test]
    fn bad_parameters_are_rejected_with_the_name() {
        let ok = default_params(&Rp3beta::describe());
        assert_rejected(Config::from_params, &ok, &[
            ("alpha", ParamValue::Float(-0.1)),
            ("beta", ParamValue::Float(f64::INFINITY)),
            ("top_k", ParamValue::Int(-3)),
            ("normalize_weight", ParamValue::Text("yes".into())),
        ]);
    }
}
