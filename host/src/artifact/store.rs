//! Writing artifacts atomically, versioning pointers, and bounded reads.
//!
//! A reader never sees a half-written file: bytes go to a temporary file in
//! the destination directory, which is fsynced, renamed over the destination
//! and followed by an fsync of the directory.
//!
//! `append_sha` writes `<stem>.<sha8>.recotem` (stem = `output.path` minus a
//! trailing `.recotem`, sha8 = first 8 hex digits of SHA-256 of the whole
//! artifact), then atomically replaces the **pointer** at `output.path`: a
//! small text file holding the artifact's file name and a newline. Readers
//! (`inspect`, `serve`) follow one level of pointer.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::recipe::model::Versioning;

/// Default artifact read cap (2 GiB).
pub const DEFAULT_MAX_ARTIFACT_BYTES: u64 = 2 << 30;
/// Default payload cap (512 MiB).
pub const DEFAULT_MAX_PAYLOAD_BYTES: u64 = 512 << 20;
const CAP_LO: u64 = 1 << 20;
const CAP_HI: u64 = 16 << 30;
/// Largest pointer file.
pub const MAX_POINTER_BYTES: usize = 512;

/// Read caps from `RECOTEM_MAX_ARTIFACT_BYTES` and `RECOTEM_MAX_PAYLOAD_BYTES`.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Largest artifact file read.
    pub artifact: u64,
    /// Largest payload accepted.
    pub payload: u64,
}

impl Caps {
    /// From the environment; a payload cap above the artifact cap is a
    /// configuration error (exit 8).
    pub fn from_env() -> Result<Self> {
        let artifact = crate::util::env_u64_clamped("RECOTEM_MAX_ARTIFACT_BYTES", DEFAULT_MAX_ARTIFACT_BYTES, CAP_LO, CAP_HI);
        let payload = crate::util::env_u64_clamped("RECOTEM_MAX_PAYLOAD_BYTES", DEFAULT_MAX_PAYLOAD_BYTES, CAP_LO, CAP_HI);
        if payload > artifact {
            return Err(Error::Config(format!(
                "RECOTEM_MAX_PAYLOAD_BYTES ({payload}) is larger than RECOTEM_MAX_ARTIFACT_BYTES ({artifact}); lower the payload cap or raise the artifact cap"
            )));
        }
        Ok(Caps { artifact, payload })
    }
}

/// Where `write` put things.
#[derive(Debug, Clone)]
pub struct Written {
    /// The artifact file.
    pub artifact: PathBuf,
    /// The pointer file (for `append_sha`).
    pub pointer: Option<PathBuf>,
}

/// Write `bytes` as the artifact for `output` under `versioning`.
pub fn write(output: &Path, versioning: Versioning, bytes: &[u8]) -> Result<Written> {
    match versioning {
        Versioning::AlwaysOverwrite => {
            atomic_write(output, bytes)?;
            Ok(Written { artifact: output.to_path_buf(), pointer: None })
        }
        Versioning::AppendSha => {
            let artifact = versioned_path(output, &crate::util::sha256_hex(bytes)[..8]);
            atomic_write(&artifact, bytes)?;
            let name = artifact
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| Error::Artifact(format!("output path {} has no file name", output.display())))?;
            atomic_write(output, format!("{name}\n").as_bytes())?;
            Ok(Written { artifact, pointer: Some(output.to_path_buf()) })
        }
    }
}

/// `<stem>.<sha8>.recotem`, where stem is `output` minus a trailing `.recotem`.
pub fn versioned_path(output: &Path, sha8: &str) -> PathBuf {
    let text = output.as_os_str().to_string_lossy();
    let stem = text.strip_suffix(".recotem").unwrap_or(&text);
    PathBuf::from(format!("{stem}.{sha8}.recotem"))
}

/// Write `bytes` to `path` atomically (temp file in the same directory,
/// fsync, rename, fsync the directory). Creates missing parent directories.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| Error::Artifact(format!("writing {}: {what}: {e}", path.display()));
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail("creating its directory", e))?;
    let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{base}.tmp-{}-{}", std::process::id(), crate::util::random_hex(4)?));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // create_new = O_CREAT|O_EXCL, which never follows a symlink.
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(|e| fail("creating a temporary file", e))?;
        file.write_all(bytes).map_err(|e| fail("writing", e))?;
        file.sync_all().map_err(|e| fail("syncing", e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| fail("renaming into place", e))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Read at most `cap` bytes of `path`; larger files fail without being read
/// whole.
pub fn read_bounded(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Artifact(format!("cannot open artifact {}: {e}", path.display())))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > cap {
        return Err(Error::Artifact(format!(
            "artifact {} is {len} bytes, over RECOTEM_MAX_ARTIFACT_BYTES ({cap})",
            path.display()
        )));
    }
    let mut bytes = Vec::with_capacity(len.min(cap) as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Artifact(format!("reading artifact {}: {e}", path.display())))?;
    if bytes.len() as u64 > cap {
        return Err(Error::Artifact(format!(
            "artifact {} is over RECOTEM_MAX_ARTIFACT_BYTES ({cap})",
            path.display()
        )));
    }
    Ok(bytes)
}

/// If `bytes` is a pointer file, the artifact file name it names.
pub fn pointer_target(bytes: &[u8]) -> Option<&str> {
    if bytes.len() > MAX_POINTER_BYTES {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let name = text.trim_end();
    let valid = name.len() > ".recotem".len()
        && name.ends_with(".recotem")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    valid.then_some(name)
}

/// Read the artifact at `path`, following one pointer. Returns the bytes and
/// the path they came from.
pub fn read_artifact(path: &Path, cap: u64) -> Result<(Vec<u8>, PathBuf)> {
    let bytes = read_bounded(path, cap)?;
    if let Some(name) = pointer_target(&bytes) {
        let target = path.parent().unwrap_or(Path::new(".")).join(name);
        let bytes = read_bounded(&target, cap).map_err(|e| e.context(format!("pointer {}", path.display())))?;
        return Ok((bytes, target));
    }
    Ok((bytes, path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_paths_strip_recotem() {
        assert_eq!(versioned_path(Path::new("a/m.recotem"), "0123abcd"), PathBuf::from("a/m.0123abcd.recotem"));
        assert_eq!(versioned_path(Path::new("m.bin"), "0123abcd"), PathBuf::from("m.bin.0123abcd.recotem"));
    }

    #[test]
    fn pointers() {
        assert_eq!(pointer_target(b"m.0123abcd.recotem\n"), Some("m.0123abcd.recotem"));
        assert_eq!(pointer_target(b"../x.recotem\n"), None);
        assert_eq!(pointer_target(b"RECOTEM\0"), None);
        assert_eq!(pointer_target(b".recotem"), None);
    }

    #[test]
    fn append_sha_writes_artifact_and_pointer() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model.recotem");
        let w = write(&out, Versioning::AppendSha, b"RECOTEM\0 pretend").unwrap();
        let (bytes, from) = read_artifact(&out, 1 << 20).unwrap();
        assert_eq!(bytes, b"RECOTEM\0 pretend");
        assert_eq!(from, w.artifact);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn bounded_read_refuses_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![0u8; 100]).unwrap();
        assert!(read_bounded(&p, 99).unwrap_err().to_string().contains("over"));
        assert_eq!(read_bounded(&p, 100).unwrap().len(), 100);
    }
}
