//! The search on MovieLens 100k with a fixed split, printed as a table with
//! ratios against baselines measured in the same run.
//!
//! Data: `../shared/datasets/ml-100k/split-seed42.csv` (`user_id, item_id,
//! part` with part ∈ train_inner / val / test), or the file named by
//! `RECOTEM_BENCH_SPLIT`. The search trains on `train_inner` and scores
//! ndcg@10 on `val`; the best configuration is refit on `train_inner + val`
//! and scored on `test`.
//!
//! 1. The 4-algorithm search (IALS, CosineKNN, RP3beta, TopPop; 20 trials
//!    each, `parallelism` 2, TPE) through `recotem train` with a `fixed`
//!    split recipe: best validation and test ndcg@10 and wall time, beside
//!    irspack 0.5.2 + Optuna's TPE tuning the same four on the same split and
//!    budget (`scripts/bench-irspack.py` in a venv set up from PyPI), with
//!    ratios against the targets (wall ≤ 0.5×, test ndcg@10 ≥ 1.0×).
//! 2. TPE against random sampling at the same budget (20 trials per
//!    algorithm, parallelism 1 so each search is reproducible) over 5
//!    seeds: mean and spread of the best validation score, first of the
//!    4-algorithm search (the row `search (4)`, the figure), then of
//!    each algorithm with a search space searched alone, and of the tunable
//!    test fixture (a real search space over a popularity model).
//!
//! Run: `cargo bench -p recotem --bench search` (release build);
//! `RECOTEM_BENCH_SKIP_SAMPLERS=1` runs section 1 only,
//! `RECOTEM_BENCH_SKIP_SEARCH=1` section 2 only (section 1 needs irspack for
//! its baseline).
//!
//! Section 2 over more seeds, to judge a sampler or pruner change (5 seeds
//! cannot tell samplers a few thousandths apart): `RECOTEM_BENCH_SEEDS=N`
//! runs seeds 1..=N and adds the paired comparison (per seed, TPE's best
//! against random's: wins, losses, ties, and the mean difference with its
//! standard error); `RECOTEM_BENCH_ALGORITHMS=IALS,Tunable` limits it to
//! those rows (`search` names the 4-algorithm row); `RECOTEM_BENCH_PRUNER=STARTUP,MIN` sets the median
//! pruner's `n_startup_trials` and `n_min_trials` (default: Optuna's 5,1)
//! for both samplers, to compare pruners on the same seeds.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use recotem::data::Split;
use recotem::model::Csr;
use recotem::plugin::Registry;
use recotem::plugin::engine::Runtime;
use recotem::plugin::trainer::TrainerComponent;
use recotem::recipe::model::Metric;
use recotem::train::progress::Progress;
use recotem::train::search::{self, MedianPruner, Outcome, SearchSettings};
use recotem::train::tpe::Sampler;

const ALGORITHMS: &[&str] = &["IALS", "CosineKNN", "RP3beta", "TopPop"];
const TRIALS_EACH: u32 = 20;
const CUTOFF: usize = 10;

/// The fixed split's search part: `train_inner` and the `val` items.
struct Data {
    train_inner: Csr,
    val: Split,
}

fn load(path: &Path) -> Data {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut users: BTreeMap<String, u32> = BTreeMap::new();
    let mut items: BTreeMap<String, u32> = BTreeMap::new();
    let mut rows: Vec<(u32, u32, String)> = Vec::new();
    for line in text.lines().skip(1) {
        let mut f = line.split(',');
        let (Some(u), Some(i), Some(p)) = (f.next(), f.next(), f.next()) else { continue };
        let n = users.len() as u32;
        let u = *users.entry(u.to_string()).or_insert(n);
        let n = items.len() as u32;
        let i = *items.entry(i.to_string()).or_insert(n);
        rows.push((u, i, p.trim().to_string()));
    }
    let (nu, ni) = (users.len() as u32, items.len() as u32);
    let csr = |keep: &dyn Fn(&str) -> bool| {
        let mut e: Vec<(u32, u32, f32)> = rows.iter().filter(|r| keep(&r.2)).map(|r| (r.0, r.1, 1.0)).collect();
        e.sort_by_key(|x| (x.0, x.1));
        e.dedup_by_key(|x| (x.0, x.1));
        recotem::data::interactions::csr_from_sorted(nu, ni, &e)
    };
    let heldout = |part: &str| {
        let mut by: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.2 == part) {
            by.entry(r.0).or_default().push(r.1);
        }
        by.into_iter()
            .map(|(u, mut v)| {
                v.sort_unstable();
                v.dedup();
                (u, v)
            })
            .collect::<Vec<_>>()
    };
    let train_inner = csr(&|p| p == "train_inner");
    Data { val: Split { train: train_inner.clone(), heldout: heldout("val") }, train_inner }
}

