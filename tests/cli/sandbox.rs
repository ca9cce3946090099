//! Plugins get nothing they were not granted and cannot outlive their
//! limits: hostile fixture components (tests/fixtures/*) driven through the
//! real binary. Each must be contained with the documented exit code, one
//! clear message (one `train_error`), no panic of the host and no artifact.

use std::path::{Path, PathBuf};

use crate::common::{Run, Scratch, fixture_component, with_plugins};

/// Write `data.csv` and a recipe whose source block is `source` and
/// training block `training` (inline YAML mapping bodies).
fn write_recipe(s: &Scratch, source: &str, training: &str) -> PathBuf {
    s.write("data.csv", "user_id,item_id\na,x\n");
    s.recipe(
        "hostile",
        &format!(
            "name: hostile\nsource: {{{source}}}\n\
             schema: {{user_column: user_id, item_column: item_id}}\n\
             training: {{{training}}}\noutput: {{path: out/model.recotem}}\n"
        ),
    )
}

/// Train such a recipe with the plugin directory.
fn train(s: &Scratch, plugins: &Path, source: &str, training: &str) -> Run {
    let recipe = write_recipe(s, source, training);
    s.run(&["train", "--plugin-dir", plugins.to_str().unwrap(), recipe.to_str().unwrap()])
}

/// Assert containment: the exit code, exactly one train_error whose message
/// contains every `needles`, no host panic, no artifact. Returns the message.
#[track_caller]
fn contained(s: &Scratch, run: &Run, code: i32, needles: &[&str]) -> String {
    run.expect_code(code);
    let msg = run.train_error()["error"].as_str().unwrap().to_string();
    for n in needles {
        assert!(msg.contains(n), "missing {n:?} in {msg}");
    }
    assert!(!msg.contains("LEAKED"), "sandbox hole: {msg}");
    // (A plugin's own panic message is quoted in the error; the host's
    // would name its main thread or its sources.)
    let stderr = run.stderr();
    assert!(!stderr.contains("thread 'main'") && !stderr.contains("panicked at host/"), "the host panicked:\n{stderr}");
    assert!(crate::common::artifacts_in_out(s).is_empty(), "no artifact may be written");
    msg
}

fn hostile_source(attack: &str) -> String {
    format!("type: hostile, path: data.csv, attack: {attack}")
}

const TOPPOP: &str = "algorithms: [TopPop]";

#[test]
fn a_source_that_reads_files_env_args_and_stdin_gets_nothing() {
    let (s, plugins) = with_plugins(&["recotem-fixture-hostile-source"]);
    let run = train(&s, &plugins, &hostile_source("fs"), TOPPOP);
    contained(
        &s,
        &run,
        3,
        &[
            "sandbox probe",
            "denied read /etc/passwd",
            "denied read ../Cargo.toml",
            "denied read ../../etc/passwd",
            "denied read data.csv",
            "denied list /",
            "denied write /tmp",
            "denied env (0 variables)",
            "denied env RECOTEM_SIGNING_KEYS",
            "denied args",
            "denied stdin",
        ],
    );
    // The input-stream grant was logged when applied.
    let grants = run.events_named("plugin_grant_applied");
    assert!(grants.iter().any(|g| g["grant"] == "input-stream" && g["plugin"] == "hostile"), "{grants:?}");
}

#[test]
fn source_loops_are_stopped_at_the_call_deadline() {
    let (mut s, plugins) = with_plugins(&["recotem-fixture-hostile-source"]);
    s.env("RECOTEM_SOURCE_CALL_TIMEOUT_SECONDS", "1");
    for (attack, call) in [("loop-open", "open"), ("loop-next", "next-batch")] {
        let started = std::time::Instant::now();
        let run = train(&s, &plugins, &hostile_source(attack), TOPPOP);
        contained(&s, &run, 3, &[call, "did not finish within its 1.0 s deadline"]);
        assert!(started.elapsed().as_secs() < 30, "{attack}: the deadline did not stop the call");
    }
}

