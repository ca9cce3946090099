//! Path rules for the recipe's path fields (PATH-01..08).
//!
//! | field                | allowed schemes                                             |
//! |----------------------|-------------------------------------------------------------|
//! | `source.path`        | bare, `file`, `s3`, `gs`, `az`, `abfs`, `abfss`, `http(s)`   |
//! | `item_metadata.path` | same as `source.path`                                        |
//! | `output.path`        | bare, `file`, `s3`, `gs`, `az`, `abfs`, `abfss`              |
//!
//! On every path field: `::` (fsspec-style chaining) is rejected, embedded
//! credentials (`user[:pass]@`) are rejected for `http`, `https`, `ftp`,
//! `ftps`, `s3`, `abfs` and `abfss`, and `file://` URLs must name no host
//! other than `localhost`. An `http(s)` input needs a `sha256` pin in the
//! same block. `RECOTEM_ARTIFACT_ROOT` confines local outputs (checked after
//! resolving symlinks). Relative paths resolve against the working directory.
//!
//! Messages never repeat a path that carries credentials.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::Problem;

const INPUT_SCHEMES: &[&str] = &["file", "s3", "gs", "az", "abfs", "abfss", "http", "https"];
const OUTPUT_SCHEMES: &[&str] = &["file", "s3", "gs", "az", "abfs", "abfss"];
const CREDENTIAL_SCHEMES: &[&str] = &["http", "https", "ftp", "ftps", "s3", "abfs", "abfss"];

/// Which rules apply to a path field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Data read by recotem (`source.path`, `item_metadata.path`).
    Input,
    /// The artifact (`output.path`).
    Output,
}

/// A path split into its scheme (lower-case; `None` for a bare path) and
/// the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location<'a> {
    /// `None` for a bare local path.
    pub scheme: Option<String>,
    /// What follows `scheme://` (or the whole bare path).
    pub rest: &'a str,
}

/// Split `raw` into scheme and rest. `scheme:` without `//` is reported as
/// a scheme too (so `data:` or `memory:x` cannot pass as a bare path); a
/// single letter before `:` is not a scheme.
pub fn split_scheme(raw: &str) -> Location<'_> {
    if let Some((scheme, rest)) = raw.split_once("://")
        && is_scheme(scheme)
    {
        return Location { scheme: Some(scheme.to_ascii_lowercase()), rest };
    }
    if let Some((scheme, rest)) = raw.split_once(':')
        && scheme.len() > 1
        && is_scheme(scheme)
    {
        return Location { scheme: Some(scheme.to_ascii_lowercase()), rest };
    }
    Location { scheme: None, rest: raw }
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The URL authority (`user@host:port`) of `rest`.
fn authority(rest: &str) -> &str {
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// True for an http(s) URL.
pub fn is_http(raw: &str) -> bool {
    matches!(split_scheme(raw).scheme.as_deref(), Some("http" | "https"))
}

/// Check one path field. `field` is its dotted name for messages.
pub fn check(field: &str, raw: &str, role: Role) -> Vec<Problem> {
    let mut problems = Vec::new();
    let loc = split_scheme(raw);
    let scheme = loc.scheme.as_deref();
    if raw.contains("::") {
        problems.push(Problem::security(format!(
            "{field}: `::` (chained protocols) is not allowed; name one local path or URL"
        )));
    }
    if let Some(s) = scheme
        && CREDENTIAL_SCHEMES.contains(&s)
        && raw.contains("://")
        && authority(loc.rest).contains('@')
    {
        problems.push(Problem::security(format!(
            "{field}: embedded credentials (user:password@) are not allowed in {s}:// paths; \
             give credentials to the data store through its own configuration, never in the recipe"
        )));
        // Say nothing more about this path: it carries a secret.
        return problems;
    }
    let allowed = match role {
        Role::Input => INPUT_SCHEMES,
        Role::Output => OUTPUT_SCHEMES,
    };
    match scheme {
        None => {}
        Some(s) if !allowed.contains(&s) => {
            let what = match role {
                Role::Input => "inputs may be a local path or file://, s3://, gs://, az://, abfs://, abfss://, http://, https://",
                Role::Output => "artifacts may be written to a local path or file://, s3://, gs://, az://, abfs://, abfss://",
            };
            problems.push(Problem::security(format!("{field}: the scheme {s:?} is not allowed; {what}")));
        }
        Some(s) if !raw.contains("://") => {
            problems.push(Problem::plain(format!("{field}: write {s} URLs as {s}://...")));
        }
        Some("file") => {
            let host = authority(loc.rest);
            if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
                problems.push(Problem::security(format!(
                    "{field}: file:// URLs may not name a host ({host:?}); use file:///absolute/path"
                )));
            }
        }
        Some(_) => {}
    }
    problems
}

