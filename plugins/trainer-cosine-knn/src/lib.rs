//! CosineKNN: item-item cosine similarity with shrinkage, keeping each
//! item's `top_k` most similar neighbours.
//!
//! Item `i` is the vector of its users (optionally re-weighted by TF-IDF or
//! BM25, users being the "terms"). The similarity of items `i` and `j` is
//!
//! ```text
//! normalize = true :  Σ_u x_ui x_uj / (‖x_i‖ ‖x_j‖ + shrinkage)
//! normalize = false:  Σ_u x_ui x_uj
//! ```
//!
//! For every target item `j` the `top_k` best source items `i ≠ j` are kept
//! (column-wise pruning, as irspack), and the model is the sparse matrix
//! `W[i][j]`: a user's score for `j` sums `W[i][j]` over the items `i` it
//! has seen.

use recotem_guest_sdk::numerics::cooccurrence_top_k;
use recotem_guest_sdk::prelude::*;

/// How user "terms" are weighted before the similarity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weighting {
    /// The interaction values as they are.
    None,
    /// `x_ui · ln(n_items / n_u)`.
    TfIdf,
    /// Okapi BM25 with `k1 = 1.2`, `b = 0.75` (items are the documents).
    Bm25,
}

const WEIGHTINGS: [&str; 3] = ["NONE", "TF_IDF", "BM_25"];
const BM25_K1: f32 = 1.2;
const BM25_B: f32 = 0.75;

/// The trainer's hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Neighbours kept per item.
    pub top_k: usize,
    /// Added to the denominator of the cosine.
    pub shrinkage: f32,
    /// Divide by the norms.
    pub normalize: bool,
    /// Term weighting.
    pub weighting: Weighting,
}

impl Config {
    /// Read and check the parameters.
    pub fn from_params(p: &Params) -> Result<Config, PluginError> {
        Ok(Config {
            top_k: p.int_in("top_k", 1, 1_000_000)? as usize,
            shrinkage: p.float_in("shrinkage", 0.0, 1e9)? as f32,
            normalize: p.choice("normalize", &["true", "false"])? == 0,
            weighting: match p.choice("feature_weighting", &WEIGHTINGS)? {
                0 => Weighting::None,
                1 => Weighting::TfIdf,
                _ => Weighting::Bm25,
            },
        })
    }
}

/// The trainer (its `describe` is the search space).
pub struct CosineKnn;

impl Trainer for CosineKnn {
    fn describe() -> TrainerInfo {
        TrainerInfo::new(
            "CosineKNN",
            env!("CARGO_PKG_VERSION"),
            "Item-item cosine nearest neighbours with shrinkage and optional TF-IDF/BM25 weighting.",
            ModelKind::SparseItemItem,
        )
        .with_alias("CosinekNN")
        .with_int("top_k", "neighbours kept per item", 4, 1000, false, 100)
        .with_float("shrinkage", "added to the cosine's denominator (damps rare items)", 0.0, 1000.0, false, 10.0)
        .with_choice("feature_weighting", "weighting of the users before the similarity", &WEIGHTINGS, "NONE")
        .with_choice("normalize", "divide by the norms (cosine) or keep raw co-occurrence", &["true", "false"], "true")
    }

    fn train(interactions: CsrMatrix, params: Params, _seed: u64) -> Result<Model, PluginError> {
        let cfg = Config::from_params(&params)?;
        let x = recotem_guest_sdk::trainer::interactions(interactions)?;
        Ok(Model::SparseItemItem(csr_matrix(fit(&x, &cfg))))
    }
}

/// The similarity matrix (`n_items × n_items`, row = source item).
pub fn fit(x: &Csr, cfg: &Config) -> Csr {
    let w = weighted(x, cfg.weighting);
    let wt = w.transpose();
    let norms: Vec<f32> = (0..wt.rows).map(|i| wt.row(i).1.iter().map(|v| v * v).sum::<f32>().sqrt()).collect();
    let (normalize, shrink) = (cfg.normalize, cfg.shrinkage);
    // Row j of the result holds j's best sources i; transposed, rows are sources.
    cooccurrence_top_k(&wt, &w, Some(cfg.top_k), |j, i, v| {
        if normalize { v / (norms[j as usize] * norms[i as usize] + shrink) } else { v }
    })
    .transpose()
}

