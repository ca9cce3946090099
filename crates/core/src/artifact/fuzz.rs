//! Seeded mutation fuzzing of container and payload decoding.
//!
//! Only the stable toolchain is available, so instead of libFuzzer this is a
//! plain, reproducible mutator: the same seed replays the same inputs. It
//! drives two paths:
//!
//! - **container**: a signed artifact (v1 or v2) is mutated and then parsed,
//!   verified and — if it verifies — its payload decoded. For version 2 any
//!   change must fail verification.
//! - **payload**: a payload is mutated and **re-signed**, so the decoder runs
//!   on authenticated garbage (the case a compromised signer would produce).
//!   A payload that decodes must re-encode to exactly the same bytes.
//!
//! Neither may panic, and nothing may allocate more than the input justifies
//! (a failure would abort the process). The long-running driver is the
//! `fuzz_artifact` bench target (see `docs/artifacts.md`); a short seeded run
//! is part of the unit tests.

use super::container::{Container, seal_version};
use super::keys::{KeyRing, SigningKey};
use super::payload::{DataStats, ItemMetadata, Payload};
use crate::ids::Interner;
use crate::model::{Csr, Model};
use recotem_numerics::Rng;

/// Small payloads of every model kind, with metadata: the fuzz corpus and
/// the unit tests' samples.
pub fn sample_payloads() -> Vec<Payload> {
    let ids = |v: &[&str]| v.iter().map(|s| (*s).into()).collect::<Vec<Box<str>>>();
    let table = |v: &[&str]| Interner::from_ids(v).expect("distinct sample ids");
    let history = Csr { rows: 2, cols: 3, indptr: vec![0, 1, 3], indices: vec![0, 1, 2], values: vec![1.0; 3] };
    let models = vec![
        Model::Popularity(vec![3.0, 1.0, 2.0].into()),
        Model::Factors { dim: 2, users: vec![0.5; 4].into(), items: vec![0.25; 6].into() },
        Model::SparseItemItem(Csr { rows: 3, cols: 3, indptr: vec![0, 1, 1, 2], indices: vec![2, 0], values: vec![0.5, 0.5] }),
        Model::DenseItemItem { n: 3, values: vec![0.1; 9].into() },
    ];
    models
        .into_iter()
        .map(|model| Payload {
            users: table(&["u1", "ü2"]),
            items: table(&["a", "b", "c"]),
            model,
            history: history.clone(),
            stats: DataStats { n_rows: 3, n_users: 2, n_items: 3, drop_count: 1 },
            metadata: ItemMetadata {
                fields: ids(&["title", "genre"]),
                columns: vec![
                    vec![Some("A".into()), None, Some("".into())],
                    vec![None, Some("jazz".into()), Some("pop".into())],
                ],
            },
        })
        .collect()
}

/// What a run saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Cases run.
    pub cases: u64,
    /// Mutated containers rejected before verification (structure).
    pub rejected_structure: u64,
    /// Mutated containers rejected by the key or HMAC check.
    pub rejected_signature: u64,
    /// Re-signed payloads the decoder rejected.
    pub rejected_payload: u64,
    /// Inputs that decoded completely.
    pub decoded: u64,
}

/// A broken invariant (a panic is reported by the caller).
#[derive(Debug)]
pub struct Finding {
    /// Which case (iteration number).
    pub case: u64,
    /// What went wrong.
    pub what: String,
    /// The input.
    pub input: Vec<u8>,
}

/// The fuzzer: corpus, key and random source.
pub struct Fuzzer {
    rng: Rng,
    ring: KeyRing,
    payloads: Vec<Vec<u8>>,
    artifacts: Vec<(u16, Vec<u8>)>,
    header: Vec<u8>,
    /// Counters.
    pub stats: Stats,
}

const INTERESTING: [u64; 10] = [0, 1, 2, 7, 8, 0x7f, 0xff, 0xffff, 0xffff_ffff, u64::MAX];

impl Fuzzer {
    /// A fuzzer replaying `seed`.
    pub fn new(seed: u64) -> Self {
        let key = SigningKey::new("fuzz", [0x5a; 32]);
        let ring = KeyRing::single(key.clone());
        let header = br#"{"recipe_name":"fuzz","payload":{"format":"recotem-payload","version":2}}"#.to_vec();
        let payloads: Vec<Vec<u8>> = sample_payloads().iter().map(Payload::encode).collect();
        let mut artifacts = Vec::new();
        for p in &payloads {
            for version in [1u16, 2] {
                if let Ok(a) = seal_version(version, &key, &header, p) {
                    artifacts.push((version, a));
                }
            }
        }
        Fuzzer { rng: Rng::new(seed), ring, payloads, artifacts, header, stats: Stats::default() }
    }

    fn pick(&mut self, n: usize) -> usize {
        self.rng.below(n.max(1) as u64) as usize
    }

