//! The wasmtime engine shared by every plugin, its compiled-code cache and
//! the epoch ticker that enforces call deadlines.
//!
//! Compiling a component with Cranelift costs hundreds of milliseconds; a CLI
//! call should not pay it every time. Compiled code is cached on disk, keyed
//! by the component's SHA-256 and the engine's compatibility hash (so a new
//! recotem or wasmtime never loads stale code):
//! `$RECOTEM_CACHE_DIR`, else `$XDG_CACHE_HOME/recotem`, else
//! `$HOME/.cache/recotem`. The directory is created with mode 0700 and files
//! are written atomically (temporary file + rename). Loading cached code
//! trusts the directory: keep it writable only by the user running recotem.
//! Set `RECOTEM_CACHE_DIR=off` to disable the cache.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

use super::sandbox::{self, HostState};
use crate::error::{Error, Result};
use crate::events::Event;

/// Resolution of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The engine, the linkers of both worlds and the compiled-code cache.
pub struct Runtime {
    engine: Engine,
    source_linker: Linker<HostState>,
    network_source_linker: Linker<HostState>,
    trainer_linker: Linker<HostState>,
    cache: Option<PathBuf>,
    engine_key: String,
}

impl Runtime {
    /// Create the engine and linkers; start the deadline ticker.
    pub fn new() -> Result<Self> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(super::limits::MAX_WASM_STACK)
            .cranelift_opt_level(wasmtime::OptLevel::Speed);
        let engine = Engine::new(&config).map_err(|e| Error::internal(format!("creating the wasm engine: {e}")))?;
        start_ticker(&engine);

        let mut source_linker = Linker::new(&engine);
        sandbox::add_wasi_to_linker(&mut source_linker).map_err(internal)?;
        super::bindings::source::Source::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut source_linker,
            |s| s,
        )
        .map_err(internal)?;
        let mut network_source_linker = source_linker.clone();
        sandbox::add_network_to_linker(&mut network_source_linker).map_err(internal)?;
        let mut trainer_linker = Linker::new(&engine);
        sandbox::add_wasi_to_linker(&mut trainer_linker).map_err(internal)?;
        // Linked so that a runtime importing sockets loads; a trainer's store
        // never has a network grant, so every use is refused.
        sandbox::add_network_to_linker(&mut trainer_linker).map_err(internal)?;
        super::bindings::trainer::Trainer::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut trainer_linker,
            |s| s,
        )
        .map_err(internal)?;

        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());

        Ok(Runtime { engine, source_linker, network_source_linker, trainer_linker, cache: cache_dir(), engine_key })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Linker for `source` components.
    pub fn source_linker(&self) -> &Linker<HostState> {
        &self.source_linker
    }

    /// Linker for `source` components granted network endpoints: the source
    /// linker plus `wasi:sockets` TCP and name lookup.
    pub fn network_source_linker(&self) -> &Linker<HostState> {
        &self.network_source_linker
    }

    /// Linker for `trainer` components.
    pub fn trainer_linker(&self) -> &Linker<HostState> {
        &self.trainer_linker
    }

    /// True when compiled code is cached on disk (`RECOTEM_CACHE_DIR` is not
    /// `off`).
    pub fn caches(&self) -> bool {
        self.cache.is_some()
    }

    /// Compile `bytes` (whose SHA-256 is `digest`), or load the cached code.
    pub fn compile(&self, name: &str, digest: &str, bytes: &[u8]) -> Result<Component> {
        let cached = self.cache.as_ref().map(|dir| dir.join(format!("{digest}-{}.cwasm", self.engine_key)));
        if let Some(path) = &cached
            && path.is_file()
        {
            // SAFETY: the file was produced by `Component::serialize` of
            // this same engine configuration (the key covers the engine's
            // compatibility hash and recotem's version) and written
            // atomically into a directory only this user can write.
            match unsafe { Component::deserialize_file(&self.engine, path) } {
                Ok(component) => {
                    Event::debug("component_cache_hit").field("component", name).emit();
                    return Ok(component);
                }
                Err(e) => Event::warn("component_cache_invalid")
                    .field("component", name)
                    .field("error", e.to_string())
                    .emit(),
            }
        }
        let started = std::time::Instant::now();
        let component = Component::new(&self.engine, bytes).map_err(|e| {
            Error::data_source(format!("component {name}: not a valid WebAssembly component: {e}"))
        })?;
        Event::debug("component_compiled")
            .field("component", name)
            .field("seconds", started.elapsed().as_secs_f64())
            .field("cached", cached.is_some())
            .emit();
        if let Some(path) = &cached
            && let Err(e) = write_cache(path, &component)
        {
            Event::warn("component_cache_write_failed").field("component", name).field("error", e).emit();
        }
        Ok(component)
    }
}

