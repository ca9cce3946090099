//! The signing key ring, from `RECOTEM_SIGNING_KEYS=kid:hex64[,kid2:hex64…]`.
//!
//! The first entry signs; every entry verifies (rotation: put the new key
//! first, retrain, then drop the old one). Key bytes never leave this module
//! except into the HMAC; logs carry the fingerprint (first 8 hex digits of
//! SHA-256 of the key).

use std::fmt;

use crate::error::{Error, Result};

/// Name of the variable holding the ring.
pub const ENV_VAR: &str = "RECOTEM_SIGNING_KEYS";

/// Longest kid that fits the container (one length byte, 1–32).
pub const MAX_KID_BYTES: usize = 32;

/// One signing key.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id, written into artifacts.
    pub kid: String,
    key: [u8; 32],
}

impl SigningKey {
    /// A key from raw bytes.
    pub fn new(kid: &str, key: [u8; 32]) -> Self {
        SigningKey { kid: kid.to_string(), key }
    }

    /// The deterministic development key (`dev`, 32 zero bytes).
    pub fn dev() -> Self {
        SigningKey::new("dev", [0u8; 32])
    }

    /// The key bytes (for the HMAC only).
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }

    /// First 8 hex digits of SHA-256(key): safe to log.
    pub fn fingerprint(&self) -> String {
        crate::util::sha256_hex(&self.key)[..8].to_string()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey {{ kid: {:?}, fingerprint: {} }}", self.kid, self.fingerprint())
    }
}

/// The ordered set of keys.
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: Vec<SigningKey>,
}

impl KeyRing {
    /// A ring of one key.
    pub fn single(key: SigningKey) -> Self {
        KeyRing { keys: vec![key] }
    }

    /// Parse `kid:hex64[,kid:hex64…]`. Messages name the entry by position
    /// and kid, never the key material.
    pub fn parse(value: &str) -> Result<Self> {
        let mut keys: Vec<SigningKey> = Vec::new();
        for (n, entry) in value.trim().split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let bad = |what: &str| Error::config(format!("{ENV_VAR}: entry {}: {what}; expected kid:<64 hex digits>", n + 1));
            let (kid, hex_key) = entry.split_once(':').ok_or_else(|| bad("missing ':' between kid and key"))?;
            let (kid, hex_key) = (kid.trim(), hex_key.trim());
            if kid.is_empty() {
                return Err(bad("empty kid"));
            }
            check_kid(kid).map_err(|why| bad(&why))?;
            if hex_key.len() != 64 {
                return Err(bad(&format!("key for kid {kid:?} has {} characters, expected 64 hex digits (32 bytes)", hex_key.len())));
            }
            let mut key = [0u8; 32];
            hex::decode_to_slice(hex_key, &mut key).map_err(|_| bad(&format!("key for kid {kid:?} is not hexadecimal")))?;
            if keys.iter().any(|k| k.kid == kid) {
                return Err(bad(&format!("duplicate kid {kid:?}")));
            }
            keys.push(SigningKey::new(kid, key));
        }
        if keys.is_empty() {
            return Err(Error::config(format!("{ENV_VAR} holds no key entries")));
        }
        Ok(KeyRing { keys })
    }

    /// The signing key (first entry).
    pub fn active(&self) -> &SigningKey {
        &self.keys[0]
    }

    /// The key for `kid`, if present.
    pub fn get(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// All keys, signing key first.
    pub fn keys(&self) -> &[SigningKey] {
        &self.keys
    }

    /// Log the ring as `signing_keyring_built`: the number of keys, the
    /// signing kid and each key's fingerprint — never the key.
    pub fn log_built(&self) {
        let fingerprints: Vec<serde_json::Value> = self
            .keys
            .iter()
            .map(|k| serde_json::json!({ "kid": k.kid, "fingerprint": k.fingerprint() }))
            .collect();
        crate::event::Event::info("signing_keyring_built")
            .field("n_keys", self.keys.len())
            .field("active_kid", self.active().kid.clone())
            .field("fingerprints", fingerprints)
            .emit();
    }
}

