//! Every rule the contract states, enforced where data crosses the boundary
//! (issue: findings from hostile third-party components). Each class of
//! attack runs through the real binary with a fixture component.

use std::time::Instant;

use serde_json::Value;

use crate::common::{Run, Scratch, quickstart_csv, with_plugins};

/// Train `algorithm` on the quickstart data with `plugins`.
fn train_with(s: &Scratch, plugins: &std::path::Path, algorithm: &str, training: &str) -> Run {
    let recipe = s.recipe(
        "boundary",
        &format!(
            "name: boundary\nsource: {{type: csv, path: {csv}}}\n\
             schema: {{user_column: user_id, item_column: item_id}}\n\
             training: {{algorithms: [{algorithm}]{training}}}\noutput: {{path: out/model.recotem}}\n",
            csv = quickstart_csv().display()
        ),
    );
    s.run(&["train", "-v", "--plugin-dir", plugins.to_str().unwrap(), recipe.to_str().unwrap()])
}

/// The audit document's entry for the one component of the plugin dir.
fn audit_refusal(s: &Scratch, plugins: &std::path::Path) -> Value {
    let run = s.run(&["plugins", "audit", "--json", "--plugin-dir", plugins.to_str().unwrap()]);
    assert_ne!(run.code(), 0, "audit must fail: {}", run.stdout());
    let doc: Value = serde_json::from_str(&run.stdout()).expect("audit JSON");
    let refused: Vec<&Value> =
        doc["components"].as_array().unwrap().iter().filter(|c| c["status"] == "refused").collect();
    assert_eq!(refused.len(), 1, "{doc}");
    refused[0].clone()
}

#[test]
fn malformed_describes_are_refused_at_load_by_audit_and_train_naming_the_rule() {
    let cases: &[(&str, &str)] = &[
        ("nan-bounds", "must be finite"),
        ("low-above-high", "low 10 is above high 1"),
        ("log-nonpositive", "needs low > 0"),
        ("empty-choices", "1 to 256 choices"),
        ("default-outside", "the default 99 is outside"),
        ("dup-params", "declared twice"),
        ("empty-alias", "the alias \"\" does not match"),
        ("recommender-alias", "every `…Recommender` name"),
        ("newline-name", "does not match"),
    ];
    for (variant, rule) in cases {
        let (s, plugins) = with_plugins(&[&format!("recotem-fixture-hostile-space-{variant}")]);
        let refusal = audit_refusal(&s, &plugins);
        let error = refusal["error"].as_str().unwrap();
        assert!(error.contains("describe") && error.contains(rule), "[{variant}] {error}");
        assert_eq!(refusal["exit_code"], 4, "[{variant}] {refusal}");

        let run = train_with(&s, &plugins, "TopPop", "");
        assert_eq!(run.code(), 4, "[{variant}] {}", run.stderr());
        let e = run.train_error();
        assert_eq!(e["code"], "trainer_rejected", "[{variant}] {e}");
        assert!(e["error"].as_str().unwrap().contains(rule), "[{variant}] {e}");
        assert!(!s.path("out").exists());
    }
}

#[test]
fn plugin_text_never_reaches_a_terminal_raw() {
    let (s, plugins) = with_plugins(&["recotem-fixture-hostile-space-newline-name"]);
    for args in [&["plugins", "list"][..], &["plugins", "audit"][..], &["plugins", "audit", "--json"][..]] {
        let mut full = args.to_vec();
        full.extend(["--plugin-dir", plugins.to_str().unwrap()]);
        let run = s.run(&full);
        for out in [run.stdout(), run.stderr()] {
            assert!(!out.contains('\u{1b}'), "{args:?}: an escape sequence reached the output:\n{out}");
            assert!(!out.lines().any(|l| l.starts_with("forged line")), "{args:?}: a forged line:\n{out}");
        }
    }
}

#[test]
fn a_config_schema_that_is_not_a_json_schema_is_refused_by_audit_too() {
    let (s, plugins) = with_plugins(&["recotem-fixture-inputless-source-bad-schema"]);
    let refusal = audit_refusal(&s, &plugins);
    assert!(refusal["error"].as_str().unwrap().contains("not a valid JSON Schema"), "{refusal}");
    assert_eq!(refusal["exit_code"], 3);
}

