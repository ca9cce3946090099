//! The one error taxonomy of recotem, and the one place it maps to exit codes.
//!
//! Every fallible path ends in [`Error`]: a [`Kind`] (which decides the exit
//! code and the `code` field of `train_error`), a message that says what
//! failed and what to do, and optionally the underlying cause as a
//! [`std::error::Error::source`] chain. The kinds follow the exit-code
//! contract (`docs/cli.md`, mirroring the operators' reference):
//!
//! | code | kind                    | meaning                                        |
//! |------|-------------------------|------------------------------------------------|
//! | 0    | —                       | success (or lock contended without `--fail-on-busy`) |
//! | 1    | [`Kind::Internal`]      | a bug or an unexpected environment failure     |
//! | 2    | [`Kind::Recipe`], [`Kind::RecipeSecurity`] | recipe schema / env / path error, bad usage |
//! | 3    | [`Kind::DataSource`]    | data source failure (not HTTP)                 |
//! | 4    | [`Kind::Training`]      | training pipeline failure, with a subcode      |
//! | 5    | [`Kind::Artifact`]      | artifact integrity / format error              |
//! | 6    | [`Kind::LockContested`] | per-recipe lock held elsewhere                 |
//! | 7    | [`Kind::HttpFetch`]     | HTTP(S) source fetch failure                   |
//! | 8    | [`Kind::Config`], [`Kind::SigningKeyMissing`] | environment / configuration error |
//!
//! Messages never contain secrets or the values of environment variables.

use std::fmt;

/// Result alias used throughout recotem.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed cause.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Subcodes of [`Kind::Training`], carried in the `code` field of the
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
    /// The run was cancelled (SIGINT/SIGTERM) before it finished.
    Cancelled,
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
            TrainingCode::Cancelled => "cancelled",
            TrainingCode::TrainingError => "training_error",
        }
    }
}

/// What kind of artifact fault (exit 5), so callers branch on a type
/// rather than on message text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactFault {
    /// The bytes are not a well-formed container or payload.
    Format,
    /// The container names a kid the key ring does not hold.
    UnknownKid,
    /// The HMAC does not match: tampered, or signed with another key.
    HmacMismatch,
    /// The artifact or its payload is over a configured cap.
    OverCap,
    /// Reading or writing the file failed.
    Io,
    /// The key ring itself is malformed.
    KeyRing,
}

/// Counts attached to a `min_data_violation` (observed and required).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataCounts {
    /// Observed rows.
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

/// The category of an [`Error`]: decides its exit code and event code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The recipe (or the command line) is wrong. Exit 2.
    Recipe,
    /// The recipe breaks a security rule (env-expansion blacklist, path
    /// scheme, embedded credentials, artifact-root containment). Exit 2,
    /// like [`Kind::Recipe`]; kept apart so directory loading can log it as
    /// a security violation.
    RecipeSecurity,
    /// The data source failed (missing file, malformed data, missing column,
    /// plugin error). Exit 3.
    DataSource,
    /// Training failed. Exit 4 with a subcode.
    Training(TrainingCode),
    /// The artifact is malformed, tampered with, or signed by an unknown key;
    /// or the key ring is malformed. Exit 5.
    Artifact(ArtifactFault),
    /// Another process holds the recipe's lock. Exit 6.
    LockContested,
    /// Another process still held the recipe's lock when `--lock-timeout`
    /// ran out. Exit 6, like [`Kind::LockContested`], with its own code.
    LockTimeout,
    /// An HTTP(S) fetch failed. Exit 7.
    HttpFetch,
    /// The environment or configuration is wrong (missing keys, unsafe flag
    /// misuse, bad env value). Exit 8.
    Config,
    /// Signing keys are missing when an artifact must be written: a
    /// configuration error (exit 8) reported with the code
    /// `signing_key_missing`.
    SigningKeyMissing,
    /// Anything not covered above: a bug or an unexpected environment
    /// failure. Exit 1.
    Internal,
}

