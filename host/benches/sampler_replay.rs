//! The search on TruncatedSVD's one parameter, replayed against a measured
//! curve: what share of seeded 20-trial searches end below 0.98× of
//! irspack's test ndcg@10, with the rank drawn uniformly (irspack's space)
//! and log-uniformly (the built-in trainer's).
//!
//! The curve (`scripts/bench-svd-curve.py`, in the irspack venv the quality
//! bench sets up, cached under `target/tmp/bench/svd-curve.txt`): irspack's
//! TruncatedSVD on the fixed split of `split-seed42.csv` at every rank
//! 4..100 and every 8th to 512 (linear in between), validation ndcg@10
//! trained on `train_inner`, test ndcg@10 after the refit on `train_inner +
//! val`. Each replayed search is what `recotem train` runs: trial 0 the
//! default (20), then the TPE sampler (`train::tpe::suggest`) seeded as the
//! search seeds it; the best validation score picks the rank, the curve
//! gives its test score. The threshold is irspack + Optuna's own 20-trial
//! result on the same split, measured in the same run.
//!
//! Run: `cargo bench -p recotem --bench sampler_replay`;
//! `RECOTEM_BENCH_SEEDS` (default 400) sets the number of searches.

#[path = "support/mod.rs"]
mod support;

use recotem::plugin::bindings::source::recotem::plugin::types::ParamValue;
use recotem::plugin::bindings::trainer::exports::recotem::plugin::trainer_plugin::{IntRange, ParamDomain, ParamSpec};
use recotem::train::tpe::{Observation, Sampler, Status, suggest};
use recotem::util::Rng;

const TRIALS: usize = 20;
const DEFAULT_RANK: i64 = 20;

fn main() {
    let split = support::ml100k_split();
    if !split.is_file() {
        println!("skipped: {} is absent (set RECOTEM_BENCH_SPLIT)", split.display());
        return;
    }
    let seeds: u64 = std::env::var("RECOTEM_BENCH_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let curve = match curve(&split) {
        Ok(c) => c,
        Err(why) => {
            println!("skipped: the curve could not be measured: {why}");
            return;
        }
    };
    let irspack = match support::irspack(&split, &["TruncatedSVD"], TRIALS as u32) {
        Ok(r) if !r.is_empty() => r[0].test_ndcg10,
        Ok(_) => f64::NAN,
        Err(why) => {
            println!("skipped: irspack did not run: {why}");
            return;
        }
    };
    let peak = curve.iter().max_by(|a, b| a.1.total_cmp(&b.1)).expect("a curve");
    println!(
        "curve: {} ranks; validation peak at rank {} ({:.4}, test {:.4}); irspack + Optuna, {TRIALS} trials: test {irspack:.4}",
        curve.len(),
        peak.0,
        peak.1,
        peak.2
    );
    println!("\n{seeds} searches of {TRIALS} trials each, threshold 0.98 × {irspack:.4} = {:.4}", 0.98 * irspack);
    println!("{:<22} {:>14} {:>10} {:>12} {:>16} {:>14}", "rank drawn", "mean best val", "mean test", "median test", "below threshold", "repeated trials");
    for log in [false, true] {
        let space = vec![ParamSpec {
            name: "n_components".into(),
            description: String::new(),
            domain: ParamDomain::Int(IntRange { low: 4, high: 512, log, default: DEFAULT_RANK }),
        }];
        let (mut vals, mut tests, mut repeats) = (Vec::new(), Vec::new(), 0);
        for seed in 1..=seeds {
            let (best_val, best_rank, r) = replay(&space, &curve, seed);
            vals.push(best_val);
            tests.push(at(&curve, best_rank).1);
            repeats += r;
        }
        let below = tests.iter().filter(|t| **t < 0.98 * irspack).count();
        tests.sort_by(f64::total_cmp);
        let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
        println!(
            "{:<22} {:>14.4} {:>10.4} {:>12.4} {:>16} {:>13.1}%",
            if log { "log-uniform (built-in)" } else { "uniform (irspack)" },
            mean(&vals),
            mean(&tests),
            tests[tests.len() / 2],
            format!("{below} of {seeds}"),
            100.0 * repeats as f64 / (seeds as usize * TRIALS) as f64
        );
    }
}

/// One search: the best validation score, its rank, and how many trials
/// repeated an earlier rank.
fn replay(space: &[ParamSpec], curve: &[(i64, f64, f64)], seed: u64) -> (f64, i64, usize) {
    let mut history: Vec<Observation> = Vec::new();
    let (mut best, mut repeats) = ((f64::NEG_INFINITY, DEFAULT_RANK), 0);
    for number in 0..TRIALS {
        let rank = if number == 0 {
            DEFAULT_RANK
        } else {
            // Seeded as `search::choose` seeds each trial.
            let mut rng = Rng::new(seed ^ (number as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            match suggest(space, &history, Sampler::Tpe, &mut rng)[..] {
                [ParamValue::Int(k)] => k,
                ref other => panic!("not one integer: {other:?}"),
            }
        };
        if history.iter().any(|o| matches!(o.values[..], [ParamValue::Int(k)] if k == rank)) {
            repeats += 1;
        }
        let val = at(curve, rank).0;
        if val > best.0 {
            best = (val, rank);
        }
        history.push(Observation { values: vec![ParamValue::Int(rank)], status: Status::Complete(val) });
    }
    (best.0, best.1, repeats)
}

/// `(val, test)` at `rank`, linear between measured ranks.
fn at(curve: &[(i64, f64, f64)], rank: i64) -> (f64, f64) {
    let i = curve.partition_point(|r| r.0 < rank).min(curve.len() - 1);
    if curve[i].0 == rank || i == 0 {
        return (curve[i].1, curve[i].2);
    }
    let (a, b) = (curve[i - 1], curve[i]);
    let w = (rank - a.0) as f64 / (b.0 - a.0) as f64;
    (a.1 + w * (b.1 - a.1), a.2 + w * (b.2 - a.2))
}

/// The measured curve, `(rank, val, test)` by rank, from the cache or
/// measured now.
fn curve(split: &std::path::Path) -> Result<Vec<(i64, f64, f64)>, String> {
    let cache = support::work_dir().join("svd-curve.txt");
    if !cache.is_file() {
        println!("measuring the curve (irspack TruncatedSVD at 149 ranks, a few minutes)…");
        let stdout = support::irspack_script("bench-svd-curve.py", &[split.as_os_str()])?;
        std::fs::write(&cache, &stdout).map_err(|e| e.to_string())?;
    }
    let text = std::fs::read_to_string(&cache).map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let parsed = (f.first().and_then(|x| x.parse().ok()), f.get(1).and_then(|x| x.parse().ok()), f.get(2).and_then(|x| x.parse().ok()));
        match parsed {
            (Some(k), Some(v), Some(t)) => rows.push((k, v, t)),
            _ => return Err(format!("{}: unreadable line {line:?} (delete the file to measure again)", cache.display())),
        }
    }
    rows.sort_by_key(|r| r.0);
    if rows.is_empty() { Err(format!("{} is empty", cache.display())) } else { Ok(rows) }
}
