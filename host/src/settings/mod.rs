//! Settings: every `RECOTEM_*` variable (and the few standard ones recotem
//! honours) parsed, clamped and defaulted **once**, at start-up, into
//! [`Settings`]. Nothing else in recotem reads the environment.
//!
//! Rules (FEATURES.md CFG): unset or blank → default; an integer that does
//! not parse → default and an `env_var_unparseable` event; out of range →
//! clamped and an `env_var_clamped` event. Values are never logged, only
//! names. [`VARS`] is the table of every variable; `docs/configuration.md`
//! shows it, and a test fails when the two (or the code) disagree.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use crate::events::{Event, FormatChoice};

pub mod serve;

/// One documented variable.
#[derive(Debug, Clone, Copy)]
pub struct VarDoc {
    /// The variable's name.
    pub name: &'static str,
    /// Its default, as documented.
    pub default: &'static str,
    /// Accepted values or range.
    pub range: &'static str,
    /// What it controls.
    pub meaning: &'static str,
}

const MIB: u64 = 1 << 20;

/// Every variable recotem reads, with its default and range. The order is
/// the order of the table in `docs/configuration.md`.
pub const VARS: &[VarDoc] = &[
    VarDoc { name: "RECOTEM_SIGNING_KEYS", default: "(none)", range: "kid:HEX64[,kid:HEX64…] (64 hex digits)", meaning: "signing key ring; the first key signs (train), all verify (inspect)" },
    VarDoc { name: "RECOTEM_API_KEYS", default: "(empty)", range: "kid:sha256:HEX64[,kid:sha256:HEX64…]", meaning: "API keys the HTTP API accepts (`recotem serve`); `recotem keygen --type api` prints an entry" },
    VarDoc { name: "RECOTEM_ENV", default: "(empty)", range: "development, dev, test, or anything else", meaning: "development/dev/test unlock the dev-only flags" },
    VarDoc { name: "RECOTEM_LOG_FORMAT", default: "auto", range: "auto, json, console", meaning: "event log format on stderr (auto: console on a terminal)" },
    VarDoc { name: "RECOTEM_ARTIFACT_ROOT", default: "(empty)", range: "a directory", meaning: "when set, every artifact must be written below it" },
    VarDoc { name: "RECOTEM_MAX_ARTIFACT_BYTES", default: "2147483648", range: "1048576–17179869184", meaning: "largest artifact read or written" },
    VarDoc { name: "RECOTEM_MAX_PAYLOAD_BYTES", default: "536870912", range: "1048576–17179869184, ≤ the artifact cap", meaning: "largest artifact payload" },
    VarDoc { name: "RECOTEM_MAX_DOWNLOAD_BYTES", default: "268435456", range: "1048576–17179869184", meaning: "largest source or item-metadata input read" },
    VarDoc { name: "RECOTEM_MAX_DECOMPRESSED_BYTES", default: "4294967296", range: "1048576–1099511627776", meaning: "most bytes a gzip input may decompress to (a gzip bomb then fails cleanly, exit 3)" },
    VarDoc { name: "RECOTEM_HTTP_TIMEOUT_SECONDS", default: "30", range: "1–600", meaning: "timeout of each connect and each read of an http(s) source or item-metadata download" },
    VarDoc { name: "RECOTEM_HTTP_ALLOW_PRIVATE", default: "(unset)", range: "1, true, yes, on", meaning: "turns the SSRF guard of http(s) downloads off (loopback, private, link-local… addresses allowed): trusted networks only" },
    VarDoc { name: "RECOTEM_PLUGIN_DIR", default: "(none)", range: "a directory", meaning: "third-party components (same as --plugin-dir)" },
    VarDoc { name: "RECOTEM_PLUGIN_POLICY", default: "(none)", range: "a YAML file", meaning: "operator plugin policy: pins, grants, network" },
    VarDoc { name: "RECOTEM_CACHE_DIR", default: "$XDG_CACHE_HOME/recotem or ~/.cache/recotem", range: "a directory", meaning: "compiled-component cache" },
    VarDoc { name: "RECOTEM_SOURCE_MEMORY_MIB", default: "1024", range: "16–65536", meaning: "memory cap of a data-source component instance" },
    VarDoc { name: "RECOTEM_SOURCE_CALL_TIMEOUT_SECONDS", default: "120", range: "1–86400", meaning: "deadline of one call into a data-source component" },
    VarDoc { name: "RECOTEM_MAX_SOURCE_ROWS", default: "500000000", range: "1000–4000000000", meaning: "most rows one read of a data source may return" },
    VarDoc { name: "RECOTEM_MAX_SOURCE_BYTES", default: "68719476736", range: "1048576–1099511627776", meaning: "most bytes of column data one read of a data source may return" },
    VarDoc { name: "RECOTEM_SOURCE_READ_TIMEOUT_SECONDS", default: "7200", range: "1–604800", meaning: "deadline of a whole read of a data source (training.timeout_seconds also applies)" },
    VarDoc { name: "RECOTEM_TRAINER_MEMORY_MIB", default: "4096", range: "16–65536", meaning: "memory cap of a trainer component instance" },
    VarDoc { name: "RECOTEM_HOST", default: "127.0.0.1", range: "a host name or address", meaning: "address `recotem serve` binds (`--host` wins); without API keys it binds loopback only" },
    VarDoc { name: "RECOTEM_PORT", default: "8080", range: "1–65535 (else exit 8)", meaning: "port `recotem serve` listens on (`--port` wins)" },
    VarDoc { name: "RECOTEM_WATCH_INTERVAL", default: "5", range: "1–30 seconds, decimals allowed (not a number: exit 8)", meaning: "how often `serve` looks for new or changed artifacts and recipes" },
    VarDoc { name: "RECOTEM_ALLOWED_HOSTS", default: "127.0.0.1,localhost", range: "comma-separated host names, `*` and `*.domain` allowed", meaning: "Host headers `serve` answers" },
    VarDoc { name: "RECOTEM_ALLOWED_ORIGINS", default: "(empty)", range: "comma-separated origins, `*` for any", meaning: "CORS origins; empty means no CORS headers" },
    VarDoc { name: "RECOTEM_DRAIN_SECONDS", default: "30", range: "1–300", meaning: "how long `serve` drains requests after SIGTERM/SIGINT" },
    VarDoc { name: "RECOTEM_METADATA_FIELD_DENY", default: "(empty)", range: "comma-separated field names, case-insensitive", meaning: "item metadata fields `serve` never returns" },
    VarDoc { name: "RECOTEM_METRICS_ENABLED", default: "(unset)", range: "1, true, yes, on", meaning: "serve Prometheus metrics at /v1/metrics (API key required)" },
    VarDoc { name: "RECOTEM_STARTUP_PARALLELISM", default: "min(recipes, 8)", range: "1–32", meaning: "recipes `serve` loads at once when it starts" },
    VarDoc { name: "RECOTEM_LOCK_DIR", default: "<tmp>/recotem-locks", range: "a directory", meaning: "where `train` keeps the locks of recipes whose output.path is remote" },
    VarDoc { name: "RECOTEM_RECIPE_*", default: "—", range: "any", meaning: "values for ${RECOTEM_RECIPE_*} expansion in recipes" },
    VarDoc { name: "SOURCE_DATE_EPOCH", default: "(now)", range: "whole seconds since 1970-01-01 UTC", meaning: "trained_at of the artifact (reproducible builds)" },
];

