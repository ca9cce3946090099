//! The one error taxonomy of recotem, and the one place it maps to exit codes.
//!
//! Every fallible path in the host ends in [`Error`]. Its variants follow the
//! exit-code contract (`docs/cli.md`, mirroring the operators' reference):
//!
//! | code | variant            | meaning                                        |
//! |------|--------------------|------------------------------------------------|
//! | 0    | —                  | success (or lock contended without `--fail-on-busy`) |
//! | 1    | [`Error::Internal`]| a bug or an unexpected environment failure     |
//! | 2    | [`Error::Recipe`]  | recipe schema / env / path error, bad usage    |
//! | 3    | [`Error::DataSource`] | data source failure (not HTTP)              |
//! | 4    | [`Error::Training`]| training pipeline failure, with a subcode      |
//! | 5    | [`Error::Artifact`]| artifact integrity / format error              |
//! | 6    | [`Error::LockContested`] | per-recipe lock held elsewhere           |
//! | 7    | [`Error::HttpFetch`] | HTTP(S) source fetch failure                 |
//! | 8    | [`Error::Config`]  | environment / configuration error              |
//!
//! Messages say what failed and what to do. They never contain secrets or the
//! values of environment variables.

use std::fmt;

/// Result alias used throughout the host.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Subcodes of [`Error::Training`], carried in the `code` field of the
/// `train_error` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainingCode {
    /// The cleaned data fell below `min_rows`, `min_users` or `min_items`.
    MinDataViolation,
    /// The timestamp column could not be parsed.
    TimeColumnParseError,
    /// A numeric time column without `schema.time_unit`.
    TimeUnitRequired,
    /// The split produced no held-out interactions.
    SplitError,
    /// Every trial failed.
    NoCompletedTrials,
    /// Every completed trial scored 0.
    ZeroScore,
    /// Most trials hit the per-trial timeout.
    ExcessivePerTrialTimeouts,
    /// The refit on all data failed.
    FinalTrainingError,
    /// A trainer component was refused at load (bad WIT version, an import
    /// the host never provides, a trap or timeout in `describe`, refused by
    /// the plugin policy or a recipe pin). Duplicate names are exit 3.
    TrainerRejected,
    /// Any other training failure.
    TrainingError,
}

impl TrainingCode {
    /// The subcode as written in events.
    pub fn as_str(self) -> &'static str {
        match self {
            TrainingCode::MinDataViolation => "min_data_violation",
            TrainingCode::TimeColumnParseError => "time_column_parse_error",
            TrainingCode::TimeUnitRequired => "time_unit_required",
            TrainingCode::SplitError => "split_error",
            TrainingCode::NoCompletedTrials => "no_completed_trials",
            TrainingCode::ZeroScore => "zero_score",
            TrainingCode::ExcessivePerTrialTimeouts => "excessive_per_trial_timeouts",
            TrainingCode::FinalTrainingError => "final_training_error",
            TrainingCode::TrainerRejected => "trainer_rejected",
            TrainingCode::TrainingError => "training_error",
        }
    }
}

/// Counts attached to a `min_data_violation` (observed and required).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataCounts {
    /// Observed rows, users, items.
    pub n_rows: u64,
    /// Distinct users.
    pub n_users: u64,
    /// Distinct items.
    pub n_items: u64,
    /// Configured minimums (0 when unset).
    pub min_rows: u64,
    /// Minimum distinct users.
    pub min_users: u64,
    /// Minimum distinct items.
    pub min_items: u64,
}

