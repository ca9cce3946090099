//! The signed container.
//!
//! ```text
//! offset  size  field
//! 0       8     magic "RECOTEM\0"
//! 8       2     version, u16 LE (1 or 2; train writes 2)
//! 10      2     reserved, u16 LE, must be 0
//! 12      1     kid length K, 1..=32
//! 13      K     kid, UTF-8
//! 13+K    32    HMAC-SHA256
//! 45+K    4     header length H, u32 LE, <= 65536
//! 49+K    H     header, UTF-8 JSON object
//! 49+K+H  …     payload (the rest of the file)
//! ```
//!
//! Version 2 authenticates every byte of the file except the 32 digest bytes
//! (so the length fields, version and reserved bytes are covered and nothing
//! can be moved across a boundary). Version 1 authenticates
//! `kid ‖ header ‖ payload`, as the Python implementation signs; it is still
//! verified, never written.
//!
//! Nothing is decoded before the HMAC verifies: `parse` only checks structure
//! and `verify` decodes the header JSON after the constant-time comparison.

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

use super::keys::{KeyRing, MAX_KID_BYTES, SigningKey};
use crate::error::{ArtifactFault, Error, Result};

/// File magic.
pub const MAGIC: &[u8; 8] = b"RECOTEM\0";
/// Largest header accepted.
pub const MAX_HEADER_BYTES: usize = 65_536;
/// The version `seal` writes.
pub const CURRENT_VERSION: u16 = 2;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A structurally valid, not yet verified container.
#[derive(Debug)]
pub struct Container<'a> {
    /// Format version (1 or 2).
    pub version: u16,
    /// Key id.
    pub kid: &'a str,
    mac: &'a [u8],
    mac_offset: usize,
    header: &'a [u8],
    payload: &'a [u8],
    bytes: &'a [u8],
}

/// A container whose HMAC verified.
#[derive(Debug)]
pub struct VerifiedArtifact<'a> {
    /// Format version.
    pub version: u16,
    /// Key id that verified it.
    pub kid: String,
    /// The header JSON object.
    pub header: Map<String, Value>,
    /// The payload bytes (authenticated, not yet decoded).
    pub payload: &'a [u8],
}

fn fault(msg: impl Into<String>) -> Error {
    Error::artifact(msg.into())
}

impl<'a> Container<'a> {
    /// Check the structure of `bytes`. `payload_cap` bounds the payload.
    pub fn parse(bytes: &'a [u8], payload_cap: u64) -> Result<Self> {
        if bytes.len() < MAGIC.len() || &bytes[..8] != MAGIC {
            return Err(fault("not a recotem artifact: the magic bytes \"RECOTEM\\0\" are missing (wrong file or corrupt)"));
        }
        let need = |end: usize, what: &str| {
            if bytes.len() < end {
                Err(fault(format!("truncated artifact: the file ends inside the {what} ({} bytes, need {end})", bytes.len())))
            } else {
                Ok(())
            }
        };
        need(12, "version and reserved fields")?;
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != 1 && version != 2 {
            return Err(fault(format!(
                "unsupported format version {version}: this recotem reads versions 1 and 2 (was it written by a newer recotem?)"
            )));
        }
        let reserved = u16::from_le_bytes([bytes[10], bytes[11]]);
        if reserved != 0 {
            return Err(fault(format!("reserved field is {reserved}, must be 0 (corrupt artifact)")));
        }
        need(13, "kid length")?;
        let kid_len = bytes[12] as usize;
        if kid_len == 0 || kid_len > MAX_KID_BYTES {
            return Err(fault(format!("kid length {kid_len} is outside 1..={MAX_KID_BYTES} (corrupt artifact)")));
        }
        let kid_end = 13 + kid_len;
        need(kid_end, "kid")?;
        let kid = std::str::from_utf8(&bytes[13..kid_end]).map_err(|_| fault("the kid is not valid UTF-8 (corrupt artifact)"))?;
        let mac_offset = kid_end;
        need(mac_offset + 32, "HMAC")?;
        let len_offset = mac_offset + 32;
        need(len_offset + 4, "header length")?;
        let header_len = u32::from_le_bytes(bytes[len_offset..len_offset + 4].try_into().unwrap_or([0xff; 4])) as usize;
        if header_len > MAX_HEADER_BYTES {
            return Err(fault(format!("header length {header_len} exceeds the {MAX_HEADER_BYTES}-byte cap")));
        }
        let header_start = len_offset + 4;
        need(header_start + header_len, "header")?;
        let header = &bytes[header_start..header_start + header_len];
        if std::str::from_utf8(header).is_err() {
            return Err(fault("the header is not valid UTF-8 (corrupt artifact)"));
        }
        let payload = &bytes[header_start + header_len..];
        if payload.len() as u64 > payload_cap {
            return Err(fault(format!(
                "payload of {} bytes exceeds RECOTEM_MAX_PAYLOAD_BYTES ({payload_cap})",
                payload.len()
            )));
        }
        Ok(Container { version, kid, mac: &bytes[mac_offset..mac_offset + 32], mac_offset, header, payload, bytes })
    }

