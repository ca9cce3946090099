//! The models being served, by recipe name, and the watcher that keeps
//! them current.
//!
//! Start-up loads the recipes directory leniently (a broken recipe becomes a
//! stub that is "not loaded") and every recipe's artifact in parallel
//! (`RECOTEM_STARTUP_PARALLELISM`). The watcher thread then polls every
//! `RECOTEM_WATCH_INTERVAL` (±10 % jitter): it rescans the directory
//! (recipes added, removed or changed), and for each recipe compares the
//! artifact's change marker (inode, size, mtime of `output.path` and of the
//! file an `append_sha` pointer names). A changed artifact is read, its
//! SHA-256 compared with the serving one, then verified and decoded on the
//! watcher thread and swapped in atomically; requests never wait for it. A
//! bad artifact leaves the old model serving and is reported in
//! `/v1/health/details` and the metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use serde_json::{Map, Value};

use super::metrics::{GlobalMetrics, RecipeMetrics};
use crate::artifact::keys::{KeyRing, sanitize_kid};
use crate::artifact::payload::Payload;
use crate::artifact::store::{self, Caps, LoadStage};
use crate::error::Error;
use crate::events::Event;
use crate::recipe::Catalog;
use crate::recipe::dir::{self, Entry as DirEntry};

/// A decoded, verified model ready to answer requests.
#[derive(Debug)]
pub struct Served {
    /// `sha256:<hex>` of the whole artifact file.
    pub version: String,
    /// Kid that verified it.
    pub kid: String,
    /// When this process loaded it (RFC 3339, microseconds, UTC).
    pub loaded_at: String,
    /// The artifact header.
    pub header: Map<String, Value>,
    /// Ids (indexed for lookup: user id → row, item id → column), model
    /// and history.
    pub payload: Payload,
    /// Each item's metadata as `"field":value` pairs (no braces; empty when
    /// the item has none), `RECOTEM_METADATA_FIELD_DENY` applied. Empty
    /// when no field is served.
    pub metadata_json: Vec<Box<str>>,
}

impl Served {
    /// A header field as a string.
    pub fn header_str(&self, key: &str) -> Option<&str> {
        self.header.get(key).and_then(Value::as_str)
    }
}

/// Why an artifact could not be loaded: the metric/event reason and the
/// error.
#[derive(Debug)]
pub struct LoadFailure {
    /// One of [`super::metrics::REASONS`].
    pub reason: &'static str,
    /// Kid of the container, when it got that far.
    pub kid: Option<String>,
    /// What went wrong.
    pub error: Error,
}

/// What the loader needs besides the path.
pub struct LoadContext {
    /// Read caps.
    pub caps: Caps,
    /// Verification keys.
    pub ring: KeyRing,
    /// Metadata fields never served (lower-case).
    pub deny: Vec<String>,
}

/// Read, verify and decode the artifact at `path` (following one pointer).
/// `Ok(None)` when its version is `unchanged` (the one serving): the bytes
/// were read and verified (the version is the SHA-256 computed during the
/// read), but nothing is decoded again. Callers reach this only when the
/// file's identity (inode, size, mtime) changed.
pub fn load_served(path: &Path, ctx: &LoadContext, unchanged: Option<&str>) -> Result<Option<Served>, LoadFailure> {
    let fail = |reason, kid: Option<&str>, error| LoadFailure { reason, kid: kid.map(sanitize_kid), error };
    // Read with the HMAC and the file's SHA-256 computed during the read;
    // the verified bytes are kept and the model's arrays viewed in place.
    let loaded = store::load_verified(path, ctx.caps.artifact, ctx.caps.payload, &ctx.ring, true).map_err(|(stage, e)| {
        match stage {
            LoadStage::Read => fail("read", None, e),
            LoadStage::Parse => fail("parse", None, e),
            LoadStage::Verify { kid } => {
                let reason = if e.to_string().contains("header") && ctx.ring.get(&kid).is_some() { "header_json" } else { "hmac" };
                fail(reason, Some(&kid), e)
            }
        }
    })?;
    let version = format!("sha256:{}", hex::encode(loaded.sha256.unwrap_or_default()));
    if unchanged == Some(version.as_str()) {
        return Ok(None);
    }
    let kid = loaded.kid.as_str();
    let payload =
        Payload::decode_shared(&loaded.bytes, loaded.payload.clone()).map_err(|e| fail("deserialize", Some(kid), e))?;
    let metadata_json = metadata_fragments(&payload, &ctx.deny).map_err(|e| fail("metadata", Some(kid), e))?;
    Ok(Some(Served {
        version,
        kid: loaded.kid.clone(),
        loaded_at: crate::util::now_rfc3339_micros(),
        header: loaded.header,
        payload,
        metadata_json,
    }))
}