/// Every failure the host reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The recipe (or the command line) is wrong. Exit 2.
    #[error("{0}")]
    Recipe(String),
    /// The recipe breaks a security rule (env-expansion blacklist, path
    /// scheme, embedded credentials, artifact-root containment). Exit 2,
    /// like [`Error::Recipe`]; kept apart so directory loading can log it
    /// as a security violation.
    #[error("{0}")]
    RecipeSecurity(String),
    /// The data source failed (missing file, malformed data, missing column,
    /// plugin error). Exit 3.
    #[error("{0}")]
    DataSource(String),
    /// Training failed. Exit 4 with a subcode.
    #[error("{message}")]
    Training {
        /// Subcode for the `train_error` event.
        code: TrainingCode,
        /// What failed.
        message: String,
        /// Present for `min_data_violation`.
        counts: Option<Box<DataCounts>>,
    },
    /// The artifact is malformed, tampered with, or signed by an unknown key;
    /// or the key ring is malformed. Exit 5.
    #[error("{0}")]
    Artifact(String),
    /// Another process holds the recipe's lock. Exit 6.
    #[error("{0}")]
    LockContested(String),
    /// An HTTP(S) fetch failed. Exit 7.
    #[error("{0}")]
    HttpFetch(String),
    /// The environment or configuration is wrong (missing keys, unsafe flag
    /// misuse, bad env value). Exit 8.
    #[error("{0}")]
    Config(String),
    /// Signing keys are missing when an artifact must be written: a
    /// configuration error (exit 8) reported with the training subcode
    /// `signing_key_missing`.
    #[error("{0}")]
    SigningKeyMissing(String),
    /// Anything not covered above: a bug or an unexpected environment
    /// failure. Exit 1.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A training error with a subcode.
    pub fn training(code: TrainingCode, message: impl Into<String>) -> Self {
        Error::Training { code, message: message.into(), counts: None }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Internal(_) => 1,
            Error::Recipe(_) | Error::RecipeSecurity(_) => 2,
            Error::DataSource(_) => 3,
            Error::Training { .. } => 4,
            Error::Artifact(_) => 5,
            Error::LockContested(_) => 6,
            Error::HttpFetch(_) => 7,
            Error::Config(_) | Error::SigningKeyMissing(_) => 8,
        }
    }

    /// The `code` field of the `train_error` event.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Internal(_) => "internal_error",
            Error::Recipe(_) => "recipe_error",
            Error::RecipeSecurity(_) => "recipe_security_violation",
            Error::DataSource(_) => "datasource_error",
            Error::Training { code, .. } => code.as_str(),
            Error::Artifact(_) => "artifact_error",
            Error::LockContested(_) => "lock_contested",
            Error::HttpFetch(_) => "http_fetch_error",
            Error::Config(_) => "config_error",
            Error::SigningKeyMissing(_) => "signing_key_missing",
        }
    }

    /// Prefix the message with context ("reading recipe x: ...") while
    /// keeping the variant.
    pub fn context(self, what: impl fmt::Display) -> Self {
        let wrap = |m: String| format!("{what}: {m}");
        match self {
            Error::Recipe(m) => Error::Recipe(wrap(m)),
            Error::RecipeSecurity(m) => Error::RecipeSecurity(wrap(m)),
            Error::DataSource(m) => Error::DataSource(wrap(m)),
            Error::Training { code, message, counts } => {
                Error::Training { code, message: wrap(message), counts }
            }
            Error::Artifact(m) => Error::Artifact(wrap(m)),
            Error::LockContested(m) => Error::LockContested(wrap(m)),
            Error::HttpFetch(m) => Error::HttpFetch(wrap(m)),
            Error::Config(m) => Error::Config(wrap(m)),
            Error::SigningKeyMissing(m) => Error::SigningKeyMissing(wrap(m)),
            Error::Internal(m) => Error::Internal(wrap(m)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        let cases = [
            (Error::Internal("x".into()), 1, "internal_error"),
            (Error::Recipe("x".into()), 2, "recipe_error"),
            (Error::RecipeSecurity("x".into()), 2, "recipe_security_violation"),
            (Error::DataSource("x".into()), 3, "datasource_error"),
            (Error::training(TrainingCode::ZeroScore, "x"), 4, "zero_score"),
            (Error::training(TrainingCode::TrainerRejected, "x"), 4, "trainer_rejected"),
            (Error::Artifact("x".into()), 5, "artifact_error"),
            (Error::LockContested("x".into()), 6, "lock_contested"),
            (Error::HttpFetch("x".into()), 7, "http_fetch_error"),
            (Error::Config("x".into()), 8, "config_error"),
            (Error::SigningKeyMissing("x".into()), 8, "signing_key_missing"),
        ];
        for (error, exit, code) in cases {
            assert_eq!(error.exit_code(), exit, "{error:?}");
            assert_eq!(error.code(), code, "{error:?}");
        }
    }

    #[test]
    fn context_keeps_the_variant() {
        let e = Error::training(TrainingCode::SplitError, "empty").context("splitting");
        assert_eq!(e.code(), "split_error");
        assert_eq!(e.to_string(), "splitting: empty");
    }
}
