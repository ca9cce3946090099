//! Opening what a recipe's `source.path` names, read-only, for the source
//! component: the same code serves `train` (the real read) and `validate`
//! (the probe), so both grant the component exactly the same input.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

use crate::error::{Error, Result};
use crate::plugin::sandbox::InputStream;
use crate::recipe::paths;

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

/// Open `raw` (a bare path or `file://` URL; other schemes are not
/// supported yet), enforce the size cap and verify the optional pin.
pub fn open(raw: &str, expected_sha256: Option<&str>) -> Result<OpenedInput> {
    match paths::local_path(raw) {
        Some(path) => open_local(&path, expected_sha256),
        None => {
            let scheme = paths::split_scheme(raw).scheme.unwrap_or_default();
            Err(Error::DataSource(format!(
                "source.path: {scheme}:// sources are not supported by this version of recotem yet; use a local file"
            )))
        }
    }
}

/// Open a local file read-only, enforce the size cap, verify the optional
/// SHA-256 pin, and wrap it for the plugin.
fn open_local(path: &Path, expected_sha256: Option<&str>) -> Result<OpenedInput> {
    let shown = path.display();
    let mut file = File::open(path).map_err(|e| Error::DataSource(format!("source.path {shown}: cannot open it: {e}")))?;
    let meta = file.metadata().map_err(|e| Error::DataSource(format!("source.path {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(Error::DataSource(format!("source.path {shown}: not a regular file")));
    }
    let cap = crate::util::env_u64_clamped("RECOTEM_MAX_DOWNLOAD_BYTES", DEFAULT_MAX_DOWNLOAD_BYTES, 1 << 20, 16 << 30);
    if meta.len() > cap {
        return Err(Error::DataSource(format!(
            "source.path {shown}: {} bytes is over RECOTEM_MAX_DOWNLOAD_BYTES ({cap})",
            meta.len()
        )));
    }
    let mut verified = false;
    if let Some(expected) = expected_sha256 {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        std::io::copy(&mut (&mut file).take(cap + 1), &mut hasher)
            .map_err(|e| Error::DataSource(format!("source.path {shown}: reading: {e}")))?;
        let actual = hex::encode(hasher.finalize());
        if actual != expected {
            return Err(Error::DataSource(format!(
                "source.path {shown}: sha256 mismatch (expected {}…, got {}…); the file changed — update source.sha256 if that is intended",
                expected.get(..8).unwrap_or(expected),
                &actual[..8]
            )));
        }
        file.rewind().map_err(|e| Error::DataSource(format!("source.path {shown}: {e}")))?;
        verified = true;
    }
    let reader = Box::new(file.take(cap));
    Ok(OpenedInput { stream: InputStream::new(reader, Some(meta.len())), bytes: meta.len(), sha256_verified: verified })
}