/// The run's environment, validated. (`Debug` never shows a secret: the key
/// ring is shown as set or not.)
#[derive(Clone, Default)]
pub struct Settings {
    /// `RECOTEM_LOG_FORMAT`.
    pub log_format: FormatChoice,
    /// Whether `RECOTEM_LOG_FORMAT` held a value that is not a format.
    pub log_format_unknown: bool,
    /// `RECOTEM_ENV`, trimmed and lower-cased.
    pub env: String,
    /// `RECOTEM_SIGNING_KEYS`, unparsed (it is a secret: parsed where it is
    /// used, never printed).
    pub signing_keys: Option<String>,
    /// `RECOTEM_ARTIFACT_ROOT`.
    pub artifact_root: Option<PathBuf>,
    /// `RECOTEM_MAX_ARTIFACT_BYTES`, clamped.
    pub max_artifact_bytes: u64,
    /// `RECOTEM_MAX_PAYLOAD_BYTES`, clamped.
    pub max_payload_bytes: u64,
    /// `RECOTEM_MAX_DOWNLOAD_BYTES`, clamped.
    pub max_download_bytes: u64,
    /// `RECOTEM_MAX_DECOMPRESSED_BYTES`, clamped.
    pub max_decompressed_bytes: u64,
    /// `RECOTEM_HTTP_TIMEOUT_SECONDS`: each connect and read of a download.
    pub http_timeout: Duration,
    /// `RECOTEM_HTTP_ALLOW_PRIVATE` is truthy: the SSRF guard is off.
    pub http_allow_private: bool,
    /// `RECOTEM_PLUGIN_POLICY`.
    pub plugin_policy: Option<PathBuf>,
    /// The compiled-component cache directory, when one can be found.
    pub cache_dir: Option<PathBuf>,
    /// `RECOTEM_SOURCE_MEMORY_MIB`, in bytes.
    pub source_memory_bytes: usize,
    /// `RECOTEM_SOURCE_CALL_TIMEOUT_SECONDS`.
    pub source_call_timeout: Duration,
    /// `RECOTEM_MAX_SOURCE_ROWS`.
    pub max_source_rows: u64,
    /// `RECOTEM_MAX_SOURCE_BYTES`.
    pub max_source_bytes: u64,
    /// `RECOTEM_SOURCE_READ_TIMEOUT_SECONDS`.
    pub source_read_timeout: Duration,
    /// `RECOTEM_TRAINER_MEMORY_MIB`, in bytes.
    pub trainer_memory_bytes: usize,
    /// `SOURCE_DATE_EPOCH`, unparsed (checked where `trained_at` is made).
    pub source_date_epoch: Option<String>,
    /// `RECOTEM_LOCK_DIR`: the locks of recipes with a remote output.
    pub lock_dir: Option<PathBuf>,
    /// Every `RECOTEM_RECIPE_*` variable, for recipe expansion.
    pub recipe_env: BTreeMap<String, String>,
    /// Every other `RECOTEM_*` variable as set, for the commands that parse
    /// their own ([`serve::ServeSettings`]) when they start.
    raw: Raw,
}

