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

use crate::{CsrMatrix, Model, ModelKind, Param, ParamValue, PluginError};

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

    /// All values, in the order the host sent them.
    pub fn as_slice(&self) -> &[Param] {
        &self.0
    }
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
