//! Numerical building blocks shared by the recotem host (evaluation, serving)
//! and the trainer components (inside wasm). It has no dependencies and no
//! I/O, so it builds unchanged for the host and for `wasm32-wasip2`; the
//! guest SDK re-exports it as `recotem_guest_sdk::numerics`.
//!
//! - [`Csr`]: a sparse matrix in compressed-row form, with validation.
//! - [`Rng`]: a seeded SplitMix64 generator, identical on every platform.
//! - [`top_k`]: bounded top-k selection with exclusions.
//! - [`dot`]: the dense kernels.

#![warn(missing_docs)]

mod csr;
mod dense;
mod rng;
mod topk;

pub use csr::Csr;
pub use dense::dot;
pub use rng::Rng;
pub use topk::top_k;
