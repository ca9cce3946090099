//! Evaluation speed (issue 9): one evaluation of a TopPop model and of a
//! 64-factor model on the generated 10 M-interaction set (200 000 users ×
//! 50 000 items, Zipf-like popularity; the data of the `trainers` bench),
//! 10 % per-user hold-out of every user with two or more interactions,
//! ndcg@10, on all cores.
//!
//! Baselines measured in the same run:
//! - the per-user evaluator it replaces (score every item of one user, then
//!   select), timed on a sample of users and extrapolated to all of them;
//! - memory bandwidth: one pass over the factor matrices.
//!
//! Anchors (issue 9, irspack's `Evaluator`, 175 k evaluated users, cutoff
//! 10, this machine): TopPop 53 s, 64-factor IALS 62 s. Targets: TopPop
//! under 1 s; the factor model in at most half of irspack's time (31 s).
//! The factor model here is random (seeded): evaluation time does not
//! depend on what the factors learned.
//!
//! Run: `cargo bench -p recotem --bench eval`. `RECOTEM_BENCH_SCALE`
//! (default 1) scales users, items and interactions (0.1 for a quick run);
//! `RECOTEM_BENCH_SAMPLE` (default 2000) is the per-user baseline's sample.

use std::path::Path;
use std::time::Instant;

use recotem::data::{Split, split_random};
use recotem::model::{Model, top_k};
use recotem::recipe::model::Metric;
use recotem::train::eval::{evaluate, metric_value};
use recotem_numerics::Rng;

mod support;

const ANCHOR_TOPPOP_S: f64 = 53.0;
const ANCHOR_FACTORS_S: f64 = 62.0;
const CUTOFF: usize = 10;
const DIM: u32 = 64;

fn main() {
    let scale: f64 = std::env::var("RECOTEM_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let sample: usize = std::env::var("RECOTEM_BENCH_SAMPLE").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let data_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-trainers").join(format!("data-{scale}"));
    let (users, items, nnz) = support::generate(scale, &data_dir);
    let matrix = support::read_matrix(&data_dir);
    let split = split_random(&matrix, 0.1, 1.0, 42).expect("split");
    drop(matrix);
    let evaluated = split.heldout.iter().filter(|(_, h)| !h.is_empty()).count();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "== evaluation, ndcg@{CUTOFF}: {users} users × {items} items, {nnz} interactions, {evaluated} evaluated users, {threads} threads =="
    );

    let mut counts = vec![0f32; items as usize];
    for &i in &split.train.indices {
        counts[i as usize] += 1.0;
    }
    let toppop = Model::Popularity(counts.into());
    let mut rng = Rng::new(7);
    let mut normal = |n: u32| (0..n as usize * DIM as usize).map(|_| rng.normal() as f32 * 0.1).collect();
    let factors = Model::Factors { dim: DIM, users: normal(users), items: normal(items) };
    toppop.validate(users, items).expect("popularity model");
    factors.validate(users, items).expect("factor model");

    // Bandwidth baseline: one pass over the factor matrices.
    let t = Instant::now();
    let sum = match &factors {
        Model::Factors { users, items, .. } => users.iter().chain(items.iter()).fold(0f32, |a, &x| a + x),
        _ => 0.0,
    };
    let pass_s = t.elapsed().as_secs_f64();
    std::hint::black_box(sum);

    for (name, model, anchor, target) in
        [("TopPop", &toppop, ANCHOR_TOPPOP_S, 1.0), ("64 factors", &factors, ANCHOR_FACTORS_S, ANCHOR_FACTORS_S / 2.0)]
    {
        let t = Instant::now();
        let score = evaluate(model, &split, Metric::Ndcg, CUTOFF);
        let block_s = t.elapsed().as_secs_f64();
        let (per_user_s, sampled, sample_score) = per_user(model, &split, sample);
        let extrapolated = per_user_s * evaluated as f64 / sampled.max(1) as f64;
        println!("{name}: ndcg@{CUTOFF} = {score:.5} (per-user evaluator on {sampled} users: {sample_score:.5})");
        println!(
            "  block evaluation          {block_s:>9.3} s   target < {target:.0} s: {}",
            match (scale == 1.0, block_s < target) {
                (false, _) => "applies at scale 1",
                (true, true) => "met",
                (true, false) => "NOT met",
            }
        );
        println!(
            "  per-user evaluator (extrapolated from {sampled} users) {extrapolated:>9.3} s   block is {:.1}x faster",
            extrapolated / block_s.max(1e-9)
        );
        println!("  irspack Evaluator anchor  {anchor:>9.1} s   ratio {:.3}", block_s / anchor);
    }
    println!(
        "one pass over the factor matrices ({:.1} MB): {:.4} s",
        (users as f64 + items as f64) * DIM as f64 * 4.0 / 1e6,
        pass_s
    );
}

/// The evaluator this replaces: every item of one user scored, then the
/// bounded selection, one user at a time on one thread; over the first
/// `sample` evaluated users. Returns (seconds, users, mean value).
fn per_user(model: &Model, split: &Split, sample: usize) -> (f64, usize, f64) {
    let mut scores = vec![0f32; split.train.cols as usize];
    let (mut total, mut users) = (0.0, 0usize);
    let t = Instant::now();
    for (user, held) in split.heldout.iter().filter(|(_, h)| !h.is_empty()).take(sample) {
        let history = split.train.row(*user);
        model.score_user(*user, history, &mut scores);
        let ranked = top_k(&scores, CUTOFF, history.0);
        let hits: Vec<bool> = ranked.iter().map(|(i, _)| held.binary_search(i).is_ok()).collect();
        total += metric_value(Metric::Ndcg, &hits, held.len(), CUTOFF);
        users += 1;
    }
    (t.elapsed().as_secs_f64(), users, if users == 0 { 0.0 } else { total / users as f64 })
}
