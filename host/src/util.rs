//! Helpers re-exported from the core, for the host's modules.

pub use recotem_core::util::{canonical_json, now_rfc3339_micros, random_hex, rfc3339_seconds, sha256_hex};
pub use recotem_numerics::Rng;
