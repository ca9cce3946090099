//! Opening what a recipe's `source.path` names, read-only, for the source
//! component: the same code serves `train` (the real read) and `validate`
//! (the probe), so both grant the component exactly the same input.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

use crate::error::{Error, Result};
use crate::plugin::sandbox::InputStream;
use crate::plugin::source::SourceComponent;
use crate::recipe::model::Recipe;
use crate::recipe::paths;
use serde_json::Value;

/// Default `RECOTEM_MAX_DOWNLOAD_BYTES`: 256 MiB.
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 256 << 20;

/// An opened input.
pub struct OpenedInput {
    /// The read-only stream handed to the component.
    pub stream: InputStream,
    /// Its size in bytes.
    pub bytes: u64,
    /// True when a `sha256` pin was checked.
    pub sha256_verified: bool,
}

/// The recipe-derived grant of a source component: when it asks for an
/// input stream, the file `source.path` names, opened read-only (with the
/// `source.sha256` pin); `None` when it asks for none. `train` and
/// `validate` both call this, so a probe sees exactly what a run would.
pub fn open_for_source(recipe: &Recipe, source: &SourceComponent) -> Result<Option<OpenedInput>> {
    if !source.wants_input() {
        return Ok(None);
    }
    let raw = recipe
        .source_path()
        .ok_or_else(|| Error::Recipe(format!("source.path: required by the {} source", source.type_name())))?;
    let pin = recipe.source.get("sha256").and_then(Value::as_str);
    open("source", raw, pin).map(Some)
}

/// Open `raw`, the `path` of the recipe block `block` (`source`,
/// `item_metadata`): a bare path or `file://` URL (other schemes are not
/// supported yet). Enforces the size cap and verifies the optional pin.
pub fn open(block: &str, raw: &str, expected_sha256: Option<&str>) -> Result<OpenedInput> {
    match paths::local_path(raw) {
        Some(path) => open_local(block, &path, expected_sha256),
        None => {
            let scheme = paths::split_scheme(raw).scheme.unwrap_or_default();
            Err(Error::DataSource(format!(
                "{block}.path: {scheme}:// sources are not supported by this version of recotem yet; use a local file"
            )))
        }
    }
}

/// Open a local file read-only, enforce the size cap, verify the optional
/// SHA-256 pin, and wrap it for the plugin.
fn open_local(block: &str, path: &Path, expected_sha256: Option<&str>) -> Result<OpenedInput> {
    let shown = format!("{block}.path {}", path.display());
    let mut file = File::open(path).map_err(|e| Error::DataSource(format!("{shown}: cannot open it: {e}")))?;
    let meta = file.metadata().map_err(|e| Error::DataSource(format!("{shown}: {e}")))?;
    if !meta.is_file() {
        return Err(Error::DataSource(format!("{shown}: not a regular file")));
    }
    let cap = crate::util::env_u64_clamped("RECOTEM_MAX_DOWNLOAD_BYTES", DEFAULT_MAX_DOWNLOAD_BYTES, 1 << 20, 16 << 30);
    if meta.len() > cap {
        return Err(Error::DataSource(format!(
            "{shown}: {} bytes is over RECOTEM_MAX_DOWNLOAD_BYTES ({cap})",
            meta.len()
        )));
    }
    let mut verified = false;
    if let Some(expected) = expected_sha256 {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        std::io::copy(&mut (&mut file).take(cap + 1), &mut hasher)
            .map_err(|e| Error::DataSource(format!("{shown}: reading: {e}")))?;
        let actual = hex::encode(hasher.finalize());
        if actual != expected {
            return Err(Error::DataSource(format!(
                "{shown}: sha256 mismatch (expected {}…, got {}…); the file changed — update {block}.sha256 if that is intended",
                expected.get(..8).unwrap_or(expected),
                &actual[..8]
            )));
        }
        file.rewind().map_err(|e| Error::DataSource(format!("{shown}: {e}")))?;
        verified = true;
    }
    let reader = Box::new(file.take(cap));
    Ok(OpenedInput { stream: InputStream::new(reader, Some(meta.len())), bytes: meta.len(), sha256_verified: verified })
}