/// The `sha256` pin rule: an http(s) input needs a 64-lowercase-hex pin.
pub fn check_pin(block: &str, path: &str, sha256: Option<&str>) -> Option<Problem> {
    if !is_http(path) {
        return None;
    }
    match sha256 {
        Some(s) if is_sha256_hex(s) => None,
        Some(_) => Some(Problem::plain(format!("{block}.sha256: must be 64 lower-case hex digits"))),
        None => Some(Problem::security(format!(
            "{block}.sha256: required when {block}.path is an http(s) URL, so the download is pinned; \
             add the file's SHA-256 (sha256sum <file>)"
        ))),
    }
}

/// 64 lower-case hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The local filesystem path `raw` names: a bare path as written, or a
/// `file://` URL (`file:///abs/x`, `file://localhost/abs/x`, and the
/// collapsed `file:/abs/x`) as its path, taken literally (no
/// percent-decoding). `None` for remote schemes and for a `file://` URL
/// naming another host.
///
/// Every place that accepts a path resolves it here: the recipe's path
/// fields, and the command line and environment through [`path_arg`]
/// (`inspect ARTIFACT`, `train RECIPE`, `validate TARGET`, `--plugin-dir`).
pub fn local_path(raw: &str) -> Option<PathBuf> {
    let loc = split_scheme(raw);
    match loc.scheme.as_deref() {
        None => Some(PathBuf::from(raw)),
        Some("file") => {
            let is_url = raw.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("file://"));
            if !is_url {
                return Some(PathBuf::from(loc.rest));
            }
            let host = authority(loc.rest);
            if host.is_empty() || host.eq_ignore_ascii_case("localhost") {
                Some(PathBuf::from(&loc.rest[host.len()..]))
            } else {
                None
            }
        }
        Some(_) => None,
    }
}

/// A path given on the command line or in the environment: the local path
/// of a bare path or `file://` URL (see [`local_path`]); anything else is
/// kept as written, for the command to open or reject with its own exit
/// code. A name that is not UTF-8 is a bare path.
pub fn path_arg(raw: &OsStr) -> PathBuf {
    raw.to_str().and_then(local_path).unwrap_or_else(|| PathBuf::from(raw))
}

