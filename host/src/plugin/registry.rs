//! Every component recotem can use: the built-ins embedded in the binary and
//! the `*.wasm` files of the plugin directory (`--plugin-dir` or
//! `RECOTEM_PLUGIN_DIR`). Each is classified by the world it exports and
//! refused when built against an incompatible version of the WIT package.

use std::path::{Path, PathBuf};

use wasmtime::component::Component;

use super::engine::Runtime;
use super::source::SourceComponent;
use super::trainer::TrainerComponent;
use crate::error::{Error, Result};

include!(concat!(env!("OUT_DIR"), "/builtin_components.rs"));

/// The version of the `recotem:plugin` package this host speaks.
pub const WIT_VERSION: &str = "0.1.0";

const SOURCE_EXPORT: &str = "recotem:plugin/source-plugin@";
const TRAINER_EXPORT: &str = "recotem:plugin/trainer-plugin@";

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `recotem:plugin/source`.
    Source,
    /// `recotem:plugin/trainer`.
    Trainer,
}

/// Loaded components by kind.
pub struct Registry {
    /// Data sources, built-ins first.
    pub sources: Vec<SourceComponent>,
    /// Trainers, built-ins first.
    pub trainers: Vec<TrainerComponent>,
}

impl Registry {
    /// Load the built-ins and every `*.wasm` of `plugin_dir`.
    pub fn load(runtime: &Runtime, plugin_dir: Option<&Path>) -> Result<Self> {
        let mut registry = Registry { sources: Vec::new(), trainers: Vec::new() };
        for (name, bytes) in BUILTIN_COMPONENTS {
            registry.add(runtime, &format!("builtin:{name}"), bytes)?;
        }
        if let Some(dir) = plugin_dir {
            for path in plugin_files(dir)? {
                let bytes = std::fs::read(&path).map_err(|e| {
                    Error::DataSource(format!("plugin {}: cannot read it: {e}", path.display()))
                })?;
                registry.add(runtime, &path.display().to_string(), &bytes)?;
            }
        }
        Ok(registry)
    }

    fn add(&mut self, runtime: &Runtime, origin: &str, bytes: &[u8]) -> Result<()> {
        let digest = crate::util::sha256_hex(bytes);
        let component = runtime.compile(origin, &digest, bytes)?;
        match kind_of(runtime, origin, &component)? {
            Kind::Source => {
                let source = SourceComponent::load(runtime, origin, &digest, &component)?;
                if let Some(existing) = self.sources.iter().find(|s| s.type_name() == source.type_name()) {
                    return Err(Error::DataSource(format!(
                        "two components declare the source type {:?}: {} and {}; remove one from the plugin directory",
                        source.type_name(),
                        existing.origin,
                        origin
                    )));
                }
                self.sources.push(source);
            }
            Kind::Trainer => {
                let trainer = TrainerComponent::load(runtime, origin, &digest, &component)?;
                let names = std::iter::once(&trainer.info.name).chain(&trainer.info.aliases);
                for name in names {
                    if let Some(existing) = self.trainers.iter().find(|t| t.answers_to(name)) {
                        return Err(Error::DataSource(format!(
                            "two components answer to the algorithm name {name:?}: {} and {}; remove one from the plugin directory",
                            existing.origin, origin
                        )));
                    }
                }
                self.trainers.push(trainer);
            }
        }
        Ok(())
    }

    /// The source for `type_name`; an unknown type is a recipe error that
    /// lists the registered types.
    pub fn source(&self, type_name: &str) -> Result<&SourceComponent> {
        self.sources.iter().find(|s| s.type_name() == type_name).ok_or_else(|| {
            let known: Vec<&str> = self.sources.iter().map(|s| s.type_name()).collect();
            Error::Recipe(format!(
                "source.type: unknown data source {type_name:?}; registered types: {}",
                known.join(", ")
            ))
        })
    }

    /// The trainer answering to `name` (case-insensitive, aliases included).
    pub fn trainer(&self, name: &str) -> Option<&TrainerComponent> {
        self.trainers.iter().find(|t| t.answers_to(name))
    }

    /// Canonical names of every trainer.
    pub fn trainer_names(&self) -> Vec<&str> {
        self.trainers.iter().map(|t| t.info.name.as_str()).collect()
    }
}

fn plugin_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::Config(format!("plugin directory {}: cannot list it: {e}", dir.display()))
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::Config(format!("plugin directory {}: {e}", dir.display())))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Find the world a component exports and check its WIT version.
fn kind_of(runtime: &Runtime, origin: &str, component: &Component) -> Result<Kind> {
    let ty = component.component_type();
    for (name, _) in ty.exports(runtime.engine()) {
        let (kind, version) = if let Some(v) = name.strip_prefix(SOURCE_EXPORT) {
            (Kind::Source, v)
        } else if let Some(v) = name.strip_prefix(TRAINER_EXPORT) {
            (Kind::Trainer, v)
        } else {
            continue;
        };
        if !compatible(version, WIT_VERSION) {
            return Err(Error::DataSource(format!(
                "component {origin}: built for recotem:plugin@{version}, but this recotem speaks \
                 recotem:plugin@{WIT_VERSION}; rebuild it against a compatible guest SDK"
            )));
        }
        return Ok(kind);
    }
    Err(Error::DataSource(format!(
        "component {origin}: exports neither {SOURCE_EXPORT}{WIT_VERSION} nor {TRAINER_EXPORT}{WIT_VERSION}; \
         it is not a recotem plugin"
    )))
}

/// Semver compatibility: same major, and for 0.x the same minor.
pub fn compatible(theirs: &str, ours: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match (parse(theirs), parse(ours)) {
        (Some((0, a)), Some((0, b))) => a == b,
        (Some((a, _)), Some((b, _))) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn semver_compatibility() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("2.0.0", "1.0.0"));
        assert!(!compatible("x", "0.1.0"));
    }
}
