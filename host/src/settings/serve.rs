//! The variables `recotem serve` reads, resolved once when it starts into
//! [`ServeSettings`], from the environment captured in [`super::Settings`].
//! Nothing under `serve/` reads the environment.
//!
//! | variable | default | rule |
//! |---|---|---|
//! | `RECOTEM_API_KEYS` | empty | `kid:sha256:<hex64>[,…]`; malformed or duplicate kid → exit 8; empty → no auth, loopback bind |
//! | `RECOTEM_HOST` | `127.0.0.1` | trimmed; `--host` wins |
//! | `RECOTEM_PORT` | `8080` | integer 1–65535, else exit 8 (no clamp); `--port` wins |
//! | `RECOTEM_WATCH_INTERVAL` | `5` | seconds (decimal allowed), clamped to [1, 30]; not a number → exit 8 |
//! | `RECOTEM_LOG_FORMAT` | `auto` | `auto`, `json` or `console`; anything else → exit 8 |
//! | `RECOTEM_MAX_ARTIFACT_BYTES` | 2 GiB | clamped to [1 MiB, 16 GiB] |
//! | `RECOTEM_MAX_PAYLOAD_BYTES` | 512 MiB | clamped to [1 MiB, 16 GiB]; above the artifact cap → exit 8 |
//! | `RECOTEM_SIGNING_KEYS` | — | required (exit 8 when missing, 5 when malformed) |
//! | `RECOTEM_ALLOWED_HOSTS` | `127.0.0.1,localhost` | comma-separated `Host` names; blank → default; `*` and `*.domain` allowed |
//! | `RECOTEM_ALLOWED_ORIGINS` | empty | comma-separated CORS origins (`*` = any); empty → no CORS |
//! | `RECOTEM_ENV` | empty | `development`/`dev`/`test` unlock `--insecure-no-auth` and `/openapi.json` |
//! | `RECOTEM_DRAIN_SECONDS` | `30` | clamped to [1, 300] |
//! | `RECOTEM_METADATA_FIELD_DENY` | empty | comma-separated metadata field names (case-insensitive) never served |
//! | `RECOTEM_METRICS_ENABLED` | unset | truthy (`1`, `true`, `yes`, `on`) serves `/v1/metrics` |
//! | `RECOTEM_STARTUP_PARALLELISM` | min(recipes, 8) | clamped to [1, 32] |
//!
//! Integers follow the project rule (see [`super`]): unset
//! or blank → default, unparseable → default and `env_var_unparseable`, out
//! of range → clamped and `env_var_clamped`. Values are never logged.

use recotem_core::artifact::KeyRing;
use recotem_core::artifact::store::Caps;
use crate::error::{Error, Result};
use crate::events::Event;

/// Default bind host.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Default port.
pub const DEFAULT_PORT: u16 = 8080;
/// Default watch interval, seconds.
pub const DEFAULT_WATCH_INTERVAL: f64 = 5.0;
/// Default drain window, seconds.
pub const DEFAULT_DRAIN_SECONDS: u64 = 30;
/// Default `RECOTEM_ALLOWED_HOSTS`.
pub const DEFAULT_ALLOWED_HOSTS: &[&str] = &["127.0.0.1", "localhost"];