/// The captured variables. Its `Debug` shows names only: some are secrets.
#[derive(Clone, Default)]
struct Raw(BTreeMap<String, String>);

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("env", &self.env)
            .field("signing_keys", &self.signing_keys.as_ref().map(|_| "[set]"))
            .field("artifact_root", &self.artifact_root)
            .field("max_artifact_bytes", &self.max_artifact_bytes)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("variables", &self.raw)
            .finish_non_exhaustive()
    }
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Resolve the settings from the process environment and make them the
/// process's settings. Called once by the CLI after the event log is up.
pub fn init() -> &'static Settings {
    SETTINGS.get_or_init(|| Settings::resolve(|name| std::env::var(name).ok(), true))
}

/// The process's settings. Before [`init`] (in unit tests) these are the
/// defaults, not the environment.
pub fn get() -> &'static Settings {
    SETTINGS.get_or_init(|| Settings::resolve(|_| None, false))
}

/// The log format, read before the event log exists (and before [`init`]).
pub fn log_format_from_env() -> FormatChoice {
    std::env::var("RECOTEM_LOG_FORMAT").ok().as_deref().and_then(FormatChoice::parse).unwrap_or_default()
}

impl Settings {
    /// Resolve from a variable lookup. With `report`, clamped and
    /// unparseable values are logged as events.
    pub fn resolve(lookup: impl Fn(&str) -> Option<String>, report: bool) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let int = |name: &str, default: u64, lo: u64, hi: u64| clamped(name, get(name), default, lo, hi, report);
        let path = |name: &str| get(name).map(|v| PathBuf::from(v.trim()));
        let (log_format, log_format_unknown) = match get("RECOTEM_LOG_FORMAT") {
            None => (FormatChoice::Auto, false),
            Some(v) => FormatChoice::parse(&v).map_or((FormatChoice::Auto, true), |f| (f, false)),
        };
        let mib = |name: &str, default: u64| usize::try_from(int(name, default, 16, 65_536) * MIB).unwrap_or(usize::MAX);
        let cache_dir = path("RECOTEM_CACHE_DIR")
            .or_else(|| path("XDG_CACHE_HOME").map(|p| p.join("recotem")))
            .or_else(|| path("HOME").map(|p| p.join(".cache").join("recotem")));
        let mut recipe_env = BTreeMap::new();
        let mut raw = BTreeMap::new();
        if report {
            for (k, v) in std::env::vars_os() {
                if let (Some(k), Some(v)) = (k.to_str(), v.to_str())
                    && k.starts_with("RECOTEM_")
                {
                    raw.insert(k.to_string(), v.to_string());
                }
                // The prefix rule is case-insensitive; lookups are verbatim.
                if let (Some(k), Some(v)) = (k.to_str(), v.to_str())
                    && k.get(..15).is_some_and(|p| p.eq_ignore_ascii_case("RECOTEM_RECIPE_"))
                {
                    recipe_env.insert(k.to_string(), v.to_string());
                }
            }
        }
        use recotem_core::artifact::store::{CAP_HI, CAP_LO, DEFAULT_MAX_ARTIFACT_BYTES, DEFAULT_MAX_PAYLOAD_BYTES};
        Settings {
            log_format,
            log_format_unknown,
            env: get("RECOTEM_ENV").map(|v| v.trim().to_ascii_lowercase()).unwrap_or_default(),
            signing_keys: get("RECOTEM_SIGNING_KEYS"),
            artifact_root: path("RECOTEM_ARTIFACT_ROOT"),
            max_artifact_bytes: int("RECOTEM_MAX_ARTIFACT_BYTES", DEFAULT_MAX_ARTIFACT_BYTES, CAP_LO, CAP_HI),
            max_payload_bytes: int("RECOTEM_MAX_PAYLOAD_BYTES", DEFAULT_MAX_PAYLOAD_BYTES, CAP_LO, CAP_HI),
            max_download_bytes: int("RECOTEM_MAX_DOWNLOAD_BYTES", 256 * MIB, CAP_LO, CAP_HI),
            max_decompressed_bytes: int("RECOTEM_MAX_DECOMPRESSED_BYTES", 4 << 30, CAP_LO, 1 << 40),
            http_timeout: Duration::from_secs(int("RECOTEM_HTTP_TIMEOUT_SECONDS", 30, 1, 600)),
            http_allow_private: serve::truthy(get("RECOTEM_HTTP_ALLOW_PRIVATE").as_deref()),
            plugin_policy: path("RECOTEM_PLUGIN_POLICY"),
            cache_dir,
            source_memory_bytes: mib("RECOTEM_SOURCE_MEMORY_MIB", 1024),
            source_call_timeout: Duration::from_secs(int("RECOTEM_SOURCE_CALL_TIMEOUT_SECONDS", 120, 1, 86_400)),
            max_source_rows: int("RECOTEM_MAX_SOURCE_ROWS", 500_000_000, 1000, 4_000_000_000),
            max_source_bytes: int("RECOTEM_MAX_SOURCE_BYTES", 64 << 30, 1 << 20, 1 << 40),
            source_read_timeout: Duration::from_secs(int("RECOTEM_SOURCE_READ_TIMEOUT_SECONDS", 7200, 1, 604_800)),
            trainer_memory_bytes: mib("RECOTEM_TRAINER_MEMORY_MIB", 4096),
            source_date_epoch: get("SOURCE_DATE_EPOCH"),
            lock_dir: path("RECOTEM_LOCK_DIR"),
            recipe_env,
            raw: Raw(raw),
        }
    }

    /// A `RECOTEM_*` variable as it was set when the process started.
    pub fn var(&self, name: &str) -> Option<String> {
        self.raw.0.get(name).cloned()
    }

    /// `RECOTEM_ENV` is development, dev or test.
    pub fn is_development(&self) -> bool {
        matches!(self.env.as_str(), "development" | "dev" | "test")
    }

    /// The artifact size caps (exit 8 when the payload cap is above the
    /// artifact cap).
    pub fn caps(&self) -> recotem_core::Result<recotem_core::artifact::store::Caps> {
        recotem_core::artifact::store::Caps::new(self.max_artifact_bytes, self.max_payload_bytes)
    }

    /// The signing key ring: `Ok(None)` when `RECOTEM_SIGNING_KEYS` is unset
    /// or blank, a configuration error (exit 8) when malformed.
    pub fn key_ring(&self) -> recotem_core::Result<Option<recotem_core::artifact::KeyRing>> {
        self.signing_keys.as_deref().map(recotem_core::artifact::KeyRing::parse).transpose()
    }

    /// The `trained_at` time of a run: `SOURCE_DATE_EPOCH` when set, else
    /// now; RFC 3339 with whole seconds. A value that is not a number of
    /// seconds is a configuration error (exit 8).
    pub fn trained_at(&self) -> recotem_core::Result<String> {
        use time::OffsetDateTime;
        match &self.source_date_epoch {
            Some(v) => v
                .trim()
                .parse::<i64>()
                .ok()
                .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
                .map(recotem_core::util::rfc3339_seconds)
                .ok_or_else(|| {
                    recotem_core::Error::config(
                        "SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01 UTC (or unset)",
                    )
                }),
            None => Ok(recotem_core::util::rfc3339_seconds(OffsetDateTime::now_utc())),
        }
    }
}

