//! The core of recotem, free of the plugin runtime: everything `train`,
//! `inspect` and `serve` share about models and artifacts.
//!
//! - [`error`]: the one error taxonomy and its exit codes;
//! - [`event`]: structured events, emitted through `tracing`;
//! - [`model`]: the model kinds the host scores natively, and their scoring;
//! - [`ids`]: id tables (external id ↔ dense index);
//! - [`artifact`]: the signed container, key ring, payload codec and atomic
//!   writes;
//! - [`util`]: digests, random ids, canonical JSON, time stamps.
//!
//! CSR, top-k, the seeded RNG and the dense kernels come from
//! [`recotem_numerics`] (re-exported as [`numerics`]), which the trainer
//! components share.

#![warn(missing_docs)]

pub mod artifact;
pub mod error;
pub mod event;
pub mod ids;
pub mod model;
pub mod util;

pub use error::{Error, Result};
pub use recotem_numerics as numerics;
