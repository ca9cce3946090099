//! WIT 0.2.1 through the real binary: IALS and BPRFM report intermediate
//! models (events, best-epoch scores, pruned trials, the journal and its
//! resume), the audit lists the new imports, and a component built against
//! 0.2.0 still loads and trains.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::{Run, Scratch, quickstart_csv, repo_root};

/// A recipe over the quickstart data, one trial at a time (so the pruner
/// sees the same finished trials every run), journaled in `studies/`.
fn recipe(s: &Scratch, algorithm: &str, n_trials: u32) -> std::path::PathBuf {
    s.recipe(
        "es",
        &format!(
            "name: es\n\
             source: {{type: csv, path: {csv}}}\n\
             schema: {{user_column: user_id, item_column: item_id}}\n\
             training: {{algorithms: [{algorithm}], cutoff: 10, n_trials: {n_trials}, parallelism: 1, storage_path: studies}}\n\
             output: {{path: out/model.recotem, versioning: always_overwrite}}\n",
            csv = quickstart_csv().display()
        ),
    )
}

/// trial → its reported (epoch, score, decision), in order.
fn reports(run: &Run) -> BTreeMap<u64, Vec<(u64, f64, String)>> {
    let mut out: BTreeMap<u64, Vec<(u64, f64, String)>> = BTreeMap::new();
    for e in run.events_named("trial_report") {
        out.entry(e["trial"].as_u64().unwrap()).or_default().push((
            e["epoch"].as_u64().unwrap(),
            e["score"].as_f64().unwrap(),
            e["decision"].as_str().unwrap().to_string(),
        ));
    }
    out
}

fn best(reports: &[(u64, f64, String)]) -> f64 {
    reports.iter().map(|r| r.1).fold(f64::NEG_INFINITY, f64::max)
}

/// Checks one search of `algorithm` (reporting every `every` epochs) and
/// returns the run.
fn search_reports(s: &Scratch, algorithm: &str, every: u64) -> Run {
    let r = recipe(s, algorithm, 8);
    let run = s.run(&["train", r.to_str().unwrap(), "--run-id", algorithm]);
    run.expect_code(0);
    let by_trial = reports(&run);
    assert!(!by_trial.is_empty(), "{algorithm}: no trial_report: {}", run.stderr());
    for (trial, reps) in &by_trial {
        // Epochs move forward on the trainer's schedule; only the last report
        // may say stop.
        assert!(reps.windows(2).all(|w| w[0].0 < w[1].0), "{algorithm} trial {trial}: {reps:?}");
        assert!(reps.iter().all(|r| r.0 % every == 0 || r == reps.last().unwrap()), "{reps:?}");
        assert!(reps[..reps.len() - 1].iter().all(|r| r.2 == "continue"), "{reps:?}");
    }
    // A scored trial's score is its best report's.
    for done in run.events_named("trial_done") {
        let t = done["trial"].as_u64().unwrap();
        let reps = &by_trial[&t];
        assert_eq!(done["score"].as_f64().unwrap(), best(reps), "{algorithm} trial {t}: {reps:?}");
        assert_ne!(reps.last().unwrap().2, "stop_pruned");
    }
    // A pruned trial stopped on a pruning decision and is not a candidate.
    for p in run.events_named("trial_pruned") {
        let t = p["trial"].as_u64().unwrap();
        let reps = &by_trial[&t];
        assert_eq!(reps.last().unwrap().2, "stop_pruned", "{reps:?}");
        assert_eq!(p["epoch"].as_u64().unwrap(), reps.last().unwrap().0);
        assert_eq!(p["best_score"].as_f64().unwrap(), best(reps));
    }
    let done = &run.events_named("train_done")[0];
    let best_scored = run.events_named("trial_done").iter().map(|e| e["score"].as_f64().unwrap()).fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(done["best_score"].as_f64().unwrap(), best_scored, "{done}");
    run
}