    /// Apply 1–4 random mutations to `bytes`.
    pub fn mutate(&mut self, bytes: &mut Vec<u8>) {
        let rounds = 1 + self.pick(4);
        for _ in 0..rounds {
            let len = bytes.len();
            let at = self.pick(len + 1);
            match self.pick(8) {
                0 if len > 0 => {
                    let i = self.pick(len);
                    bytes[i] ^= 1 << self.pick(8);
                }
                1 if len > 0 => {
                    let i = self.pick(len);
                    bytes[i] = INTERESTING[self.pick(INTERESTING.len())] as u8;
                }
                2 if len >= 4 => {
                    let i = self.pick(len - 3);
                    let v = INTERESTING[self.pick(INTERESTING.len())] as u32;
                    bytes[i..i + 4].copy_from_slice(&v.to_le_bytes());
                }
                3 if len >= 8 => {
                    let i = self.pick(len - 7);
                    let v = INTERESTING[self.pick(INTERESTING.len())];
                    bytes[i..i + 8].copy_from_slice(&v.to_le_bytes());
                }
                4 => bytes.truncate(at),
                5 => {
                    let n = 1 + self.pick(16);
                    let fill: Vec<u8> = (0..n).map(|_| self.rng.next_u64() as u8).collect();
                    bytes.splice(at..at, fill);
                }
                6 if len > 0 => {
                    let end = (at + 1 + self.pick(16)).min(len);
                    bytes.drain(at.min(end)..end);
                }
                _ if len > 0 => {
                    // Copy a range over another place (moves a length field
                    // onto data, a section onto another…).
                    let from = self.pick(len);
                    let n = (1 + self.pick(32)).min(len - from);
                    let chunk = bytes[from..from + n].to_vec();
                    let to = self.pick(len);
                    let end = (to + n).min(len);
                    bytes[to..end].copy_from_slice(&chunk[..end - to]);
                }
                _ => bytes.push(self.rng.next_u64() as u8),
            }
        }
    }

    /// Run one case; `Err` on a broken invariant.
    pub fn case(&mut self) -> Result<(), Finding> {
        let n = self.stats.cases;
        self.stats.cases += 1;
        if self.rng.below(2) == 0 {
            let i = self.pick(self.artifacts.len());
            let (version, original) = self.artifacts[i].clone();
            let mut bytes = original.clone();
            self.mutate(&mut bytes);
            self.container_case(n, version, &original, bytes)
        } else {
            let i = self.pick(self.payloads.len());
            let mut payload = self.payloads[i].clone();
            self.mutate(&mut payload);
            self.payload_case(n, payload)
        }
    }

    fn container_case(&mut self, n: u64, version: u16, original: &[u8], bytes: Vec<u8>) -> Result<(), Finding> {
        let container = match Container::parse(&bytes, u64::MAX) {
            Ok(c) => c,
            Err(_) => {
                self.stats.rejected_structure += 1;
                return Ok(());
            }
        };
        match container.verify(&self.ring) {
            Err(_) => self.stats.rejected_signature += 1,
            Ok(verified) => {
                if version == 2 && bytes != original && container.version == 2 {
                    return Err(Finding { case: n, what: "a modified v2 artifact verified".into(), input: bytes });
                }
                if Payload::decode(verified.payload).is_ok() {
                    self.stats.decoded += 1;
                }
            }
        }
        Ok(())
    }

    fn payload_case(&mut self, n: u64, payload: Vec<u8>) -> Result<(), Finding> {
        let Ok(sealed) = seal_version(2, self.ring.active(), &self.header, &payload) else {
            return Ok(());
        };
        let verified = Container::parse(&sealed, u64::MAX)
            .and_then(|c| c.verify(&self.ring))
            .map_err(|e| Finding { case: n, what: format!("a freshly sealed artifact failed: {e}"), input: sealed.clone() })?;
        // The in-place decoder must agree with the copying one, at an
        // aligned and at an unaligned position.
        let copied = Payload::decode(verified.payload);
        for shift in [0usize, 1] {
            let mut framed = vec![0u8; shift];
            framed.extend_from_slice(verified.payload);
            let buffer = std::sync::Arc::new(crate::model::AlignedBytes::copy_of(&framed, 0));
            let shared = Payload::decode_shared(&buffer, shift..framed.len());
            if shared.as_ref().ok() != copied.as_ref().ok() || shared.is_ok() != copied.is_ok() {
                return Err(Finding { case: n, what: "the in-place decoder disagrees with the copying one".into(), input: payload });
            }
        }
        match copied {
            Err(_) => self.stats.rejected_payload += 1,
            Ok(decoded) => {
                if decoded.encode() != payload {
                    return Err(Finding { case: n, what: "a decoded payload re-encodes differently".into(), input: payload });
                }
                self.stats.decoded += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_seeded_run_finds_nothing() {
        for seed in [1, 2, 3] {
            let mut f = Fuzzer::new(seed);
            for _ in 0..3_000 {
                if let Err(finding) = f.case() {
                    panic!("seed {seed}, case {}: {} ({} bytes)", finding.case, finding.what, finding.input.len());
                }
            }
            let s = f.stats;
            assert!(s.rejected_structure > 0 && s.rejected_signature > 0 && s.rejected_payload > 0, "{s:?}");
        }
    }

    #[test]
    fn the_same_seed_replays_the_same_inputs() {
        let (mut a, mut b) = (Fuzzer::new(9), Fuzzer::new(9));
        let mut x = a.payloads[0].clone();
        let mut y = b.payloads[0].clone();
        for _ in 0..50 {
            a.mutate(&mut x);
            b.mutate(&mut y);
        }
        assert_eq!(x, y);
    }
}
