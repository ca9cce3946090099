//! Every component recotem can use: the built-ins embedded in the binary and
//! the `*.wasm` files of the plugin directory (`--plugin-dir` or
//! `RECOTEM_PLUGIN_DIR`). Each is classified by the world it exports and
//! refused when built against an incompatible version of the WIT package.

use std::path::{Path, PathBuf};

use wasmtime::component::Component;

use super::engine::Runtime;
use super::policy::{Grants, Needs, Policy};
use super::source::SourceComponent;
use super::surface::{self, Import};
use super::trainer::TrainerComponent;
use crate::error::{Error, Result, TrainingCode};

include!(concat!(env!("OUT_DIR"), "/builtin_components.rs"));

/// The version of the `recotem:plugin` package this host speaks.
pub const WIT_VERSION: &str = env!("RECOTEM_WIT_VERSION");

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

impl Kind {
    /// `source` or `trainer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Trainer => "trainer",
        }
    }
}

/// What the host knows about one component, whether it was accepted or not:
/// the facts `recotem plugins` reports.
#[derive(Debug, Clone)]
pub struct Profile {
    /// `builtin:<crate>` or the file path.
    pub origin: String,
    /// SHA-256 of the component bytes.
    pub digest: String,
    /// Size of the component, bytes.
    pub size: usize,
    /// The world it exports, once known.
    pub kind: Option<Kind>,
    /// The `recotem:plugin` version it was built against, once known.
    pub wit_version: Option<String>,
    /// Its own version and description, once `describe` ran.
    pub version: Option<String>,
    /// One line from `describe`.
    pub description: Option<String>,
    /// Its imports, classified.
    pub imports: Vec<Import>,
    /// What it declares it needs.
    pub needs: Needs,
    /// What the policy grants it (and refuses).
    pub grants: Grants,
}

impl Profile {
    fn new(origin: &str, bytes: &[u8]) -> Self {
        Profile::bare(origin, &crate::util::sha256_hex(bytes), bytes.len())
    }

    /// A profile with nothing learned yet.
    pub fn bare(origin: &str, digest: &str, size: usize) -> Self {
        Profile {
            origin: origin.to_string(),
            digest: digest.to_string(),
            size,
            kind: None,
            wit_version: None,
            version: None,
            description: None,
            imports: Vec::new(),
            needs: Needs::default(),
            grants: Grants::default(),
        }
    }

    /// True for components embedded in the binary.
    pub fn builtin(&self) -> bool {
        self.origin.starts_with("builtin:")
    }

    /// The error a refusal of this component maps to: exit 4 for trainers,
    /// exit 3 otherwise.
    pub fn refusal(&self, message: String) -> Error {
        match self.kind {
            Some(Kind::Trainer) => Error::training(TrainingCode::TrainerRejected, message),
            _ => Error::data_source(message),
        }
    }
}

/// A component that was not accepted, and why.
#[derive(Debug)]
pub struct Refused {
    /// What was learned before it was refused.
    pub profile: Profile,
    /// Its name, when `describe` ran.
    pub name: Option<String>,
    /// The error (its message names the layer that refused).
    pub error: Error,
}

/// Loaded components by kind.
pub struct Registry {
    /// Data sources, built-ins first.
    pub sources: Vec<SourceComponent>,
    /// Trainers, built-ins first.
    pub trainers: Vec<TrainerComponent>,
    /// Components refused (only kept by [`Registry::survey`]).
    pub refused: Vec<Refused>,
    /// The policy grants were decided with.
    pub policy: Policy,
}

impl Registry {
    /// Load the built-ins and every `*.wasm` of `plugin_dir` under the
    /// policy of `RECOTEM_PLUGIN_POLICY`. The first refused component fails
    /// the load (exit 3 for sources, 4 for trainers; a bad policy file is
    /// exit 8).
    pub fn load(runtime: &Runtime, plugin_dir: Option<&Path>) -> Result<Self> {
        let policy = Policy::from_env()?;
        let mut registry = Registry::survey_with(runtime, plugin_dir, policy)?;
        if registry.refused.is_empty() {
            return Ok(registry);
        }
        Err(registry.refused.swap_remove(0).error)
    }

    /// Like [`Registry::load`], but keep going: refused components are
    /// listed in `refused` (for `recotem plugins`).
    pub fn survey(runtime: &Runtime, plugin_dir: Option<&Path>) -> Result<Self> {
        Registry::survey_with(runtime, plugin_dir, Policy::from_env()?)
    }

