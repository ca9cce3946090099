//! recotem: recipe-driven recommender training and serving, where every data
//! source and every trainer runs as a sandboxed WebAssembly component.
//!
//! The binary (`src/main.rs`) is a thin shell over [`cli::main`]. Layers, each
//! using only those below it (see `docs/architecture.md`):
//!
//! - [`cli`]: argument parsing and one file per subcommand;
//! - [`settings`]: every environment variable, validated once;
//! - [`train`]: the training pipeline as stages, the search, evaluation;
//! - [`serve`]: the HTTP API, auth, the model registry and its watcher;
//! - [`data`]: interactions, cleansing, splits, source inputs;
//! - [`plugin`]: the wasm runtime — engine, sandbox, registry, grants;
//! - [`recipe`]: the recipe model, loading and validation;
//! - [`events`]: the event log (a `tracing` subscriber);
//! - `recotem-core` (re-exported as [`artifact`], [`model`], [`error`]):
//!   models, artifacts, errors — no wasmtime;
//! - `recotem-numerics`: CSR, RNG, top-k, dense kernels, shared with trainers.

pub mod cli;
pub mod data;
pub mod events;
pub mod plugin;
pub mod recipe;
pub mod serve;
pub mod settings;
pub mod train;
pub mod util;

pub use recotem_core::{Error, Result, artifact, error, model};

/// The layers of `docs/architecture.md`, enforced: a module may use only the
/// modules of lower layers (and itself). Arrows run one way, so there are no
/// module cycles.
#[cfg(test)]
mod layering {
    /// Host modules, lowest first; modules on one line share a layer but
    /// must not use each other.
    const LAYERS: &[&[&str]] = &[
        &["util", "events"],
        &["settings"],
        &["recipe"],
        &["plugin"],
        &["data"],
        &["train", "serve"],
        &["cli"],
    ];

    fn rank(module: &str) -> Option<usize> {
        LAYERS.iter().position(|layer| layer.contains(&module))
    }

    #[test]
    fn modules_only_use_lower_layers() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut violations = Vec::new();
        for entry in std::fs::read_dir(&src).unwrap().flatten() {
            let path = entry.path();
            let Some(module) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else { continue };
            let Some(own) = rank(&module) else { continue };
            let files: Vec<std::path::PathBuf> = if path.is_dir() {
                std::fs::read_dir(&path).unwrap().flatten().map(|e| e.path()).collect()
            } else {
                vec![path.clone()]
            };
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                for (i, _) in text.match_indices("crate::") {
                    let used: String = text[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if used == module {
                        continue;
                    }
                    if let Some(r) = rank(&used)
                        && r >= own
                    {
                        violations.push(format!("{} uses crate::{used}", file.display()));
                    }
                }
            }
        }
        violations.sort();
        violations.dedup();
        assert!(violations.is_empty(), "layering violations:\n{}", violations.join("\n"));
    }
}