    /// Verify the HMAC with the ring's key for this kid, then decode the
    /// header.
    pub fn verify(&self, ring: &KeyRing) -> Result<VerifiedArtifact<'a>> {
        let key = ring.get(self.kid).ok_or_else(|| {
            let known: Vec<&str> = ring.keys().iter().map(|k| k.kid.as_str()).collect();
            Error::artifact_fault(ArtifactFault::UnknownKid, format!(
                "unknown kid {:?}: the artifact was signed with a key that is not in RECOTEM_SIGNING_KEYS (configured kids: {}); \
                 add that key back or retrain with the current key",
                self.kid,
                known.join(", ")
            ))
        })?;
        self.finish(self.compute(key))
    }

    /// Verify with the HMAC of the authenticated bytes computed elsewhere
    /// (the loader hashes while it reads) by the ring's key for this kid.
    pub(crate) fn verify_computed(&self, mac: HmacSha256) -> Result<VerifiedArtifact<'a>> {
        self.finish(mac)
    }

    fn finish(&self, mac: HmacSha256) -> Result<VerifiedArtifact<'a>> {
        mac.verify_slice(self.mac).map_err(|_| {
            Error::artifact_fault(ArtifactFault::HmacMismatch, format!(
                "HMAC mismatch for kid {:?}: the artifact was modified after signing, or the key configured for this kid is not the one that signed it",
                self.kid
            ))
        })?;
        let header: Value = serde_json::from_slice(self.header)
            .map_err(|e| fault(format!("the header is not valid JSON: {e}")))?;
        let Value::Object(header) = header else {
            return Err(fault("the header is not a JSON object"));
        };
        Ok(VerifiedArtifact { version: self.version, kid: self.kid.to_string(), header, payload: self.payload })
    }

    fn compute(&self, key: &SigningKey) -> HmacSha256 {
        let mut mac = new_mac(key);
        match self.version {
            1 => {
                mac.update(self.kid.as_bytes());
                mac.update(self.header);
                mac.update(self.payload);
            }
            _ => {
                mac.update(&self.bytes[..self.mac_offset]);
                mac.update(&self.bytes[self.mac_offset + 32..]);
            }
        }
        mac
    }
}

pub(crate) fn new_mac(key: &SigningKey) -> HmacSha256 {
    // HMAC accepts keys of any length; 32 bytes never fails.
    <HmacSha256 as Mac>::new_from_slice(key.bytes()).unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
}