    /// Survey under an explicit policy.
    pub fn survey_with(runtime: &Runtime, plugin_dir: Option<&Path>, policy: Policy) -> Result<Self> {
        let mut registry = Registry { sources: Vec::new(), trainers: Vec::new(), refused: Vec::new(), policy };
        for (name, bytes) in BUILTIN_COMPONENTS {
            registry.add(runtime, &format!("builtin:{name}"), bytes);
        }
        if let Some(dir) = plugin_dir {
            for path in plugin_files(dir)? {
                let origin = path.display().to_string();
                match read_component(&path) {
                    Ok(bytes) => registry.add(runtime, &origin, &bytes),
                    Err(error) => registry.refused.push(Refused { profile: Profile::new(&origin, &[]), name: None, error }),
                }
            }
        }
        Ok(registry)
    }

    /// Load one more component (for `recotem plugins inspect <path>`); a
    /// refusal lands in `refused`.
    pub fn add(&mut self, runtime: &Runtime, origin: &str, bytes: &[u8]) {
        let mut profile = Profile::new(origin, bytes);
        if let Err((name, error)) = self.try_add(runtime, &mut profile, bytes) {
            self.refused.push(Refused { profile, name, error });
        }
    }

    fn try_add(
        &mut self,
        runtime: &Runtime,
        profile: &mut Profile,
        bytes: &[u8],
    ) -> std::result::Result<(), (Option<String>, Error)> {
        let origin = profile.origin.clone();
        let bare = |e: Error| (None, e);
        if self.policy.denies_digest(&profile.digest) {
            return Err(bare(Error::data_source(format!(
                "component {origin}: refused by {}: an entry denies sha256 {}",
                self.policy.origin_label(),
                profile.digest
            ))));
        }
        let component = runtime.compile(&origin, &profile.digest, bytes).map_err(bare)?;
        let (kind, version) = kind_of(runtime, &origin, &component).map_err(bare)?;
        profile.kind = Some(kind);
        profile.wit_version = Some(version);
        profile.imports = surface::imports(runtime.engine(), &component, kind);
        surface::check(&origin, kind, &profile.imports).map_err(|m| (None, profile.refusal(m)))?;
        match kind {
            Kind::Source => {
                let sockets = surface::imports_sockets(&profile.imports);
                let source = SourceComponent::load(runtime, &origin, &profile.digest, &component, sockets)
                    .map_err(bare)?;
                let name = source.type_name().to_string();
                let named = |e: Error| (Some(name.clone()), e);
                profile.version = Some(source.info.version.clone());
                profile.description = Some(source.info.description.clone());
                // Sockets without a declared `network` stay linked, every
                // use refused: they ask for (and get) no grant.
                let declares_network = source.declares_network();
                surface::seal_undeclared_network(&mut profile.imports, declares_network);
                profile.needs = source.needs(sockets && declares_network);
                profile.grants = Grants::decide(&self.policy, &name, false, &profile.digest, &profile.needs);
                if let Some(first) = profile.grants.refusals.first() {
                    return Err(named(profile.refusal(format!("component {origin} (source {name:?}): {first}"))));
                }
                if let Some(existing) = self.sources.iter().find(|s| s.type_name() == name) {
                    return Err(named(Error::data_source(format!(
                        "two components declare the source type {name:?}: {} and {origin}; remove one from the plugin directory",
                        existing.profile.origin
                    ))));
                }
                self.sources.push(source.with_profile(profile.clone()));
            }
            Kind::Trainer => {
                let trainer = TrainerComponent::load(runtime, &origin, &profile.digest, &component)
                    .map_err(|e| (None, profile.refusal(e.to_string())))?;
                let name = trainer.info.name.clone();
                let named = |e: Error| (Some(name.clone()), e);
                profile.version = Some(trainer.info.version.clone());
                profile.description = Some(trainer.info.description.clone());
                profile.grants = Grants::decide(&self.policy, &name, true, &profile.digest, &profile.needs);
                if let Some(first) = profile.grants.refusals.first() {
                    return Err(named(profile.refusal(format!("component {origin} (trainer {name:?}): {first}"))));
                }
                let names = std::iter::once(&trainer.info.name).chain(&trainer.info.aliases);
                for alias in names {
                    if let Some(existing) = self.trainers.iter().find(|t| t.answers_to(alias)) {
                        // Duplicates are exit 3 for both kinds, as for source types.
                        return Err(named(Error::data_source(format!(
                            "two components answer to the algorithm name {alias:?}: {} and {origin}; remove one from the plugin directory",
                            existing.profile.origin
                        ))));
                    }
                }
                self.trainers.push(trainer.with_profile(profile.clone()));
            }
        }
        Ok(())
    }

