//! What several benchmarks share: a Python venv with the anchors the issues
//! name (created once under `target/tmp`, from the package registry), and
//! running the real `recotem` binary on a recipe.
//!
//! Included with `#[path = "support/mod.rs"] mod support;`; not every bench
//! uses every item.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The shared work directory of the benchmarks: `<target>/tmp/bench`.
pub fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench");
    std::fs::create_dir_all(&dir).expect("create the bench work dir");
    dir
}

/// A venv under the bench work dir named `name` with `packages` installed
/// (pip requirement strings), created on first use; its python.
pub fn python_venv(name: &str, packages: &[&str]) -> Result<PathBuf, String> {
    let venv = work_dir().join(format!("venv-{name}"));
    let python = venv.join("bin/python");
    let ready = venv.join(".installed");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&ready).is_ok_and(|have| have == wanted) {
        return Ok(python);
    }
    let run = |cmd: &mut Command, what: &str| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!("{what} failed: {}", err.lines().last().unwrap_or("(no output)")))
        }
    };
    println!("setting up {} (python3 -m venv, pip install {})…", venv.display(), packages.join(" "));
    run(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv), "python3 -m venv")?;
    run(Command::new(venv.join("bin/pip")).args(["install", "--quiet"]).args(packages), "pip install")?;
    std::fs::write(&ready, wanted).map_err(|e| e.to_string())?;
    Ok(python)
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared/datasets/ml-100k/split-seed42.csv` beside the checkout, or
/// the file `RECOTEM_BENCH_SPLIT` names.
pub fn ml100k_split() -> PathBuf {
    std::env::var_os("RECOTEM_BENCH_SPLIT")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/datasets/ml-100k/split-seed42.csv"))
}

/// A finished `recotem train`: its wall time and JSON events.
pub struct TrainRun {
    pub wall: Duration,
    pub events: Vec<serde_json::Value>,
}

impl TrainRun {
    /// The first event called `name`.
    pub fn event(&self, name: &str) -> Option<&serde_json::Value> {
        self.events.iter().find(|e| e["event"] == name)
    }
}

/// Run `recotem train <recipe>` (the release binary built with this bench)
/// with a fresh signing key and JSON events; panics with the error event
/// when it fails.
pub fn recotem_train(recipe: &Path, dir: &Path) -> TrainRun {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_recotem"))
        .arg("train")
        .arg(recipe)
        .current_dir(dir)
        .env("RECOTEM_SIGNING_KEYS", format!("bench:{}", "ab".repeat(32)))
        .env("RECOTEM_CACHE_DIR", work_dir().join("component-cache"))
        .env("RECOTEM_LOG_FORMAT", "json")
        .output()
        .expect("run recotem");
    let wall = started.elapsed();
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stderr).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    if !out.status.success() {
        let error = events.iter().rev().find(|e| e["level"] == "error").cloned().unwrap_or_default();
        panic!("recotem train {} failed ({}): {error}", recipe.display(), out.status);
    }
    TrainRun { wall, events }
}

/// A recipe training `algorithms` on the ml-100k fixed split (tune on
/// `train_inner`, score ndcg@10 on `val`, refit on both, test score),
/// `n_trials` in all, written to `dir/<name>.yaml`.
pub fn fixed_split_recipe(dir: &Path, name: &str, split: &Path, algorithms: &[&str], n_trials: u32, parallelism: u32) -> PathBuf {
    let text = format!(
        "name: {name}\n\
         source: {{type: csv, path: {path:?}}}\n\
         schema: {{user_column: user_id, item_column: item_id}}\n\
         training:\n  algorithms: [{algos}]\n  metric: ndcg\n  cutoff: 10\n  n_trials: {n_trials}\n  parallelism: {parallelism}\n\
         \x20 split: {{scheme: fixed, column: part, labels: {{train: train_inner, val: val, test: test}}, seed: 42}}\n\
         output: {{path: out/{name}.recotem, versioning: always_overwrite}}\n",
        path = split.display().to_string(),
        algos = algorithms.join(", "),
    );
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, text).expect("write the recipe");
    file
}

/// What irspack + Optuna reached on one algorithm.
#[derive(Debug, Clone)]
pub struct IrspackResult {
    pub algorithm: String,
    pub val_ndcg10: f64,
    pub test_ndcg10: f64,
    pub wall_seconds: f64,
}

/// Tune `algorithms` (recotem names) with irspack 0.5 + Optuna's TPE on the
/// ml-100k fixed split, `n_trials` each, in a venv set up from PyPI
/// (`scripts/bench-irspack.py`). `Err` says why the Python side could not
/// run.
pub fn irspack(split: &Path, algorithms: &[&str], n_trials: u32) -> Result<Vec<IrspackResult>, String> {
    let python = python_venv("irspack", &["irspack==0.5.2", "optuna>=3,<5"])?;
    let script = repo_root().join("scripts/bench-irspack.py");
    let out = Command::new(python)
        .arg(script)
        .arg(split)
        .arg(n_trials.to_string())
        .args(algorithms)
        .env("OMP_NUM_THREADS", "2")
        .output()
        .map_err(|e| format!("run scripts/bench-irspack.py: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("scripts/bench-irspack.py failed: {}", err.lines().rev().take(3).collect::<Vec<_>>().join(" | ")));
    }
    let mut results = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        results.push(IrspackResult {
            algorithm: v["algorithm"].as_str().unwrap_or_default().to_string(),
            val_ndcg10: v["val_ndcg10"].as_f64().unwrap_or(f64::NAN),
            test_ndcg10: v["test_ndcg10"].as_f64().unwrap_or(f64::NAN),
            wall_seconds: v["wall_seconds"].as_f64().unwrap_or(f64::NAN),
        });
    }
    Ok(results)
}