/// Everything `serve` reads from the environment.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// `RECOTEM_API_KEYS`, parsed (empty: no keys configured).
    pub api_keys: Vec<(String, [u8; 32])>,
    /// `RECOTEM_HOST`.
    pub host: String,
    /// `RECOTEM_PORT`, or the configuration error it raised (reported only
    /// when `--port` does not override it).
    pub port: std::result::Result<u16, String>,
    /// `RECOTEM_WATCH_INTERVAL`, seconds.
    pub watch_interval: f64,
    /// `RECOTEM_MAX_ARTIFACT_BYTES` / `RECOTEM_MAX_PAYLOAD_BYTES`.
    pub caps: Caps,
    /// `RECOTEM_SIGNING_KEYS` (None: unset).
    pub signing_keys: Option<KeyRing>,
    /// `RECOTEM_ALLOWED_HOSTS`, lower-case.
    pub allowed_hosts: Vec<String>,
    /// `RECOTEM_ALLOWED_ORIGINS`.
    pub allowed_origins: Vec<String>,
    /// `RECOTEM_ENV`, trimmed, lower-case.
    pub env: String,
    /// `RECOTEM_DRAIN_SECONDS`.
    pub drain_seconds: u64,
    /// `RECOTEM_METADATA_FIELD_DENY`, lower-case.
    pub metadata_field_deny: Vec<String>,
    /// `RECOTEM_METRICS_ENABLED`.
    pub metrics_enabled: bool,
    /// `RECOTEM_STARTUP_PARALLELISM` (None: unset → min(recipes, 8)).
    pub startup_parallelism: Option<usize>,
}

fn var(name: &str) -> Option<String> {
    super::get().var(name)
}

fn clamped(name: &str, default: u64, lo: u64, hi: u64) -> u64 {
    super::clamped(name, var(name), default, lo, hi, true)
}

fn csv_list(value: Option<String>, lower: bool) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(|s| if lower { s.trim().to_ascii_lowercase() } else { s.trim().to_string() })
        .filter(|s| !s.is_empty())
        .collect()
}

/// Truthy: `1`, `true`, `yes`, `on` (case-insensitive).
pub fn truthy(value: Option<&str>) -> bool {
    matches!(value.map(|v| v.trim().to_ascii_lowercase()).as_deref(), Some("1" | "true" | "yes" | "on"))
}

impl ServeSettings {
    /// Resolve every variable. The returned error (exit 8, or 5 for a
    /// malformed key ring) names the variable, never its value.
    pub fn from_env() -> Result<Self> {
        if let Some(format) = var("RECOTEM_LOG_FORMAT") {
            if crate::events::FormatChoice::parse(&format).is_none() {
                return Err(Error::config(
                    "RECOTEM_LOG_FORMAT must be auto, json or console for serve",
                ));
            }
        }
        let api_keys = parse_api_keys(&var("RECOTEM_API_KEYS").unwrap_or_default())?;
        let host = var("RECOTEM_HOST").map(|h| h.trim().to_string()).filter(|h| !h.is_empty());
        let port = match var("RECOTEM_PORT").map(|p| p.trim().to_string()).filter(|p| !p.is_empty()) {
            None => Ok(DEFAULT_PORT),
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err("RECOTEM_PORT must be an integer from 1 to 65535".to_string()),
            },
        };
        let watch_interval = watch_interval(var("RECOTEM_WATCH_INTERVAL"))?;
        let caps = super::get().caps()?;
        let signing_keys = super::get().key_ring()?;
        let mut allowed_hosts = csv_list(var("RECOTEM_ALLOWED_HOSTS"), true);
        if allowed_hosts.is_empty() {
            allowed_hosts = DEFAULT_ALLOWED_HOSTS.iter().map(|s| s.to_string()).collect();
        }
        let allowed_origins = csv_list(var("RECOTEM_ALLOWED_ORIGINS"), false);
        let env = var("RECOTEM_ENV").unwrap_or_default().trim().to_ascii_lowercase();
        let drain_seconds = clamped("RECOTEM_DRAIN_SECONDS", DEFAULT_DRAIN_SECONDS, 1, 300);
        let metadata_field_deny = csv_list(var("RECOTEM_METADATA_FIELD_DENY"), true);
        let metrics_enabled = truthy(var("RECOTEM_METRICS_ENABLED").as_deref());
        let startup_parallelism = var("RECOTEM_STARTUP_PARALLELISM")
            .filter(|v| !v.trim().is_empty())
            .map(|_| clamped("RECOTEM_STARTUP_PARALLELISM", 8, 1, 32) as usize);
        Ok(ServeSettings {
            api_keys,
            host: host.unwrap_or_else(|| DEFAULT_HOST.to_string()),
            port,
            watch_interval,
            caps,
            signing_keys,
            allowed_hosts,
            allowed_origins,
            env,
            drain_seconds,
            metadata_field_deny,
            metrics_enabled,
            startup_parallelism,
        })
    }

    /// `RECOTEM_ENV` is development, dev or test.
    pub fn is_dev_env(&self) -> bool {
        matches!(self.env.as_str(), "development" | "dev" | "test")
    }
}