#[test]
fn source_traps_panics_and_exits_are_reported_not_propagated() {
    let (mut s, plugins) = with_plugins(&["recotem-fixture-hostile-source"]);
    s.env("RECOTEM_SOURCE_MEMORY_MIB", "64");
    let cases: &[(&str, &[&str])] = &[
        ("panic-open", &["open trapped", "hostile open panicked on purpose"]),
        ("panic-next", &["next-batch trapped", "hostile next-batch panicked on purpose"]),
        ("memory", &["next-batch trapped", "memory limit exceeded", "the limit is 64 MiB"]),
        ("recursion", &["next-batch trapped", "stack overflowing"]),
        ("exit", &["open trapped", "the plugin called exit (status 0)"]),
    ];
    for (attack, needles) in cases {
        let run = train(&s, &plugins, &hostile_source(attack), TOPPOP);
        contained(&s, &run, 3, needles);
    }
}

/// Run `recotem` to completion and return (exit code, stdout+stderr, peak
/// resident memory of the process in MiB), via wait4(2).
fn run_measured(s: &Scratch, args: &[&str]) -> (i32, String, u64) {
    let (code, text, usage) = crate::common::run_with_usage(s, args);
    (code, text, (usage.ru_maxrss as u64) / 1024)
}

#[test]
fn unbounded_guest_allocation_keeps_host_memory_bounded() {
    let (mut s, plugins) = with_plugins(&["recotem-fixture-hostile-source"]);
    s.env("RECOTEM_SOURCE_MEMORY_MIB", "256");
    let recipe = write_recipe(&s, &hostile_source("memory"), TOPPOP);
    let (code, stderr, peak_mib) =
        run_measured(&s, &["train", "--plugin-dir", plugins.to_str().unwrap(), recipe.to_str().unwrap()]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("memory limit exceeded"), "{stderr}");
    // The cap plus the host's own working set (engine, compiled code).
    assert!(peak_mib < 256 + 160, "host peak RSS {peak_mib} MiB with a 256 MiB plugin cap");
    assert!(crate::common::artifacts_in_out(&s).is_empty());
}

#[test]
fn malformed_batches_are_refused() {
    let (s, plugins) = with_plugins(&["recotem-fixture-hostile-source"]);
    let cases: &[(&str, &[&str])] = &[
        ("unequal", &["malformed batch", "has 3 values, the batch has 4 rows"]),
        ("giant-string", &["refuses", "ids are limited to 4096 bytes"]),
        ("too-many-rows", &["refuses", "65537 rows, more than the 65536 asked for"]),
    ];
    for (attack, needles) in cases {
        let run = train(&s, &plugins, &hostile_source(attack), TOPPOP);
        contained(&s, &run, 3, needles);
    }
}

#[test]
fn a_probe_that_panics_fails_validate_with_exit_3() {
    let (s, plugins) = with_plugins(&["recotem-fixture-hostile-source"]);
    let recipe = write_recipe(&s, &hostile_source("panic-probe"), TOPPOP);
    let run = s.run(&["validate", "--plugin-dir", plugins.to_str().unwrap(), recipe.to_str().unwrap()]);
    run.expect_code(3);
    let failed = run.events_named("command_failed");
    assert_eq!(failed.len(), 1, "{}", run.stderr());
    let msg = failed[0]["error"].as_str().unwrap();
    assert!(msg.contains("probe trapped") && msg.contains("hostile probe panicked on purpose"), "{msg}");
}

/// Interactions with `items` distinct items (20 users × every item): the
/// hostile trainer picks its attack from the item count.
fn trainer_run(s: &Scratch, plugins: &Path, items: usize) -> Run {
    let mut csv = String::from("user_id,item_id\n");
    for u in 0..20 {
        for i in 0..items {
            csv.push_str(&format!("u{u},i{i}\n"));
        }
    }
    s.write("items.csv", csv);
    let recipe = s.recipe(
        "hostile",
        "name: hostile\nsource: {type: csv, path: items.csv}\n\
         schema: {user_column: user_id, item_column: item_id}\n\
         training: {algorithms: [Hostile], n_trials: 2, per_trial_timeout_seconds: 1}\n\
         output: {path: out/model.recotem}\n",
    );
    s.run(&["train", "--plugin-dir", plugins.to_str().unwrap(), recipe.to_str().unwrap()])
}

