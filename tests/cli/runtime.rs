//! The plugin runtime as an operator sees it: one grant broker for every
//! input, typed trainer results, progress and cancellation.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{Scratch, quickstart_csv, with_plugins};

/// The quickstart recipe with an `item_metadata` block of `kind`.
fn metadata_recipe(s: &Scratch, kind: &str) -> PathBuf {
    s.write("items.csv", "item_id,title\nx,SECRET-TITLE\n");
    let recipe = s
        .basic_recipe()
        .replace("training:", &format!("item_metadata: {{type: {kind}, path: items.csv, fields: [title]}}\ntraining:"));
    s.recipe("meta", &recipe)
}

#[test]
fn item_metadata_through_a_source_that_declares_no_input_stream_is_refused_before_it_sees_the_file() {
    let (s, plugins) = with_plugins(&["recotem-fixture-inputless-source"]);
    let recipe = metadata_recipe(&s, "inputless");
    let run = s.run(&["train", "--plugin-dir", plugins.to_str().unwrap(), recipe.to_str().unwrap()]);
    run.expect_code(3);
    let msg = run.train_error()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("item_metadata") && msg.contains("refused by the component's declaration"), "{msg}");
    assert!(msg.contains("input-stream"), "{msg}");
    assert!(!msg.contains("LEAKED"), "the component was handed the file: {msg}");
    let grants: Vec<_> = run.events_named("plugin_grant_applied");
    assert!(grants.iter().all(|g| g["plugin"] != "inputless"), "a grant was applied to the inputless source: {grants:?}");
    assert!(crate::common::artifacts_in_out(&s).is_empty(), "no artifact may be written");
}

#[test]
fn item_metadata_grants_name_their_recipe_block() {
    let s = Scratch::new();
    let recipe = metadata_recipe(&s, "csv");
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(0);
    let by: Vec<String> =
        run.events_named("plugin_grant_applied").iter().map(|g| g["granted_by"].as_str().unwrap().to_string()).collect();
    assert!(by.iter().any(|b| b.starts_with("recipe source.path")), "{by:?}");
    assert!(by.iter().any(|b| b.starts_with("recipe item_metadata.path")), "{by:?}");
}

#[test]
fn a_policy_withholding_the_input_stream_refuses_item_metadata_too() {
    let (mut s, plugins) = with_plugins(&["recotem-fixture-hostile-source"]);
    let policy = s.write("policy.yaml", "plugins:\n  - {name: hostile, input_stream: false}\n");
    s.env("RECOTEM_PLUGIN_POLICY", policy.to_str().unwrap());
    let recipe = metadata_recipe(&s, "hostile");
    let run = s.run(&["train", "--plugin-dir", plugins.to_str().unwrap(), recipe.to_str().unwrap()]);
    run.expect_code(3);
    let msg = run.train_error()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("input_stream: false"), "{msg}");
    assert!(crate::common::artifacts_in_out(&s).is_empty(), "no artifact may be written");
}

/// A recipe training the polite fixture trainer on the quickstart data.
fn polite_recipe(s: &Scratch, timeout_seconds: u64) -> PathBuf {
    s.recipe(
        "polite",
        &format!(
            "name: polite\nsource: {{type: csv, path: {csv}}}\n\
             schema: {{user_column: user_id, item_column: item_id}}\n\
             training: {{algorithms: [Polite], n_trials: 1, per_trial_timeout_seconds: {timeout_seconds}}}\n\
             output: {{path: out/model.recotem}}\n",
            csv = quickstart_csv().display()
        ),
    )
}

#[test]
fn cancelled_turns_true_before_the_deadline_so_a_polite_trainer_returns_early() {
    let (s, plugins) = with_plugins(&["recotem-fixture-polite-trainer"]);
    let recipe = polite_recipe(&s, 3);
    let run = s.run(&["train", "--plugin-dir", plugins.to_str().unwrap(), recipe.to_str().unwrap()]);
    run.expect_code(4);
    let e = run.train_error();
    assert_eq!(e["code"], "no_completed_trials", "{e}");
    let msg = e["error"].as_str().unwrap();
    // It returned by itself (its own message, with its error kind), rather
    // than being stopped by the deadline.
    assert!(msg.contains("stopped early") && msg.contains("internal"), "{msg}");
    assert!(run.events_named("trial_timed_out").is_empty(), "{}", run.stderr());
    // Progress reached the operator, throttled (about one a second).
    let progress = run.events_named("plugin_progress");
    assert!(!progress.is_empty() && progress.len() <= 6, "{} progress events", progress.len());
    assert_eq!(progress[0]["plugin"], "Polite");
    assert!(crate::common::artifacts_in_out(&s).is_empty());
}

#[test]
fn sigterm_cancels_the_run_with_exit_4_and_no_artifact() {
    let (s, plugins) = with_plugins(&["recotem-fixture-polite-trainer"]);
    let recipe = polite_recipe(&s, 600);
    let started = Instant::now();
    let mut child = s
        .command(&["train", "--plugin-dir", plugins.to_str().unwrap(), recipe.to_str().unwrap()])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    // Wait until the trainer is working, then ask the process to stop.
    for line in lines.by_ref() {
        let line = line.unwrap();
        let working = line.contains("\"plugin_progress\"");
        seen.push(line);
        if working {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the trainer never started");
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) }, 0);
    seen.extend(lines.map(|l| l.unwrap()));
    let status = child.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60), "the run did not stop promptly");
    assert_eq!(status.code(), Some(4), "{}", seen.join("\n"));
    let events: Vec<serde_json::Value> = seen.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.iter().any(|e| e["event"] == "cancel_requested" && e["signal"] == "SIGTERM"));
    let errors: Vec<_> = events.iter().filter(|e| e["event"] == "train_error").collect();
    assert_eq!(errors.len(), 1, "{}", seen.join("\n"));
    assert_eq!(errors[0]["code"], "cancelled", "{}", errors[0]);
    assert!(crate::common::artifacts_in_out(&s).is_empty(), "no artifact may be written");
}

#[test]
fn debug_events_show_with_verbose_only() {
    let s = Scratch::new();
    let recipe = s.recipe("demo", &s.basic_recipe());
    let quiet = s.run(&["train", recipe.to_str().unwrap()]);
    quiet.expect_code(0);
    assert!(quiet.events().iter().all(|e| e["level"] != "debug"), "{}", quiet.stderr());
    let verbose = s.run(&["train", "-v", recipe.to_str().unwrap()]);
    verbose.expect_code(0);
    let stages: Vec<_> = verbose.events_named("stage_started");
    assert!(!stages.is_empty() && stages.iter().all(|e| e["level"] == "debug"), "{}", verbose.stderr());
}