/// `RECOTEM_ARTIFACT_ROOT` containment of a local `output.path` (PATH-07):
/// the parent must exist and, after resolving symlinks, lie under the
/// resolved root; an existing final path (a symlink, say) must too.
/// `root` is the variable's value.
pub fn check_artifact_root(output: &str, root: &str) -> Result<(), Problem> {
    let Some(path) = local_path(output) else { return Ok(()) };
    let real_root = std::fs::canonicalize(root).map_err(|e| {
        Problem::plain(format!("RECOTEM_ARTIFACT_ROOT {root:?}: cannot be resolved ({e}); create it or fix the variable"))
    })?;
    let Some(file_name) = path.file_name() else {
        return Err(Problem::plain("output.path: must name a file".to_string()));
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let real_parent = std::fs::canonicalize(&parent).map_err(|e| {
        Problem::plain(format!(
            "output.path: its directory {} cannot be resolved ({e}); with RECOTEM_ARTIFACT_ROOT set it must exist",
            parent.display()
        ))
    })?;
    let escapes = |p: &Path| !p.starts_with(&real_root);
    let outside = || {
        Problem::security(format!(
            "output.path: {} resolves outside RECOTEM_ARTIFACT_ROOT ({}); write artifacts under the root",
            path.display(),
            real_root.display()
        ))
    };
    if escapes(&real_parent) {
        return Err(outside());
    }
    let full = real_parent.join(file_name);
    if std::fs::symlink_metadata(&full).is_ok() {
        // An existing entry (possibly a symlink) must resolve inside too.
        match std::fs::canonicalize(&full) {
            Ok(real) if !escapes(&real) => {}
            _ => return Err(outside()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(field: &str, raw: &str, role: Role) -> String {
        check(field, raw, role).into_iter().map(|p| p.message).collect::<Vec<_>>().join(" | ")
    }

    #[test]
    fn schemes() {
        for ok in ["data.csv", "/abs/x.csv", "file:///x.csv", "file://localhost/x", "S3://b/k", "gs://p@b/k", "https://h/x", "C:/data.csv"] {
            assert_eq!(msgs("source.path", ok, Role::Input), "", "{ok}");
        }
        for bad in ["memory://x", "ftp://h/x", "hf://x", "github://x", "data:text/plain,1", "file://otherhost/x"] {
            assert_ne!(msgs("source.path", bad, Role::Input), "", "{bad}");
        }
        for bad in ["https://h/x", "http://h/x", "ftp://h/x", "memory://x"] {
            assert!(msgs("output.path", bad, Role::Output).contains("not allowed"), "{bad}");
        }
        assert_eq!(msgs("output.path", "s3://b/m.recotem", Role::Output), "");
        assert!(msgs("source.path", "file:/x.csv", Role::Input).contains("file://"));
    }

    #[test]
    fn chains_and_credentials() {
        assert!(msgs("source.path", "simplecache::s3://b/k", Role::Input).contains("::"));
        assert!(msgs("source.path", "http://[::1]/x", Role::Input).contains("::"));
        let m = msgs("source.path", "https://alice:hunter2@h/x", Role::Input);
        assert!(m.contains("credentials") && !m.contains("hunter2"), "{m}");
        assert!(msgs("output.path", "s3://AKIA:x@bucket/k", Role::Output).contains("credentials"));
        assert!(msgs("source.path", "abfss://c@acct.dfs.core.windows.net/x", Role::Input).contains("credentials"));
        assert_eq!(msgs("source.path", "az://c@acct/x", Role::Input), "");
        assert_eq!(msgs("source.path", "https://h/x?u=a@b", Role::Input), "");
    }

    #[test]
    fn local_paths() {
        assert_eq!(local_path("data.csv"), Some(PathBuf::from("data.csv")));
        assert_eq!(local_path("file:///x/y.csv"), Some(PathBuf::from("/x/y.csv")));
        assert_eq!(local_path("file://LOCALHOST/x"), Some(PathBuf::from("/x")));
        assert_eq!(local_path("file://localhost"), Some(PathBuf::from("")));
        assert_eq!(local_path("file:/x/y.csv"), Some(PathBuf::from("/x/y.csv")), "collapsed form");
        assert_eq!(local_path("FILE:///x"), Some(PathBuf::from("/x")));
        assert_eq!(local_path("file:///a%20b"), Some(PathBuf::from("/a%20b")), "taken literally");
        assert_eq!(local_path("file://ééééé/x"), None, "another host; no panic on non-ASCII");
        assert_eq!(local_path("file://otherhost/x"), None);
        assert_eq!(local_path("s3://b/k"), None);
    }

    #[test]
    fn path_arguments() {
        assert_eq!(path_arg(OsStr::new("file:///abs/a.recotem")), PathBuf::from("/abs/a.recotem"));
        assert_eq!(path_arg(OsStr::new("rel/a.recotem")), PathBuf::from("rel/a.recotem"));
        assert_eq!(path_arg(OsStr::new("C:/x")), PathBuf::from("C:/x"));
        // Not local: kept as written, for the command to report.
        assert_eq!(path_arg(OsStr::new("s3://b/k")), PathBuf::from("s3://b/k"));
        assert_eq!(path_arg(OsStr::new("file://host/k")), PathBuf::from("file://host/k"));
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let raw = OsStr::from_bytes(b"file:///\xff");
            assert_eq!(path_arg(raw), PathBuf::from(raw), "not UTF-8: a bare path");
        }
    }

    #[test]
    fn pins() {
        assert!(check_pin("source", "https://h/x", None).is_some());
        assert!(check_pin("source", "https://h/x", Some("AB")).is_some());
        assert!(check_pin("source", "https://h/x", Some(&"a".repeat(64))).is_none());
        assert!(check_pin("source", "x.csv", None).is_none());
    }

    #[test]
    fn artifact_root_containment() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        let r = root.to_str().unwrap();
        assert!(check_artifact_root(&format!("{r}/sub/m.recotem"), r).is_ok());
        assert!(check_artifact_root(&format!("file://{r}/m.recotem"), r).is_ok());
        assert!(check_artifact_root(&format!("{r}/../m.recotem"), r).is_err());
        assert!(check_artifact_root(&format!("{r}/missing/m.recotem"), r).is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path(), root.join("escape")).unwrap();
            assert!(check_artifact_root(&format!("{r}/escape/m.recotem"), r).is_err());
            std::os::unix::fs::symlink(dir.path().join("x"), root.join("link.recotem")).unwrap();
            assert!(check_artifact_root(&format!("{r}/link.recotem"), r).is_err());
        }
        assert!(check_artifact_root("s3://b/k", r).is_ok());
    }
}