/// Pre-render each item's metadata as JSON members.
fn metadata_fragments(payload: &Payload, deny: &[String]) -> Result<Vec<Box<str>>, Error> {
    let meta = &payload.metadata;
    let n = payload.items.len();
    let kept: Vec<usize> = (0..meta.fields.len())
        .filter(|&f| {
            let name = meta.fields[f].to_ascii_lowercase();
            !deny.contains(&name) && name != "item_id" && name != "score"
        })
        .collect();
    if kept.iter().any(|&f| meta.columns.get(f).is_none_or(|c| c.len() != n)) {
        return Err(Error::artifact("item metadata columns do not cover every item"));
    }
    if kept.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = kept.iter().map(|&f| Value::String(meta.fields[f].to_string()).to_string()).collect();
    Ok((0..n)
        .map(|item| {
            let mut out = String::new();
            for (k, &f) in keys.iter().zip(&kept) {
                if let Some(v) = &meta.columns[f][item] {
                    if !out.is_empty() {
                        out.push(',');
                    }
                    out.push_str(k);
                    out.push(':');
                    out.push_str(&Value::String(v.to_string()).to_string());
                }
            }
            out.into_boxed_str()
        })
        .collect())
}

/// Inode, size and mtime (ns) of a file.
type FileId = (u64, u64, i128);

/// Identity of the artifact files of a recipe at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marker {
    file: FileId,
    target: Option<(String, FileId)>,
}

fn stat(path: &Path) -> std::io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.ino(), m.len(), m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128))
}

fn marker(path: &Path) -> std::io::Result<Marker> {
    let file = stat(path)?;
    let mut target = None;
    if file.1 as usize <= store::MAX_POINTER_BYTES {
        let bytes = std::fs::read(path)?;
        if let Some(name) = store::pointer_target(&bytes) {
            let t = path.parent().unwrap_or(Path::new(".")).join(name);
            target = Some((name.to_string(), stat(&t)?));
        }
    }
    Ok(Marker { file, target })
}

#[derive(Debug, Default)]
struct Status {
    error: Option<String>,
    marker: Option<Marker>,
    disappeared: bool,
}

/// One recipe being served (or registered but not loaded).
#[derive(Debug)]
pub struct Entry {
    /// Recipe name.
    pub name: String,
    recipe_hash: Option<String>,
    artifact: Option<PathBuf>,
    /// The model serving now.
    pub model: ArcSwapOption<Served>,
    status: Mutex<Status>,
    /// Its counters.
    pub metrics: RecipeMetrics,
}

/// Errors shown to operators: one line, at most 200 characters, URIs
/// hidden.
fn short_error(e: &str) -> String {
    let mut out: String = e
        .split_whitespace()
        .map(|w| if w.contains("://") { "<redacted-uri>" } else { w })
        .collect::<Vec<_>>()
        .join(" ");
    if out.len() > 200 {
        let mut cut = 200;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

impl Entry {
    fn status(&self) -> MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last load error, if the entry has one now.
    pub fn error(&self) -> Option<String> {
        self.status().error.clone()
    }
}

/// Every recipe, swapped as a whole when recipes come and go.
pub struct Registry {
    dir: PathBuf,
    catalog: Catalog,
    ctx: LoadContext,
    entries: ArcSwap<BTreeMap<String, Arc<Entry>>>,
    dir_marker: Mutex<Vec<(PathBuf, FileId)>>,
    /// Counters not tied to one recipe.
    pub global: GlobalMetrics,
}

fn dir_marker(dir: &Path) -> std::io::Result<Vec<(PathBuf, FileId)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            out.push((path.clone(), stat(&path).unwrap_or_default()));
        }
    }
    out.sort();
    Ok(out)
}

