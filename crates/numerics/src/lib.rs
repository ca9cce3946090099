//! Numerical building blocks shared by the recotem host (evaluation, serving)
//! and the trainer components (inside wasm). It has no dependencies and no
//! I/O, so it builds unchanged for the host and for `wasm32-wasip2`; the
//! guest SDK re-exports it as `recotem_guest_sdk::numerics`.
//!
//! - [`Csr`]: a sparse matrix in compressed-row form, with validation and
//!   transpose; [`CsrBuilder`] builds one row by row.
//! - [`Rng`]: a seeded SplitMix64 generator, identical on every platform.
//! - [`top_k`]: bounded top-k selection with exclusions.
//! - dense kernels over contiguous row-major `f32`: [`dot`], [`axpy`],
//!   [`scale`], [`matvec`], [`matmul`], [`gram`] (XᵀX), [`row_gram_f64`]
//!   (XXᵀ);
//! - solvers: [`cholesky_in_place`], [`cholesky_solve`],
//!   [`spd_inverse_in_place`], [`conjugate_gradient`],
//!   [`orthonormalize_rows`] (modified Gram–Schmidt), [`symmetric_eigen`]
//!   (Jacobi);
//! - sparse kernels: [`csr_mul_dense_t`] (sparse × dense),
//!   [`gram_lower_dense`] (dense XᵀX of a sparse X), [`cooccurrence_top_k`]
//!   (item-item similarity rows with top-k pruning), [`SparseAccumulator`];
//! - [`ials_solve_rows`]: the iALS half-epoch kernel (conjugate gradient
//!   per row), used by the IALS trainer and the host's `linalg` import.
//!
//! - [`prefetch`]: a cache hint for loops that know their next scattered
//!   reads.
//!
//! No kernel allocates per element. The hot loops are written so the
//! compiler vectorises them (see `dense.rs`); the components are built with
//! `simd128` (see `.cargo/config.toml`), the host with its native target.

#![warn(missing_docs)]

mod block;
mod csr;
mod dense;
mod eigen;
mod hint;
mod ials;
mod linalg;
mod rng;
mod sparse;
mod topk;

pub use block::dot_block;
pub use csr::Csr;
pub use dense::{LANES, axpy, dot, dot_f64, gram, matmul, matvec, row_gram_f64, scale};
pub use eigen::symmetric_eigen;
pub use hint::prefetch;
pub use ials::{IalsStep, ials_gram, ials_solve_rows};
pub use linalg::{
    CgWorkspace, NotPositiveDefinite, cholesky_in_place, cholesky_solve, conjugate_gradient, orthonormalize_rows,
    spd_inverse_in_place,
};
pub use rng::Rng;
pub use sparse::{CsrBuilder, SparseAccumulator, cooccurrence_top_k, csr_mul_dense_t, gram_lower_dense, keep_top_k};
pub use topk::top_k;
