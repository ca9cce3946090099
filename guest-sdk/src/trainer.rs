//! The `trainer` world: components that fit a model to interactions.
//!
//! Implement [`Trainer`], then call [`export_trainer!`](crate::export_trainer)
//! once in the crate.

use std::marker::PhantomData;

/// Generated bindings for the `trainer` world.
#[doc(hidden)]
pub mod bindings {
    include!(concat!(env!("OUT_DIR"), "/trainer_bindings.rs"));
}

use bindings::exports::recotem::plugin::trainer_by_shape as by_shape;
use bindings::exports::recotem::plugin::trainer_plugin as wit;

pub use by_shape::{MatrixShape, Trained};
pub use wit::{Categorical, FloatRange, IntRange, ParamDomain, ParamSpec, TrainerInfo};

use crate::numerics::Csr;
use crate::{CsrMatrix, DenseFactors, FactorModel, Model, ModelKind, Param, ParamValue, PluginError};

/// A learning algorithm.
pub trait Trainer: 'static {
    /// Name, aliases, search space and model kind. Called at host start-up:
    /// keep it cheap and free of side effects.
    fn describe() -> TrainerInfo;

    /// Fit a model. `interactions` is users × items; `params` holds one
    /// value per entry of the search space; the same `seed` and inputs must
    /// give the same model.
    fn train(interactions: CsrMatrix, params: Params, seed: u64) -> Result<Model, PluginError>;

    /// Fit a model knowing only the matrix's shape (WIT 0.2.2,
    /// `trainer-by-shape`; the host calls this instead of [`Trainer::train`]).
    /// The default fetches the matrix ([`fetch_interactions`]) and calls
    /// [`Trainer::train`]. Override it when the host does the work on the
    /// matrix it holds (for example with [`linalg::IalsFactors`]), so the
    /// matrix is never copied into the component, and return host-held
    /// factors as [`Trained::Factors`].
    fn train_by_shape(shape: MatrixShape, params: Params, seed: u64) -> Result<Trained, PluginError> {
        let _ = shape;
        Self::train(fetch_interactions()?, params, seed).map(Trained::Model)
    }
}

/// The current call's interaction matrix (WIT 0.2.2, `call-input`), for a
/// trainer called through [`Trainer::train_by_shape`] that computes on it.
pub fn fetch_interactions() -> Result<CsrMatrix, PluginError> {
    bindings::recotem::plugin::call_input::interactions()
        .map_err(|e| PluginError::internal(format!("fetching the interaction matrix: {e}")))
}

impl TrainerInfo {
    /// A description with no hyper-parameters.
    pub fn new(name: &str, version: &str, description: &str, model_kind: ModelKind) -> Self {
        TrainerInfo {
            name: name.to_string(),
            aliases: Vec::new(),
            version: version.to_string(),
            description: description.to_string(),
            params: Vec::new(),
            model_kind,
        }
    }

    /// Add an accepted alternative spelling of the name.
    pub fn with_alias(mut self, alias: &str) -> Self {
        self.aliases.push(alias.to_string());
        self
    }

    /// Add a searchable hyper-parameter.
    pub fn with_param(mut self, name: &str, description: &str, domain: ParamDomain) -> Self {
        self.params.push(ParamSpec {
            name: name.to_string(),
            description: description.to_string(),
            domain,
        });
        self
    }

    /// Add an integer hyper-parameter drawn from `[low, high]`.
    pub fn with_int(self, name: &str, description: &str, low: i64, high: i64, log: bool, default: i64) -> Self {
        self.with_param(name, description, ParamDomain::Int(IntRange { low, high, log, default }))
    }

    /// Add a real hyper-parameter drawn from `[low, high]`.
    pub fn with_float(self, name: &str, description: &str, low: f64, high: f64, log: bool, default: f64) -> Self {
        self.with_param(name, description, ParamDomain::Float(FloatRange { low, high, log, default }))
    }

    /// Add a categorical hyper-parameter.
    pub fn with_choice(self, name: &str, description: &str, choices: &[&str], default: &str) -> Self {
        let choices = choices.iter().map(|c| c.to_string()).collect();
        self.with_param(name, description, ParamDomain::Categorical(Categorical { choices, default: default.to_string() }))
    }
}

/// Hyper-parameter values handed to [`Trainer::train`], looked up by name.
#[derive(Debug, Clone)]
pub struct Params(Vec<Param>);