impl Registry {
    /// Load the directory and every artifact (`parallelism` threads at most;
    /// `None` = min(recipes, 8)). Never fails because of one recipe.
    pub fn start(dir: &Path, catalog: Catalog, ctx: LoadContext, parallelism: Option<usize>) -> Result<Self, Error> {
        let registry = Registry {
            dir: dir.to_path_buf(),
            catalog,
            ctx,
            entries: ArcSwap::from_pointee(BTreeMap::new()),
            dir_marker: Mutex::new(dir_marker(dir).unwrap_or_default()),
            global: GlobalMetrics::default(),
        };
        let listed = registry.scan()?;
        let entries: Vec<Arc<Entry>> = listed.into_iter().map(|(e, _)| Arc::new(e)).collect();
        let started = Instant::now();
        let workers = parallelism.unwrap_or(entries.len().clamp(1, 8)).max(1);
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..workers.min(entries.len().max(1)) {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(entry) = entries.get(i) else { break };
                        registry.refresh(entry, true);
                    }
                });
            }
        });
        let succeeded = entries.iter().filter(|e| e.model.load().is_some()).count();
        Event::info("startup_artifact_load_complete")
            .field("total_recipes", entries.len())
            .field("succeeded", succeeded)
            .field("failed", entries.len() - succeeded)
            .field("wall_seconds", started.elapsed().as_secs_f64())
            .field("max_workers", workers)
            .emit();
        for e in entries.iter().filter(|e| e.model.load().is_none()) {
            Event::warn("recipe_not_loaded_at_startup")
                .field("name", e.name.clone())
                .field("error", e.error().unwrap_or_default())
                .emit();
        }
        registry.entries.store(Arc::new(entries.into_iter().map(|e| (e.name.clone(), e)).collect()));
        Ok(registry)
    }

    /// The entries now.
    pub fn entries(&self) -> arc_swap::Guard<Arc<BTreeMap<String, Arc<Entry>>>> {
        self.entries.load()
    }

    /// Load the directory leniently into fresh entries (not yet loaded),
    /// with each recipe's hash.
    fn scan(&self) -> Result<Vec<(Entry, Option<String>)>, Error> {
        let overrides = BTreeMap::new();
        let options = crate::recipe::LoadOptions { catalog: &self.catalog, env_overrides: &overrides };
        let listed = dir::load_lenient(&self.dir, &options)?;
        Ok(listed
            .into_iter()
            .map(|item| {
                let (name, hash, artifact, error) = match item {
                    DirEntry::Loaded { recipe, .. } => {
                        let raw = &recipe.recipe.output.path;
                        match crate::recipe::paths::local_path(raw) {
                            Some(p) => (recipe.recipe.name.clone(), Some(recipe.hash.clone()), Some(p), None),
                            None => (
                                recipe.recipe.name.clone(),
                                Some(recipe.hash.clone()),
                                None,
                                Some("output.path: remote artifacts are not supported by serve yet".to_string()),
                            ),
                        }
                    }
                    DirEntry::Broken { name, error, .. } => (name, None, None, Some(format!("recipe: {}", short_error(&error)))),
                };
                let entry = Entry {
                    name,
                    recipe_hash: hash.clone(),
                    artifact,
                    model: ArcSwapOption::empty(),
                    status: Mutex::new(Status { error, ..Status::default() }),
                    metrics: RecipeMetrics::default(),
                };
                (entry, hash)
            })
            .collect())
    }

    /// Check one entry's artifact and (re)load it when it changed.
    fn refresh(&self, entry: &Entry, startup: bool) {
        let Some(path) = &entry.artifact else { return };
        let now = match marker(path) {
            Ok(m) => m,
            Err(e) => {
                let mut st = entry.status();
                if entry.model.load().is_some() {
                    if !st.disappeared {
                        st.disappeared = true;
                        Event::warn("artifact_disappeared").field("name", entry.name.clone()).field("error", e.to_string()).emit();
                    }
                    st.error = Some("artifact missing or unreadable".into());
                } else if st.error.is_none() || startup {
                    st.error = Some(short_error(&format!("artifact {}: {e}", path.display())));
                    if startup {
                        entry.metrics.load_failure("read");
                        Event::error("initial_artifact_read_failed").field("name", entry.name.clone()).field("error", e.to_string()).emit();
                    }
                }
                st.marker = None;
                return;
            }
        };
        if entry.status().marker.as_ref() == Some(&now) {
            return;
        }
        let current = entry.model.load_full();
        let result = load_served(path, &self.ctx, current.as_ref().map(|m| m.version.as_str()));
        let mut st = entry.status();
        st.marker = Some(now);
        st.disappeared = false;
        match result {
            Ok(None) => {
                st.error = None;
                Event::info("pointer_unchanged_skip_read").field("name", entry.name.clone()).emit();
            }
            Ok(Some(served)) => {
                st.error = None;
                let event = if startup { "recipe_loaded_into_registry" } else { "artifact_hot_swapped" };
                Event::info(event)
                    .field("name", entry.name.clone())
                    .field("kid", served.kid.clone())
                    .field("trained_at", served.header_str("trained_at").map(str::to_string))
                    .field("model_version", served.version.clone())
                    .emit();
                if !startup {
                    entry.metrics.swap(true);
                }
                entry.model.store(Some(Arc::new(served)));
            }
            Err(f) => {
                entry.metrics.load_failure(f.reason);
                let message = short_error(&f.error.to_string());
                st.error = Some(message.clone());
                let name = if startup { format!("initial_artifact_{}_failed", f.reason) } else { "artifact_load_failed".into() };
                let mut event = Event::error(name)
                    .field("name", entry.name.clone())
                    .field("kid", f.kid.clone())
                    .field("error", message)
                    .field("reason", f.reason);
                if !startup {
                    entry.metrics.swap(false);
                    event = event.field("serving", entry.model.load().as_ref().map(|m| m.version.clone()));
                }
                event.emit();
            }
        }
    }

    /// One watcher pass: rescan the directory when it changed, then check
    /// every artifact.
    pub fn tick(&self) {
        match dir_marker(&self.dir) {
            Ok(now) => {
                let changed = {
                    let mut last = self.dir_marker.lock().unwrap_or_else(|p| p.into_inner());
                    let changed = *last != now;
                    *last = now;
                    changed
                };
                if changed {
                    self.rescan();
                }
            }
            Err(e) => {
                self.global.dir_scan_failures.fetch_add(1, Ordering::Relaxed);
                Event::error("recipes_dir_scan_error").field("dir", self.dir.display().to_string()).field("error", e.to_string()).emit();
            }
        }
        for entry in self.entries().values() {
            self.refresh(entry, false);
        }
    }

    /// Reconcile the entries with the directory: new recipes appear, removed
    /// ones disappear, changed ones are replaced (keeping their model until
    /// the new artifact path is checked).
    fn rescan(&self) {
        let scanned = match self.scan() {
            Ok(s) => s,
            Err(e) => {
                self.global.dir_scan_failures.fetch_add(1, Ordering::Relaxed);
                Event::error("recipes_dir_scan_error").field("dir", self.dir.display().to_string()).field("error", e.to_string()).emit();
                return;
            }
        };
        let old = self.entries();
        let mut next: BTreeMap<String, Arc<Entry>> = BTreeMap::new();
        for (entry, hash) in scanned {
            match old.get(&entry.name) {
                Some(prev) if prev.recipe_hash == hash && prev.artifact == entry.artifact && hash.is_some() => {
                    next.insert(entry.name.clone(), prev.clone());
                }
                Some(prev) => {
                    if prev.recipe_hash.is_none() && hash.is_some() {
                        Event::info("recipe_yaml_failure_recovered").field("name", entry.name.clone()).emit();
                    }
                    if hash.is_none() {
                        entry.metrics.load_failure("yaml");
                        Event::error("recipe_rescan_load_error").field("name", entry.name.clone()).field("error", entry.error()).emit();
                    }
                    // Keep serving the previous model until the new one loads.
                    entry.model.store(prev.model.load_full());
                    next.insert(entry.name.clone(), Arc::new(entry));
                }
                None => {
                    Event::info("recipe_discovered").field("name", entry.name.clone()).emit();
                    next.insert(entry.name.clone(), Arc::new(entry));
                }
            }
        }
        for name in old.keys().filter(|n| !next.contains_key(*n)) {
            Event::info("recipe_removed").field("name", name.clone()).emit();
        }
        self.entries.store(Arc::new(next));
    }
}