/// Every failure recotem reports.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    message: String,
    source: Option<BoxError>,
    counts: Option<Box<DataCounts>>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == Kind::Internal {
            write!(f, "internal error: {}", self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $kind:expr;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(message: impl Into<String>) -> Self {
                Self::new($kind, message)
            }
        )*
    };
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), source: None, counts: None }
    }

    constructors! {
        /// A recipe or usage error (exit 2).
        recipe => Kind::Recipe;
        /// A recipe security violation (exit 2).
        recipe_security => Kind::RecipeSecurity;
        /// A data-source failure (exit 3).
        data_source => Kind::DataSource;
        /// A lock held elsewhere (exit 6).
        lock_contested => Kind::LockContested;
        /// A lock still held elsewhere after waiting (exit 6, `lock_timeout`).
        lock_timeout => Kind::LockTimeout;
        /// An HTTP(S) fetch failure (exit 7).
        http_fetch => Kind::HttpFetch;
        /// A configuration error (exit 8).
        config => Kind::Config;
        /// Signing keys missing (exit 8, `signing_key_missing`).
        signing_key_missing => Kind::SigningKeyMissing;
        /// A bug or unexpected environment failure (exit 1).
        internal => Kind::Internal;
        /// A malformed artifact (exit 5).
        artifact => Kind::Artifact(ArtifactFault::Format);
    }

    /// An artifact error of a given fault (exit 5).
    pub fn artifact_fault(fault: ArtifactFault, message: impl Into<String>) -> Self {
        Self::new(Kind::Artifact(fault), message)
    }

    /// A training error with a subcode (exit 4).
    pub fn training(code: TrainingCode, message: impl Into<String>) -> Self {
        Self::new(Kind::Training(code), message)
    }

    /// A `min_data_violation` with the observed and required counts.
    pub fn min_data(message: impl Into<String>, counts: DataCounts) -> Self {
        let mut e = Self::training(TrainingCode::MinDataViolation, message);
        e.counts = Some(Box::new(counts));
        e
    }

    /// Attach the underlying cause (kept as the `source()` chain).
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The category.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The message, without the `internal error:` prefix or the causes.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The counts of a `min_data_violation`.
    pub fn counts(&self) -> Option<&DataCounts> {
        self.counts.as_deref()
    }

    /// The message followed by every cause in the chain
    /// (`what failed: because: because`), for events and stderr.
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            let text = cause.to_string();
            if !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            next = cause.source();
        }
        out
    }

    /// The process exit code for this error. An HTTP fetch failure anywhere
    /// in the cause chain makes it 7 (EXIT-10), unless the error itself is a
    /// recipe error or missing signing keys, which win.
    pub fn exit_code(&self) -> u8 {
        if !matches!(self.kind, Kind::Recipe | Kind::RecipeSecurity | Kind::SigningKeyMissing) && self.caused_by_http_fetch() {
            return 7;
        }
        match self.kind {
            Kind::Internal => 1,
            Kind::Recipe | Kind::RecipeSecurity => 2,
            Kind::DataSource => 3,
            Kind::Training(_) => 4,
            Kind::Artifact(_) => 5,
            Kind::LockContested | Kind::LockTimeout => 6,
            Kind::HttpFetch => 7,
            Kind::Config | Kind::SigningKeyMissing => 8,
        }
    }

    /// True when a cause in the chain is an [`Kind::HttpFetch`] error.
    fn caused_by_http_fetch(&self) -> bool {
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            if cause.downcast_ref::<Error>().is_some_and(|e| e.kind == Kind::HttpFetch) {
                return true;
            }
            next = cause.source();
        }
        false
    }

    /// The `code` field of the `train_error` event.
    pub fn code(&self) -> &'static str {
        match self.kind {
            Kind::Internal => "internal_error",
            Kind::Recipe => "recipe_error",
            Kind::RecipeSecurity => "recipe_security_violation",
            Kind::DataSource => "datasource_error",
            Kind::Training(code) => code.as_str(),
            Kind::Artifact(_) => "artifact_error",
            Kind::LockContested => "lock_contested",
            Kind::LockTimeout => "lock_timeout",
            Kind::HttpFetch => "http_fetch_error",
            Kind::Config => "config_error",
            Kind::SigningKeyMissing => "signing_key_missing",
        }
    }

    /// Prefix the message with context ("reading recipe x: ...") while
    /// keeping the kind, the cause and the counts.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        let cases = [
            (Error::internal("x"), 1, "internal_error"),
            (Error::recipe("x"), 2, "recipe_error"),
            (Error::recipe_security("x"), 2, "recipe_security_violation"),
            (Error::data_source("x"), 3, "datasource_error"),
            (Error::training(TrainingCode::ZeroScore, "x"), 4, "zero_score"),
            (Error::training(TrainingCode::TrainerRejected, "x"), 4, "trainer_rejected"),
            (Error::training(TrainingCode::Cancelled, "x"), 4, "cancelled"),
            (Error::artifact("x"), 5, "artifact_error"),
            (Error::artifact_fault(ArtifactFault::HmacMismatch, "x"), 5, "artifact_error"),
            (Error::lock_contested("x"), 6, "lock_contested"),
            (Error::lock_timeout("x"), 6, "lock_timeout"),
            (Error::http_fetch("x"), 7, "http_fetch_error"),
            (Error::config("x"), 8, "config_error"),
            (Error::signing_key_missing("x"), 8, "signing_key_missing"),
        ];
        for (error, exit, code) in cases {
            assert_eq!(error.exit_code(), exit, "{error:?}");
            assert_eq!(error.code(), code, "{error:?}");
        }
    }

    #[test]
    fn context_keeps_the_kind_and_the_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = Error::training(TrainingCode::SplitError, "empty").with_source(io).context("splitting");
        assert_eq!(e.code(), "split_error");
        assert_eq!(e.to_string(), "splitting: empty");
        assert_eq!(std::error::Error::source(&e).map(|s| s.to_string()).as_deref(), Some("no such file"));
        assert_eq!(e.report(), "splitting: empty: no such file");
    }

    #[test]
    fn an_http_failure_in_the_cause_chain_is_exit_7() {
        let http = Error::http_fetch("GET https://h/x failed: timed out");
        let wrapped = Error::data_source("reading the source").with_source(http);
        assert_eq!(wrapped.exit_code(), 7);
        let deeper = Error::training(TrainingCode::TrainingError, "x").with_source(wrapped);
        assert_eq!(deeper.exit_code(), 7);
        // A recipe error stays 2, whatever caused it.
        let recipe = Error::recipe("bad").with_source(Error::http_fetch("y"));
        assert_eq!(recipe.exit_code(), 2);
        assert_eq!(Error::data_source("plain").exit_code(), 3);
    }

    #[test]
    fn internal_errors_say_so() {
        assert_eq!(Error::internal("boom").to_string(), "internal error: boom");
    }
}