    /// The source for `type_name`; an unknown type is a recipe error that
    /// lists the registered types.
    pub fn source(&self, type_name: &str) -> Result<&SourceComponent> {
        self.find_source(type_name).ok_or_else(|| {
            Error::recipe(format!(
                "source.type: unknown data source {type_name:?}; registered types: {}",
                self.source_types().join(", ")
            ))
        })
    }

    /// The source component called `type_name`, if registered.
    pub fn find_source(&self, type_name: &str) -> Option<&SourceComponent> {
        self.sources.iter().find(|s| s.type_name() == type_name)
    }

    /// Every registered source type name.
    pub fn source_types(&self) -> Vec<&str> {
        self.sources.iter().map(|s| s.type_name()).collect()
    }

    /// What recipes are checked against: every source type (with its
    /// schema and never-expand fields) and every algorithm name.
    pub fn catalog(&self) -> crate::recipe::Catalog {
        use crate::recipe::catalog::{AlgorithmSpec, SourceSpec};
        crate::recipe::Catalog {
            sources: self
                .sources
                .iter()
                .map(|s| SourceSpec {
                    type_name: s.info.type_name.clone(),
                    config_schema: s.info.config_schema.clone(),
                    never_expand: s.info.never_expand.clone(),
                })
                .collect(),
            algorithms: self
                .trainers
                .iter()
                .map(|t| AlgorithmSpec { name: t.info.name.clone(), aliases: t.info.aliases.clone() })
                .collect(),
        }
    }

    /// The trainer answering to `name` (case-insensitive, aliases included).
    pub fn trainer(&self, name: &str) -> Option<&TrainerComponent> {
        self.trainers.iter().find(|t| t.answers_to(name))
    }

    /// Check a recipe's pins (`plugins.sha256`): each named component must
    /// exist and have exactly that digest.
    pub fn check_pins(&self, pins: &std::collections::BTreeMap<String, String>) -> Result<()> {
        for (name, pin) in pins {
            let found = match self.sources.iter().find(|s| s.type_name() == name) {
                Some(s) => Some(&s.profile),
                None => self.trainer(name).map(|t| &t.profile),
            };
            let Some(profile) = found else {
                return Err(Error::recipe(format!(
                    "plugins.sha256.{name}: no source type or algorithm of that name is registered"
                )));
            };
            if &profile.digest != pin {
                return Err(profile.refusal(format!(
                    "component {} ({name}): refused by the recipe's pin plugins.sha256.{name} = {pin}: its sha256 \
                     is {}; install the pinned build, or review this one and update the pin",
                    profile.origin, profile.digest
                )));
            }
        }
        Ok(())
    }

    /// Canonical names of every trainer.
    pub fn trainer_names(&self) -> Vec<&str> {
        self.trainers.iter().map(|t| t.info.name.as_str()).collect()
    }
}

/// Largest component file read.
const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// Read a component file, refusing one larger than [`MAX_COMPONENT_BYTES`]
/// before reading it.
pub fn read_component(path: &Path) -> Result<Vec<u8>> {
    let fail = |what: String| Error::data_source(format!("component {}: {what}", path.display()));
    let len = std::fs::metadata(path).map_err(|e| fail(format!("cannot read it: {e}")))?.len();
    if len > MAX_COMPONENT_BYTES {
        return Err(fail(format!("{len} bytes is more than the {MAX_COMPONENT_BYTES}-byte limit for a component")));
    }
    std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))
}

fn plugin_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::config(format!("plugin directory {}: cannot list it: {e}", dir.display()))
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::config(format!("plugin directory {}: {e}", dir.display())))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "wasm") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Find the world a component exports and check its WIT version.
fn kind_of(runtime: &Runtime, origin: &str, component: &Component) -> Result<(Kind, String)> {
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
            let e = format!(
                "component {origin}: built for recotem:plugin@{version}, but this recotem speaks \
                 recotem:plugin@{WIT_VERSION} (incompatible major); rebuild it against a guest SDK for \
                 recotem:plugin@{WIT_VERSION}"
            );
            return Err(match kind {
                Kind::Trainer => Error::training(TrainingCode::TrainerRejected, e),
                Kind::Source => Error::data_source(e),
            });
        }
        return Ok((kind, version.to_string()));
    }
    Err(Error::data_source(format!(
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