#[test]
fn trainer_attacks_fail_their_trials_with_exit_4() {
    let (mut s, plugins) = with_plugins(&["recotem-fixture-hostile-trainer"]);
    s.env("RECOTEM_TRAINER_MEMORY_MIB", "64");
    let cases: &[(usize, &str, &[&str])] = &[
        (11, "excessive_per_trial_timeouts", &["per-trial timeout"]),
        (12, "no_completed_trials", &["trapped", "memory limit exceeded"]),
        (13, "no_completed_trials", &["trapped", "stack overflowing"]),
        (14, "no_completed_trials", &["unusable model"]),
        (15, "no_completed_trials", &["unusable model", "NaN"]),
        (16, "no_completed_trials", &["trapped", "hostile train panicked on purpose"]),
        (17, "no_completed_trials", &["unusable model"]),
        (18, "no_completed_trials", &["unusable model", "declares model kind popularity but returned factors"]),
    ];
    for (items, code, needles) in cases {
        let started = std::time::Instant::now();
        let run = trainer_run(&s, &plugins, *items);
        contained(&s, &run, 4, needles);
        assert_eq!(run.train_error()["code"], *code, "items={items}: {}", run.stderr());
        assert!(started.elapsed().as_secs() < 60, "items={items}: took too long");
    }
}

#[test]
fn a_describe_that_never_returns_is_stopped_and_the_component_refused() {
    let (s, plugins) = with_plugins(&["recotem-fixture-hostile-describe"]);
    let started = std::time::Instant::now();
    let run = train(&s, &plugins, "type: csv, path: data.csv", TOPPOP);
    contained(&s, &run, 3, &["hostile_describe.wasm", "describe did not finish within its 5.0 s deadline"]);
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn a_describe_that_panics_refuses_the_trainer_quoting_the_panic() {
    let (s, plugins) = with_plugins(&["recotem-fixture-hostile-describe-panic"]);
    let run = train(&s, &plugins, "type: csv, path: data.csv", TOPPOP);
    let msg = contained(&s, &run, 4, &["describe trapped", "hostile describe panicked on purpose"]);
    assert_eq!(run.train_error()["code"], "trainer_rejected", "{msg}");
}

#[test]
fn a_component_for_another_wit_major_is_refused_naming_both_versions() {
    let (s, plugins) = with_plugins(&["recotem-fixture-wit-future"]);
    let run = train(&s, &plugins, "type: csv, path: data.csv", TOPPOP);
    let ours = format!("recotem:plugin@{}", env!("RECOTEM_WIT_VERSION"));
    let msg = contained(&s, &run, 4, &["recotem:plugin@1.0.0", &ours, "incompatible major"]);
    assert_eq!(run.train_error()["code"], "trainer_rejected", "{msg}");
}

#[test]
fn duplicate_source_types_fail_at_startup_listing_both() {
    let (s, plugins) = with_plugins(&["recotem-fixture-hostile-source"]);
    std::fs::copy(plugins.join("hostile_source.wasm"), plugins.join("zz_copy.wasm")).unwrap();
    let run = train(&s, &plugins, "type: csv, path: data.csv", TOPPOP);
    contained(&s, &run, 3, &["two components declare the source type \"hostile\"", "hostile_source.wasm", "zz_copy.wasm"]);
}

#[test]
fn sockets_without_a_policy_grant_are_refused_at_load() {
    let (s, plugins) = with_plugins(&["recotem-fixture-hostile-net"]);
    let run = train(&s, &plugins, "type: hostile_net, attack: tcp, target: '127.0.0.1:9'", TOPPOP);
    contained(&s, &run, 3, &["hostile_net", "network", "refused by the default policy", "network: [\"host:port\"]"]);
}

#[test]
fn sockets_without_a_declared_capability_load_and_every_use_is_refused() {
    // A real listener, so a refusal can only come from the sandbox.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    let (mut s, plugins) = with_plugins(&["recotem-fixture-undeclared-net"]);
    // Even a policy granting it endpoints does not help: without a declared
    // `network` capability its sockets are linked, and every use refused.
    let policy = s.write("policy.yaml", format!("plugins:\n  - {{name: undeclared_net, network: ['{endpoint}']}}\n"));
    s.env("RECOTEM_PLUGIN_POLICY", policy.to_str().unwrap());

    let audit = s.run(&["plugins", "audit", "--json", "--plugin-dir", plugins.to_str().unwrap()]);
    audit.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&audit.stdout()).unwrap();
    let c = doc["components"].as_array().unwrap().iter().find(|c| c["name"] == "undeclared_net").unwrap();
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(c["grants"]["granted"], serde_json::json!([]), "{c}");
    let sockets: Vec<_> =
        c["imports"].as_array().unwrap().iter().filter(|i| i["name"].as_str().unwrap().starts_with("wasi:sockets/")).collect();
    assert!(!sockets.is_empty(), "{c}");
    assert!(sockets.iter().all(|i| i["class"] == "linked-refused"), "{sockets:?}");
    let text = s.run(&["plugins", "audit", "--plugin-dir", plugins.to_str().unwrap()]);
    assert!(text.stdout().contains("linked-refused") && text.stdout().contains("linked, every use refused"), "{}", text.stdout());

    for (target, needle) in [
        (endpoint.clone(), format!("denied tcp {endpoint} (Permission denied")),
        ("example.com".to_string(), "denied dns example.com (Permission denied".to_string()),
    ] {
        let run = train(&s, &plugins, &format!("type: undeclared_net, target: '{target}'"), TOPPOP);
        contained(&s, &run, 3, &["undeclared_net", &needle]);
        assert!(run.events_named("plugin_grant_applied").iter().all(|e| !e["grant"].as_str().unwrap().starts_with("network")));
    }
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "a connection reached the listener");
}