/// The integer rule: default when unset or unparseable, clamped to
/// `[lo, hi]`; events name the variable, never an unparseable value.
pub(crate) fn clamped(name: &str, raw: Option<String>, default: u64, lo: u64, hi: u64, report: bool) -> u64 {
    let Some(raw) = raw.filter(|v| !v.trim().is_empty()) else { return default };
    let Ok(requested) = raw.trim().parse::<u64>() else {
        if report {
            Event::warn("env_var_unparseable").field("name", name).field("default", default).emit();
        }
        return default;
    };
    let value = requested.clamp(lo, hi);
    if value != requested && report {
        Event::warn("env_var_clamped")
            .field("name", name)
            .field("requested", requested)
            .field("clamped", value)
            .field("lo", lo)
            .field("hi", hi)
            .emit();
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Settings {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::resolve(|n| map.get(n).cloned(), false)
    }

    #[test]
    fn defaults_clamps_and_unparseable_values() {
        let s = from(&[]);
        assert_eq!(s.max_artifact_bytes, 2 << 30);
        assert_eq!(s.source_memory_bytes, 1 << 30);
        let s = from(&[("RECOTEM_SOURCE_MEMORY_MIB", "1"), ("RECOTEM_MAX_PAYLOAD_BYTES", "nope")]);
        assert_eq!(s.source_memory_bytes, 16 << 20);
        assert_eq!(s.max_payload_bytes, 512 << 20);
        assert!(from(&[("RECOTEM_ENV", " Dev ")]).is_development());
        assert!(from(&[("RECOTEM_LOG_FORMAT", "xml")]).log_format_unknown);
    }

    /// The table in docs/configuration.md lists exactly [`VARS`], and every
    /// `RECOTEM_*` name the code mentions is in [`VARS`].
    #[test]
    fn docs_table_and_code_agree_with_vars() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
        let doc = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
        let documented: Vec<String> = doc
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split('`').next())
            .map(str::to_owned)
            .collect();
        let vars: Vec<String> = VARS.iter().map(|v| v.name.to_string()).collect();
        assert_eq!(documented, vars, "docs/configuration.md and settings::VARS differ");
        for v in VARS {
            let row = doc.lines().find(|l| l.starts_with(&format!("| `{}`", v.name))).unwrap();
            assert!(row.contains(v.default) && row.contains(v.range), "docs row for {} differs: {row}", v.name);
        }
        let mut missing = Vec::new();
        for dir in ["host/src", "crates/core/src"] {
            scan(&root.join(dir), &mut |text| {
                for (i, _) in text.match_indices("RECOTEM_") {
                    let name: String = text[i..].chars().take_while(|c| c.is_ascii_uppercase() || *c == '_' || c.is_ascii_digit()).collect();
                    let known = VARS.iter().any(|v| v.name == name)
                        || name.starts_with("RECOTEM_RECIPE_")
                        || name.starts_with("RECOTEM_TEST_")
                        || name == "RECOTEM_KILL_TEST_DIR"
                        // Set by build.rs at compile time, not read at run time.
                        || name == "RECOTEM_WIT_VERSION"
                        || name == "RECOTEM_";
                    if !known && !missing.contains(&name) {
                        missing.push(name);
                    }
                }
            });
        }
        assert!(missing.is_empty(), "variables used in code but not in settings::VARS: {missing:?}");
    }

    fn scan(dir: &std::path::Path, f: &mut dyn FnMut(&str)) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                scan(&p, f);
            } else if p.extension().is_some_and(|e| e == "rs") && !p.ends_with("recipe/env.rs") {
                // recipe/env.rs names secrets only to refuse expanding them.
                f(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
}
