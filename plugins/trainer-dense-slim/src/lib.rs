//! DenseSLIM: the closed form of EASE (Steck, "Embarrassingly Shallow
//! Autoencoders for Sparse Data"):
//!
//! ```text
//! P = (XᵀX + reg·I)⁻¹        B[i][j] = −P[i][j] / P[j][j],   B[j][j] = 0
//! ```
//!
//! `B` is a dense `n_items × n_items` matrix, so memory grows with the
//! square of the catalogue: 10 000 items need 400 MB, 32 768 items 4 GiB
//! (the most a wasm32 component can address). The whole matrix and the
//! working vector are reserved with `Vec::try_reserve_exact` before any
//! computation: when the host's memory limiter refuses to grow the
//! component's memory (`RECOTEM_TRAINER_MEMORY_MIB`), the reservation fails
//! and the trainer returns an error that says so instead of being stopped
//! half-way. The inverse is computed in place (Cholesky, inverse of the
//! factor, product), about `n³/2` multiply-adds and no second matrix.

use recotem_guest_sdk::numerics::{gram_lower_dense, spd_inverse_in_place};
use recotem_guest_sdk::prelude::*;

/// Largest linear memory of a wasm32 component.
const WASM32_MEMORY: u64 = 4 << 30;

/// The trainer's hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// L2 regularisation added to the diagonal of the Gram matrix.
    pub reg: f32,
}

impl Config {
    /// Read and check the parameters.
    pub fn from_params(p: &Params) -> Result<Config, PluginError> {
        Ok(Config { reg: p.float_in("reg", 1e-6, 1e9)? as f32 })
    }
}

/// The trainer (its `describe` is the search space).
pub struct DenseSlim;

impl Trainer for DenseSlim {
    fn describe() -> TrainerInfo {
        TrainerInfo::new(
            "DenseSLIM",
            env!("CARGO_PKG_VERSION"),
            "EASE closed form: a dense item-item linear model (memory grows with items²).",
            ModelKind::DenseItemItem,
        )
        .with_float("reg", "L2 regularisation added to the Gram matrix's diagonal", 1.0, 1e4, true, 300.0)
    }

    fn train(interactions: CsrMatrix, params: Params, _seed: u64) -> Result<Model, PluginError> {
        let cfg = Config::from_params(&params)?;
        let x = recotem_guest_sdk::trainer::interactions(interactions)?;
        let n = x.cols;
        let values = fit(&x, &cfg)?;
        Ok(Model::DenseItemItem(DenseFactors { count: n, dim: n, values }))
    }
}

/// Bytes DenseSLIM needs beyond its input for `n` items: the `n × n`
/// matrix and one working vector.
pub fn bytes_needed(n: u32) -> u64 {
    let n = n as u64;
    (n * n + n) * 4
}

fn too_large(n: u32, why: &str) -> PluginError {
    PluginError::invalid_input(format!(
        "DenseSLIM needs a dense {n} × {n} matrix for {n} items ({} MiB), {why}; \
         use fewer items or an algorithm that scales with the catalogue (RP3beta, CosineKNN, IALS)",
        bytes_needed(n) >> 20
    ))
}

/// Reserve the `n × n` matrix and the working vector, or explain why not.
fn reserve(n: u32) -> Result<(Vec<f32>, Vec<f32>), PluginError> {
    if bytes_needed(n) >= WASM32_MEMORY {
        return Err(too_large(n, "more than a wasm32 component can address (4 GiB)"));
    }
    let cap_refused = || too_large(n, "more than the trainer's memory cap allows (RECOTEM_TRAINER_MEMORY_MIB)");
    let mut matrix: Vec<f32> = Vec::new();
    matrix.try_reserve_exact(n as usize * n as usize).map_err(|_| cap_refused())?;
    let mut work: Vec<f32> = Vec::new();
    work.try_reserve_exact(n as usize).map_err(|_| cap_refused())?;
    // Within the reserved capacity: no further allocation.
    matrix.resize(n as usize * n as usize, 0.0);
    work.resize(n as usize, 0.0);
    Ok((matrix, work))
}

