//! Quality and speed of every trainer against irspack, on the MovieLens 100k
//! fixed split (`../shared/datasets/ml-100k/split-seed42.csv`, or
//! `RECOTEM_BENCH_SPLIT`).
//!
//! For each algorithm: `recotem train` (the release binary) with a `fixed`
//! split recipe — 20 TPE trials tuned on `train_inner`, ndcg@10 on `val`,
//! the best refit on `train_inner + val`, ndcg@10 on `test` (the
//! `test_scored` event) — beside irspack 0.5.2 + Optuna's TPE on the same
//! split and budget (`scripts/bench-irspack.py`, in a venv this bench sets
//! up from PyPI under `target/tmp/bench`). Prints each test ndcg@10 and
//! wall time side by side with ratios, against the targets: every
//! algorithm ≥ 0.98× irspack's test ndcg@10; the best ≥ 0.44.
//!
//! Run: `cargo bench -p recotem --bench quality`. `RECOTEM_BENCH_TRIALS`
//! changes the budget (default 20), `RECOTEM_BENCH_ALGORITHMS` (comma
//! separated) the algorithms, `RECOTEM_BENCH_PARALLELISM` recotem's
//! `training.parallelism` (default 1: one trial at a time, as irspack).

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;

const ALGORITHMS: &[&str] = &["TopPop", "CosineKNN", "RP3beta", "TruncatedSVD", "IALS", "DenseSLIM", "BPRFM"];

/// irspack's figures measured by the author on this machine class
/// (../shared/datasets/README.md), printed when the venv cannot be set up.
const ANCHORS: &[(&str, f64)] =
    &[("TopPop", 0.2114), ("CosineKNN", 0.3612), ("RP3beta", 0.3948), ("TruncatedSVD", 0.4160), ("IALS", 0.4337), ("DenseSLIM", 0.4369)];

fn main() {
    let split = support::ml100k_split();
    if !split.is_file() {
        println!("skipped: {} is absent (set RECOTEM_BENCH_SPLIT)", split.display());
        return;
    }
    let trials: u32 = std::env::var("RECOTEM_BENCH_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let parallelism: u32 = std::env::var("RECOTEM_BENCH_PARALLELISM").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let chosen: Vec<String> = std::env::var("RECOTEM_BENCH_ALGORITHMS")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_else(|_| ALGORITHMS.iter().map(|s| s.to_string()).collect());
    let dir = support::work_dir().join(format!("quality-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    println!("data: {}; {trials} trials per algorithm, TPE seed 42, ndcg@10; recotem parallelism {parallelism}", split.display());

    let mut ours: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
    for name in &chosen {
        let recipe = support::fixed_split_recipe(&dir, &name.to_lowercase(), &split, &[name], trials, parallelism);
        let run = support::recotem_train(&recipe, &dir);
        let test = run.event("test_scored").and_then(|e| e["score"].as_f64()).unwrap_or(f64::NAN);
        let val = run.event("search_done").and_then(|e| e["best_score"].as_f64()).unwrap_or(f64::NAN);
        println!("recotem {name:<13} val {val:.4}  test {test:.4}  {:.1} s", run.wall.as_secs_f64());
        ours.insert(name.clone(), (val, test, run.wall.as_secs_f64()));
    }

    let names: Vec<&str> = chosen.iter().map(String::as_str).collect();
    let theirs: BTreeMap<String, support::IrspackResult> = match support::irspack(&split, &names, trials) {
        Ok(results) => results.into_iter().map(|r| (r.algorithm.clone(), r)).collect(),
        Err(why) => {
            println!("irspack side not measured: {why}; the issue's anchors are printed instead");
            ANCHORS
                .iter()
                .map(|(a, t)| {
                    let r = support::IrspackResult { algorithm: a.to_string(), val_ndcg10: f64::NAN, test_ndcg10: *t, wall_seconds: f64::NAN };
                    (a.to_string(), r)
                })
                .collect()
        }
    };

    println!(
        "\n{:<13} {:>10} {:>10} {:>8}   {:>10} {:>10} {:>8}   target ≥ 0.98×",
        "algorithm", "recotem", "irspack", "ratio", "recotem s", "irspack s", "ratio"
    );
    let mut best = (f64::NEG_INFINITY, String::new());
    for name in &chosen {
        let (_, test, wall) = ours[name];
        if test > best.0 {
            best = (test, name.clone());
        }
        match theirs.get(name).filter(|r| r.test_ndcg10.is_finite()) {
            Some(r) => {
                let ratio = test / r.test_ndcg10;
                println!(
                    "{name:<13} {test:>10.4} {:>10.4} {ratio:>7.3}×   {wall:>10.1} {:>10.1} {:>7.2}×   {}",
                    r.test_ndcg10,
                    r.wall_seconds,
                    wall / r.wall_seconds,
                    if ratio >= 0.98 { "met" } else { "NOT met" }
                );
            }
            None => println!("{name:<13} {test:>10.4} {:>10} {:>8}   {wall:>10.1} {:>10} {:>8}   (no irspack figure)", "—", "—", "—", "—"),
        }
    }
    println!(
        "best: {} {:.4} (target ≥ 0.44: {})",
        best.1,
        best.0,
        if best.0 >= 0.44 { "met" } else { "NOT met" }
    );
    let _ = std::fs::remove_dir_all(&dir);
}
