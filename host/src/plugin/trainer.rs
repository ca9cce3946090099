//! Calling `trainer` components: describe and train.

use std::time::Duration;

use wasmtime::component::Component;

use super::bindings::source::recotem::plugin::types::{self as wit, CsrMatrix, ModelKind, Param};
use super::bindings::shaped::ShapedTrainerPre;
use super::bindings::shaped::exports::recotem::plugin::trainer_by_shape::{MatrixShape, Trained};
use super::bindings::trainer::TrainerPre;
use super::bindings::trainer::exports::recotem::plugin::trainer_plugin::TrainerInfo;
use super::engine::{CallFailure, Runtime, arm_deadline, classify};
use super::limits::{Limits, truncate};
use super::registry::Profile;
use super::early_stop::EarlyStop;
use super::sandbox::{CallMatrix, HostState, TrainCall, new_store};
use crate::error::{Error, Result};
use crate::model::{Csr, Model};

/// A loaded trainer component.
pub struct TrainerComponent {
    /// Where it came from (`builtin:<crate>` or a file path).
    pub origin: String,
    /// SHA-256 of the component bytes.
    pub digest: String,
    /// What it says about itself.
    pub info: TrainerInfo,
    /// Surface, needs and grants (filled by the registry).
    pub profile: Profile,
    pre: TrainerPre<HostState>,
    /// Set when the component exports `trainer-by-shape` (WIT 0.2.2): then
    /// `train` goes through it and the matrix is not lowered.
    shaped: Option<ShapedTrainerPre<HostState>>,
}

pub use crate::recipe::catalog::answers_to;

/// Why a training call failed.
#[derive(Debug)]
pub enum TrainFailure {
    /// The trainer returned an error of this kind.
    Plugin {
        /// The plugin's `error-kind`, as written in the WIT.
        kind: &'static str,
        /// Its message (capped).
        message: String,
    },
    /// The call trapped or ran out of time.
    Call(CallFailure),
    /// The returned model is unusable: another kind than declared, a wrong
    /// shape, or non-finite values.
    Model(String),
}

impl std::fmt::Display for TrainFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrainFailure::Plugin { kind, message } => write!(f, "{kind}: {message}"),
            TrainFailure::Call(c) => write!(f, "{c}"),
            TrainFailure::Model(m) => write!(f, "returned an unusable model: {m}"),
        }
    }
}

/// The kind's name, as in artifact headers and `plugins` output.
pub fn kind_name(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Popularity => "popularity",
        ModelKind::Factors => "factors",
        ModelKind::SparseItemItem => "sparse-item-item",
        ModelKind::DenseItemItem => "dense-item-item",
    }
}

/// The matrix in the WIT representation (copies the arrays).
pub fn csr_to_wit(m: &Csr) -> CsrMatrix {
    CsrMatrix { rows: m.rows, cols: m.cols, indptr: m.indptr.clone(), indices: m.indices.clone(), values: m.values.clone() }
}

/// Take a model a trainer returned: it must be of the `declared` kind and
/// fit the `n_users × n_items` data ([`Model::validate`]). A plugin's model
/// is untrusted input.
pub fn model_from_wit(model: wit::Model, declared: ModelKind, n_users: u32, n_items: u32) -> std::result::Result<Model, String> {
    let model = match model {
        wit::Model::Popularity(scores) => Model::Popularity(scores.into()),
        wit::Model::Factors(f) => {
            if f.users.dim != f.items.dim {
                return Err(format!("factor dimensions differ: users {}, items {}", f.users.dim, f.items.dim));
            }
            if f.users.count != n_users || f.items.count != n_items {
                return Err(format!(
                    "factors cover {} users × {} items, the data has {n_users} × {n_items}",
                    f.users.count, f.items.count
                ));
            }
            Model::Factors { dim: f.users.dim, users: f.users.values.into(), items: f.items.values.into() }
        }
        wit::Model::SparseItemItem(m) => {
            Model::SparseItemItem(Csr { rows: m.rows, cols: m.cols, indptr: m.indptr, indices: m.indices, values: m.values })
        }
        wit::Model::DenseItemItem(d) => {
            if d.count != d.dim {
                return Err(format!("dense similarity is {} × {}, it must be square", d.count, d.dim));
            }
            Model::DenseItemItem { n: d.count, values: d.values.into() }
        }
    };
    check_model(model, declared, n_users, n_items)
}