/// The kid rules shared by signing and API keys: 1–32 bytes of
/// `[A-Za-z0-9_.-]`, and not 32 hex digits (that is key material pasted in
/// the wrong place). Empty kids are reported by the caller.
pub fn check_kid(kid: &str) -> std::result::Result<(), String> {
    if kid.is_empty() {
        return Err("empty kid".into());
    }
    if kid.len() > MAX_KID_BYTES {
        return Err(format!("kid is {} bytes; at most {MAX_KID_BYTES} fit in an artifact", kid.len()));
    }
    if !kid.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err("kid may only contain letters, digits, '_', '.' and '-'".into());
    }
    if kid.len() >= 32 && kid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("kid looks like key material (32+ hex digits); did you swap kid and key?".into());
    }
    Ok(())
}

/// A kid as it may appear in logs: bytes outside `[A-Za-z0-9_.:-]` become
/// `\xHH`, at most 64 characters then `...`, `<empty>` when empty.
pub fn sanitize_kid(kid: &str) -> String {
    if kid.is_empty() {
        return "<empty>".into();
    }
    let mut out = String::new();
    for b in kid.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
        if out.len() >= 64 {
            out.truncate(64);
            out.push_str("...");
            break;
        }
    }
    out
}

/// Salt of API-key digests (AUTH-02).
pub const API_KEY_SALT: &[u8] = b"recotem.api-key.v1";

/// The digest stored for an API key: scrypt(plaintext, salt
/// `recotem.api-key.v1`, N=2, r=8, p=1, 32 bytes), lower-case hex. It is
/// labelled `sha256:` in `RECOTEM_API_KEYS` for compatibility with the
/// reference implementation, although it is not a plain SHA-256.
pub fn api_key_hash(plaintext: &str) -> String {
    let mut out = [0u8; 32];
    // log_n = 1 (N = 2), r = 8, p = 1, 32 bytes: valid parameters, and 32 is a
    // valid output length, so neither call can fail.
    match scrypt::Params::new(1, 8, 1, 32) {
        Ok(params) => {
            if scrypt::scrypt(plaintext.as_bytes(), API_KEY_SALT, &params, &mut out).is_err() {
                unreachable!("32 is a valid scrypt output length");
            }
        }
        Err(_) => unreachable!("N=2, r=8, p=1 are valid scrypt parameters"),
    }
    hex::encode(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn parses_and_orders() {
        let ring = KeyRing::parse(&format!(" new:{K1} , old:{} ,", "ab".repeat(32))).unwrap();
        assert_eq!(ring.active().kid, "new");
        assert!(ring.get("old").is_some());
        assert!(ring.get("missing").is_none());
    }

    #[test]
    fn dev_key_fingerprint_matches_the_reference() {
        assert_eq!(SigningKey::dev().fingerprint(), "66687aad");
    }

    #[test]
    fn rejects_malformed_entries_without_echoing_keys() {
        for bad in [
            "nocolon".to_string(),
            format!(":{K1}"),
            "k:abc".to_string(),
            format!("k:{}", "zz".repeat(32)),
            format!("a:{K1},a:{K1}"),
            format!("{}:{K1}", "a".repeat(33)),
            format!("{}:{K1}", "ab".repeat(16)),
            format!("bad kid:{K1}"),
            ",".to_string(),
        ] {
            let e = KeyRing::parse(&bad).unwrap_err();
            assert_eq!(e.exit_code(), 8, "{bad}");
            assert!(!e.to_string().contains(K1), "message leaks key: {e}");
        }
    }

    #[test]
    fn api_key_hash_matches_the_reference_vector() {
        let h = api_key_hash("recotem-quickstart-demo-key-0000");
        assert_eq!(h.len(), 64);
        assert!(h.starts_with("21be5c3b") && h.ends_with("f125"), "{h}");
    }

    #[test]
    fn kids_are_sanitised_for_logs() {
        assert_eq!(sanitize_kid(""), "<empty>");
        assert_eq!(sanitize_kid("k-1.a:b"), "k-1.a:b");
        assert_eq!(sanitize_kid("a\"\n"), "a\\x22\\x0a");
        assert_eq!(sanitize_kid(&"é".repeat(40)).len(), 67);
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let ring = KeyRing::parse(&format!("k:{K1}")).unwrap();
        assert!(!format!("{ring:?}").contains("0011"));
    }
}