/// The dense weights `B` (`n_items × n_items`, row-major, row = source
/// item).
pub fn fit(x: &Csr, cfg: &Config) -> Result<Vec<f32>, PluginError> {
    let n = x.cols as usize;
    let (mut b, mut work) = reserve(x.cols)?;
    gram_lower_dense(x, &mut b);
    for i in 0..n {
        b[i * n + i] += cfg.reg;
    }
    spd_inverse_in_place(&mut b, n, &mut work)
        .map_err(|e| PluginError::internal(format!("DenseSLIM: the regularised Gram {e}; raise `reg`")))?;
    // B[i][j] = −P[i][j] / P[j][j], then a zero diagonal.
    for (j, w) in work.iter_mut().enumerate() {
        *w = -1.0 / b[j * n + j];
    }
    for (i, row) in b.chunks_exact_mut(n.max(1)).enumerate() {
        for (v, &s) in row.iter_mut().zip(&work) {
            *v *= s;
        }
        row[i] = 0.0;
    }
    Ok(b)
}

export_trainer!(DenseSlim);

#[cfg(test)]
mod tests {
    use super::*;
    use recotem_guest_sdk::testing::{assert_rejected, best_unseen, co_consumed, default_params};

    /// A user's scores: the sum of the rows of `b` it has seen.
    fn scores(b: &[f32], n: usize, history: (&[u32], &[f32])) -> Vec<f32> {
        let mut out = vec![0f32; n];
        for (&i, &a) in history.0.iter().zip(history.1) {
            recotem_guest_sdk::numerics::axpy(a, &b[i as usize * n..(i as usize + 1) * n], &mut out);
        }
        out
    }

    #[test]
    fn describe_publishes_name_kind_and_space() {
        let info = DenseSlim::describe();
        assert_eq!(info.name, "DenseSLIM");
        assert!(matches!(info.model_kind, ModelKind::DenseItemItem));
        assert_eq!(info.params.len(), 1);
        assert_eq!(info.params[0].name, "reg");
        assert!(Config::from_params(&default_params(&info)).is_ok());
    }

    #[test]
    fn co_consumed_item_ranks_first() {
        for reg in [1.0, 10.0, 300.0] {
            let data = co_consumed(7);
            let b = fit(&data.matrix, &Config { reg }).unwrap();
            let s = scores(&b, 12, data.matrix.row(data.probe_user));
            assert_eq!(best_unseen(&data.matrix, data.probe_user, &s), 1, "reg {reg}: {s:?}");
        }
    }

    #[test]
    fn matches_the_closed_form_on_a_small_matrix() {
        // X: u0 {0,1}, u1 {1,2}; G + I = [[2,1,0],[1,3,1],[0,1,2]].
        let x = Csr::from_triplets(2, 3, &[(0, 0, 1.0), (0, 1, 1.0), (1, 1, 1.0), (1, 2, 1.0)]);
        let b = fit(&x, &Config { reg: 1.0 }).unwrap();
        // P = (G + I)⁻¹ = [[5,-2,1],[-2,4,-2],[1,-2,5]] / 8.
        let p = [5.0, -2.0, 1.0, -2.0, 4.0, -2.0, 1.0, -2.0, 5.0f32].map(|v| v / 8.0);
        for i in 0..3 {
            for j in 0..3 {
                let want = if i == j { 0.0 } else { -p[i * 3 + j] / p[j * 3 + j] };
                assert!((b[i * 3 + j] - want).abs() < 1e-5, "({i},{j}) {} vs {want}", b[i * 3 + j]);
            }
        }
    }

    #[test]
    fn deterministic() {
        let data = co_consumed(8);
        let cfg = Config { reg: 50.0 };
        assert_eq!(fit(&data.matrix, &cfg).unwrap(), fit(&data.matrix, &cfg).unwrap());
    }

    #[test]
    fn a_catalogue_too_large_for_wasm32_is_refused_before_computing() {
        // 40 000 items: 6.4 GB of matrix. No interactions are needed to decide.
        let x = Csr { rows: 1, cols: 40_000, indptr: vec![0, 0], indices: vec![], values: vec![] };
        let err = fit(&x, &Config { reg: 1.0 }).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::InvalidInput));
        assert!(err.message.contains("40000 × 40000") && err.message.contains("6103 MiB"), "{}", err.message);
        assert!(err.message.contains("4 GiB"), "{}", err.message);
    }

    #[test]
    fn bad_parameters_are_rejected_with_the_name() {
        let ok = default_params(&DenseSlim::describe());
        let cases = [("reg", ParamValue::Float(0.0)), ("reg", ParamValue::Float(-5.0)), ("reg", ParamValue::Text("big".into()))];
        assert_rejected(Config::from_params, &ok, &cases);
    }
}
