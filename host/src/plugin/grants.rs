//! The grant broker: the one place that decides what input a component
//! receives. Every input — `source.path` and `item_metadata.path`, local
//! or http(s) — goes through [`grant_input`], which
//! checks three layers in order and says which one refused:
//!
//! 1. **the component's declaration** — it must declare the `input-stream`
//!    capability in `describe`;
//! 2. **the operator policy** (`RECOTEM_PLUGIN_POLICY`) — it must grant the
//!    input stream (`input_stream: false` withholds it);
//! 3. **the recipe** — the block must name a path, which the host opens
//!    read-only (size cap, optional sha256 pin) or, for an http(s) URL,
//!    downloads through the SSRF guard with its mandatory pin
//!    ([`super::fetch`]) before the component sees a byte.
//!
//! A refusal is a data-source error (exit 3; a failed download is exit 7)
//! and the component never sees
//! the input. Each granted input is logged as `plugin_grant_applied`, naming
//! the recipe block, when the component is handed it. `train` and
//! `validate` both come here, so a probe sees exactly what a run would.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

use super::sandbox::InputStream;
use super::source::SourceComponent;
use crate::error::{Error, Result};
use crate::recipe::model::Recipe;
use crate::recipe::paths;
use serde_json::Value;

/// The recipe block an input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// `source.path`.
    Source,
    /// `item_metadata.path`.
    ItemMetadata,
}

impl Block {
    /// The block's name in the recipe.
    pub fn as_str(self) -> &'static str {
        match self {
            Block::Source => "source",
            Block::ItemMetadata => "item_metadata",
        }
    }
}

/// An input the broker granted: a read-only stream and where it came from.
pub struct Granted {
    /// The read-only stream handed to the component.
    pub stream: InputStream,
    /// The recipe block that named it.
    pub block: Block,
    /// Its size in bytes.
    pub bytes: u64,
    /// True when a `sha256` pin was checked.
    pub sha256_verified: bool,
}

/// What a recipe block asks for.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The block.
    pub block: Block,
    /// Its `path`, if any.
    pub path: Option<&'a str>,
    /// Its `sha256` pin, if any.
    pub sha256: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// What the recipe's `source` block asks for.
    pub fn source(recipe: &'a Recipe) -> Self {
        Request { block: Block::Source, path: recipe.source_path(), sha256: recipe.source.get("sha256").and_then(Value::as_str) }
    }
}

/// Decide whether `component` gets the input `request` names, and open it.
///
/// `Ok(None)`: the component reads no input (it declares none and the block
/// is the main source, e.g. a synthetic or SQL source). For `item_metadata`,
/// which always names a file, a component that does not declare
/// `input-stream` is refused. An http(s) path is downloaded through
/// [`super::fetch`] (guard, redirects, cap, mandatory pin — whatever
/// `verify_pin` says) before anything reaches the component.
pub fn grant_input(component: &SourceComponent, request: Request<'_>, verify_pin: bool) -> Result<Option<Granted>> {
    let Some(raw) = permitted(component, request)? else { return Ok(None) };
    let opened = if paths::is_http(raw) {
        open_http(component, request, raw)?
    } else {
        open(request.block, raw, request.sha256.filter(|_| verify_pin))?
    };
    Ok(Some(opened))
}

/// What `recotem validate` hands a probe: like [`grant_input`], except that
/// an http(s) input is not downloaded (HTTP-09): its host only passes the
/// SSRF guard, and the probe gets no input.
pub fn grant_for_probe(component: &SourceComponent, request: Request<'_>) -> Result<Option<Granted>> {
    let Some(raw) = permitted(component, request)? else { return Ok(None) };
    if paths::is_http(raw) {
        let label = format!("{}.path {}", request.block.as_str(), super::fetch::shown(raw));
        super::fetch::check_destination(raw, &label, super::fetch::Limits::from_settings())?;
        return Ok(None);
    }
    grant_input(component, request, true)
}

/// An http(s) input downloaded (and its pin verified) once, for a caller
/// that opens the same input several times (item metadata probes its
/// columns one open at a time): each [`Prefetched::grant`] hands out the
/// same spooled bytes again instead of downloading them again.
pub struct Prefetched {
    file: File,
    bytes: u64,
    block: Block,
    label: String,
}

/// Download `request`'s input now when it is an http(s) URL the component
/// may read; `Ok(None)` for any other input (open it with [`grant_input`]).
pub fn prefetch(component: &SourceComponent, request: Request<'_>) -> Result<Option<Prefetched>> {
    let Some(raw) = permitted(component, request)? else { return Ok(None) };
    if !paths::is_http(raw) {
        return Ok(None);
    }
    let (file, bytes, label) = download(component, request, raw)?;
    Ok(Some(Prefetched { file, bytes, block: request.block, label }))
}

impl Prefetched {
    /// The downloaded input, from its first byte, as a fresh stream. Opens
    /// are sequential: the streams share the spool file's position.
    pub fn grant(&self) -> Result<Granted> {
        let mut file = self.file.try_clone().map_err(|e| Error::data_source(format!("{}: {e}", self.label)))?;
        file.rewind().map_err(|e| Error::data_source(format!("{}: {e}", self.label)))?;
        wrap(self.block, file, self.bytes, true, &self.label)
    }
}