#[test]
fn extreme_integer_ranges_are_sampled_without_overflow_or_collapse() {
    let (s, plugins) = with_plugins(&["recotem-fixture-hostile-space-extreme-ints"]);
    let run = train_with(&s, &plugins, "Space", ", n_trials: 12");
    // Every trial fails on purpose, reporting what it was given.
    run.expect_code(4);
    assert_eq!(run.train_error()["code"], "no_completed_trials");
    let samples: Vec<(i64, i64)> = run
        .events_named("trial_learn_failed")
        .iter()
        .filter_map(|e| {
            let msg = e["error"].as_str()?;
            let at = msg.find("sampled a=")?;
            let mut parts = msg[at + 10..].split(" b=");
            let a = parts.next()?.parse().ok()?;
            let b = parts.next()?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()?;
            Some((a, b))
        })
        .collect();
    assert_eq!(samples.len(), 12, "{}", run.stderr());
    let drawn = &samples[1..]; // trial 0 is the defaults
    assert!(drawn.iter().any(|(a, _)| *a != i64::MIN) && drawn.iter().any(|(a, _)| *a > 0) && drawn.iter().any(|(a, _)| *a < 0), "{samples:?}");
    assert!(drawn.iter().filter(|(_, b)| *b > 1_000_000).count() >= 3, "log scale collapsed: {samples:?}");
}

/// Train with the hostile source's `attack` and the built-in TopPop.
fn hostile_source(s: &Scratch, plugins: &std::path::Path, attack: &str, training: &str) -> Run {
    s.write("data.csv", "user_id,item_id\na,x\n");
    let recipe = s.recipe(
        "hostile",
        &format!(
            "name: hostile\nsource: {{type: hostile, path: data.csv, attack: {attack}}}\n\
             schema: {{user_column: user_id, item_column: item_id}}\n\
             training: {{algorithms: [TopPop]{training}}}\noutput: {{path: out/model.recotem}}\n"
        ),
    );
    s.run(&["train", "--plugin-dir", plugins.to_str().unwrap(), recipe.to_str().unwrap()])
}

#[track_caller]
fn refused(run: &Run, needles: &[&str]) -> String {
    run.expect_code(3);
    let msg = run.train_error()["error"].as_str().unwrap().to_string();
    for n in needles {
        assert!(msg.contains(n), "missing {n:?} in {msg}");
    }
    msg
}

#[test]
fn a_whole_source_read_is_bounded_in_rows_batches_and_time() {
    let (mut s, plugins) = with_plugins(&["recotem-fixture-hostile-source"]);
    s.env("RECOTEM_MAX_SOURCE_ROWS", "100000");
    refused(&hostile_source(&s, &plugins, "endless-rows", ""), &["more than 100000 rows", "RECOTEM_MAX_SOURCE_ROWS"]);
    s.env("RECOTEM_MAX_SOURCE_BYTES", "2000000");
    s.env("RECOTEM_MAX_SOURCE_ROWS", "4000000000");
    refused(&hostile_source(&s, &plugins, "endless-rows", ""), &["more than 2000000 bytes", "RECOTEM_MAX_SOURCE_BYTES"]);
    refused(&hostile_source(&s, &plugins, "endless-empty", ""), &["empty batches in a row"]);

    // A call that never returns is stopped at the read's deadline...
    s.env("RECOTEM_SOURCE_READ_TIMEOUT_SECONDS", "2");
    let started = Instant::now();
    refused(&hostile_source(&s, &plugins, "loop-next", ""), &["did not finish within 2 s", "RECOTEM_SOURCE_READ_TIMEOUT_SECONDS"]);
    assert!(started.elapsed().as_secs() < 30);
    // ... and training.timeout_seconds covers the read too.
    s.unset("RECOTEM_SOURCE_READ_TIMEOUT_SECONDS");
    let started = Instant::now();
    refused(&hostile_source(&s, &plugins, "loop-next", ", timeout_seconds: 2"), &["training.timeout_seconds"]);
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn malformed_batches_are_refused_naming_the_rule_in_bounded_messages() {
    let (s, plugins) = with_plugins(&["recotem-fixture-hostile-source"]);
    let run = hostile_source(&s, &plugins, "long-column-name", "");
    refused(&run, &["longer than 256 bytes"]);
    let longest = run.stderr().lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 4096, "a {longest}-byte log line repeats plugin data");
    refused(&hostile_source(&s, &plugins, "duplicate-columns", ""), &["two columns are called \"user_id\""]);
    let msg = refused(&hostile_source(&s, &plugins, "bad-offsets", ""), &["string offsets"]);
    assert!(!msg.contains("byte value"), "reported as an oversized id: {msg}");
}

#[test]
fn a_batch_under_the_documented_caps_is_not_a_runtime_trap() {
    let (s, plugins) = with_plugins(&["recotem-fixture-hostile-source"]);
    let run = hostile_source(&s, &plugins, "big-batch", "");
    let stderr = run.stderr();
    assert!(!stderr.contains("trapped"), "a batch under the caps trapped:\n{}", &stderr[..stderr.len().min(4000)]);
    assert_ne!(run.code(), 1, "{}", &stderr[..stderr.len().min(4000)]);
}
