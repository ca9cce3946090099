//! TruncatedSVD: a rank-`k` approximation `X ≈ U Σ Vᵀ` by randomised SVD
//! (Halko, Martinsson & Tropp, as scikit-learn's `TruncatedSVD`): a random
//! projection with `k + 10` columns, five power iterations re-orthonormalised
//! each time (modified Gram–Schmidt), then the exact SVD of the small
//! projected matrix through the eigen-decomposition of `B Bᵀ` (Jacobi).
//! The model is users `U Σ` and items `V`, so `score(u, i)` is the rank-`k`
//! reconstruction of `X[u][i]`.

use recotem_guest_sdk::numerics::{Rng, csr_mul_dense_t, matmul, orthonormalize_rows, row_gram_f64, symmetric_eigen};
use recotem_guest_sdk::prelude::*;

/// Extra random directions beyond `n_components`.
const OVERSAMPLES: usize = 10;
/// Power iterations.
const POWER_ITERATIONS: usize = 5;

/// The trainer's hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Rank of the approximation (clamped to the matrix's smaller side).
    pub n_components: usize,
}

impl Config {
    /// Read and check the parameters.
    pub fn from_params(p: &Params) -> Result<Config, PluginError> {
        Ok(Config { n_components: p.int_in("n_components", 1, 4096)? as usize })
    }
}

/// The trainer (its `describe` is the search space).
pub struct TruncatedSvd;

impl Trainer for TruncatedSvd {
    fn describe() -> TrainerInfo {
        TrainerInfo::new(
            "TruncatedSVD",
            env!("CARGO_PKG_VERSION"),
            "Randomised truncated SVD of the interaction matrix: users UΣ, items V.",
            ModelKind::Factors,
        )
        // irspack's range, drawn log-uniformly: the rank is this model's
        // only regulariser and quality peaks sharply at small ranks (on
        // MovieLens 100k at 12–17, halved by 100), so a uniform draw puts
        // 97% of its mass past the peak and a 20-trial search often stops
        // short of it (docs/algorithms.md; `cargo bench -p recotem --bench
        // sampler_replay`).
        .with_int("n_components", "rank of the approximation", 4, 512, true, 20)
    }

    fn train(interactions: CsrMatrix, params: Params, seed: u64) -> Result<Model, PluginError> {
        let cfg = Config::from_params(&params)?;
        let x = recotem_guest_sdk::trainer::interactions(interactions)?;
        let (users, items, dim) = fit(&x, &cfg, seed)?;
        Ok(factor_model(users, items, dim))
    }
}

/// Fit `(users (m × k), items (n × k), k)`; `k` is `n_components` clamped to
/// `min(m, n)`.
pub fn fit(x: &Csr, cfg: &Config, seed: u64) -> Result<(Vec<f32>, Vec<f32>, usize), PluginError> {
    let (m, n) = (x.rows as usize, x.cols as usize);
    let k = cfg.n_components.min(m).min(n);
    if k == 0 {
        return Err(PluginError::invalid_input(format!("TruncatedSVD needs a non-empty matrix, got {m} × {n}")));
    }
    let l = (k + OVERSAMPLES).min(m).min(n);
    let xt = x.transpose();
    let mut rng = Rng::new(seed);
    // Ωᵀ (l × n), then Qᵀ = (X Ω)ᵀ orthonormalised (l × m).
    let omega_t: Vec<f32> = (0..l * n).map(|_| rng.normal() as f32).collect();
    let mut qt = vec![0f32; l * m];
    let mut zt = vec![0f32; l * n];
    csr_mul_dense_t(x, &omega_t, l, &mut qt);
    drop(omega_t);
    orthonormalize_rows(&mut qt, l, m);
    for _ in 0..POWER_ITERATIONS {
        csr_mul_dense_t(&xt, &qt, l, &mut zt);
        orthonormalize_rows(&mut zt, l, n);
        csr_mul_dense_t(x, &zt, l, &mut qt);
        orthonormalize_rows(&mut qt, l, m);
    }
    // B = Qᵀ X (l × n), stored in zt's buffer.
    csr_mul_dense_t(&xt, &qt, l, &mut zt);
    let b = zt;
    let mut c = vec![0f64; l * l];
    row_gram_f64(&b, l, n, &mut c);
    let (values, vectors) = symmetric_eigen(&mut c, l);
    // W (l × k): column j is the j-th left singular vector of B.
    let mut w = vec![0f32; l * k];
    for j in 0..k {
        for r in 0..l {
            w[r * k + j] = vectors[j * l + r] as f32;
        }
    }
    let sigma: Vec<f32> = values[..k].iter().map(|&v| v.max(0.0).sqrt() as f32).collect();
    // Users = Q W Σ (m × k); items = Bᵀ W Σ⁻¹ (n × k).
    let mut users = vec![0f32; m * k];
    matmul(&transpose(&qt, l, m), &w, m, l, k, &mut users);
    let mut items = vec![0f32; n * k];
    matmul(&transpose(&b, l, n), &w, n, l, k, &mut items);
    for row in users.chunks_exact_mut(k) {
        for (v, s) in row.iter_mut().zip(&sigma) {
            *v *= s;
        }
    }
    let largest = sigma.first().copied().unwrap_or(0.0);
    for row in items.chunks_exact_mut(k) {
        for (v, s) in row.iter_mut().zip(&sigma) {
            *v = if *s > 1e-6 * largest && *s > 0.0 { *v / s } else { 0.0 };
        }
    }
    Ok((users, items, k))
}

