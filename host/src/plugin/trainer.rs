//! Calling `trainer` components: describe and train.

use std::time::Duration;

use wasmtime::component::Component;

use super::bindings::source::recotem::plugin::types::{CsrMatrix, Model, Param};
use super::bindings::trainer::TrainerPre;
use super::bindings::trainer::exports::recotem::plugin::trainer_plugin::TrainerInfo;
use super::engine::{CallFailure, Runtime, arm_deadline, classify};
use super::limits::Limits;
use super::sandbox::{HostState, new_store};
use crate::error::{Error, Result};

/// A loaded trainer component.
pub struct TrainerComponent {
    /// Where it came from (`builtin:<crate>` or a file path).
    pub origin: String,
    /// SHA-256 of the component bytes.
    pub digest: String,
    /// What it says about itself.
    pub info: TrainerInfo,
    pre: TrainerPre<HostState>,
}

/// Why a training call failed.
#[derive(Debug)]
pub enum TrainFailure {
    /// The trainer returned an error.
    Plugin(String),
    /// The call trapped or ran out of time.
    Call(CallFailure),
}

impl std::fmt::Display for TrainFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrainFailure::Plugin(m) => write!(f, "{m}"),
            TrainFailure::Call(c) => write!(f, "{c}"),
        }
    }
}

impl TrainerComponent {
    /// Link `component` against the trainer world and ask it to describe
    /// itself.
    pub fn load(runtime: &Runtime, origin: &str, digest: &str, component: &Component) -> Result<Self> {
        let pre = runtime
            .trainer_linker()
            .instantiate_pre(component)
            .map_err(|e| Error::DataSource(format!("component {origin}: cannot be linked: {e:#}")))?;
        let pre = TrainerPre::new(pre)
            .map_err(|e| Error::DataSource(format!("component {origin}: not a recotem trainer: {e:#}")))?;
        let limits = Limits::DESCRIBE;
        let mut store = new_store(runtime.engine(), origin, limits);
        let info = (|| {
            let bindings = pre.instantiate(&mut store)?;
            bindings.recotem_plugin_trainer_plugin().call_describe(&mut store)
        })()
        .map_err(|e| {
            let failure = classify(e, &store, limits.call_timeout);
            Error::DataSource(format!("component {origin}: describe {failure}"))
        })?;
        Ok(TrainerComponent { origin: origin.to_string(), digest: digest.to_string(), info, pre })
    }

    /// True when `name` is this trainer's name or one of its aliases
    /// (case-insensitive).
    pub fn answers_to(&self, name: &str) -> bool {
        self.info.name.eq_ignore_ascii_case(name) || self.info.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    }

    /// Train once in a fresh sandbox with its own deadline.
    pub fn train(
        &self,
        runtime: &Runtime,
        matrix: &CsrMatrix,
        params: &[Param],
        seed: u64,
        timeout: Duration,
    ) -> std::result::Result<Model, TrainFailure> {
        let limits = Limits::TRAINER.with_timeout(timeout);
        let mut store = new_store(runtime.engine(), &self.info.name, limits);
        arm_deadline(&mut store, timeout);
        let result = (|| {
            let bindings = self.pre.instantiate(&mut store)?;
            bindings.recotem_plugin_trainer_plugin().call_train(&mut store, matrix, params, seed)
        })();
        match result {
            Ok(Ok(model)) => Ok(model),
            Ok(Err(e)) => Err(TrainFailure::Plugin(e.message)),
            Err(e) => Err(TrainFailure::Call(classify(e, &store, timeout))),
        }
    }
}