#[test]
fn a_network_grant_never_reaches_loopback_other_endpoints_or_other_names() {
    // A real listener, so a refusal can only come from the sandbox.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let endpoint = format!("127.0.0.1:{port}");
    let (mut s, plugins) = with_plugins(&["recotem-fixture-hostile-net"]);
    // Granted by address: name lookups stay closed (no DNS traffic here).
    let policy = s.write("policy.yaml", format!("version: 1\nplugins:\n  - {{name: hostile_net, network: ['{endpoint}']}}\n"));
    s.env("RECOTEM_PLUGIN_POLICY", policy.to_str().unwrap());
    let other = format!("127.0.0.1:{}", if port == 65535 { 1 } else { port + 1 });
    let cases = [
        ("tcp", endpoint.clone(), format!("denied tcp {endpoint} (Permission denied")),
        ("tcp", other.clone(), format!("denied tcp {other} (Permission denied")),
        ("tcp", "10.0.0.1:9".to_string(), "denied tcp 10.0.0.1:9 (Permission denied".to_string()),
        ("dns", "example.com".to_string(), "denied dns example.com (Permission denied".to_string()),
    ];
    for (attack, target, needle) in &cases {
        let run = train(&s, &plugins, &format!("type: hostile_net, attack: {attack}, target: '{target}'"), TOPPOP);
        contained(&s, &run, 3, &["sandbox probe", needle]);
        let grants = run.events_named("plugin_grant_applied");
        let granted = format!("network({endpoint})");
        assert!(
            grants.iter().any(|g| g["grant"] == granted.as_str() && g["granted_by"] == "policy plugins[0]"),
            "the grant was not logged: {grants:?}"
        );
    }
    // With private networks explicitly allowed, the granted endpoint (and
    // only it) is reachable.
    s.write(
        "policy.yaml",
        format!("plugins:\n  - {{name: hostile_net, network: ['{endpoint}'], allow_private_network: true}}\n"),
    );
    let run = train(&s, &plugins, &format!("type: hostile_net, attack: tcp, target: '{endpoint}'"), TOPPOP);
    run.expect_code(3);
    let msg = run.train_error()["error"].as_str().unwrap().to_string();
    assert!(msg.contains(&format!("LEAKED tcp {endpoint}")), "the granted endpoint was not reachable: {msg}");
    let run = train(&s, &plugins, &format!("type: hostile_net, attack: tcp, target: '{other}'"), TOPPOP);
    contained(&s, &run, 3, &[&format!("denied tcp {other} (Permission denied")]);
    drop(listener);
}