fn internal(e: wasmtime::Error) -> Error {
    Error::internal(format!("setting up the plugin linker: {e}"))
}

fn cache_dir() -> Option<PathBuf> {
    let dir = crate::settings::get().cache_dir.clone()?;
    if dir.as_os_str() == "off" {
        return None;
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&dir).ok()?;
    Some(dir)
}

fn write_cache(path: &Path, component: &Component) -> std::result::Result<(), String> {
    let bytes = component.serialize().map_err(|e| e.to_string())?;
    let dir = path.parent().ok_or("cache path has no parent")?;
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), crate::util::random_hex(6).map_err(|e| e.to_string())?));
    std::fs::write(&tmp, &bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}

fn start_ticker(engine: &Engine) {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("recotem-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map(|_| ())
            .unwrap_or(());
    });
}

/// Set the store's deadline `timeout` from now. The store checks it (and a
/// cancellation) at every epoch tick while wasm runs.
pub fn arm_deadline(store: &mut Store<HostState>, timeout: Duration) {
    store.data_mut().set_deadline(timeout);
    store.set_epoch_deadline(1);
}

/// Why a call into a plugin did not return normally.
#[derive(Debug)]
pub enum CallFailure {
    /// The deadline passed; the call was stopped.
    Timeout(Duration),
    /// The plugin trapped (panic, out of bounds, memory limit, bad data).
    Trap(String),
    /// The run was cancelled (SIGINT/SIGTERM) and the call did not return
    /// within the grace period.
    Cancelled,
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFailure::Timeout(d) => write!(f, "did not finish within its {:.1} s deadline and was stopped", d.as_secs_f64()),
            CallFailure::Trap(m) => write!(f, "trapped: {m}"),
            CallFailure::Cancelled => write!(f, "{}", super::sandbox::Cancelled),
        }
    }
}

/// Classify an error returned by a call into the plugin.
pub fn classify(error: wasmtime::Error, store: &Store<HostState>, timeout: Duration) -> CallFailure {
    if let Some(wasmtime::Trap::Interrupt) = error.downcast_ref::<wasmtime::Trap>() {
        return CallFailure::Timeout(timeout);
    }
    if error.downcast_ref::<super::sandbox::Cancelled>().is_some() {
        return CallFailure::Cancelled;
    }
    // The reason, without wasmtime's "error while executing at wasm
    // backtrace" preamble; the backtrace itself is not kept.
    let root = error.root_cause().to_string();
    let mut message = if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        format!("the plugin called exit (status {}) instead of returning", exit.0)
    } else if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        let hint = match trap {
            wasmtime::Trap::StackOverflow => " (wasm stack limit reached: unbounded recursion?)",
            wasmtime::Trap::MemoryOutOfBounds => " (a crash inside the plugin, e.g. its own stack overflowing)",
            wasmtime::Trap::UnreachableCodeReached => " (a panic or abort inside the plugin)",
            _ => "",
        };
        format!("{trap}{hint}")
    } else if root.contains("fuel allocated for hostcalls has been exhausted") {
        "it returned more data in one call than the host accepts (the batch or payload caps, see docs/security.md)".to_string()
    } else {
        root.lines().next().unwrap_or_default().to_string()
    };
    if message.is_empty() {
        message = "unknown failure".into();
    }
    let stderr = store.data().stderr_tail();
    if !stderr.is_empty() {
        message = format!("{message}; plugin stderr: {stderr}");
    }
    if let Some(refusal) = store.data().memory_refusal() {
        message = format!("{message}; {refusal}");
    }
    CallFailure::Trap(message)
}