struct Outcomes {
    best_val: f64,
    /// The trial that scored `best_val` (0 = the trainer's defaults).
    best_trial: usize,
    /// Trials the median pruner stopped.
    pruned: usize,
}

/// How section 2 runs: seeds, algorithms, pruner (see the module docs).
struct Section2 {
    seeds: u64,
    algorithms: Option<Vec<String>>,
    pruner: MedianPruner,
}

impl Section2 {
    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let seeds = var("RECOTEM_BENCH_SEEDS").map_or(5, |v| v.trim().parse().unwrap_or_else(|_| panic!("RECOTEM_BENCH_SEEDS: not a count")));
        assert!(seeds >= 1, "RECOTEM_BENCH_SEEDS must be at least 1");
        let algorithms = var("RECOTEM_BENCH_ALGORITHMS").map(|v| v.split(',').map(|a| a.trim().to_string()).collect());
        let pruner = var("RECOTEM_BENCH_PRUNER").map_or_else(MedianPruner::default, |v| {
            let n: Vec<usize> = v.split(',').map(|x| x.trim().parse().unwrap_or_else(|_| panic!("RECOTEM_BENCH_PRUNER: STARTUP,MIN"))).collect();
            assert!(n.len() == 2, "RECOTEM_BENCH_PRUNER: STARTUP,MIN");
            MedianPruner { n_startup_trials: n[0], n_min_trials: n[1] }
        });
        Section2 { seeds, algorithms, pruner }
    }

    fn wants(&self, name: &str) -> bool {
        self.algorithms.as_ref().is_none_or(|a| a.iter().any(|x| x == name))
    }
}

// The bench's own knobs beside the search's inputs.
#[allow(clippy::too_many_arguments)]
fn search_once(
    runtime: &Runtime,
    trainers: &[&TrainerComponent],
    data: &Data,
    sampler: Sampler,
    seed: u64,
    parallelism: usize,
    pruner: MedianPruner,
) -> Outcomes {
    let budget = vec![TRIALS_EACH; trainers.len()];
    let slots = search::plan(trainers, &budget);
    let settings = SearchSettings {
        metric: Metric::Ndcg,
        cutoff: CUTOFF,
        seed,
        parallelism,
        per_trial_timeout: Duration::from_secs(600),
        timeout: None,
        quiet: true,
        verbose: false,
        sampler,
        pruner,
    };
    let results = search::run(runtime, trainers, slots, Vec::new(), &data.val, &settings, None, &Progress::hidden()).expect("search");
    let (best_trial, best_val) = results
        .iter()
        .filter_map(|r| if let Outcome::Scored(s) = r.outcome { Some((r.trial.number, s)) } else { None })
        .fold((0, f64::NEG_INFINITY), |b, x| if x.1 > b.1 { x } else { b });
    assert!(best_val.is_finite(), "no trial completed");
    let pruned = results.iter().filter(|r| matches!(r.outcome, Outcome::Pruned { .. })).count();
    Outcomes { best_val, best_trial, pruned }
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let m = xs.iter().sum::<f64>() / xs.len() as f64;
    let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len().max(2) - 1) as f64;
    (m, v.sqrt())
}