/// Check a model a trainer produced: of the `declared` kind, fitting the
/// `n_users × n_items` data, finite ([`Model::validate`]).
pub fn check_model(model: Model, declared: ModelKind, n_users: u32, n_items: u32) -> std::result::Result<Model, String> {
    if model.kind() != kind_name(declared) {
        return Err(format!(
            "the trainer declares model kind {} but returned {}",
            kind_name(declared),
            model.kind()
        ));
    }
    model.validate(n_users, n_items)?;
    Ok(model)
}

impl TrainerComponent {
    /// Link `component` against the trainer world and ask it to describe
    /// itself.
    pub fn load(runtime: &Runtime, origin: &str, digest: &str, component: &Component) -> Result<Self> {
        let pre = runtime
            .trainer_linker()
            .instantiate_pre(component)
            .map_err(|e| Error::data_source(format!("component {origin}: cannot be linked: {e:#}")))?;
        // Components built against 0.2.2 for `shaped-trainer` also export
        // `trainer-by-shape`; older ones (and `trainer`-world ones) do not.
        let shaped = ShapedTrainerPre::new(pre.clone()).ok();
        let pre = TrainerPre::new(pre)
            .map_err(|e| Error::data_source(format!("component {origin}: not a recotem trainer: {e:#}")))?;
        let limits = Limits::DESCRIBE;
        let mut store = new_store(runtime.engine(), origin, limits);
        let info = (|| {
            let bindings = pre.instantiate(&mut store)?;
            bindings.recotem_plugin_trainer_plugin().call_describe(&mut store)
        })()
        .map_err(|e| {
            let failure = classify(e, &store, limits.call_timeout);
            Error::data_source(format!("component {origin}: describe {failure}"))
        })?;
        super::describe::check_trainer(&info)
            .map_err(|rule| Error::data_source(format!("component {origin}: describe: {rule}")))?;
        let profile = Profile::bare(origin, digest, 0);
        Ok(TrainerComponent { origin: origin.to_string(), digest: digest.to_string(), info, profile, pre, shaped })
    }

    /// Attach the registry's profile.
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// Whether `train` goes through the component's `trainer-by-shape`
    /// export (WIT 0.2.2) instead of lowering the matrix into it.
    pub fn trains_by_shape(&self) -> bool {
        self.shaped.is_some()
    }

    /// True when `name` designates this trainer (see [`answers_to`]).
    pub fn answers_to(&self, name: &str) -> bool {
        answers_to(&self.info.name, &self.info.aliases, name)
    }

    /// Create a fresh sandbox and instance without calling anything: the
    /// fixed cost every trial pays (measured by `benches/sandbox.rs`).
    pub fn instantiate(&self, runtime: &Runtime) -> Result<()> {
        let mut store = new_store(runtime.engine(), &self.info.name, Limits::trainer());
        self.pre
            .instantiate(&mut store)
            .map(|_| ())
            .map_err(|e| Error::internal(format!("instantiating {}: {e}", self.info.name)))
    }

    /// Train once in a fresh sandbox with its own deadline. Early-stop
    /// reports are answered "go on" without scoring (see [`Self::train_with`]).
    pub fn train(
        &self,
        runtime: &Runtime,
        matrix: &Csr,
        params: &[Param],
        seed: u64,
        timeout: Duration,
    ) -> std::result::Result<Model, TrainFailure> {
        self.train_with(runtime, matrix, params, seed, timeout, None)
    }