/// `RECOTEM_WATCH_INTERVAL`: a decimal number of seconds clamped to [1, 30];
/// anything else is a configuration error.
fn watch_interval(raw: Option<String>) -> Result<f64> {
    let Some(raw) = raw.filter(|v| !v.trim().is_empty()) else { return Ok(DEFAULT_WATCH_INTERVAL) };
    let requested: f64 = raw.trim().parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| {
        Error::config("RECOTEM_WATCH_INTERVAL must be a number of seconds (1 to 30)")
    })?;
    let clamped = requested.clamp(1.0, 30.0);
    if clamped != requested {
        Event::warn("env_var_clamped")
            .field("name", "RECOTEM_WATCH_INTERVAL")
            .field("requested", requested)
            .field("clamped", clamped)
            .field("lo", 1)
            .field("hi", 30)
            .emit();
    }
    Ok(clamped)
}

/// Parse `RECOTEM_API_KEYS` (`kid:sha256:<hex64>`, comma-separated, the
/// `sha256` label case-insensitive). Errors name the entry by position and
/// kid, never the digest.
pub fn parse_api_keys(value: &str) -> Result<Vec<(String, [u8; 32])>> {
    let mut out: Vec<(String, [u8; 32])> = Vec::new();
    for (i, entry) in value.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
        let bad = |why: &str| Error::config(format!("RECOTEM_API_KEYS entry {}: {why}; expected kid:sha256:<64 hex digits> (see `recotem keygen --type api`)", i + 1));
        let mut parts = entry.splitn(3, ':');
        let (Some(kid), Some(label), Some(digest)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("not of the form kid:sha256:<hex>"));
        };
        let kid = kid.trim();
        if kid.is_empty() {
            return Err(bad("empty kid"));
        }
        if !label.eq_ignore_ascii_case("sha256") {
            return Err(bad("the digest label must be sha256"));
        }
        let mut bytes = [0u8; 32];
        if digest.len() != 64 || hex::decode_to_slice(digest, &mut bytes).is_err() {
            return Err(bad("the digest is not 64 hex digits"));
        }
        if out.iter().any(|(k, _)| k == kid) {
            return Err(bad(&format!("duplicate kid {:?}", recotem_core::artifact::keys::sanitize_kid(kid))));
        }
        out.push((kid.to_string(), bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_parse_and_reject() {
        let h = "ab".repeat(32);
        let keys = parse_api_keys(&format!(" a:SHA256:{h} , b:sha256:{} ,", h.to_uppercase())).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].1, [0xab; 32]);
        for bad in [format!("a:{h}"), format!("a:md5:{h}"), "a:sha256:abc".to_string(), format!(":sha256:{h}"), format!("a:sha256:{h},a:sha256:{h}")] {
            let e = parse_api_keys(&bad).unwrap_err();
            assert_eq!(e.exit_code(), 8, "{bad}");
            assert!(!e.to_string().contains(&h), "digest leaked");
        }
    }

    #[test]
    fn watch_interval_rules() {
        assert_eq!(watch_interval(None).unwrap(), 5.0);
        assert_eq!(watch_interval(Some("0.2".into())).unwrap(), 1.0);
        assert_eq!(watch_interval(Some("2.5".into())).unwrap(), 2.5);
        assert_eq!(watch_interval(Some("99".into())).unwrap(), 30.0);
        assert_eq!(watch_interval(Some("soon".into())).unwrap_err().exit_code(), 8);
    }
}
