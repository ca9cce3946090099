//! Black-box tests: they run the real `recotem` binary against real
//! components and check exit codes, stdout and the JSON events on stderr.
//!
//! One module per concern; `common` holds the harness.

mod artifact;
mod boundary;
mod common;
mod data;
mod early_stop;
mod help;
mod http;
mod ials_paths;
mod inspect;
mod parquet;
mod plugins;
mod python_plugin;
mod recipe;
mod runtime;
mod sandbox;
mod serve;
mod search;
mod train;
mod trainers;
