//! recotem: recipe-driven recommender training and serving, where every data
//! source and every trainer runs as a sandboxed WebAssembly component.
//!
//! The binary (`src/main.rs`) is a thin shell over [`cli::main`]. Modules are
//! organised by concern:
//!
//! - [`cli`]: argument parsing and one file per subcommand;
//! - [`recipe`]: the recipe model, loading and validation;
//! - [`error`]: the one error taxonomy and its exit codes;
//! - [`events`]: structured log events;
//! - [`artifact`]: the signed container, key ring, payload codec, atomic writes;
//! - [`plugin`]: the wasm engine, sandbox, registry and typed calls;
//! - [`data`]: interactions, id interning, cleansing, split;
//! - [`train`]: the training pipeline and the hyper-parameter search;
//! - [`model`]: native scoring of every model kind;
//! - [`serve`]: the HTTP API (`recotem serve`), registry and hot swap.

pub mod artifact;
pub mod cli;
pub mod data;
pub mod error;
pub mod events;
pub mod model;
pub mod plugin;
pub mod recipe;
pub mod serve;
pub mod train;
pub mod util;

pub use error::{Error, Result};
