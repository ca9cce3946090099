//! Artifacts: the only thing `train` and `serve` share, so they carry the
//! trust.
//!
//! - [`keys`]: the signing key ring (`RECOTEM_SIGNING_KEYS`).
//! - [`container`]: the signed container (v2 written, v1 and v2 verified).
//! - [`payload`]: the typed binary payload (ids, model, history).
//! - [`store`]: atomic writes, versioning pointers and bounded reads.
//! - [`fuzz`]: the seeded mutation fuzzer of container + payload decoding.

pub mod container;
pub mod fuzz;
pub mod keys;
pub mod payload;
pub mod store;

pub use container::{Container, VerifiedArtifact};
pub use keys::KeyRing;
