//! API-key authentication (`X-API-Key` against `RECOTEM_API_KEYS`).
//!
//! The presented key is hashed with the same scrypt construction as
//! `recotem keygen --type api` ([`crate::artifact::keys::api_key_hash`]) and
//! compared with every configured digest in constant time, without stopping
//! at the first match. Every branch (missing, too short, too long, no
//! match) runs exactly one scrypt, so timing does not tell them apart, and a
//! wrong key and an unknown kid give the same answer.

use crate::artifact::keys::api_key_hash;

/// Shortest key accepted (keygen makes 43 characters).
pub const MIN_KEY_LEN: usize = 32;
/// Longest header value accepted.
pub const MAX_KEY_LEN: usize = 256;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `X-API-Key` header.
    Missing,
    /// Shorter than [`MIN_KEY_LEN`].
    Short,
    /// Longer than [`MAX_KEY_LEN`].
    Oversized,
    /// No configured digest matches.
    Invalid,
}

impl Refusal {
    /// The event logged for it.
    pub fn event(self) -> &'static str {
        match self {
            Refusal::Missing => "auth_missing_header",
            Refusal::Short => "auth_short_key_rejected",
            Refusal::Oversized => "auth_oversized_header",
            Refusal::Invalid => "auth_invalid_key",
        }
    }
}

/// The configured keys.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    keys: Vec<(String, [u8; 32])>,
}

/// Equal in constant time (for equal lengths, which digests always have).
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keep the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

impl ApiKeys {
    /// From the parsed `RECOTEM_API_KEYS`.
    pub fn new(keys: Vec<(String, [u8; 32])>) -> Self {
        ApiKeys { keys }
    }

    /// No keys configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Check a header value (`None`: absent); the kid that matched.
    pub fn check(&self, presented: Option<&[u8]>) -> Result<&str, Refusal> {
        let Some(value) = presented else {
            let _ = api_key_hash("recotem-timing-equalisation-dummy-key");
            return Err(Refusal::Missing);
        };
        let refusal = if value.len() > MAX_KEY_LEN {
            Some(Refusal::Oversized)
        } else if value.len() < MIN_KEY_LEN {
            Some(Refusal::Short)
        } else {
            None
        };
        // Hash the value (or a dummy of the same cost) on every branch.
        let text = match (refusal, std::str::from_utf8(value)) {
            (None, Ok(text)) => text,
            _ => "recotem-timing-equalisation-dummy-key",
        };
        let mut digest = [0u8; 32];
        if hex::decode_to_slice(api_key_hash(text), &mut digest).is_err() {
            return Err(Refusal::Invalid);
        }
        if let Some(r) = refusal {
            return Err(r);
        }
        if std::str::from_utf8(value).is_err() {
            return Err(Refusal::Invalid);
        }
        let mut found: Option<usize> = None;
        for (i, (_, stored)) in self.keys.iter().enumerate() {
            let hit = ct_eq(&digest, stored);
            if hit && found.is_none() {
                found = Some(i);
            }
        }
        found.map(|i| self.keys[i].0.as_str()).ok_or(Refusal::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_by_digest() {
        // The README pair of the reference implementation.
        let plain = "recotem-quickstart-demo-key-0000";
        let mut d = [0u8; 32];
        hex::decode_to_slice(api_key_hash(plain), &mut d).unwrap();
        let keys = ApiKeys::new(vec![("other".into(), [7; 32]), ("demo".into(), d)]);
        assert_eq!(keys.check(Some(plain.as_bytes())), Ok("demo"));
        assert_eq!(keys.check(None), Err(Refusal::Missing));
        assert_eq!(keys.check(Some(b"short")), Err(Refusal::Short));
        assert_eq!(keys.check(Some(&[b'a'; 300])), Err(Refusal::Oversized));
        assert_eq!(keys.check(Some(&[b'a'; 40])), Err(Refusal::Invalid));
    }
}
