//! Test harness: run the binary in a scratch directory with a controlled
//! environment and read back its JSON events.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A signing key ring used by the tests (kid `test`).
pub const KEYS: &str = "test:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ is in the repo").to_path_buf()
}

/// The quickstart interactions file.
pub fn quickstart_csv() -> PathBuf {
    repo_root().join("examples/quickstart/interactions.csv")
}

/// A fixture component built by host/build.rs.
pub fn fixture_component(crate_name: &str) -> PathBuf {
    Path::new(env!("RECOTEM_TEST_COMPONENTS_DIR")).join(format!("{}.wasm", crate_name.replace('-', "_")))
}

/// A scratch dir whose `plugins/` holds the given fixture components
/// (file names without the `recotem-fixture-` prefix).
pub fn with_plugins(fixtures: &[&str]) -> (Scratch, PathBuf) {
    let s = Scratch::new();
    let plugins = s.path("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir plugins");
    for f in fixtures {
        let file = format!("{}.wasm", f.trim_start_matches("recotem-fixture-").replace('-', "_"));
        std::fs::copy(fixture_component(f), plugins.join(file)).expect("copy fixture");
    }
    (s, plugins)
}

/// A scratch directory with a prepared environment.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    envs: Vec<(String, String)>,
}

impl Scratch {
    /// New scratch dir with `RECOTEM_SIGNING_KEYS` set and JSON logs.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Scratch { dir, envs: Vec::new() };
        s.env("RECOTEM_SIGNING_KEYS", KEYS);
        s
    }

    /// Set (or replace) an environment variable for later runs.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.envs.retain(|(k, _)| k != key);
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Remove an environment variable for later runs.
    pub fn unset(&mut self, key: &str) -> &mut Self {
        self.envs.retain(|(k, _)| k != key);
        self
    }

    /// Path inside the scratch dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write a file inside the scratch dir and return its path.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, contents).expect("write");
        p
    }

    /// Run `recotem` with `args` in the scratch dir. The environment is
    /// cleared except for PATH and what was set with [`Scratch::env`]; the
    /// compiled-component cache is shared by all tests.
    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.command(args).output().expect("run recotem"))
    }

    /// The command [`Scratch::run`] runs, for tests that spawn it themselves.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_recotem"));
        cmd.args(args).current_dir(self.dir.path()).env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env("RECOTEM_LOG_FORMAT", "json");
        cmd.env("RECOTEM_CACHE_DIR", Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"));
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// A recipe over the quickstart data; `extra` is appended verbatim
    /// (YAML), `output` is relative to the scratch dir.
    pub fn recipe(&self, name: &str, body: &str) -> PathBuf {
        self.write(&format!("{name}.yaml"), body)
    }

    /// The standard quickstart-like recipe text.
    pub fn basic_recipe(&self) -> String {
        format!(
            "name: demo\n\
             source: {{type: csv, path: {csv}}}\n\
             schema: {{user_column: user_id, item_column: item_id}}\n\
             training: {{algorithms: [TopPop], cutoff: 10, n_trials: 2}}\n\
             output: {{path: out/model.recotem, versioning: always_overwrite}}\n",
            csv = quickstart_csv().display()
        )
    }
}

/// Run `recotem` to completion, reaping it with wait4(2): (exit code,
/// stderr, the process's resource usage — CPU times, peak memory).
pub fn run_with_usage(s: &Scratch, args: &[&str]) -> (i32, String, libc::rusage) {
    use std::os::unix::process::ExitStatusExt;
    // Reaped below with wait4(2), which also returns its resource usage.
    #[allow(clippy::zombie_processes)]
    let child = s
        .command(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn recotem");
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let mut status: libc::c_int = 0;
    // SAFETY: plain FFI call on our own child; `usage` is written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    let text = reader.join().unwrap_or_default();
    let code = std::process::ExitStatus::from_raw(status).code().expect("exited normally");
    (code, text, usage)
}

/// The files `train` left under `out/` other than the recipe lock
/// (`<output.path>.lock`, created with its directory and never deleted).
pub fn artifacts_in_out(s: &Scratch) -> Vec<PathBuf> {
    std::fs::read_dir(s.path("out"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_none_or(|e| e != "lock")).collect())
        .unwrap_or_default()
}

/// The result of one run.
pub struct Run(pub Output);

impl Run {
    /// Exit code (panics on signal).
    pub fn code(&self) -> i32 {
        self.0.status.code().expect("exited normally")
    }

    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// Every JSON event on stderr, in order. Panics on a non-JSON line:
    /// with RECOTEM_LOG_FORMAT=json, stderr must be pure JSON lines.
    pub fn events(&self) -> Vec<Value> {
        self.stderr()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {l}")))
            .collect()
    }

    /// The events named `name`.
    pub fn events_named(&self, name: &str) -> Vec<Value> {
        self.events().into_iter().filter(|e| e["event"] == name).collect()
    }

    /// Assert the exit code, showing stderr on failure.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code(), code, "unexpected exit code; stderr:\n{}\nstdout:\n{}", self.stderr(), self.stdout());
        self
    }

    /// The single `train_error` event (asserting there is exactly one) and
    /// that its exit_code field matches the process exit code.
    #[track_caller]
    pub fn train_error(&self) -> Value {
        let errors = self.events_named("train_error");
        assert_eq!(errors.len(), 1, "expected exactly one train_error; stderr:\n{}", self.stderr());
        let e = errors.into_iter().next().expect("one");
        assert_eq!(e["exit_code"], self.code(), "train_error.exit_code must match the exit status");
        e
    }
}
