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
use std::sync::Arc;

use hmac::Mac;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::artifact::container::{Container, new_mac};
use crate::artifact::keys::KeyRing;
use crate::error::{ArtifactFault, Error, Result};
use crate::model::AlignedBytes;

/// Default artifact read cap (2 GiB).
pub const DEFAULT_MAX_ARTIFACT_BYTES: u64 = 2 << 30;
/// Default payload cap (512 MiB).
pub const DEFAULT_MAX_PAYLOAD_BYTES: u64 = 512 << 20;
/// Smallest cap an operator may set (1 MiB).
pub const CAP_LO: u64 = 1 << 20;
/// Largest cap an operator may set (16 GiB).
pub const CAP_HI: u64 = 16 << 30;
/// Largest pointer file.
pub const MAX_POINTER_BYTES: usize = 512;

/// How `write` lays out an artifact (the recipe's `output.versioning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    /// Replace the file at `output.path`.
    AlwaysOverwrite,
    /// Write `<stem>.<sha8>.recotem` and point `output.path` at it.
    AppendSha,
}

/// Size caps of artifacts (`RECOTEM_MAX_ARTIFACT_BYTES`,
/// `RECOTEM_MAX_PAYLOAD_BYTES`).
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Largest artifact file read.
    pub artifact: u64,
    /// Largest payload accepted.
    pub payload: u64,
}

impl Default for Caps {
    fn default() -> Self {
        Caps { artifact: DEFAULT_MAX_ARTIFACT_BYTES, payload: DEFAULT_MAX_PAYLOAD_BYTES }
    }
}

impl Caps {
    /// Caps from already clamped values; a payload cap above the artifact
    /// cap is a configuration error (exit 8).
    pub fn new(artifact: u64, payload: u64) -> Result<Self> {
        if payload > artifact {
            return Err(Error::config(format!(
                "RECOTEM_MAX_PAYLOAD_BYTES ({payload}) is larger than RECOTEM_MAX_ARTIFACT_BYTES ({artifact}); lower the payload cap or raise the artifact cap"
            )));
        }
        Ok(Caps { artifact, payload })
    }

