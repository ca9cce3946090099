//! Interaction data: reading batches from a source, interning ids,
//! cleansing, and splitting for evaluation.

pub mod ingest;
pub mod interactions;
pub mod item_metadata;
pub mod split;
pub mod time;

pub use interactions::{Interactions, Interner};
pub use split::{Split, Splits, split, split_fixed, split_random, splits};