#[test]
fn ials_reports_epochs_prunes_a_trial_and_resumes_alike() {
    let s = Scratch::new();
    let run = search_reports(&s, "IALS", 2);
    let pruned = run.events_named("trial_pruned");
    assert!(!pruned.is_empty(), "no IALS trial was pruned: {:?}", reports(&run));
    // The journal records the reports and the pruned outcome.
    let journal = std::fs::read_dir(s.path("studies")).unwrap().next().unwrap().unwrap().path();
    let lines: Vec<Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["kind"] == "trial")
        .collect();
    assert_eq!(lines.len(), 8);
    let pruned_lines: Vec<&Value> = lines.iter().filter(|l| l["outcome"] == "pruned").collect();
    assert_eq!(pruned_lines.len(), pruned.len());
    for l in &lines {
        let reps = l["reports"].as_array().unwrap_or_else(|| panic!("no reports in {l}"));
        let top = reps.iter().map(|r| r[1].as_f64().unwrap()).fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(l["score"].as_f64().unwrap(), top, "{l}");
    }
    // Resuming the finished study runs nothing and selects the same best.
    let r = recipe(&s, "IALS", 8);
    let again = s.run(&["train", r.to_str().unwrap(), "--run-id", "IALS"]);
    again.expect_code(0);
    assert!(again.events_named("trial_report").is_empty(), "{}", again.stderr());
    assert_eq!(again.events_named("train_done")[0]["best_score"], run.events_named("train_done")[0]["best_score"]);
}

#[test]
fn bprfm_reports_epochs() {
    let s = Scratch::new();
    search_reports(&s, "BPRFM", 4);
}

#[test]
fn the_audit_lists_the_new_imports_of_the_trainers_that_use_them() {
    let s = Scratch::new();
    let run = s.run(&["plugins", "audit", "--json"]);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&run.stdout()).unwrap();
    let imports = |name: &str| -> Vec<(String, String)> {
        let c = doc["components"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
        c["imports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["name"].as_str().unwrap().to_string(), i["class"].as_str().unwrap().to_string()))
            .collect()
    };
    let v = env!("RECOTEM_WIT_VERSION");
    let ials = imports("IALS");
    assert!(ials.contains(&(format!("recotem:plugin/linalg@{v}"), "host-compute".into())), "{ials:?}");
    assert!(ials.contains(&(format!("recotem:plugin/early-stop@{v}"), "contract".into())), "{ials:?}");
    let bprfm = imports("BPRFM");
    assert!(bprfm.contains(&(format!("recotem:plugin/early-stop@{v}"), "contract".into())), "{bprfm:?}");
    // Since 0.2.2 every SDK trainer names the `ials-factors` type of
    // `linalg` in its `trainer-by-shape` export: a type-only import, not
    // host computation.
    let type_only = (format!("recotem:plugin/linalg@{v}"), "contract".to_string());
    assert!(bprfm.contains(&type_only), "{bprfm:?}");
    assert!(!bprfm.iter().any(|(_, class)| class == "host-compute"), "{bprfm:?}");
    let toppop = imports("TopPop");
    assert!(!toppop.iter().any(|(n, _)| n.contains("early-stop")), "{toppop:?}");
    assert!(toppop.contains(&type_only), "{toppop:?}");
    assert!(toppop.contains(&(format!("recotem:plugin/call-input@{v}"), "contract".into())), "{toppop:?}");
    // The text form shows the class too.
    let text = s.run(&["plugins", "audit"]);
    assert!(text.stdout().contains("host-compute"), "{}", text.stdout());
}

#[test]
fn a_component_built_against_0_2_0_still_loads_and_trains() {
    let s = Scratch::new();
    let plugins = s.path("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(repo_root().join("tests/fixtures/wit-0.2.0/tunable-trainer.wasm"), plugins.join("tunable.wasm")).unwrap();
    let dir = plugins.to_str().unwrap();
    let run = s.run(&["plugins", "audit", "--json", "--plugin-dir", dir]);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&run.stdout()).unwrap();
    let c = doc["components"].as_array().unwrap().iter().find(|c| c["name"] == "Tunable").unwrap();
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["wit"]["version"], "0.2.0", "{c}");
    assert_ne!(env!("RECOTEM_WIT_VERSION"), "0.2.0");
    let r = s.recipe(
        "old",
        &format!(
            "name: old\nsource: {{type: csv, path: {}}}\n\
             schema: {{user_column: user_id, item_column: item_id}}\n\
             training: {{algorithms: [Tunable], cutoff: 10, n_trials: 3}}\n\
             output: {{path: out/model.recotem, versioning: always_overwrite}}\n",
            quickstart_csv().display()
        ),
    );
    let run = s.run(&["train", "--plugin-dir", dir, r.to_str().unwrap()]);
    run.expect_code(0);
    assert_eq!(run.events_named("trial_done").len(), 3, "{}", run.stderr());
    assert!(run.events_named("trial_report").is_empty());
}
