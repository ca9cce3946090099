//! The built-in trainers through the real binary: each algorithm trains on
//! the quickstart data, answers to the spec's spellings, and DenseSLIM
//! refuses a catalogue whose dense matrix exceeds the trainer memory cap.

use crate::common::{Scratch, quickstart_csv};

/// A recipe over the quickstart data training `algorithms` (YAML list body).
fn recipe(s: &Scratch, algorithms: &str, n_trials: u32) -> std::path::PathBuf {
    s.recipe(
        "algo",
        &format!(
            "name: algo\n\
             source: {{type: csv, path: {csv}}}\n\
             schema: {{user_column: user_id, item_column: item_id}}\n\
             training: {{algorithms: [{algorithms}], cutoff: 10, n_trials: {n_trials}}}\n\
             output: {{path: out/model.recotem, versioning: always_overwrite}}\n",
            csv = quickstart_csv().display()
        ),
    )
}

#[test]
fn every_algorithm_trains_on_the_quickstart_data() {
    let s = Scratch::new();
    for algorithm in ["IALS", "CosineKNN", "RP3beta", "DenseSLIM", "TruncatedSVD", "BPRFM"] {
        let r = recipe(&s, algorithm, 2);
        let run = s.run(&["train", r.to_str().unwrap()]);
        run.expect_code(0);
        let done = run.events_named("train_done");
        assert_eq!(done.len(), 1, "{algorithm}: {}", run.stderr());
        assert_eq!(done[0]["best_class"], algorithm, "{algorithm}: {}", done[0]);
        let score = done[0]["best_score"].as_f64().unwrap();
        assert!(score > 0.0, "{algorithm} scored {score}");
        assert!(run.events_named("trial_learn_failed").is_empty(), "{algorithm}: {}", run.stderr());
    }
}

#[test]
fn spec_spellings_resolve_to_the_trainers() {
    let s = Scratch::new();
    let r = recipe(&s, "CosinekNN, rp3betarecommender, IALSRecommender", 3);
    let run = s.run(&["train", r.to_str().unwrap()]);
    run.expect_code(0);
    let trials: Vec<String> =
        run.events_named("trial_done").iter().map(|e| e["algorithm"].as_str().unwrap().to_string()).collect();
    for name in ["CosineKNN", "RP3beta", "IALS"] {
        assert!(trials.iter().any(|t| t == name), "no {name} trial in {trials:?}");
    }
}

#[test]
fn dense_slim_refuses_a_catalogue_larger_than_the_memory_cap() {
    let mut s = Scratch::new();
    // 3 000 items → a 36 MB dense matrix, over a 16 MiB cap; 2 users each.
    let mut csv = String::from("user_id,item_id\n");
    for i in 0..3000 {
        for u in [i % 50, (i + 7) % 50] {
            csv.push_str(&format!("u{u},i{i}\n"));
        }
    }
    s.write("wide.csv", csv);
    let r = s.recipe(
        "wide",
        "name: wide\nsource: {type: csv, path: wide.csv}\n\
         schema: {user_column: user_id, item_column: item_id}\n\
         training: {algorithms: [DenseSLIM], n_trials: 1}\n\
         output: {path: out/model.recotem}\n",
    );
    s.env("RECOTEM_TRAINER_MEMORY_MIB", "16");
    let run = s.run(&["train", r.to_str().unwrap()]);
    run.expect_code(4);
    assert_eq!(run.train_error()["code"], "no_completed_trials");
    let failed = run.events_named("trial_learn_failed");
    assert_eq!(failed.len(), 1, "{}", run.stderr());
    let msg = failed[0]["error"].as_str().unwrap();
    assert!(msg.contains("DenseSLIM needs a dense 3000 × 3000 matrix"), "{msg}");
    assert!(msg.contains("memory cap") && msg.contains("RECOTEM_TRAINER_MEMORY_MIB"), "{msg}");
    assert!(!msg.contains("trapped"), "refused cleanly, not stopped half-way: {msg}");
}
