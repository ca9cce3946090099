//! API-key authentication (`X-API-Key` against `RECOTEM_API_KEYS`).
//!
//! The presented key is hashed with the same scrypt construction as
//! `recotem keygen --type api` ([`crate::artifact::keys::api_key_hash`]) and
//! compared with every configured digest in constant time, without stopping
//! at the first match. Every branch (missing, too short, too long, no
//! match) runs exactly one scrypt, so timing does not tell them apart, and a
//! wrong key and an unknown kid give the same answer.
//!
//! One scrypt costs tens of microseconds, more than the rest of a request.
//! A key that **matched** is therefore remembered per worker thread by its
//! SHA-256 (never the plaintext; at most [`CACHE_SLOTS`] per thread), so a
//! client's following requests skip the scrypt. Refused keys are never
//! cached: every failure still costs one scrypt.

use crate::artifact::keys::api_key_hash;

/// Shortest key accepted (keygen makes 43 characters).
pub const MIN_KEY_LEN: usize = 32;
/// Longest header value accepted.
pub const MAX_KEY_LEN: usize = 256;

/// Keys remembered per worker thread after they matched.
pub const CACHE_SLOTS: usize = 16;

/// A remembered match: (SHA-256 of the key, entry index, entry digest).
type Remembered = ([u8; 32], usize, [u8; 32]);

thread_local! {
    /// (SHA-256 of a key that matched, index of the entry it matched, that
    /// entry's digest), the newest last. The digest ties a slot to the key
    /// set it was checked against.
    static MATCHED: std::cell::RefCell<Vec<Remembered>> = const { std::cell::RefCell::new(Vec::new()) };
}

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
        use sha2::{Digest, Sha256};
        let fast = presented.filter(|v| (MIN_KEY_LEN..=MAX_KEY_LEN).contains(&v.len())).map(|v| {
            let d: [u8; 32] = Sha256::digest(v).into();
            d
        });
        if let Some(d) = &fast {
            // Compare with every remembered digest (no early exit).
            let hit = MATCHED.with(|m| {
                let mut found = None;
                for (cached, i, stored) in m.borrow().iter() {
                    if ct_eq(cached, d) {
                        found = Some((*i, *stored));
                    }
                }
                found
            });
            if let Some((i, stored)) = hit
                && self.keys.get(i).is_some_and(|(_, k)| ct_eq(k, &stored))
            {
                return Ok(self.keys[i].0.as_str());
            }
        }
        let matched = self.check_slow(presented)?;
        if let Some(d) = fast {
            MATCHED.with(|m| {
                let mut m = m.borrow_mut();
                if m.len() == CACHE_SLOTS {
                    m.remove(0);
                }
                m.push((d, matched, self.keys[matched].1));
            });
        }
        Ok(self.keys[matched].0.as_str())
    }

    /// The scrypt path: the index of the entry that matched.
    fn check_slow(&self, presented: Option<&[u8]>) -> Result<usize, Refusal> {
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
        found.ok_or(Refusal::Invalid)
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
        assert!(api_key_hash(plain).starts_with("21be5c3b"), "the reference implementation's README pair");
        assert_eq!(keys.check(Some(plain.as_bytes())), Ok("demo"));
        // Second time from the per-thread cache, same answer.
        assert_eq!(keys.check(Some(plain.as_bytes())), Ok("demo"));
        // Another key set on the same thread: the cached index must not
        // grant it (the digest differs, so it goes through scrypt and fails).
        let other = ApiKeys::new(vec![("x".into(), [9; 32]), ("y".into(), [8; 32])]);
        assert_eq!(other.check(Some(plain.as_bytes())), Err(Refusal::Invalid));
        assert_eq!(keys.check(None), Err(Refusal::Missing));
        assert_eq!(keys.check(Some(b"short")), Err(Refusal::Short));
        assert_eq!(keys.check(Some(&[b'a'; 300])), Err(Refusal::Oversized));
        assert_eq!(keys.check(Some(&[b'a'; 40])), Err(Refusal::Invalid));
    }
}