/// `x` with its values re-weighted (same sparsity).
fn weighted(x: &Csr, weighting: Weighting) -> Csr {
    let mut w = x.clone();
    if weighting == Weighting::None {
        return w;
    }
    let n_items = x.cols.max(1) as f32;
    // Item "document lengths" for BM25.
    let mut len = vec![0f32; x.cols as usize];
    for (&i, &v) in x.indices.iter().zip(&x.values) {
        len[i as usize] += v;
    }
    let avg = len.iter().sum::<f32>() / n_items;
    for u in 0..x.rows as usize {
        let (a, b) = (x.indptr[u] as usize, x.indptr[u + 1] as usize);
        let idf = (n_items / (b - a).max(1) as f32).ln().max(0.0);
        for e in a..b {
            let v = x.values[e];
            w.values[e] = match weighting {
                Weighting::None => v,
                Weighting::TfIdf => v * idf,
                Weighting::Bm25 => {
                    let norm = 1.0 - BM25_B + BM25_B * len[x.indices[e] as usize] / avg.max(f32::MIN_POSITIVE);
                    v * (BM25_K1 + 1.0) / (v + BM25_K1 * norm) * idf
                }
            };
        }
    }
    w
}

export_trainer!(CosineKnn);

#[cfg(test)]
mod tests {
    use super::*;
    use recotem_guest_sdk::numerics::Csr;
    use recotem_guest_sdk::testing::{assert_rejected, best_unseen, co_consumed, default_params, sparse_item_scores, with_param};

    #[test]
    fn describe_publishes_name_alias_kind_and_space() {
        let info = CosineKnn::describe();
        assert_eq!(info.name, "CosineKNN");
        assert_eq!(info.aliases, ["CosinekNN"]);
        assert!(matches!(info.model_kind, ModelKind::SparseItemItem));
        let names: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["top_k", "shrinkage", "feature_weighting", "normalize"]);
        assert!(Config::from_params(&default_params(&info)).is_ok());
    }

    #[test]
    fn co_consumed_item_ranks_first_under_every_weighting() {
        let data = co_consumed(4);
        let base = default_params(&CosineKnn::describe());
        for weighting in WEIGHTINGS {
            for normalize in ["true", "false"] {
                let p = with_param(&base, "feature_weighting", ParamValue::Text(weighting.into()));
                let p = with_param(&p, "normalize", ParamValue::Text(normalize.into()));
                let w = fit(&data.matrix, &Config::from_params(&p).unwrap());
                assert!(w.validate().is_ok());
                assert_eq!((w.rows, w.cols), (12, 12));
                let s = sparse_item_scores(&w, data.matrix.row(data.probe_user));
                assert_eq!(best_unseen(&data.matrix, data.probe_user, &s), 1, "{weighting} {normalize}: {s:?}");
            }
        }
    }

    #[test]
    fn cosine_values_and_pruning() {
        // Items 0 and 1 share both users; item 2 shares one user with 0.
        let x = Csr::from_triplets(2, 3, &[(0, 0, 1.0), (0, 1, 1.0), (1, 0, 1.0), (1, 1, 1.0), (1, 2, 1.0)]);
        let cfg = Config { top_k: 10, shrinkage: 0.0, normalize: true, weighting: Weighting::None };
        let w = fit(&x, &cfg);
        let cos01 = w.row(0).1[0];
        assert!((cos01 - 1.0).abs() < 1e-6, "{cos01}");
        assert!(w.row(0).0.iter().all(|&j| j != 0), "no self-similarity");
        // With one neighbour per target, target 0 keeps only source 1.
        let w1 = fit(&x, &Config { top_k: 1, ..cfg });
        let t = w1.transpose();
        assert_eq!(t.row(0).0, &[1]);
        assert_eq!(t.row(2).0.len(), 1);
    }

    #[test]
    fn deterministic() {
        let data = co_consumed(2);
        let cfg = Config::from_params(&default_params(&CosineKnn::describe())).unwrap();
        assert_eq!(fit(&data.matrix, &cfg), fit(&data.matrix, &cfg));
    }

    #[test]
    fn bad_parameters_are_rejected_with_the_name() {
        let ok = default_params(&CosineKnn::describe());
        assert_rejected(Config::from_params, &ok, &[
            ("top_k", ParamValue::Int(0)),
            ("shrinkage", ParamValue::Float(-1.0)),
            ("feature_weighting", ParamValue::Text("LOG".into())),
            ("normalize", ParamValue::Int(1)),
        ]);
    }
}
