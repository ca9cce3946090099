//! Opening what a recipe's `source.path` names, read-only, for the source
//! component: the same code serves `train` (the real read) and `validate`
//! (the probe), so both grant the component exactly the same input.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;

use crate::error::{Error, Result};
use crate::plugin::sandbox::InputStream;
use crate::plugin::source::SourceComponent;
use crate::recipe::model::Recipe;
use crate::recipe::paths;
use serde_json::Value;

/// Default `RECOTEM_MAX_DOWNLOAD_BYTES`: 256 MiB.
pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 256 << 20;
/// Default `RECOTEM_MAX_DECOMPRESSED_BYTES`: 4 GiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 4 << 30;

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
    let raw = Capped::new(file, cap, "RECOTEM_MAX_DOWNLOAD_BYTES");
    let (stream, compression) = decompressing(raw).map_err(|e| Error::DataSource(format!("{shown}: reading: {e}")))?;
    let size = if compression.is_some() { None } else { Some(meta.len()) };
    Ok(OpenedInput { stream: InputStream::new(stream, size), bytes: meta.len(), sha256_verified: verified })
}

/// gzip magic bytes (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// `raw` as the component should see it: gzip data (recognised by its magic
/// bytes, whatever the file is called) is decompressed on the fly, every
/// member of a multi-member file, and at most `RECOTEM_MAX_DECOMPRESSED_BYTES`
/// come out: past that the read fails, so a gzip bomb ends as a data-source
/// error instead of filling memory or disk. Returns the stream and the
/// compression found.
pub fn decompressing(raw: impl Read + Send + 'static) -> std::io::Result<(Box<dyn Read + Send>, Option<&'static str>)> {
    let mut raw = BufReader::with_capacity(1 << 20, raw);
    let head = loop {
        match raw.fill_buf() {
            Ok(head) => break head,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    };
    if !head.starts_with(&GZIP_MAGIC) {
        return Ok((Box::new(raw), None));
    }
    let cap = crate::util::env_u64_clamped(
        "RECOTEM_MAX_DECOMPRESSED_BYTES",
        DEFAULT_MAX_DECOMPRESSED_BYTES,
        1 << 20,
        1 << 40,
    );
    let decoder = flate2::bufread::MultiGzDecoder::new(raw);
    Ok((Box::new(Capped::new(decoder, cap, "RECOTEM_MAX_DECOMPRESSED_BYTES")), Some("gzip")))
}

/// A reader that fails once more than `cap` bytes come out of `inner`
/// (rather than truncating the data silently).
struct Capped<R> {
    inner: R,
    left: u64,
    cap: u64,
    setting: &'static str,
}

impl<R> Capped<R> {
    fn new(inner: R, cap: u64, setting: &'static str) -> Self {
        Capped { inner, left: cap, cap, setting }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        // Ask for one byte past the cap, so reaching it exactly is not a fault.
        let want = out.len().min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut out[..want])?;
        if n as u64 > self.left {
            return Err(std::io::Error::other(format!(
                "the input is larger than {} ({} bytes); raise it if the data is genuine",
                self.setting, self.cap
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(r: &mut dyn Read) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn gzip_is_found_by_its_magic_and_members_are_joined() {
        let mut both = gzip(b"u,i\n1,2\n");
        both.extend(gzip(b"3,4\n"));
        let (mut r, c) = decompressing(std::io::Cursor::new(both)).unwrap();
        assert_eq!(c, Some("gzip"));
        assert_eq!(read_all(&mut r).unwrap(), b"u,i\n1,2\n3,4\n");
        let (mut r, c) = decompressing(std::io::Cursor::new(b"u,i\n".to_vec())).unwrap();
        assert_eq!((c, read_all(&mut r).unwrap()), (None, b"u,i\n".to_vec()));
    }

    #[test]
    fn caps_fail_instead_of_truncating() {
        let mut exact = Capped::new(&b"abcd"[..], 4, "X");
        assert_eq!(read_all(&mut exact).unwrap(), b"abcd");
        let mut over = Capped::new(&b"abcde"[..], 4, "X");
        let e = read_all(&mut over).unwrap_err();
        assert!(e.to_string().contains("larger than X (4 bytes)"), "{e}");
    }
}
