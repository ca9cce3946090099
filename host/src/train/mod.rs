//! Training: the pipeline from recipe to signed artifact ([`pipeline`]), the
//! hyper-parameter search ([`search`]) and host-side evaluation ([`eval`]).

pub mod eval;
pub mod pipeline;
pub mod search;

pub use pipeline::{RunFacts, TrainOptions, run};