fn main() {
    let split = support::ml100k_split();
    let cache = std::env::temp_dir().join(format!("recotem-bench-cache-{}", std::process::id()));
    // SAFETY: single-threaded here; no other thread reads the environment yet.
    unsafe { std::env::set_var("RECOTEM_CACHE_DIR", &cache) };
    let fixtures = std::env::temp_dir().join(format!("recotem-bench-plugins-{}", std::process::id()));
    std::fs::create_dir_all(&fixtures).expect("mkdir");
    let tunable = Path::new(env!("RECOTEM_TEST_COMPONENTS_DIR")).join("recotem_fixture_tunable_trainer.wasm");
    std::fs::copy(&tunable, fixtures.join("tunable.wasm")).expect("copy the tunable fixture");

    let runtime = Runtime::new().expect("runtime");
    let registry = Registry::load(&runtime, Some(&fixtures)).expect("components");
    let data = load(&split);
    println!(
        "data: {} ({} users × {} items; train_inner {} · val users {})",
        split.display(),
        data.train_inner.rows,
        data.train_inner.cols,
        data.train_inner.nnz(),
        data.val.heldout.len()
    );

    if std::env::var_os("RECOTEM_BENCH_SKIP_SEARCH").is_some() {
        println!("\n(section 1, the 4-algorithm search against irspack, skipped: RECOTEM_BENCH_SKIP_SEARCH is set)");
    } else {
        search_vs_irspack(&split);
    }

    if std::env::var_os("RECOTEM_BENCH_SKIP_SAMPLERS").is_some() {
        println!("\n(section 2, TPE vs random sampling, skipped: RECOTEM_BENCH_SKIP_SAMPLERS is set)");
        let _ = std::fs::remove_dir_all(&fixtures);
        let _ = std::fs::remove_dir_all(&cache);
        return;
    }
    let config = Section2::from_env();
    let n = config.seeds;
    println!(
        "\n== 2. TPE vs random sampling: {TRIALS_EACH} trials, parallelism 1, seeds 1..={n}, best validation ndcg@{CUTOFF}, median pruner {}/{} ==",
        config.pruner.n_startup_trials, config.pruner.n_min_trials
    );
    // The figure: the 4-algorithm search (each algorithm its own
    // TPE over its own trials), its best validation score. Then each
    // algorithm searched alone, where the samplers' differences show.
    let mut subjects: Vec<(String, Vec<&TrainerComponent>)> = Vec::new();
    let all: Vec<&TrainerComponent> = ALGORITHMS.iter().filter_map(|n| registry.trainer(n)).collect();
    if config.wants("search") && all.len() == ALGORITHMS.len() {
        subjects.push(("search (4)".to_string(), all.clone()));
    }
    for t in all.iter().filter(|t| config.wants(&t.info.name)) {
        if t.info.params.is_empty() {
            println!("skipped alone: {} has no hyper-parameters (one trial, nothing to sample)", t.info.name);
        } else {
            subjects.push((t.info.name.clone(), vec![*t]));
        }
    }
    if config.wants("Tunable") {
        match registry.trainer("Tunable") {
            Some(t) => subjects.push(("Tunable".to_string(), vec![t])),
            None => println!("skipped: the tunable fixture did not load"),
        }
    }
    println!(
        "{:<12} {:>18} {:>18} {:>10} {:>10} {:>16} {:>22}",
        "searched", "TPE mean ± sd", "random mean ± sd", "TPE/rand", "wall s", "wins/losses/ties", "mean diff ± s.e."
    );
    for (name, trainers) in &subjects {
        compare_samplers(&runtime, name, trainers, &data, &config);
    }
    let _ = std::fs::remove_dir_all(&fixtures);
    let _ = std::fs::remove_dir_all(&cache);
}

