//! What several benchmarks share: the generated 10 M-interaction data set of
//! issue 9 (200 000 users × 50 000 items, Zipf-like item popularity, seeded),
//! so the trainer and evaluation benches measure the same data; a Python
//! venv with the anchors the issues name (created once under `target/tmp`,
//! from the package registry); and running the real `recotem` binary on a
//! recipe.
//!
//! Included with `#[path = "support/mod.rs"] mod support;`; not every bench
//! uses every item.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use recotem_core::model::Csr;
use recotem_numerics::Rng;

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
    let n_trials = n_trials.to_string();
    let mut args = vec![split.as_os_str(), n_trials.as_ref()];
    args.extend(algorithms.iter().map(|a| std::ffi::OsStr::new(*a)));
    let stdout = irspack_script("bench-irspack.py", &args)?;
    let mut results = Vec::new();
    for line in String::from_utf8_lossy(&stdout).lines() {
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

/// Run `scripts/<script>` with `args` in the irspack venv (set up from
/// PyPI on first use); its stdout, or why it could not run.
pub fn irspack_script(script: &str, args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, String> {
    let python = python_venv("irspack", &["irspack==0.5.2", "optuna>=3,<5"])?;
    let out = Command::new(python)
        .arg(repo_root().join("scripts").join(script))
        .args(args)
        .env("OMP_NUM_THREADS", "2")
        .output()
        .map_err(|e| format!("run scripts/{script}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("scripts/{script} failed: {}", err.lines().rev().take(3).collect::<Vec<_>>().join(" | ")));
    }
    Ok(out.stdout)
}

/// Seed of the generated data.
const SEED: u64 = 20_261_201;

/// Generate (once per scale) the interactions into `dir`: `meta.txt`
/// (`users items nnz`), `indptr.bin` and `indices.bin` (little-endian u32,
/// CSR, columns sorted per row). Returns `(users, items, nnz)`.
pub fn generate(scale: f64, dir: &Path) -> (u32, u32, u64) {
    let users = ((200_000.0 * scale).round() as u32).max(100);
    let items = ((50_000.0 * scale).round() as u32).max(200);
    let nnz = ((10_000_000.0 * scale).round() as u64).max(1000);
    if dir.join("meta.txt").is_file() {
        return (users, items, nnz);
    }
    std::fs::create_dir_all(dir).expect("data dir");
    let mut rng = Rng::new(SEED);
    // Item popularity ∝ 1 / rank^0.8, ranks shuffled over the item ids.
    let mut ids: Vec<u32> = (0..items).collect();
    rng.shuffle(&mut ids);
    let mut cdf = Vec::with_capacity(items as usize);
    let mut total = 0f64;
    for r in 0..items {
        total += 1.0 / (r as f64 + 1.0).powf(0.8);
        cdf.push(total);
    }
    // Lengths uniform in [1, 2·mean − 1], then nudged to the exact total.
    let mean = nnz as f64 / users as f64;
    let cap = (items / 2).max(1);
    let mut lengths: Vec<u32> =
        (0..users).map(|_| ((1.0 + rng.next_f64() * (2.0 * mean - 2.0)).round() as u32).clamp(1, cap)).collect();
    let mut sum: u64 = lengths.iter().map(|&l| l as u64).sum();
    while sum != nnz {
        let u = rng.below(users as u64) as usize;
        if sum < nnz && lengths[u] < cap {
            lengths[u] += 1;
            sum += 1;
        } else if sum > nnz && lengths[u] > 1 {
            lengths[u] -= 1;
            sum -= 1;
        }
    }
    let mut indptr = Vec::with_capacity(users as usize + 1);
    let mut indices: Vec<u32> = Vec::with_capacity(nnz as usize);
    let mut mark = vec![u32::MAX; items as usize];
    indptr.push(0u32);
    for (u, &len) in lengths.iter().enumerate() {
        let start = indices.len();
        while indices.len() - start < len as usize {
            let x = rng.next_f64() * total;
            let rank = cdf.partition_point(|&c| c < x).min(items as usize - 1);
            let item = ids[rank];
            if mark[item as usize] != u as u32 {
                mark[item as usize] = u as u32;
                indices.push(item);
            }
        }
        indices[start..].sort_unstable();
        indptr.push(indices.len() as u32);
    }
    write_u32s(&dir.join("indptr.bin"), &indptr);
    write_u32s(&dir.join("indices.bin"), &indices);
    std::fs::write(dir.join("meta.txt"), format!("{users} {items} {nnz}\n")).expect("meta");
    (users, items, nnz)
}

fn write_u32s(path: &Path, v: &[u32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("write data");
}

fn read_u32s(path: &Path) -> Vec<u32> {
    let bytes = std::fs::read(path).expect("read data");
    bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}


/// The matrix `generate` wrote into `dir` (every value 1).
pub fn read_matrix(dir: &Path) -> Csr {
    let meta = std::fs::read_to_string(dir.join("meta.txt")).expect("meta");
    let dims: Vec<u32> = meta.split_whitespace().map(|v| v.parse().expect("number")).collect();
    let indptr = read_u32s(&dir.join("indptr.bin"));
    let indices = read_u32s(&dir.join("indices.bin"));
    let values = vec![1f32; indices.len()];
    Csr { rows: dims[0], cols: dims[1], indptr, indices, values }
}
