//! Build recotem plugins in Rust.
//!
//! A recotem plugin is a WebAssembly component (target `wasm32-wasip2`) that
//! implements one world of the `recotem:plugin` WIT package (see `wit/` in the
//! recotem repository): a **data source**, which turns bytes into column
//! batches, or a **trainer**, which turns an interaction matrix into a model
//! the host can score.
//!
//! This crate holds the generated bindings, a trait per world, an export macro
//! per world and the helpers most plugins need:
//!
//! - [`source::Source`] + [`export_source!`]: describe, probe and read.
//! - [`trainer::Trainer`] + [`export_trainer!`]: describe and train;
//!   [`trainer::EarlyStopping`] reports intermediate models (WIT 0.2.1),
//!   [`trainer::linalg`] offers host-native linear algebra (WIT 0.2.1) and
//!   host-held iALS factors (0.2.2); [`trainer::Trainer::train_by_shape`]
//!   trains without the matrix copied in (0.2.2).
//! - [`InputReader`]: `std::io::Read` over the stream the host hands a source.
//! - [`BatchBuilder`]: build column batches without per-row allocations.
//! - [`log`]: structured log lines attributed to the plugin.
//!
//! A minimal source, complete:
//!
//! ```no_run
//! use recotem_guest_sdk::prelude::*;
//!
//! struct Lines;
//!
//! impl Source for Lines {
//!     type Reader = LinesReader;
//!     fn describe() -> SourceInfo {
//!         SourceInfo::new("lines", env!("CARGO_PKG_VERSION"), "one item per line, user = line number")
//!             .with_capability(Capability::InputStream)
//!     }
//!     fn open(_config: &str, data: Option<Input>, _columns: Vec<String>) -> Result<LinesReader, PluginError> {
//!         let data = data.ok_or_else(|| PluginError::invalid_config("an input stream is required"))?;
//!         let mut text = String::new();
//!         std::io::Read::read_to_string(&mut InputReader::new(data), &mut text)
//!             .map_err(|e| PluginError::io(e.to_string()))?;
//!         Ok(LinesReader { lines: text.lines().map(str::to_owned).collect(), done: false })
//!     }
//! }
//!
//! struct LinesReader { lines: Vec<String>, done: bool }
//!
//! impl BatchReader for LinesReader {
//!     fn next_batch(&mut self, _max_rows: u32) -> Result<Option<Batch>, PluginError> {
//!         if std::mem::replace(&mut self.done, true) { return Ok(None); }
//!         let mut b = BatchBuilder::new(&["user", "item"]);
//!         for (n, line) in self.lines.iter().enumerate() {
//!             b.utf8(0).push(&n.to_string());
//!             b.utf8(1).push(line);
//!         }
//!         Ok(Some(b.finish()))
//!     }
//! }
//!
//! export_source!(Lines);
//! ```

#![warn(missing_docs)]

mod batch;
mod error;
mod input;
pub mod log;
pub mod source;
pub mod testing;
pub mod trainer;

pub use batch::{BatchBuilder, ColumnBuilder};
pub use input::InputReader;

/// Numerical kernels shared with the host (CSR, seeded RNG, top-k, dense
/// kernels): trainers and the host's evaluation use one implementation.
pub use recotem_numerics as numerics;

/// Types of the `recotem:plugin/types` interface, shared by every world.
pub use source::bindings::recotem::plugin::types::{
    Batch, Column, ColumnData, CsrMatrix, DenseFactors, ErrorKind, FactorModel, LogLevel, Model,
    ModelKind, Param, ParamValue, PluginError, Utf8Column,
};

/// The version of the `recotem:plugin` WIT package these bindings target
/// (read from `wit/package.wit` at build time).
pub const WIT_VERSION: &str = include!(concat!(env!("OUT_DIR"), "/wit_version.rs"));

/// Everything a plugin usually needs, in one `use`.
pub mod prelude {
    pub use crate::source::{BatchReader, Capability, Input, ProbeOutcome, Source, SourceInfo};
    pub use crate::numerics::Csr;
    pub use crate::trainer::{
        Categorical, EarlyStopping, FloatRange, IntRange, MatrixShape, ParamDomain, ParamSpec, Params, Trained, Trainer,
        TrainerInfo, csr_matrix, factor_model, fetch_interactions, interactions,
    };
    pub use crate::{
        Batch, BatchBuilder, Column, ColumnBuilder, ColumnData, CsrMatrix, DenseFactors,
        ErrorKind, FactorModel, InputReader, Model, ModelKind, Param, ParamValue, PluginError,
        Utf8Column, export_source, export_trainer, log,
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::source::bindings::__export_source_world;
    pub use crate::trainer::bindings::__export_trainer_world;
}
