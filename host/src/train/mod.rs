//! Training: the pipeline from recipe to signed artifact ([`pipeline`]), the
//! hyper-parameter search ([`search`], sampled by [`tpe`], journaled by
//! [`journal`], shown by [`progress`]), host-side evaluation ([`eval`]) and
//! the per-recipe lock ([`lock`]).

pub mod eval;
pub mod journal;
pub mod lock;
pub mod pipeline;
pub mod progress;
pub mod search;
pub mod tpe;

pub use pipeline::{RunFacts, TrainOptions, run};
