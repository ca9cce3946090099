//! Calling `trainer` components: describe and train.

use std::time::Duration;

use wasmtime::component::Component;

use super::bindings::source::recotem::plugin::types::{CsrMatrix, Model, Param};
use super::bindings::trainer::TrainerPre;
use super::bindings::trainer::exports::recotem::plugin::trainer_plugin::TrainerInfo;
use super::engine::{CallFailure, Runtime, arm_deadline, classify};
use super::limits::{Limits, truncate};
use super::registry::Profile;
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
    /// Surface, needs and grants (filled by the registry).
    pub profile: Profile,
    pre: TrainerPre<HostState>,
}

/// True when `query` is `name` or one of `aliases`, case-insensitively,
/// optionally followed by `Recommender` (`toppop`, `TopPopRecommender`).
pub fn answers_to(name: &str, aliases: &[String], query: &str) -> bool {
    let stem = match query.len().checked_sub("recommender".len()) {
        Some(at) if query.is_char_boundary(at) && query[at..].eq_ignore_ascii_case("recommender") => &query[..at],
        _ => query,
    };
    std::iter::once(name)
        .chain(aliases.iter().map(String::as_str))
        .any(|n| n.eq_ignore_ascii_case(query) || (!stem.is_empty() && n.eq_ignore_ascii_case(stem)))
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
        let oversized = [&info.name, &info.version, &info.description].iter().any(|f| f.len() > 1 << 20)
            || info.aliases.len() > 64
            || info.params.len() > 256;
        if oversized || info.name.is_empty() {
            return Err(Error::DataSource(format!(
                "component {origin}: describe returned an empty name or oversized fields"
            )));
        }
        let profile = Profile::bare(origin, digest, 0);
        Ok(TrainerComponent { origin: origin.to_string(), digest: digest.to_string(), info, profile, pre })
    }

    /// Attach the registry's profile.
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
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
            .map_err(|e| Error::Internal(format!("instantiating {}: {e}", self.info.name)))
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
        let limits = Limits::trainer().with_timeout(timeout);
        let mut store = new_store(runtime.engine(), &self.info.name, limits);
        arm_deadline(&mut store, timeout);
        let result = (|| {
            let bindings = self.pre.instantiate(&mut store)?;
            bindings.recotem_plugin_trainer_plugin().call_train(&mut store, matrix, params, seed)
        })();
        match result {
            Ok(Ok(model)) => Ok(model),
            Ok(Err(e)) => Err(TrainFailure::Plugin(truncate(e.message, limits.message_bytes))),
            Err(e) => Err(TrainFailure::Call(classify(e, &store, timeout))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::answers_to;

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