    /// Refuse (exit 5) an artifact that readers would refuse under these caps.
    pub fn admit(&self, artifact_bytes: u64, payload_bytes: u64) -> Result<()> {
        if artifact_bytes > self.artifact {
            return Err(Error::artifact_fault(ArtifactFault::OverCap, format!(
                "the artifact is {artifact_bytes} bytes, over RECOTEM_MAX_ARTIFACT_BYTES ({}); raise the cap (up to 16 GiB) wherever it is read, or shrink the model",
                self.artifact
            )));
        }
        if payload_bytes > self.payload {
            return Err(Error::artifact_fault(ArtifactFault::OverCap, format!(
                "the payload is {payload_bytes} bytes, over RECOTEM_MAX_PAYLOAD_BYTES ({}); raise the cap wherever it is read, or shrink the model",
                self.payload
            )));
        }
        Ok(())
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

/// Write `bytes` as the artifact for `output` under `versioning`, confined
/// to `root` when given.
///
/// The destination directory is opened **once** (under `root`, through a
/// capability handle that refuses `..` and symlinks leading out of it) and
/// every later step — temporary file, rename, pointer, directory fsync — is
/// relative to that handle. Swapping a symlink into the path after the check
/// therefore cannot redirect the write.
pub fn write(output: &Path, versioning: Versioning, bytes: &[u8], root: Option<&Path>) -> Result<Written> {
    let dest = Destination::open(output, root)?;
    match versioning {
        Versioning::AlwaysOverwrite => {
            dest.replace(&dest.name, bytes)?;
            Ok(Written { artifact: dest.path(&dest.name), pointer: None })
        }
        Versioning::AppendSha => {
            let name = versioned_name(&dest.name, &crate::util::sha256_hex(bytes)[..8]);
            dest.replace(&name, bytes)?;
            dest.replace(&dest.name, format!("{name}\n").as_bytes())?;
            Ok(Written { artifact: dest.path(&name), pointer: Some(dest.path(&dest.name)) })
        }
    }
}

/// `<stem>.<sha8>.recotem`, where stem is `name` minus a trailing `.recotem`.
pub fn versioned_name(name: &str, sha8: &str) -> String {
    let stem = name.strip_suffix(".recotem").unwrap_or(name);
    format!("{stem}.{sha8}.recotem")
}

/// An opened destination directory and the file name to write in it.
struct Destination {
    dir: cap_std::fs::Dir,
    /// The directory as the user named it (for messages and events).
    shown: PathBuf,
    name: String,
}

fn write_fault(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::artifact_fault(ArtifactFault::Io, format!("writing {}: {what}: {e}", path.display()))
}

impl Destination {
    fn open(output: &Path, root: Option<&Path>) -> Result<Self> {
        let name = match output.file_name().map(|n| n.to_str()) {
            Some(Some(n)) => n.to_string(),
            _ => {
                return Err(Error::artifact(format!(
                    "output path {} must end in a UTF-8 file name",
                    output.display()
                )));
            }
        };
        let shown = match output.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let ambient = cap_std::ambient_authority();
        let dir = match root {
            None => {
                std::fs::create_dir_all(&shown).map_err(|e| write_fault(output, "creating its directory", e))?;
                cap_std::fs::Dir::open_ambient_dir(&shown, ambient)
                    .map_err(|e| write_fault(output, "opening its directory", e))?
            }
            Some(root) => {
                let outside = |why: String| {
                    Error::artifact(format!(
                        "output path {} is not inside RECOTEM_ARTIFACT_ROOT ({}): {why}; write artifacts under the root",
                        output.display(),
                        root.display()
                    ))
                };
                let root_real = root
                    .canonicalize()
                    .map_err(|e| outside(format!("the root cannot be resolved ({e})")))?;
                let parent_real = shown
                    .canonicalize()
                    .map_err(|e| outside(format!("its directory cannot be resolved ({e})")))?;
                let rel = parent_real
                    .strip_prefix(&root_real)
                    .map_err(|_| outside(format!("its directory resolves to {}", parent_real.display())))?;
                let root_dir = cap_std::fs::Dir::open_ambient_dir(&root_real, ambient)
                    .map_err(|e| outside(format!("the root cannot be opened ({e})")))?;
                if rel.as_os_str().is_empty() {
                    root_dir
                } else {
                    // Resolved inside the root handle: a `..` or a symlink
                    // leading out of the root (even one swapped in since the
                    // canonicalisation above) is refused here.
                    root_dir.open_dir(rel).map_err(|e| outside(format!("opening {} under the root failed ({e})", rel.display())))?
                }
            }
        };
        Ok(Destination { dir, shown, name })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.shown.join(name)
    }

    /// Replace `name` atomically with `bytes`: a temporary file in the same
    /// directory (created exclusively, mode 0600), fsync, rename, fsync of
    /// the directory. A crash at any point leaves either the old file or the
    /// new one at `name`, never a partial one (at worst a stray
    /// `.<name>.tmp-*` file).
    fn replace(&self, name: &str, bytes: &[u8]) -> Result<()> {
        use cap_std::fs::OpenOptionsExt;
        let path = self.path(name);
        let tmp = format!(".{name}.tmp-{}-{}", std::process::id(), crate::util::random_hex(4)?);
        let result = (|| {
            let mut options = cap_std::fs::OpenOptions::new();
            // create_new = O_CREAT|O_EXCL, which never follows a symlink.
            options.write(true).create_new(true).mode(0o600);
            let mut file = self.dir.open_with(&tmp, &options).map_err(|e| write_fault(&path, "creating a temporary file", e))?;
            write_data(&mut file, bytes).map_err(|e| write_fault(&path, "writing", e))?;
            sync(file.sync_all()).map_err(|e| write_fault(&path, "syncing", e))?;
            drop(file);
            self.dir.rename(&tmp, &self.dir, name).map_err(|e| write_fault(&path, "renaming into place", e))?;
            // The handle itself may be O_PATH; open the directory for fsync.
            let handle = self.dir.open(".").map_err(|e| write_fault(&path, "opening its directory for fsync", e))?;
            sync(handle.sync_all()).map_err(|e| write_fault(&path, "syncing its directory", e))?;
            Ok(())
        })();
        if result.is_err() {
            let _ = self.dir.remove_file(&tmp);
        }
        result
    }
}

/// Write the bytes. The unit tests' kill -9 child (`RECOTEM_KILL_TEST_DIR`)
/// writes in small slices with pauses, like a slow disk, so that kills land
/// while data is being written and a non-atomic writer would be caught.
fn write_data(file: &mut cap_std::fs::File, bytes: &[u8]) -> std::io::Result<()> {
    #[cfg(test)]
    if std::env::var_os("RECOTEM_KILL_TEST_DIR").is_some() {
        for chunk in bytes.chunks(bytes.len().div_ceil(32).max(1)) {
            file.write_all(chunk)?;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        return Ok(());
    }
    file.write_all(bytes)
}

/// fsync where the filesystem supports it (EINVAL/ENOTSUP mean it does not).
fn sync(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(e) if matches!(e.raw_os_error(), Some(22) | Some(95)) => Ok(()),
        other => other,
    }
}

/// Read at most `cap` bytes of `path`; larger files fail without being read
/// whole.
pub fn read_bounded(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let (file, len) = open_capped(path, cap)?;
    let mut bytes = Vec::with_capacity(len.min(cap) as usize);
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::artifact_fault(ArtifactFault::Io, format!("reading artifact {}: {e}", path.display())))?;
    if bytes.len() as u64 > cap {
        return Err(Error::artifact_fault(ArtifactFault::OverCap, format!(
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

/// Which step of [`load_verified`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadStage {
    /// Opening or reading the file (or its pointer).
    Read,
    /// The container's structure.
    Parse,
    /// The key, the HMAC or the header JSON of the artifact signed by `kid`.
    Verify {
        /// The container's key id.
        kid: String,
    },
}

/// An artifact read and verified by [`load_verified`], kept whole in memory
/// with its payload 8-byte aligned so the model's arrays can be viewed in
/// place ([`crate::artifact::payload::Payload::decode_shared`]).
#[derive(Debug)]
pub struct LoadedArtifact {
    /// The file's bytes.
    pub bytes: Arc<AlignedBytes>,
    /// Where the (authenticated, not yet decoded) payload lies in `bytes`.
    pub payload: std::ops::Range<usize>,
    /// Container version.
    pub version: u16,
    /// Key id that verified it.
    pub kid: String,
    /// The header JSON object.
    pub header: Map<String, Value>,
    /// The file read (after following a pointer).
    pub path: PathBuf,
    /// SHA-256 of the whole file, when asked for.
    pub sha256: Option<[u8; 32]>,
}

/// Bytes read per step while the HMAC (and SHA-256) threads hash the
/// previous ones.
const LOAD_CHUNK: usize = 4 << 20;
/// The fixed container fields up to the header, with the longest kid.
const PREFIX_MAX: usize = 49 + crate::artifact::keys::MAX_KID_BYTES;

/// Read the artifact at `path` (following one pointer), verify its HMAC
/// with `ring`, and keep its bytes. The file is read in chunks on this
/// thread while another thread computes the HMAC of the chunks already read
/// (and a third the SHA-256 of the file, with `want_sha256`), so reading and
/// verifying overlap. The result is the same as [`read_artifact`] then
/// [`Container::parse`] and [`Container::verify`], with the same errors.
pub fn load_verified(
    path: &Path,
    artifact_cap: u64,
    payload_cap: u64,
    ring: &KeyRing,
    want_sha256: bool,
) -> std::result::Result<LoadedArtifact, (LoadStage, Error)> {
    let read = |e| (LoadStage::Read, e);
    let (mut file, path, len) = open_artifact(path, artifact_cap).map_err(read)?;
    let io = |e: std::io::Error| {
        (LoadStage::Read, Error::artifact_fault(ArtifactFault::Io, format!("reading artifact {}: {e}", path.display())))
    };
    let len = usize::try_from(len).map_err(|_| read(Error::artifact("artifact too large for this platform")))?;
    let mut prefix = [0u8; PREFIX_MAX];
    let prefix_len = len.min(PREFIX_MAX);
    file.read_exact(&mut prefix[..prefix_len]).map_err(io)?;
    let layout = Layout::of(&prefix[..prefix_len], len);
    // Malformed prefixes are read whole and left to `Container::parse` for
    // its messages; an unknown kid is left to `Container::verify`.
    let key = layout.as_ref().and_then(|l| ring.get(&l.kid));
    let anchor = layout.as_ref().map_or(0, |l| l.payload_offset);
    let mut buffer = AlignedBytes::zeroed(len, anchor);
    let (mac, sha256) = {
        let bytes = buffer.as_bytes_mut();
        let (head, mut rest) = bytes.split_at_mut(prefix_len);
        head.copy_from_slice(&prefix[..prefix_len]);
        let auth = layout.as_ref().map(|l| l.authenticated(len)).unwrap_or_default();
        let mut read_result = Ok(());
        let (mac, sha) = std::thread::scope(|scope| {
            let (mac_tx, mac_rx) = std::sync::mpsc::sync_channel::<(usize, &[u8])>(16);
            let (sha_tx, sha_rx) = std::sync::mpsc::sync_channel::<&[u8]>(16);
            let mac_thread = key.map(|key| {
                let mut mac = new_mac(key);
                let auth = &auth;
                scope.spawn(move || {
                    for (offset, chunk) in mac_rx {
                        for r in auth {
                            let (a, b) = (r.start.max(offset), r.end.min(offset + chunk.len()));
                            if a < b {
                                mac.update(&chunk[a - offset..b - offset]);
                            }
                        }
                    }
                    mac
                })
            });
            let sha_thread = want_sha256.then(|| {
                scope.spawn(move || {
                    let mut sha = Sha256::new();
                    for chunk in sha_rx {
                        sha.update(chunk);
                    }
                    <[u8; 32]>::from(sha.finalize())
                })
            });
            // A hashing thread only stops early by panicking; its join
            // reports it, so a failed send is ignored here.
            let (send_mac, send_sha) = (mac_thread.is_some(), sha_thread.is_some());
            macro_rules! send {
                ($offset:expr, $chunk:expr) => {
                    if send_mac {
                        let _ = mac_tx.send(($offset, $chunk));
                    }
                    if send_sha {
                        let _ = sha_tx.send($chunk);
                    }
                };
            }
            send!(0, &*head);
            let mut offset = prefix_len;
            while !rest.is_empty() {
                let n = LOAD_CHUNK.min(rest.len());
                let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(n);
                if let Err(e) = file.read_exact(chunk) {
                    read_result = Err(e);
                    break;
                }
                let chunk = &*chunk;
                send!(offset, chunk);
                offset += chunk.len();
                rest = tail;
            }
            drop((mac_tx, sha_tx));
            let mac = mac_thread.map(|t| t.join());
            let sha = sha_thread.map(|t| t.join());
            (mac, sha)
        });
        read_result.map_err(io)?;
        let joined = |what| (LoadStage::Read, Error::artifact(format!("the {what} thread of the artifact loader failed")));
        let mac = mac.transpose().map_err(|_| joined("HMAC"))?;
        let sha = sha.transpose().map_err(|_| joined("SHA-256"))?;
        (mac, sha)
    };
    // The file must not have grown since its length was taken.
    if file.read(&mut [0u8; 1]).map_err(io)? != 0 {
        return Err(read(Error::artifact_fault(ArtifactFault::Io, format!(
            "artifact {} changed while it was read; load it again",
            path.display()
        ))));
    }
    let bytes = Arc::new(buffer);
    let (version, kid, header, payload) = {
        let all = bytes.as_bytes();
        let container = Container::parse(all, payload_cap).map_err(|e| (LoadStage::Parse, e))?;
        let verified = match mac {
            Some(mac) => container.verify_computed(mac),
            None => container.verify(ring),
        }
        .map_err(|e| (LoadStage::Verify { kid: container.kid.to_string() }, e))?;
        let start = all.len() - verified.payload.len();
        (verified.version, verified.kid, verified.header, start..all.len())
    };
    Ok(LoadedArtifact { bytes, payload, version, kid, header, path, sha256 })
}

/// Open `path` and take its length, refusing a file over `cap`.
fn open_capped(path: &Path, cap: u64) -> Result<(std::fs::File, u64)> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::artifact_fault(ArtifactFault::Io, format!("cannot open artifact {}: {e}", path.display())))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > cap {
        return Err(Error::artifact_fault(ArtifactFault::OverCap, format!(
            "artifact {} is {len} bytes, over RECOTEM_MAX_ARTIFACT_BYTES ({cap})",
            path.display()
        )));
    }
    Ok((file, len))
}

/// Open the artifact at `path`, following one pointer; its length is
/// checked against `cap` before anything is read.
fn open_artifact(path: &Path, cap: u64) -> Result<(std::fs::File, PathBuf, u64)> {
    let (file, len) = open_capped(path, cap)?;
    if len <= MAX_POINTER_BYTES as u64 {
        let bytes = read_bounded(path, cap)?;
        if let Some(name) = pointer_target(&bytes) {
            let target = path.parent().unwrap_or(Path::new(".")).join(name);
            let (file, len) = open_capped(&target, cap).map_err(|e| e.context(format!("pointer {}", path.display())))?;
            return Ok((file, target, len));
        }
    }
    Ok((file, path.to_path_buf(), len))
}

/// The container fields the loader needs before the payload arrives.
struct Layout {
    version: u16,
    kid: String,
    payload_offset: usize,
}

impl Layout {
    /// The layout of a well-formed prefix (see `container`), else `None`.
    fn of(prefix: &[u8], len: usize) -> Option<Layout> {
        if prefix.get(..8)? != crate::artifact::container::MAGIC {
            return None;
        }
        let version = u16::from_le_bytes([*prefix.get(8)?, *prefix.get(9)?]);
        let kid_len = *prefix.get(12)? as usize;
        if !(version == 1 || version == 2) || kid_len == 0 {
            return None;
        }
        let kid = std::str::from_utf8(prefix.get(13..13 + kid_len)?).ok()?.to_string();
        let at = 45 + kid_len;
        let header_len = u32::from_le_bytes(prefix.get(at..at + 4)?.try_into().ok()?) as usize;
        let payload_offset = at + 4 + header_len;
        (header_len <= crate::artifact::container::MAX_HEADER_BYTES && payload_offset <= len)
            .then_some(Layout { version, kid, payload_offset })
    }

    /// The byte ranges the HMAC covers, in file order (see `container`).
    fn authenticated(&self, len: usize) -> Vec<std::ops::Range<usize>> {
        let kid_end = 13 + self.kid.len();
        match self.version {
            1 => vec![13..kid_end, kid_end + 36..len],
            _ => vec![0..kid_end, kid_end + 32..len],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::container::{Container, seal};
    use crate::artifact::keys::{KeyRing, SigningKey};
    use crate::model::Model;

    fn key() -> SigningKey {
        SigningKey::new("k", [3u8; 32])
    }

    fn artifact(size: usize, seed: u32) -> Vec<u8> {
        let payload: Vec<u8> = (0..size as u32).map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 24) as u8).collect();
        seal(&key(), format!("{{\"seed\":{seed}}}").as_bytes(), &payload).unwrap()
    }

    /// What a reader sees at `path`: `None` when nothing is there, else
    /// whether the artifact (after following a pointer) verifies.
    fn reader_view(path: &Path) -> Option<Result<()>> {
        if !path.exists() {
            return None;
        }
        Some(read_artifact(path, u64::MAX).and_then(|(bytes, _)| {
            Container::parse(&bytes, u64::MAX)?.verify(&KeyRing::single(key())).map(|_| ())
        }))
    }

    fn temp_leftovers(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".tmp-")).count()
    }

    #[test]
    fn versioned_names_strip_recotem() {
        assert_eq!(versioned_name("m.recotem", "0123abcd"), "m.0123abcd.recotem");
        assert_eq!(versioned_name("m.bin", "0123abcd"), "m.bin.0123abcd.recotem");
    }

    #[test]
    fn pointers() {
        assert_eq!(pointer_target(b"m.0123abcd.recotem\n"), Some("m.0123abcd.recotem"));
        assert_eq!(pointer_target(b"../x.recotem\n"), None);
        assert_eq!(pointer_target(b"RECOTEM\0"), None);
        assert_eq!(pointer_target(b".recotem"), None);
        assert_eq!(pointer_target(format!("{}.recotem\n", "a".repeat(600)).as_bytes()), None);
    }

    #[test]
    fn append_sha_writes_artifact_and_pointer() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model.recotem");
        let bytes = artifact(100, 1);
        let w = write(&out, Versioning::AppendSha, &bytes, None).unwrap();
        let sha8 = &crate::util::sha256_hex(&bytes)[..8];
        assert_eq!(w.artifact, dir.path().join(format!("model.{sha8}.recotem")));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("model.{sha8}.recotem\n"));
        let (read, from) = read_artifact(&out, 1 << 20).unwrap();
        assert_eq!((read, from), (bytes, w.artifact));
        assert_eq!(temp_leftovers(dir.path()), 0);
    }

    #[test]
    fn always_overwrite_replaces_and_creates_parents() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/b/model.recotem");
        write(&out, Versioning::AlwaysOverwrite, b"one", None).unwrap();
        write(&out, Versioning::AlwaysOverwrite, b"two", None).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn artifact_root_is_enforced_when_the_directory_is_opened() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("root");
        let outside = base.path().join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let r = Some(root.as_path());
        write(&root.join("sub/m.recotem"), Versioning::AlwaysOverwrite, b"x", r).unwrap();
        // Outside, through `..`, and through a symlinked directory: refused, exit 5.
        for path in [outside.join("m.recotem"), root.join("../outside/m.recotem")] {
            let e = write(&path, Versioning::AlwaysOverwrite, b"x", r).unwrap_err();
            assert_eq!(e.exit_code(), 5);
            assert!(e.to_string().contains("RECOTEM_ARTIFACT_ROOT"), "{e}");
        }
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        assert!(write(&root.join("link/m.recotem"), Versioning::AlwaysOverwrite, b"x", r).is_err());
        assert!(!outside.join("m.recotem").exists());

        // The race: the directory is checked and opened, then swapped for a
        // symlink to the outside before the write. The write still lands in
        // the directory that was opened.
        let dest = Destination::open(&root.join("sub/m.recotem"), r).unwrap();
        std::fs::rename(root.join("sub"), root.join("sub-moved")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("sub")).unwrap();
        dest.replace("m.recotem", b"raced").unwrap();
        assert!(!outside.join("m.recotem").exists(), "the write followed the swapped symlink");
        assert_eq!(std::fs::read(root.join("sub-moved/m.recotem")).unwrap(), b"raced");
    }

    /// The child half of `kill_9_never_leaves_a_partial_file`: rewrites two
    /// artifacts (one per versioning mode) until it is killed.
    #[test]
    #[ignore = "runs only as the child process of kill_9_never_leaves_a_partial_file"]
    fn kill_9_writer_child() {
        let Some(dir) = std::env::var_os("RECOTEM_KILL_TEST_DIR") else { return };
        let dir = PathBuf::from(dir);
        for seed in 0u32.. {
            let bytes = artifact(4 << 20, seed);
            write(&dir.join("overwrite.recotem"), Versioning::AlwaysOverwrite, &bytes, None).unwrap();
            write(&dir.join("append.recotem"), Versioning::AppendSha, &bytes, None).unwrap();
        }
    }

    #[cfg(unix)]
    #[test]
    fn kill_9_never_leaves_a_partial_file() {
        let exe = std::env::current_exe().unwrap();
        for round in 0..12u64 {
            let dir = tempfile::tempdir().unwrap();
            let mut child = std::process::Command::new(&exe)
                .args(["--exact", "artifact::store::tests::kill_9_writer_child", "--ignored", "--test-threads=1"])
                .env("RECOTEM_KILL_TEST_DIR", dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // Wait for the first complete pair, then kill at a varying moment.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !dir.path().join("append.recotem").exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            std::thread::sleep(std::time::Duration::from_millis(3 + round * 11));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            for name in ["overwrite.recotem", "append.recotem"] {
                let view = reader_view(&dir.path().join(name));
                assert!(matches!(view, Some(Ok(()))), "round {round}: {name} after kill -9: {view:?}");
            }
        }
    }

    #[test]
    fn caps_admit_only_what_readers_accept() {
        let caps = Caps { artifact: 100, payload: 50 };
        assert!(caps.admit(100, 50).is_ok());
        let e = caps.admit(101, 10).unwrap_err();
        assert!(e.exit_code() == 5 && e.to_string().contains("RECOTEM_MAX_ARTIFACT_BYTES"), "{e}");
        let e = caps.admit(90, 51).unwrap_err();
        assert!(e.exit_code() == 5 && e.to_string().contains("RECOTEM_MAX_PAYLOAD_BYTES"), "{e}");
    }

    #[test]
    fn bounded_read_refuses_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![0u8; 100]).unwrap();
        assert!(read_bounded(&p, 99).unwrap_err().to_string().contains("over"));
        assert_eq!(read_bounded(&p, 100).unwrap().len(), 100);
    }

    #[test]
    fn load_verified_matches_the_copying_path_and_views_in_place() {
        use crate::artifact::container::seal_version;
        use crate::artifact::payload::Payload;
        let dir = tempfile::tempdir().unwrap();
        let samples = crate::artifact::fuzz::sample_payloads();
        // Kid and header lengths move the payload to every offset mod 8.
        for (n, payload) in samples.iter().enumerate() {
            for version in [1u16, 2] {
                for kid_len in [1usize, 2, 3, 4, 5, 6, 7, 8] {
                    let key = SigningKey::new(&"k".repeat(kid_len), [7u8; 32]);
                    let ring = KeyRing::single(key.clone());
                    let header = format!("{{\"n\":{n}}}");
                    let bytes = seal_version(version, &key, header.as_bytes(), &payload.encode()).unwrap();
                    let path = dir.path().join(format!("a{n}-{version}-{kid_len}.recotem"));
                    std::fs::write(&path, &bytes).unwrap();
                    let loaded = load_verified(&path, u64::MAX, u64::MAX, &ring, true).unwrap();
                    assert_eq!(loaded.bytes.as_bytes(), &bytes[..]);
                    assert_eq!(loaded.sha256, Some(<[u8; 32]>::from(Sha256::digest(&bytes))));
                    let copied = Container::parse(&bytes, u64::MAX).unwrap().verify(&ring).unwrap();
                    assert_eq!(&loaded.bytes.as_bytes()[loaded.payload.clone()], copied.payload);
                    assert_eq!((loaded.version, &loaded.kid, &loaded.header), (version, &copied.kid, &copied.header));
                    let shared = Payload::decode_shared(&loaded.bytes, loaded.payload.clone()).unwrap();
                    assert_eq!(shared, Payload::decode(copied.payload).unwrap());
                    if cfg!(target_endian = "little") {
                        match &shared.model {
                            Model::Popularity(v) | Model::DenseItemItem { values: v, .. } => assert!(v.is_view()),
                            Model::Factors { users, items, .. } => assert!(users.is_view() && items.is_view()),
                            Model::SparseItemItem(_) => {}
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn load_verified_fails_like_the_copying_path() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::single(key());
        let good = artifact(10_000_000, 1);
        let path = dir.path().join("a.recotem");
        let stage = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            load_verified(&path, u64::MAX, u64::MAX, &ring, false).map(|_| ()).map_err(|(stage, e)| (stage, e.to_string()))
        };
        assert!(stage(&good).is_ok());
        // A flipped byte in the payload, past the first read chunk.
        let mut tampered = good.clone();
        tampered[9_000_000] ^= 1;
        let (at, msg) = stage(&tampered).unwrap_err();
        assert!(matches!(at, LoadStage::Verify { .. }));
        assert!(msg.contains("HMAC mismatch"), "{msg}");
        let (at, msg) = stage(&good[..55]).unwrap_err();
        assert_eq!(at, LoadStage::Parse, "{msg}");
        let (at, msg) = stage(b"not an artifact").unwrap_err();
        assert_eq!(at, LoadStage::Parse);
        assert!(msg.contains("magic"), "{msg}");
        let other = KeyRing::single(SigningKey::new("other", [1u8; 32]));
        std::fs::write(&path, &good).unwrap();
        let (at, e) = load_verified(&path, u64::MAX, u64::MAX, &other, false).unwrap_err();
        assert!(matches!(at, LoadStage::Verify { .. }));
        assert!(e.to_string().contains("unknown kid"));
        let (at, e) = load_verified(&path, 1000, u64::MAX, &ring, false).unwrap_err();
        assert_eq!(at, LoadStage::Read);
        assert!(e.to_string().contains("RECOTEM_MAX_ARTIFACT_BYTES"));
        // A pointer is followed.
        std::fs::write(dir.path().join("p.recotem"), "a.recotem\n").unwrap();
        let loaded = load_verified(&dir.path().join("p.recotem"), u64::MAX, u64::MAX, &ring, false).unwrap();
        assert_eq!(loaded.path, path);
    }
}