impl Params {
    /// Wrap the raw list.
    pub fn new(params: Vec<Param>) -> Self {
        Params(params)
    }

    fn get(&self, name: &str) -> Result<&ParamValue, PluginError> {
        self.0
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.value)
            .ok_or_else(|| PluginError::invalid_config(format!("missing hyper-parameter `{name}`")))
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> Result<i64, PluginError> {
        match self.get(name)? {
            ParamValue::Int(v) => Ok(*v),
            other => Err(PluginError::invalid_config(format!(
                "hyper-parameter `{name}` must be an integer, got {other:?}"
            ))),
        }
    }

    /// A real parameter (integers are widened).
    pub fn float(&self, name: &str) -> Result<f64, PluginError> {
        match self.get(name)? {
            ParamValue::Float(v) => Ok(*v),
            ParamValue::Int(v) => Ok(*v as f64),
            other => Err(PluginError::invalid_config(format!(
                "hyper-parameter `{name}` must be a number, got {other:?}"
            ))),
        }
    }

    /// A categorical parameter.
    pub fn text(&self, name: &str) -> Result<&str, PluginError> {
        match self.get(name)? {
            ParamValue::Text(v) => Ok(v),
            other => Err(PluginError::invalid_config(format!(
                "hyper-parameter `{name}` must be a string, got {other:?}"
            ))),
        }
    }

    /// An integer parameter that must lie in `[low, high]`.
    pub fn int_in(&self, name: &str, low: i64, high: i64) -> Result<i64, PluginError> {
        let v = self.int(name)?;
        if v < low || v > high {
            return Err(PluginError::invalid_config(format!(
                "hyper-parameter `{name}` is {v}, it must be between {low} and {high}"
            )));
        }
        Ok(v)
    }

    /// A finite real parameter that must lie in `[low, high]`.
    pub fn float_in(&self, name: &str, low: f64, high: f64) -> Result<f64, PluginError> {
        let v = self.float(name)?;
        if !v.is_finite() || v < low || v > high {
            return Err(PluginError::invalid_config(format!(
                "hyper-parameter `{name}` is {v}, it must be a finite number between {low} and {high}"
            )));
        }
        Ok(v)
    }

    /// A categorical parameter that must be one of `choices`; returns its
    /// position in `choices`.
    pub fn choice(&self, name: &str, choices: &[&str]) -> Result<usize, PluginError> {
        let v = self.text(name)?;
        choices.iter().position(|c| *c == v).ok_or_else(|| {
            PluginError::invalid_config(format!(
                "hyper-parameter `{name}` is {v:?}, it must be one of {}",
                choices.join(", ")
            ))
        })
    }

    /// All values, in the order the host sent them.
    pub fn as_slice(&self) -> &[Param] {
        &self.0
    }
}

/// The interaction matrix as a [`Csr`], after checking its structure (the
/// host sends a valid matrix; a trainer still refuses a malformed one with
/// `invalid-input` instead of indexing out of bounds).
pub fn interactions(m: CsrMatrix) -> Result<Csr, PluginError> {
    let csr = Csr { rows: m.rows, cols: m.cols, indptr: m.indptr, indices: m.indices, values: m.values };
    csr.validate().map_err(|e| PluginError::invalid_input(format!("interaction matrix: {e}")))?;
    Ok(csr)
}

/// A [`Csr`] as the WIT matrix type (for `sparse-item-item` models).
pub fn csr_matrix(m: Csr) -> CsrMatrix {
    CsrMatrix { rows: m.rows, cols: m.cols, indptr: m.indptr, indices: m.indices, values: m.values }
}

/// A `factors` model from row-major `users` (`n_users × dim`) and `items`
/// (`n_items × dim`).
pub fn factor_model(users: Vec<f32>, items: Vec<f32>, dim: usize) -> Model {
    let count = |v: &Vec<f32>| if dim == 0 { 0 } else { (v.len() / dim) as u32 };
    Model::Factors(FactorModel {
        users: DenseFactors { count: count(&users), dim: dim as u32, values: users },
        items: DenseFactors { count: count(&items), dim: dim as u32, values: items },
    })
}