/// Run [`Registry::tick`] every `interval` seconds (±10 % jitter) until
/// `stop` is set. Returns the thread.
pub fn spawn_watcher(registry: Arc<Registry>, interval: f64, stop: Arc<AtomicBool>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("recotem-watcher".into()).spawn(move || {
        Event::info("artifact_watcher_started").field("interval_seconds", interval).emit();
        let mut rng = crate::util::Rng::new(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7),
        );
        let mut failures = 0u32;
        'outer: while !stop.load(Ordering::Relaxed) {
            let wait = interval * (0.9 + 0.2 * rng.next_f64());
            let until = Instant::now() + Duration::from_secs_f64(wait);
            while Instant::now() < until {
                if stop.load(Ordering::Relaxed) {
                    break 'outer;
                }
                std::thread::sleep(Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())));
            }
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| registry.tick()));
            if outcome.is_err() {
                failures += 1;
                registry.global.watcher_errors.fetch_add(1, Ordering::Relaxed);
                Event::error("artifact_watcher_unhandled_error").field("consecutive", failures).emit();
            } else {
                failures = 0;
            }
        }
        Event::info("artifact_watcher_stopped").emit();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_shortened_and_uris_hidden() {
        assert_eq!(short_error("fetch https://u:p@h/x failed"), "fetch <redacted-uri> failed");
        assert_eq!(short_error(&"é".repeat(150)).len(), 200);
    }
}