    /// Train once in a fresh sandbox with its own deadline; the trainer's
    /// early-stop reports go to `early_stop` (a search trial), or are
    /// answered "go on" without scoring when it is `None` (the final refit).
    pub fn train_with(
        &self,
        runtime: &Runtime,
        matrix: &Csr,
        params: &[Param],
        seed: u64,
        timeout: Duration,
        early_stop: Option<Box<dyn EarlyStop>>,
    ) -> std::result::Result<Model, TrainFailure> {
        let limits = Limits::trainer().with_timeout(timeout);
        let mut store = new_store(runtime.engine(), &self.info.name, limits);
        // SAFETY: `store` is local to this function; the call (and with it
        // the view of `matrix`) is taken out of it below, before this
        // function returns, and on unwinding the store is dropped before the
        // borrow of `matrix` ends.
        let view = unsafe { CallMatrix::borrowed(matrix) };
        store.data_mut().call = Some(TrainCall::new(view, self.info.model_kind, early_stop));
        arm_deadline(&mut store, timeout);
        let result = match &self.shaped {
            // The matrix stays here: the component gets its shape, and
            // `linalg` / `call-input` read the caller's arrays.
            Some(shaped) => (|| {
                let bindings = shaped.instantiate(&mut store)?;
                let shape = MatrixShape { rows: matrix.rows, cols: matrix.cols, nnz: matrix.indices.len() as u64 };
                bindings.recotem_plugin_trainer_by_shape().call_train(&mut store, shape, params, seed)
            })(),
            // An older component: lower a copy of the matrix into it.
            None => (|| {
                let wit_matrix = csr_to_wit(matrix);
                let bindings = self.pre.instantiate(&mut store)?;
                bindings.recotem_plugin_trainer_plugin().call_train(&mut store, &wit_matrix, params, seed)
            })()
            .map(|r| r.map(Trained::Model)),
        };
        // The transpose, the matrix view and the hook go now, before the
        // model is taken.
        let _ = store.data_mut().call.take();
        match result {
            Ok(Ok(Trained::Model(model))) => {
                model_from_wit(model, self.info.model_kind, matrix.rows, matrix.cols).map_err(TrainFailure::Model)
            }
            Ok(Ok(Trained::Factors(handle))) => {
                // Moved out of the table: the host-held factors become the
                // model without a copy.
                let factors = super::linalg::take_factors(store.data_mut(), handle)
                    .map_err(|e| TrainFailure::Model(format!("the returned factors handle is not usable: {e}")))?;
                let dim = factors.dim() as u32;
                let (users, items) = factors.into_parts();
                let model = Model::Factors { dim, users: users.into(), items: items.into() };
                check_model(model, self.info.model_kind, matrix.rows, matrix.cols).map_err(TrainFailure::Model)
            }
            Ok(Err(e)) => Err(TrainFailure::Plugin {
                kind: super::error_kind_name(e.kind),
                message: truncate(e.message, limits.message_bytes),
            }),
            Err(e) => Err(TrainFailure::Call(classify(e, &store, timeout))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returned_models_must_be_of_the_declared_kind() {
        let pop = || wit::Model::Popularity(vec![1.0, 2.0, 0.0]);
        assert!(model_from_wit(pop(), ModelKind::Popularity, 1, 3).is_ok());
        let e = model_from_wit(pop(), ModelKind::Factors, 1, 3).unwrap_err();
        assert!(e.contains("declares model kind factors but returned popularity"), "{e}");
        assert!(model_from_wit(wit::Model::Popularity(vec![1.0, f32::NAN, 0.0]), ModelKind::Popularity, 1, 3).is_err());
    }

    #[test]
    fn names_aliases_and_recommender_forms() {
        let aliases = vec!["Pop".to_string()];
        for q in ["TopPop", "toppop", "TOPPOPRECOMMENDER", "TopPopRecommender", "pop", "PopRecommender"] {
            assert!(answers_to("TopPop", &aliases, q), "{q}");
        }
        for q in ["Recommender", "Top", "TopPopRecommenderX", ""] {
            assert!(!answers_to("TopPop", &aliases, q), "{q}");
        }
    }
}