#[test]
fn policy_pins_and_denials_refuse_components() {
    let (mut s, plugins) = with_plugins(&[]);
    let wrong = "0".repeat(64);
    let policy = s.write("policy.yaml", format!("plugins:\n  - {{name: csv, sha256: '{wrong}'}}\n"));
    s.env("RECOTEM_PLUGIN_POLICY", policy.to_str().unwrap());
    let run = train(&s, &plugins, "type: csv, path: data.csv", TOPPOP);
    contained(&s, &run, 3, &["refused by the operator policy (RECOTEM_PLUGIN_POLICY)", "pins sha256", &wrong]);

    s.write("policy.yaml", "plugins:\n  - {name: csv, input_stream: false}\n");
    let run = train(&s, &plugins, "type: csv, path: data.csv", TOPPOP);
    contained(&s, &run, 3, &["needs the recipe's input stream", "input_stream: false"]);

    s.write("policy.yaml", "unlisted: deny\nplugins:\n  - {name: csv}\n  - {name: echo}\n  - {name: parquet}\n");
    let run = train(&s, &plugins, "type: csv, path: data.csv", TOPPOP);
    let msg = contained(&s, &run, 4, &["TopPop", "unlisted: deny"]);
    assert_eq!(run.train_error()["code"], "trainer_rejected", "{msg}");
}

#[test]
fn a_malformed_policy_is_a_configuration_error_without_echoing_the_path() {
    let (mut s, plugins) = with_plugins(&[]);
    let policy = s.write("secret-policy-name.yaml", "plugins:\n  - {network: ['*:80']}\n");
    s.env("RECOTEM_PLUGIN_POLICY", policy.to_str().unwrap());
    let run = train(&s, &plugins, "type: csv, path: data.csv", TOPPOP);
    let msg = contained(&s, &run, 8, &["RECOTEM_PLUGIN_POLICY", "plugins[0]"]);
    assert!(!msg.contains("secret-policy-name"), "the env value leaked: {msg}");
}

#[test]
fn unknown_source_type_exits_2_listing_registered_types() {
    let s = Scratch::new();
    let recipe = write_recipe(&s, "type: nosuch, path: data.csv", TOPPOP);
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(2);
    let msg = run.train_error()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("nosuch") && msg.contains("csv"), "{msg}");
}

#[test]
fn recipe_pins_refuse_any_other_build() {
    use sha2::Digest;
    let csv_digest = hex::encode(sha2::Sha256::digest(std::fs::read(fixture_component("recotem-source-csv")).unwrap()));
    let s = Scratch::new();
    s.write("data.csv", "user_id,item_id\na,x\n");
    let validate = |pins: &str| {
        let recipe = s.recipe(
            "pinned",
            &format!(
                "name: pinned\nsource: {{type: csv, path: data.csv}}\nschema: {{user_column: user_id, item_column: item_id}}\n\
                 training: {{algorithms: [TopPop]}}\noutput: {{path: out/model.recotem}}\nplugins: {{sha256: {{{pins}}}}}\n"
            ),
        );
        s.run(&["validate", recipe.to_str().unwrap()])
    };
    validate(&format!("csv: '{csv_digest}'")).expect_code(0);
    let wrong = "ab".repeat(32);
    let run = validate(&format!("csv: '{csv_digest}', TopPop: '{wrong}'"));
    run.expect_code(4);
    let msg = run.events_named("command_failed")[0]["error"].as_str().unwrap().to_string();
    assert!(msg.contains("refused by the recipe's pin plugins.sha256.TopPop") && msg.contains(&wrong), "{msg}");
    validate(&format!("nosuch: '{wrong}'")).expect_code(2);
    validate("csv: 'not-hex'").expect_code(2);
}