/// The three layers: `Ok(Some(path))` when the input is granted,
/// `Ok(None)` when the component reads none.
fn permitted<'a>(component: &SourceComponent, request: Request<'a>) -> Result<Option<&'a str>> {
    let block = request.block.as_str();
    let refuse = |layer: &str, why: String| {
        Error::data_source(format!(
            "{block}: the {:?} component may not read {block}.path: refused by {layer}: {why}",
            component.type_name()
        ))
    };
    if !component.declares_input() {
        if request.block == Block::Source {
            return Ok(None);
        }
        return Err(refuse(
            "the component's declaration",
            "it does not declare the input-stream capability, so it cannot be handed a file; use a source component that reads files".into(),
        ));
    }
    if !component.profile.grants.input_stream {
        return Err(refuse(
            "the operator policy",
            "RECOTEM_PLUGIN_POLICY withholds its input stream (`input_stream: false`)".into(),
        ));
    }
    let raw = request.path.ok_or_else(|| {
        Error::recipe(format!("{block}.path: required by the {} source", component.type_name()))
    })?;
    Ok(Some(raw))
}

/// Download an http(s) input (its pin is mandatory) and wrap the verified
/// spool file like a local one. Events are prefixed `<type>_source` for the
/// data and `metadata_source` for item metadata (LOG-11).
fn open_http(component: &SourceComponent, request: Request<'_>, raw: &str) -> Result<Granted> {
    let (file, bytes, label) = download(component, request, raw)?;
    // Past the pin, a fault in the bytes is the data's (exit 3), as for a
    // local file.
    wrap(request.block, file, bytes, true, &label)
}

/// Download `raw` through [`super::fetch`]: the verified spool file, its
/// size, and the label messages use.
fn download(component: &SourceComponent, request: Request<'_>, raw: &str) -> Result<(File, u64, String)> {
    let block = request.block;
    let label = format!("{}.path {}", block.as_str(), super::fetch::shown(raw));
    let sha256 = request.sha256.ok_or_else(|| {
        Error::recipe(format!("{}.sha256: required when {label} is an http(s) URL", block.as_str()))
    })?;
    let prefix = match block {
        Block::Source => format!("{}_source", component.type_name()),
        Block::ItemMetadata => "metadata_source".to_string(),
    };
    let fetch = super::fetch::Fetch {
        url: raw,
        sha256,
        prefix: &prefix,
        label: &label,
        limits: super::fetch::Limits::from_settings(),
    };
    let downloaded = super::fetch::download(&fetch)?;
    Ok((downloaded.file, downloaded.bytes, label))
}

/// Open `raw`, the `path` of the recipe block `block`: a bare path or
/// `file://` URL (object stores are not supported yet). Enforces the size
/// cap and verifies the optional pin.
fn open(block: Block, raw: &str, expected_sha256: Option<&str>) -> Result<Granted> {
    match paths::local_path(raw) {
        Some(path) => open_local(block, &path, expected_sha256),
        None => {
            let scheme = paths::split_scheme(raw).scheme.unwrap_or_default();
            Err(Error::data_source(format!(
                "{}.path: {scheme}:// sources are not supported by this version of recotem yet; use a local file or an http(s) URL",
                block.as_str()
            )))
        }
    }
}

/// Open a local file read-only, enforce the size cap, verify the optional
/// SHA-256 pin, and wrap it for the plugin.
fn open_local(block: Block, path: &Path, expected_sha256: Option<&str>) -> Result<Granted> {
    let shown = format!("{}.path {}", block.as_str(), path.display());
    let mut file = File::open(path).map_err(|e| Error::data_source(format!("{shown}: cannot open it: {e}")))?;
    let meta = file.metadata().map_err(|e| Error::data_source(format!("{shown}: {e}")))?;
    if !meta.is_file() {
        return Err(Error::data_source(format!("{shown}: not a regular file")));
    }
    let cap = crate::settings::get().max_download_bytes;
    if meta.len() > cap {
        return Err(Error::data_source(format!(
            "{shown}: {} bytes is over RECOTEM_MAX_DOWNLOAD_BYTES ({cap})",
            meta.len()
        )));
    }
    let mut verified = false;
    if let Some(expected) = expected_sha256 {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        std::io::copy(&mut (&mut file).take(cap + 1), &mut hasher)
            .map_err(|e| Error::data_source(format!("{shown}: reading: {e}")))?;
        let actual = hex::encode(hasher.finalize());
        if actual != expected {
            return Err(Error::data_source(format!(
                "{shown}: sha256 mismatch (expected {}…, got {}…); the file changed — update {}.sha256 if that is intended",
                expected.get(..8).unwrap_or(expected),
                &actual[..8],
                block.as_str()
            )));
        }
        file.rewind().map_err(|e| Error::data_source(format!("{shown}: {e}")))?;
        verified = true;
    }
    wrap(block, file, meta.len(), verified, &shown)
}

/// Hand an opened file (positioned at its start, at most the cap long) to
/// the plugin: gzip (by its magic bytes) is decompressed here, under its
/// own cap, and can then only be read forward; anything else allows
/// `read-at` too.
fn wrap(block: Block, file: File, len: u64, verified: bool, shown: &str) -> Result<Granted> {
    let cap = crate::settings::get().max_download_bytes;
    let mut magic = [0u8; 2];
    let gzip = std::os::unix::fs::FileExt::read_exact_at(&file, &mut magic, 0).is_ok() && magic == super::decompress::GZIP_MAGIC;
    let stream = if gzip {
        let raw = super::decompress::Capped::new(file, cap, "RECOTEM_MAX_DOWNLOAD_BYTES");
        let (reader, _) = super::decompress::decompressing(raw).map_err(|e| Error::data_source(format!("{shown}: reading: {e}")))?;
        InputStream::new(reader, None)
    } else {
        InputStream::file(file, len.min(cap)).map_err(|e| Error::data_source(format!("{shown}: {e}")))?
    };
    Ok(Granted { stream, block, bytes: len, sha256_verified: verified })
}