/// One row of section 2: `trainers` searched with TPE and with random
/// sampling on seeds 1..=N, side by side.
fn compare_samplers(runtime: &Runtime, name: &str, trainers: &[&TrainerComponent], data: &Data, config: &Section2) {
    let n = config.seeds;
    let started = Instant::now();
    let mut tpe = Vec::new();
    let mut random = Vec::new();
    let mut per_seed = Vec::new();
    let mut pruned = (0, 0);
    for seed in 1..=n {
        // The two searches are independent (each seeded, parallelism 1):
        // run them side by side.
        let (a, b) = std::thread::scope(|scope| {
            let a = scope.spawn(|| search_once(runtime, trainers, data, Sampler::Tpe, seed, 1, config.pruner));
            let b = search_once(runtime, trainers, data, Sampler::Random, seed, 1, config.pruner);
            (a.join().expect("TPE search"), b)
        });
        per_seed.push(format!(
            "seed {seed}: TPE {:.4} (trial {}, {} pruned) random {:.4} (trial {}, {} pruned)",
            a.best_val, a.best_trial, a.pruned, b.best_val, b.best_trial, b.pruned
        ));
        pruned.0 += a.pruned;
        pruned.1 += b.pruned;
        tpe.push(a.best_val);
        random.push(b.best_val);
    }
    let ((tm, ts), (rm, rs)) = (mean_sd(&tpe), mean_sd(&random));
    let diff: Vec<f64> = tpe.iter().zip(&random).map(|(a, b)| a - b).collect();
    let (dm, dsd) = mean_sd(&diff);
    let wins = diff.iter().filter(|d| **d > 0.0).count();
    let losses = diff.iter().filter(|d| **d < 0.0).count();
    println!(
        "{:<12} {:>10.4} ± {:<6.4} {:>10.4} ± {:<6.4} {:>9.3}× {:>10.1} {:>16} {:>+11.5} ± {:<8.5}  (target: TPE mean ≥ random mean: {})",
        name,
        tm,
        ts,
        rm,
        rs,
        tm / rm,
        started.elapsed().as_secs_f64(),
        format!("{wins}/{losses}/{}", diff.len() - wins - losses),
        dm,
        dsd / (diff.len() as f64).sqrt(),
        if tm >= rm { "met" } else { "NOT met" }
    );
    let total = TRIALS_EACH as usize * trainers.len();
    println!("    pruned trials per search: TPE {:.1}, random {:.1} (of {total})", pruned.0 as f64 / n as f64, pruned.1 as f64 / n as f64);
    // Where each best came from: the first `tpe::N_STARTUP` trials of an
    // algorithm are the same for both samplers (the defaults, then the same
    // seeded random start-up), so only later trials can differ. Every seed
    // is listed, so runs with different settings can be paired by seed.
    for line in per_seed {
        println!("    {line}");
    }
}

/// Section 1: the 4-algorithm search through `recotem train` beside
/// irspack + Optuna.
fn search_vs_irspack(split: &Path) {
    println!("\n== 1. the 4-algorithm search: {TRIALS_EACH} trials each, parallelism 2, TPE, ndcg@{CUTOFF} ==");
    let dir = support::work_dir().join(format!("search-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let total = TRIALS_EACH * ALGORITHMS.len() as u32;
    let recipe = support::fixed_split_recipe(&dir, "search4", split, ALGORITHMS, total, 2);
    let run = support::recotem_train(&recipe, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let field = |event: &str, key: &str| run.event(event).map(|e| e[key].clone()).unwrap_or_default();
    let (ours_wall, ours_test) = (run.wall.as_secs_f64(), field("test_scored", "score").as_f64().unwrap_or(f64::NAN));
    println!("{:<36} {:>10} {:>12} {:>14}", "search", "wall s", "best val", "test ndcg@10");
    println!(
        "{:<36} {:>10.2} {:>12.4} {:>14.4}   ({} trials completed, best {})",
        format!("recotem train [{}]", ALGORITHMS.join(", ")),
        ours_wall,
        field("search_done", "best_score").as_f64().unwrap_or(f64::NAN),
        ours_test,
        field("search_done", "n_completed"),
        field("search_done", "best_class").as_str().unwrap_or("?"),
    );
    match support::irspack(split, ALGORITHMS, TRIALS_EACH) {
        Ok(results) => {
            // irspack tunes one algorithm at a time; the search is the four
            // tunings, the winner the best validation score.
            let wall: f64 = results.iter().map(|r| r.wall_seconds).sum();
            let best = results.iter().filter(|r| r.val_ndcg10.is_finite()).max_by(|a, b| a.val_ndcg10.total_cmp(&b.val_ndcg10));
            if let Some(best) = best {
                println!(
                    "{:<36} {:>10.2} {:>12.4} {:>14.4}   (best {})",
                    "irspack 0.5.2 + Optuna TPE",
                    wall,
                    best.val_ndcg10,
                    best.test_ndcg10,
                    best.algorithm
                );
                let (w, t) = (ours_wall / wall, ours_test / best.test_ndcg10);
                println!(
                    "ratios: wall {w:.2}× (target ≤ 0.5×: {}), test ndcg@10 {t:.3}× (target ≥ 1.0×: {})",
                    if w <= 0.5 { "met" } else { "NOT met" },
                    if t >= 1.0 { "met" } else { "NOT met" }
                );
            } else {
                println!("irspack returned no usable result: {results:?}");
            }
        }
        Err(why) => println!("irspack 0.5 + Optuna: not measured ({why})"),
    }

}
