//! The per-recipe training lock (TRN-02/TRN-03): two `recotem train` runs
//! of the same recipe on one host never overlap.
//!
//! The lock is an advisory `flock(2)` (through `fs4`) on `<output.path>.lock`
//! — created with its parent directories, mode 0600, opened with
//! `O_NOFOLLOW` (a symlink there is refused), never deleted. A remote
//! `output.path` (`s3://…`) has no local directory, so its lock lives in
//! `RECOTEM_LOCK_DIR` (default `<tmp>/recotem-locks`) as
//! `<sha256(output.path)>.lock`, and `recipe_lock_local_only` says that it
//! only coordinates runs on this host. The operating system releases the
//! lock when the process ends, however it ends (SIGKILL included), so a
//! crashed run never leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::events::Event;

/// How long to wait for a held lock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Wait {
    /// Try once (`--lock-timeout 0`, the default).
    Once,
    /// Poll until this long has passed.
    For(Duration),
    /// Wait as long as it takes (`--lock-timeout -1`).
    Forever,
}

impl Wait {
    /// Parse `--lock-timeout SECONDS`: 0 = once, -1 = forever, > 0 = poll
    /// until then; any other negative (or non-finite) value is a
    /// configuration error (exit 8).
    pub fn from_seconds(seconds: f64) -> Result<Wait> {
        if seconds == 0.0 {
            Ok(Wait::Once)
        } else if seconds == -1.0 {
            Ok(Wait::Forever)
        } else if seconds > 0.0 && seconds.is_finite() {
            Duration::try_from_secs_f64(seconds)
                .map(Wait::For)
                .map_err(|_| Error::config("--lock-timeout: the value is too large; give seconds, 0 or -1"))
        } else {
            Err(Error::config(
                "--lock-timeout: give 0 (try once), -1 (wait forever) or a positive number of seconds",
            ))
        }
    }
}

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct RecipeLock {
    file: File,
    /// The lock file.
    pub path: PathBuf,
}

impl Drop for RecipeLock {
    fn drop(&mut self) {
        let _ = fs4::FileExt::unlock(&self.file);
    }
}

/// Paths already warned about with `recipe_lock_local_only`.
static WARNED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// The lock file of a recipe whose output is `output` (`lock_dir` is
/// `RECOTEM_LOCK_DIR`), and whether it only coordinates this host because
/// the output is remote.
pub fn lock_path(output: &str, lock_dir: Option<&Path>) -> (PathBuf, bool) {
    match crate::recipe::paths::local_path(output) {
        Some(local) => {
            let mut name = local.into_os_string();
            name.push(".lock");
            (PathBuf::from(name), false)
        }
        None => {
            let dir = lock_dir.map_or_else(|| std::env::temp_dir().join("recotem-locks"), Path::to_path_buf);
            (dir.join(format!("{}.lock", hex::encode(Sha256::digest(output.as_bytes())))), true)
        }
    }
}

/// Take the lock of the recipe whose output is `output`. `Ok(None)` means
/// another process holds it and the caller skips the run (without
/// `--fail-on-busy`); with `fail_on_busy` that is an error (exit 6).
pub fn acquire(output: &str, recipe: &str, run_id: &str, wait: Wait, fail_on_busy: bool) -> Result<Option<RecipeLock>> {
    let (path, remote) = lock_path(output, crate::settings::get().lock_dir.as_deref());
    if remote {
        let mut warned = WARNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let event = if warned.contains(&path) { Event::debug("recipe_lock_local_only") } else { Event::warn("recipe_lock_local_only") };
        warned.push(path.clone());
        event
            .field("lock", path.display().to_string())
            .field("reason", "output.path is remote: the lock only coordinates runs on this host")
            .emit();
    }
    let file = open(&path)?;
    let started = Instant::now();
    loop {
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {
                Event::debug("recipe_lock_acquired").field("lock", path.display().to_string()).emit();
                return Ok(Some(RecipeLock { file, path }));
            }
            Err(fs4::TryLockError::WouldBlock) => {}
            Err(fs4::TryLockError::Error(e)) => {
                return Err(Error::config(format!("recipe lock {}: cannot lock it: {e}", path.display())));
            }
        }
        let waited = started.elapsed();
        let expired = match wait {
            Wait::Once => true,
            Wait::For(limit) => waited >= limit,
            Wait::Forever => false,
        };
        if expired {
            if wait != Wait::Once {
                Event::warn("recipe_lock_timeout")
                    .field("recipe", recipe.to_string())
                    .field("waited_seconds", waited.as_secs_f64())
                    .emit();
            }
            if fail_on_busy {
                let message = format!(
                    "recipe {recipe:?} is being trained by another process (lock {} is held{}); \
                     try again later, or pass --lock-timeout SECONDS to wait",
                    path.display(),
                    if wait == Wait::Once { String::new() } else { format!(" after waiting {:.1} s", waited.as_secs_f64()) }
                );
                return Err(if wait == Wait::Once { Error::lock_contested(message) } else { Error::lock_timeout(message) });
            }
            Event::info("recipe_lock_contended_skipping")
                .field("recipe", recipe.to_string())
                .field("run_id", run_id.to_string())
                .field("lock", path.display().to_string())
                .emit();
            return Ok(None);
        }
        let pause = match wait {
            Wait::For(limit) => limit.saturating_sub(waited).min(Duration::from_millis(100)),
            _ => Duration::from_millis(100),
        };
        std::thread::sleep(pause);
    }
}

/// Open (create) the lock file: parents created, mode 0600, never through a
/// symlink.
fn open(path: &Path) -> Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::config(format!("recipe lock {}: cannot create its directory: {e}", path.display())))?;
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path).map_err(|e| {
        let symlink = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if symlink {
            Event::error("recipe_lock_unsafe_symlink").field("lock", path.display().to_string()).emit();
            Error::config(format!("recipe lock {} is a symbolic link; remove it (a lock is never followed through a link)", path.display()))
        } else {
            Error::config(format!("recipe lock {}: cannot open it: {e}", path.display()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_timeout_values() {
        assert_eq!(Wait::from_seconds(0.0).unwrap(), Wait::Once);
        assert_eq!(Wait::from_seconds(-1.0).unwrap(), Wait::Forever);
        assert_eq!(Wait::from_seconds(2.5).unwrap(), Wait::For(Duration::from_millis(2500)));
        for bad in [-0.5, -2.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(Wait::from_seconds(bad).unwrap_err().exit_code(), 8, "{bad}");
        }
    }

    #[test]
    fn lock_paths() {
        assert_eq!(lock_path("out/m.recotem", None), (PathBuf::from("out/m.recotem.lock"), false));
        let (p, remote) = lock_path("s3://bucket/m.recotem", Some(Path::new("/locks")));
        assert!(remote && p.starts_with("/locks") && p.extension().is_some_and(|e| e == "lock"), "{p:?}");
    }

    #[test]
    fn second_holder_is_refused_until_release() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/m.recotem");
        let out = out.to_str().unwrap();
        let first = acquire(out, "r", "1", Wait::Once, true).unwrap().expect("free");
        assert_eq!(acquire(out, "r", "2", Wait::Once, true).unwrap_err().exit_code(), 6);
        assert!(acquire(out, "r", "2", Wait::Once, false).unwrap().is_none());
        drop(first);
        assert!(acquire(out, "r", "3", Wait::For(Duration::from_millis(200)), true).unwrap().is_some());
    }
}
