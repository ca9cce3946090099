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

use bindings::exports::recotem::plugin::trainer_plugin as wit;

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
