//! `recotem plugins list | inspect | audit`: what each component is and may
//! do, as a security team reads it.

use serde_json::Value;

use crate::common::{Scratch, fixture_component};

fn sha256_of(path: &std::path::Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn json(run: &crate::common::Run) -> Value {
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", run.stdout()))
}

fn component<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no component {name} in {doc}"))
}

/// The keys of a component object: the documented, stable format.
const COMPONENT_KEYS: &[&str] = &[
    "name", "kind", "version", "description", "origin", "builtin", "sha256", "size_bytes", "wit", "imports",
    "needs", "grants", "limits", "status", "error", "exit_code",
];

#[test]
fn audit_json_describes_every_builtin_accurately() {
    let s = Scratch::new();
    let run = s.run(&["plugins", "audit", "--json"]);
    run.expect_code(0);
    let doc = json(&run);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["refused"], 0);
    assert_eq!(doc["wit"]["version"], env!("RECOTEM_WIT_VERSION"));
    assert_eq!(doc["policy"]["file"], Value::Null);
    // csv, echo, parquet, and the seven trainers (TopPop, IALS, CosineKNN,
    // RP3beta, DenseSLIM, TruncatedSVD, BPRFM).
    assert_eq!(doc["components"].as_array().unwrap().len(), 10, "{doc}");

    let csv = component(&doc, "csv");
    for key in COMPONENT_KEYS {
        assert!(csv.get(*key).is_some(), "component lacks {key}: {csv}");
    }
    assert_eq!(csv["kind"], "source");
    assert_eq!(csv["builtin"], true);
    assert_eq!(csv["status"], "ok");
    assert_eq!(csv["sha256"], sha256_of(&fixture_component("recotem-source-csv")).as_str());
    assert_eq!(csv["wit"]["world"], "recotem:plugin/source");
    assert_eq!(csv["needs"], serde_json::json!(["input-stream"]));
    assert_eq!(csv["grants"]["granted"], serde_json::json!(["input-stream"]));
    assert_eq!(csv["grants"]["refusals"], serde_json::json!([]));
    assert!(csv["config_schema"]["properties"]["path"].is_object(), "{}", csv["config_schema"]);
    assert_eq!(csv["limits"]["memory_bytes"], 1u64 << 30);
    assert_eq!(csv["limits"]["batch_rows"], 65536);
    let imports = csv["imports"].as_array().unwrap();
    assert!(imports.iter().any(|i| i["name"].as_str().unwrap().starts_with("recotem:plugin/io@")));
    for i in imports {
        let name = i["name"].as_str().unwrap();
        assert!(i["class"] == "contract" || i["class"] == "inert", "{i}");
        assert!(!name.starts_with("wasi:sockets") && !name.starts_with("wasi:http"), "{name}");
    }

    let toppop = component(&doc, "TopPop");
    assert_eq!(toppop["kind"], "trainer");
    assert_eq!(toppop["sha256"], sha256_of(&fixture_component("recotem-trainer-toppop")).as_str());
    assert_eq!(toppop["model_kind"], "popularity");
    assert_eq!(toppop["aliases"], serde_json::json!(["TopPopRecommender"]));
    assert_eq!(toppop["needs"], serde_json::json!([]));
    assert_eq!(toppop["grants"]["granted"], serde_json::json!([]));
    assert_eq!(toppop["limits"]["memory_bytes"], 4u64 << 30);
    assert!(toppop["imports"].as_array().unwrap().iter().all(|i| i["name"] != format!("recotem:plugin/io@{}", env!("RECOTEM_WIT_VERSION")).as_str()));
}

#[test]
fn audit_fails_when_a_component_asks_for_more_than_the_policy_grants() {
    let mut s = Scratch::new();
    let plugins = s.path("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(fixture_component("recotem-fixture-hostile-net"), plugins.join("net.wasm")).unwrap();
    let dir = plugins.to_str().unwrap();

    let run = s.run(&["plugins", "audit", "--json", "--plugin-dir", dir]);
    run.expect_code(3);
    let doc = json(&run);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["refused"], 1);
    let net = component(&doc, "hostile_net");
    assert_eq!(net["status"], "refused");
    assert_eq!(net["version"], "0.0.1");
    assert_eq!(net["exit_code"], 3);
    assert_eq!(net["needs"], serde_json::json!(["network(endpoint)"]));
    assert!(net["error"].as_str().unwrap().contains("refused by the default policy"), "{net}");
    assert!(
        net["imports"].as_array().unwrap().iter().any(|i| i["class"] == "network-grant"
            && i["name"].as_str().unwrap().starts_with("wasi:sockets/tcp@")),
        "{net}"
    );
    assert_eq!(run.events_named("plugins_audit_failed").len(), 1);

    // Text form says the same.
    let run = s.run(&["plugins", "--plugin-dir", dir, "audit"]);
    run.expect_code(3);
    assert!(run.stdout().contains("Audit FAILED: 1 component(s) refused"), "{}", run.stdout());

    // Granting it exact endpoints makes the audit pass and shows the grant.
    let policy = s.write(
        "policy.yaml",
        "version: 1\nplugins:\n  - {name: hostile_net, network: ['192.0.2.10:5432']}\n  - {name: gone}\n",
    );
    s.env("RECOTEM_PLUGIN_POLICY", policy.to_str().unwrap());
    let run = s.run(&["plugins", "audit", "--json", "--plugin-dir", dir]);
    run.expect_code(0);
    let doc = json(&run);
    assert_eq!(doc["policy"]["file"], "RECOTEM_PLUGIN_POLICY");
    assert_eq!(doc["policy"]["unmatched_entries"], serde_json::json!(["plugins[1]"]));
    let net = component(&doc, "hostile_net");
    assert_eq!(net["grants"]["granted"], serde_json::json!(["network(192.0.2.10:5432)"]));
    assert_eq!(net["grants"]["policy_entry"], "plugins[0]");
}