/// Row-major `rows × cols` → `cols × rows`.
fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = a[r * cols + c];
        }
    }
    t
}

export_trainer!(TruncatedSvd);

#[cfg(test)]
mod tests {
    use super::*;
    use recotem_guest_sdk::testing::{assert_rejected, best_unseen, co_consumed, default_params, factor_scores, with_param};

    #[test]
    fn describe_publishes_name_kind_and_space() {
        let info = TruncatedSvd::describe();
        assert_eq!(info.name, "TruncatedSVD");
        assert!(matches!(info.model_kind, ModelKind::Factors));
        assert_eq!(info.params.len(), 1);
        assert!(Config::from_params(&default_params(&info)).is_ok());
    }

    #[test]
    fn full_rank_reconstructs_the_matrix() {
        let data = co_consumed(9);
        let (users, items, k) = fit(&data.matrix, &Config { n_components: 12 }, 1).unwrap();
        assert_eq!(k, 12);
        for u in 0..data.matrix.rows {
            let s = factor_scores(&users, &items, k, u);
            let (idx, _) = data.matrix.row(u);
            for (i, v) in s.iter().enumerate() {
                let want = if idx.contains(&(i as u32)) { 1.0 } else { 0.0 };
                assert!((v - want).abs() < 1e-3, "u{u} i{i}: {v}");
            }
        }
    }

    #[test]
    fn leading_singular_values_match_a_known_matrix() {
        // Two disjoint blocks of ones: 3×2 (σ = √6) and 2×3 (σ = √6), rank 2;
        // a third lone entry gives σ = 1.
        let mut e = Vec::new();
        for u in 0..3 {
            for i in 0..2 {
                e.push((u, i, 1.0));
            }
        }
        for u in 3..5 {
            for i in 2..5 {
                e.push((u, i, 1.0));
            }
        }
        e.push((5, 5, 1.0));
        let x = Csr::from_triplets(6, 6, &e);
        let (users, items, k) = fit(&x, &Config { n_components: 2 }, 0).unwrap();
        // ‖U Σ‖ per column = σ; item columns are unit vectors.
        for j in 0..k {
            let su: f32 = (0..6).map(|u| users[u * k + j].powi(2)).sum::<f32>().sqrt();
            let sv: f32 = (0..6).map(|i| items[i * k + j].powi(2)).sum::<f32>().sqrt();
            assert!((su - 6f32.sqrt()).abs() < 1e-4, "σ{j} = {su}");
            assert!((sv - 1.0).abs() < 1e-4);
        }
    }

    #[test]
    fn co_consumed_item_ranks_first() {
        let data = co_consumed(10);
        let p = with_param(&default_params(&TruncatedSvd::describe()), "n_components", ParamValue::Int(4));
        let (users, items, k) = fit(&data.matrix, &Config::from_params(&p).unwrap(), 3).unwrap();
        let s = factor_scores(&users, &items, k, data.probe_user);
        assert_eq!(best_unseen(&data.matrix, data.probe_user, &s), 1, "{s:?}");
    }

    #[test]
    fn same_seed_same_model() {
        let data = co_consumed(11);
        let cfg = Config { n_components: 5 };
        assert_eq!(fit(&data.matrix, &cfg, 4).unwrap(), fit(&data.matrix, &cfg, 4).unwrap());
    }

    #[test]
    fn bad_parameters_and_empty_input_are_rejected() {
        let ok = default_params(&TruncatedSvd::describe());
        let cases = [("n_components", ParamValue::Int(0)), ("n_components", ParamValue::Int(-1)), ("n_components", ParamValue::Float(3.5))];
        assert_rejected(Config::from_params, &ok, &cases);
        let empty = Csr { rows: 0, cols: 3, indptr: vec![0], indices: vec![], values: vec![] };
        assert!(matches!(fit(&empty, &Config { n_components: 4 }, 0).unwrap_err().kind, ErrorKind::InvalidInput));
    }
}