/// Assemble and sign a container of `version` (2 for everything recotem
/// writes; 1 exists for compatibility tests).
pub fn seal_version(version: u16, key: &SigningKey, header: &[u8], payload: &[u8]) -> Result<Vec<u8>> {
    let kid = key.kid.as_bytes();
    if kid.is_empty() || kid.len() > MAX_KID_BYTES {
        return Err(fault(format!("kid {:?} must be 1..={MAX_KID_BYTES} bytes to be written", key.kid)));
    }
    if header.len() > MAX_HEADER_BYTES {
        return Err(fault(format!("header of {} bytes exceeds the {MAX_HEADER_BYTES}-byte cap", header.len())));
    }
    let mut out = Vec::with_capacity(49 + kid.len() + header.len() + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.push(kid.len() as u8);
    out.extend_from_slice(kid);
    let mac_offset = out.len();
    out.extend_from_slice(&[0u8; 32]);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(payload);
    let mut mac = new_mac(key);
    if version == 1 {
        mac.update(kid);
        mac.update(header);
        mac.update(payload);
    } else {
        mac.update(&out[..mac_offset]);
        mac.update(&out[mac_offset + 32..]);
    }
    let digest = mac.finalize().into_bytes();
    out[mac_offset..mac_offset + 32].copy_from_slice(&digest);
    Ok(out)
}

/// Assemble and sign a version-2 container.
pub fn seal(key: &SigningKey, header: &[u8], payload: &[u8]) -> Result<Vec<u8>> {
    seal_version(CURRENT_VERSION, key, header, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::single(SigningKey::new("k1", [7u8; 32]))
    }

    fn sample(version: u16) -> Vec<u8> {
        seal_version(version, ring().active(), br#"{"recipe_name":"demo"}"#, b"payload bytes").unwrap()
    }

    #[test]
    fn round_trip_v1_and_v2() {
        for v in [1, 2] {
            let bytes = sample(v);
            let c = Container::parse(&bytes, u64::MAX).unwrap();
            let a = c.verify(&ring()).unwrap();
            assert_eq!((a.version, a.kid.as_str(), a.payload), (v, "k1", &b"payload bytes"[..]));
            assert_eq!(a.header["recipe_name"], "demo");
        }
    }

    #[test]
    fn any_single_byte_change_of_v2_fails() {
        // Every byte, every other value: nothing outside the digest is
        // unauthenticated, and the digest itself must match exactly.
        let bytes = sample(2);
        for pos in 0..bytes.len() {
            for value in 0..=255u8 {
                if value == bytes[pos] {
                    continue;
                }
                let mut b = bytes.clone();
                b[pos] = value;
                let ok = Container::parse(&b, u64::MAX).and_then(|c| c.verify(&ring()).map(|_| ()));
                assert!(ok.is_err(), "setting byte {pos} to {value:#04x} went unnoticed");
            }
        }
        // A larger artifact: random positions and values (seeded).
        let big = seal(ring().active(), br#"{"recipe_name":"demo"}"#, &vec![0x5au8; 4096]).unwrap();
        let mut rng = recotem_numerics::Rng::new(7);
        for _ in 0..2_000 {
            let pos = rng.below(big.len() as u64) as usize;
            let mut b = big.clone();
            b[pos] ^= 1 + rng.below(255) as u8;
            let ok = Container::parse(&b, u64::MAX).and_then(|c| c.verify(&ring()).map(|_| ()));
            assert!(ok.is_err(), "changing byte {pos} went unnoticed");
        }
    }

    #[test]
    fn kid_and_header_utf8_faults() {
        let good = sample(2);
        let mut b = good.clone();
        b[13] = 0xc3; // a lone lead byte
        assert!(Container::parse(&b, u64::MAX).unwrap_err().to_string().contains("kid is not valid UTF-8"));
        let mut b = good.clone();
        b[13 + 2 + 32 + 4 + 1] = 0xff;
        assert!(Container::parse(&b, u64::MAX).unwrap_err().to_string().contains("header is not valid UTF-8"));
    }

    #[test]
    fn structural_faults_have_their_own_messages() {
        let good = sample(2);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"NOTRECOT".to_vec(), "magic"),
            (good[..10].to_vec(), "truncated"),
            ({ let mut b = good.clone(); b[8] = 3; b }, "unsupported format version 3"),
            ({ let mut b = good.clone(); b[10] = 1; b }, "reserved"),
            ({ let mut b = good.clone(); b[12] = 0; b }, "kid length 0"),
            ({ let mut b = good.clone(); b[12] = 33; b }, "kid length 33"),
            (good[..20].to_vec(), "HMAC"),
            ({ let mut b = good.clone(); let o = 13 + 2 + 32; b[o..o + 4].copy_from_slice(&70_000u32.to_le_bytes()); b }, "exceeds"),
            ({ let mut b = good.clone(); let o = 13 + 2 + 32; b[o..o + 4].copy_from_slice(&60_000u32.to_le_bytes()); b }, "inside the header"),
        ];
        for (bytes, expect) in cases {
            let e = Container::parse(&bytes, u64::MAX).unwrap_err();
            assert_eq!(e.exit_code(), 5);
            assert!(e.to_string().contains(expect), "{expect}: {e}");
        }
        let e = Container::parse(&good, 3).unwrap_err();
        assert!(e.to_string().contains("RECOTEM_MAX_PAYLOAD_BYTES"));
    }

    #[test]
    fn unknown_kid_and_wrong_key() {
        let bytes = sample(2);
        let c = Container::parse(&bytes, u64::MAX).unwrap();
        let other = KeyRing::single(SigningKey::new("k2", [7u8; 32]));
        assert!(c.verify(&other).unwrap_err().to_string().contains("unknown kid \"k1\""));
        let wrong = KeyRing::single(SigningKey::new("k1", [8u8; 32]));
        assert!(c.verify(&wrong).unwrap_err().to_string().contains("HMAC mismatch"));
    }
}