#[test]
fn list_and_inspect_by_name_and_by_path() {
    let s = Scratch::new();
    let run = s.run(&["plugins", "list"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.starts_with("NAME"), "{out}");
    assert!(out.contains("csv") && out.contains("TopPop") && out.contains("builtin:recotem-source-csv"), "{out}");

    let run = s.run(&["plugins", "inspect", "toppoprecommender"]);
    run.expect_code(0);
    assert!(run.stdout().contains("kind           trainer"), "{}", run.stdout());

    // A file outside the plugin directory.
    let file = fixture_component("recotem-fixture-hostile-source");
    let run = s.run(&["plugins", "inspect", "--json", file.to_str().unwrap()]);
    run.expect_code(0);
    let c = json(&run);
    assert_eq!(c["name"], "hostile");
    assert_eq!(c["sha256"], sha256_of(&file).as_str());
    assert_eq!(c["needs"], serde_json::json!(["input-stream"]));

    // A refused file: non-zero, with the reason.
    let file = fixture_component("recotem-fixture-wit-future");
    let run = s.run(&["plugins", "inspect", file.to_str().unwrap()]);
    run.expect_code(4);
    assert!(run.stdout().contains("recotem:plugin@1.0.0"), "{}", run.stdout());

    let run = s.run(&["plugins", "inspect", "nosuch"]);
    run.expect_code(2);
    let failed = run.events_named("command_failed");
    assert!(failed[0]["error"].as_str().unwrap().contains("known: csv, echo, parquet, TopPop"), "{failed:?}");
}

/// Build `examples/plugin-source-jsonl` as its author would (its own
/// workspace and Cargo.lock, the guest SDK by path) into a target directory
/// kept between test runs, and return the component.
fn build_jsonl_example() -> std::path::PathBuf {
    let example = crate::common::repo_root().join("examples/plugin-source-jsonl");
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("example-plugins");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(&example)
        .args(["build", "--quiet", "--release", "--locked", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(&target);
    // Flags meant for the host build must not leak into the wasm build.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo");
    assert!(status.success(), "building examples/plugin-source-jsonl failed");
    target.join("wasm32-wasip2/release/plugin_source_jsonl.wasm")
}

#[test]
fn the_out_of_tree_jsonl_example_builds_installs_audits_validates_and_trains() {
    let wasm = build_jsonl_example();
    let mut s = Scratch::new();
    let plugins = s.path("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(&wasm, plugins.join("plugin_source_jsonl.wasm")).unwrap();
    s.env("RECOTEM_PLUGIN_DIR", plugins.to_str().unwrap());

    let run = s.run(&["plugins", "audit", "--json"]);
    run.expect_code(0);
    let doc = json(&run);
    let jsonl = component(&doc, "jsonl");
    assert_eq!(jsonl["builtin"], false);
    assert_eq!(jsonl["needs"], serde_json::json!(["input-stream"]));
    assert_eq!(jsonl["grants"]["granted"], serde_json::json!(["input-stream"]));
    assert_eq!(jsonl["sha256"], sha256_of(&wasm).as_str());

    let run = s.run(&["schema"]);
    run.expect_code(0);
    assert!(run.stdout().contains("\"const\": \"jsonl\""), "schema lacks the jsonl source");

    let mut lines = String::new();
    for u in 0..40 {
        for i in 0..8 {
            lines.push_str(&format!("{{\"user_id\": \"u{u}\", \"item_id\": {}}}\n", (u * 3 + i * 5) % 30));
        }
    }
    s.write("interactions.jsonl", lines);
    let recipe = s.recipe(
        "jsonl",
        "name: jsonl_demo\nsource: {type: jsonl, path: interactions.jsonl}\n\
         schema: {user_column: user_id, item_column: item_id}\n\
         training: {algorithms: [TopPop], n_trials: 2}\noutput: {path: out/model.recotem, versioning: always_overwrite}\n",
    );
    let run = s.run(&["validate", recipe.to_str().unwrap()]);
    run.expect_code(0);
    assert!(run.stdout().contains("DataSource: probe OK (jsonl)"), "{}", run.stdout());
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(0);
    assert!(s.path("out/model.recotem").is_file());
    let done = &run.events_named("train_done")[0];
    assert_eq!(done["n_users"], 40, "{done}");
}