/// Early stopping for epoch-based trainers (WIT 0.2.1,
/// `recotem:plugin/early-stop`): hand the host the model after some epochs;
/// during a search the host scores it on the validation part, keeps the
/// best score as the trial's result, and answers "stop" after a few reports
/// without improvement or when the search prunes the trial. In the final
/// refit it answers "go on" without scoring. A trainer that never reports
/// works unchanged (the host scores its returned model).
///
/// ```no_run
/// # use recotem_guest_sdk::prelude::*;
/// # fn step(_: &mut [f32]) {}
/// # let (epochs, k) = (16, 8);
/// # let (mut users, mut items) = (vec![0f32; 8], vec![0f32; 8]);
/// let stopping = EarlyStopping::every(2, epochs);
/// for epoch in 1..=epochs {
///     step(&mut users);
///     if !stopping.after_epoch(epoch, || factor_model(users.clone(), items.clone(), k)) {
///         break; // return the current model
///     }
/// }
/// ```
///
/// The last epoch is always reported, so the host never needs to score the
/// returned model again: return the model of the last report.
#[derive(Debug, Clone, Copy)]
pub struct EarlyStopping {
    every: usize,
    total: usize,
}

impl EarlyStopping {
    /// Report every `every` epochs (at least 1) out of `total`, and the last.
    pub fn every(every: usize, total: usize) -> Self {
        EarlyStopping { every: every.max(1), total }
    }

    /// Whether epoch `epoch` (counted from 1) is reported: every `every`-th
    /// and the last.
    fn reports_at(&self, epoch: usize) -> bool {
        epoch != 0 && (epoch.is_multiple_of(self.every) || epoch == self.total)
    }

    /// Call after epoch `epoch` (counted from 1). On a reporting epoch,
    /// builds the model with `model` and hands it to the host; returns
    /// `false` when the host says to stop (then return the current model).
    /// On other epochs returns `true` without building anything.
    pub fn after_epoch(&self, epoch: usize, model: impl FnOnce() -> Model) -> bool {
        if !self.reports_at(epoch) {
            return true;
        }
        bindings::recotem::plugin::early_stop::report(u32::try_from(epoch).unwrap_or(u32::MAX), &model())
    }

    /// [`EarlyStopping::after_epoch`] for a `factors` model held by the
    /// host (WIT 0.2.2): reports the handle, so nothing is copied through
    /// the component (and, in the final refit, nothing at all).
    pub fn after_epoch_factors(&self, epoch: usize, factors: &linalg::IalsFactors) -> bool {
        if !self.reports_at(epoch) {
            return true;
        }
        bindings::recotem::plugin::early_stop::report_factors(u32::try_from(epoch).unwrap_or(u32::MAX), factors)
    }
}

/// Data-only linear algebra the host runs natively on all cores (WIT
/// 0.2.1, `recotem:plugin/linalg`). Each function reads its arguments (and
/// the interaction matrix of the current `train` call, which the host
/// already holds) and returns new arrays; it answers with an error message
/// when a size does not fit or a value is not finite, and then the trainer
/// can compute in wasm instead. [`IalsFactors`] (0.2.2) keeps both factor
/// arrays of an iALS fit in the host and solves them in place.
pub mod linalg {
    pub use super::bindings::recotem::plugin::linalg::{IalsFactors, IalsHalfEpoch, Side, solve_ials};
}

/// Adapts a [`Trainer`] to the generated bindings. Used by
/// [`export_trainer!`](crate::export_trainer); not meant to be named directly.
#[doc(hidden)]
pub struct TrainerExport<T>(PhantomData<T>);

impl<T: Trainer> wit::Guest for TrainerExport<T> {
    fn describe() -> TrainerInfo {
        T::describe()
    }

    fn train(interactions: CsrMatrix, params: Vec<Param>, seed: u64) -> Result<Model, PluginError> {
        T::train(interactions, Params(params), seed)
    }
}

impl<T: Trainer> by_shape::Guest for TrainerExport<T> {
    fn train(shape: MatrixShape, params: Vec<Param>, seed: u64) -> Result<Trained, PluginError> {
        T::train_by_shape(shape, Params(params), seed)
    }
}

/// Export a [`Trainer`] implementation as this component's `trainer-plugin`.
///
/// ```text
/// recotem_guest_sdk::export_trainer!(MyTrainer);
/// ```
#[macro_export]
macro_rules! export_trainer {
    ($t:ty) => {
        #[doc(hidden)]
        type __RecotemTrainerExport = $crate::trainer::TrainerExport<$t>;
        $crate::__private::__export_trainer_world!(
            __RecotemTrainerExport with_types_in $crate::trainer::bindings
        );
    };
}
