//! Small helpers shared by several modules: time stamps, digests, random ids.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Current UTC time as RFC 3339 with microseconds and `Z`
/// (`2026-05-14T03:00:01.123456Z`), for log records.
pub fn now_rfc3339_micros() -> String {
    let now = OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    now.format(&fmt).unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// A UTC time as RFC 3339 with whole seconds (`2026-05-14T03:00:01Z`).
pub fn rfc3339_seconds(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The `trained_at` time of a run: `SOURCE_DATE_EPOCH` (the
/// reproducible-builds convention: whole seconds since 1970-01-01 UTC) when
/// set and not blank, else now; RFC 3339 with whole seconds. A value that is
/// not such a number is a configuration error (exit 8).
pub fn trained_at() -> Result<String, crate::error::Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
            .map(rfc3339_seconds)
            .ok_or_else(|| {
                crate::error::Error::Config(
                    "SOURCE_DATE_EPOCH must be a whole number of seconds since 1970-01-01 UTC (or unset)".into(),
                )
            }),
        _ => Ok(rfc3339_seconds(OffsetDateTime::now_utc())),
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `n` random bytes from the OS, hex-encoded (`2n` characters).
pub fn random_hex(n: usize) -> Result<String, crate::error::Error> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf)
        .map_err(|e| crate::error::Error::Internal(format!("the OS random source failed: {e}")))?;
    Ok(hex::encode(buf))
}

/// Sort object keys recursively, for canonical JSON.
pub fn canonical_json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), canonical_json(&map[k]))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical_json).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_nested_keys() {
        let v = serde_json::json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": 3}});
        assert_eq!(canonical_json(&v).to_string(), r#"{"a":{"c":3,"d":[{"y":2,"z":1}]},"b":1}"#);
    }

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}

pub use recotem_numerics::Rng;

/// Read an integer environment variable with the project's rules: unset or
/// empty → `default`; unparseable → `default` and an `env_var_unparseable`
/// event; out of `[lo, hi]` → clamped and an `env_var_clamped` event. The
/// value itself is never logged when unparseable.
pub fn env_u64_clamped(name: &str, default: u64, lo: u64, hi: u64) -> u64 {
    use crate::events::Event;
    let raw = match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => return default,
    };
    let Ok(requested) = raw.trim().parse::<u64>() else {
        Event::warn("env_var_unparseable").field("name", name).field("default", default).emit();
        return default;
    };
    let clamped = requested.clamp(lo, hi);
    if clamped != requested {
        Event::warn("env_var_clamped")
            .field("name", name)
            .field("requested", requested)
            .field("clamped", clamped)
            .field("lo", lo)
            .field("hi", hi)
            .emit();
    }
    clamped
}
