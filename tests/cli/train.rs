//! `recotem train`: the happy path and the exit codes it can hit.

use crate::common::{KEYS, Scratch, quickstart_csv};

#[test]
fn quickstart_recipe_trains_and_its_artifact_verifies() {
    let mut s = Scratch::new();
    // The quickstart recipe uses paths relative to the repository root.
    let recipe = crate::common::repo_root().join("examples/quickstart/recipe.yaml");
    let text = std::fs::read_to_string(&recipe).unwrap().replace(
        "examples/quickstart/interactions.csv",
        &quickstart_csv().display().to_string(),
    );
    let recipe = s.recipe("quickstart", &text.replace("target/quickstart/", "out/"));
    s.env("RECOTEM_LOG_FORMAT", "json");
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(0);

    // Phase events in order, one train_done, no train_error.
    let names: Vec<String> = run.events().iter().map(|e| e["event"].as_str().unwrap().to_string()).collect();
    let order = [
        "training_started", "fetching_data", "csv_source_fetch_start", "csv_source_fetch_done",
        "data_fetched", "data_cleansed", "splitting_data", "split_done", "search_started",
        "trial_done", "tuning_complete", "search_done", "training_final_model",
        "final_model_trained", "artifact_written", "train_done",
    ];
    let mut at = 0;
    for want in order {
        let found = names[at..].iter().position(|n| n == want);
        assert!(found.is_some(), "event {want} missing or out of order in {names:?}");
        at += found.unwrap() + 1;
    }
    assert!(run.events_named("train_error").is_empty());
    let done = &run.events_named("train_done")[0];
    for field in ["name", "run_id", "exit_code", "artifact", "best_class", "best_score", "trials",
                  "n_orphaned", "trained_at", "kid", "recipe_hash", "n_rows", "n_users", "n_items"] {
        assert!(done.get(field).is_some(), "train_done lacks {field}: {done}");
    }
    assert_eq!(done["name"], "quickstart");
    assert_eq!(done["kid"], "test");
    assert_eq!(done["best_class"], "TopPop");
    assert!(done["best_score"].as_f64().unwrap() > 0.0);
    assert_eq!(done["n_users"], 400);

    // stdout is the artifact path; the pointer resolves to it; it verifies.
    let artifact = run.stdout().trim().to_string();
    assert!(artifact.ends_with(".recotem") && artifact.contains("quickstart."), "{artifact}");
    let inspect = s.run(&["inspect", "out/quickstart.recotem"]);
    inspect.expect_code(0);
    let out = inspect.stdout();
    assert!(out.starts_with("HMAC: OK  (kid='test')\n"), "{out}");
    let header: serde_json::Value = serde_json::from_str(out.split_once('\n').unwrap().1).unwrap();
    assert_eq!(header["recipe_name"], "quickstart");
    assert_eq!(header["best_class"], "TopPop");
    assert_eq!(header["kid"], "test");
    assert_eq!(header["data_stats"]["n_rows"], done["n_rows"]);
    let components = header["components"].as_array().unwrap();
    assert!(components.iter().any(|c| c["role"] == "source" && c["name"] == "csv" && c["sha256"].as_str().unwrap().len() == 64));
    assert!(components.iter().any(|c| c["role"] == "trainer" && c["name"] == "TopPop"));
}

#[test]
fn missing_signing_keys_exit_8_with_signing_key_missing() {
    let mut s = Scratch::new();
    s.unset("RECOTEM_SIGNING_KEYS");
    let recipe = s.recipe("r", &s.basic_recipe());
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(8);
    let e = run.train_error();
    assert_eq!(e["code"], "signing_key_missing");
    assert_eq!(e["name"], "demo");
    assert!(e["error"].as_str().unwrap().contains("RECOTEM_SIGNING_KEYS"));
    assert!(!s.path("out/model.recotem").exists());
}

#[test]
fn malformed_signing_keys_exit_8_without_echoing_the_value() {
    let mut s = Scratch::new();
    s.env("RECOTEM_SIGNING_KEYS", "k:not-hex-secret-value");
    let recipe = s.recipe("r", &s.basic_recipe());
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(8);
    run.train_error();
    assert!(!run.stderr().contains("not-hex-secret-value"));
}

#[test]
fn missing_column_exits_3_naming_it() {
    let s = Scratch::new();
    let recipe = s.recipe("r", &s.basic_recipe().replace("user_column: user_id", "user_column: customer"));
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(3);
    let e = run.train_error();
    assert_eq!(e["code"], "datasource_error");
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("\"customer\"") && msg.contains("user_id"), "{msg}");
    assert!(!s.path("out/model.recotem").exists());
}

#[test]
fn missing_source_file_exits_3() {
    let s = Scratch::new();
    let recipe = s.recipe("r", &s.basic_recipe().replace(&quickstart_csv().display().to_string(), "nope.csv"));
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(3);
    assert!(run.train_error()["error"].as_str().unwrap().contains("nope.csv"));
}

#[test]
fn malformed_csv_exits_3_with_the_line() {
    let s = Scratch::new();
    s.write("bad.csv", "user_id,item_id\na,x\nb,y,extra\n");
    let recipe = s.recipe("r", &s.basic_recipe().replace(&quickstart_csv().display().to_string(), "bad.csv"));
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(3);
    let msg = run.train_error()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("line 3"), "{msg}");
}

#[test]
fn bad_recipe_exits_2() {
    let s = Scratch::new();
    let recipe = s.recipe("r", &s.basic_recipe().replace("cutoff: 10", "cutof: 10"));
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(2);
    let msg = run.train_error()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("cutof"), "{msg}");
    let run = s.run(&["train", "does-not-exist.yaml"]);
    run.expect_code(2);
    run.train_error();
}

#[test]
fn unknown_algorithm_exits_2_listing_the_known_ones() {
    let s = Scratch::new();
    let recipe = s.recipe("r", &s.basic_recipe().replace("[TopPop]", "[TopPop, NoSuchAlgo]"));
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(2);
    let msg = run.train_error()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("NoSuchAlgo") && msg.contains("TopPop"), "{msg}");
}

#[test]
fn min_data_violation_exits_4_with_counts() {
    let s = Scratch::new();
    let recipe = s.recipe("r", &format!("{}cleansing: {{min_rows: 1000000, min_users: 5}}\n", s.basic_recipe()));
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(4);
    let e = run.train_error();
    assert_eq!(e["code"], "min_data_violation");
    assert_eq!(e["min_rows"], 1_000_000);
    assert_eq!(e["min_users"], 5);
    assert_eq!(e["min_items"], 0);
    assert_eq!(e["n_users"], 400);
    assert!(e["n_rows"].as_u64().unwrap() > 5000);
}

#[test]
fn sha256_pin_mismatch_on_a_local_file_exits_3() {
    let s = Scratch::new();
    let pinned = s.basic_recipe().replace(
        "{type: csv, path: ",
        &format!("{{type: csv, sha256: '{}', path: ", "ab".repeat(32)),
    );
    let recipe = s.recipe("r", &pinned);
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(3);
    assert!(run.train_error()["error"].as_str().unwrap().contains("sha256 mismatch"));
}

#[test]
fn dev_flag_misuse_exits_8() {
    let mut s = Scratch::new();
    let recipe = s.recipe("r", &s.basic_recipe());
    let r = recipe.to_str().unwrap();
    s.run(&["train", "--dev-allow-unsigned", r]).expect_code(8);
    s.run(&["train", "--dev-allow-unsigned", "--i-understand-this-loads-arbitrary-code", r]).expect_code(8);
    s.env("RECOTEM_ENV", "development");
    s.unset("RECOTEM_SIGNING_KEYS");
    let run = s.run(&["train", "--dev-allow-unsigned", "--i-understand-this-loads-arbitrary-code", r]);
    run.expect_code(0);
    assert_eq!(run.events_named("train_done")[0]["kid"], "dev");
}

#[test]
fn bad_run_id_exits_2() {
    let s = Scratch::new();
    let recipe = s.recipe("r", &s.basic_recipe());
    s.run(&["train", "--run-id", "has space", recipe.to_str().unwrap()]).expect_code(2);
    let ok = s.run(&["train", "--run-id", "nightly-2026.11.28", recipe.to_str().unwrap()]);
    ok.expect_code(0);
    assert_eq!(ok.events_named("train_done")[0]["run_id"], "nightly-2026.11.28");
}

#[test]
fn stdout_carries_only_the_result() {
    let s = Scratch::new();
    let recipe = s.recipe("r", &s.basic_recipe());
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(0);
    assert_eq!(run.stdout().lines().count(), 1, "{}", run.stdout());
    assert!(s.path("out/model.recotem").is_file());
}

/// Writes an item-metadata CSV for the quickstart items (plus a duplicate,
/// a blank id and an unknown item) and returns a recipe using it.
fn metadata_recipe(s: &Scratch, fields: &str) -> std::path::PathBuf {
    let csv = std::fs::read_to_string(quickstart_csv()).unwrap();
    let mut items: Vec<&str> = csv.lines().skip(1).filter_map(|l| l.split(',').nth(1)).collect();
    items.sort_unstable();
    items.dedup();
    let mut meta = String::from("item_id,title,genre\n");
    for (i, item) in items.iter().enumerate() {
        meta.push_str(&format!("{item},Title of {item},g{}\n", i % 3));
    }
    meta.push_str(&format!("{},SECOND ROW LOSES,x\n,blank id,x\nnot-an-item,unknown,x\n", items[0]));
    s.write("items.csv", meta);
    let recipe = s.basic_recipe().replace(
        "training:",
        &format!("item_metadata: {{type: csv, path: items.csv, fields: {fields}}}\ntraining:"),
    );
    s.recipe("meta", &recipe)
}

#[test]
fn item_metadata_is_read_at_train_time_into_the_signed_payload() {
    use recotem::artifact::{KeyRing, container::Container, payload::Payload};
    let s = Scratch::new();
    let recipe = metadata_recipe(&s, "[genre, title]");
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(0);
    let loaded = &run.events_named("metadata_loaded")[0];
    assert_eq!(loaded["n_items_with_metadata"], loaded["n_items"], "{loaded}");
    assert_eq!(run.events_named("metadata_duplicate_item_ids_dropped")[0]["count"], 1);
    assert_eq!(run.events_named("metadata_null_item_ids_dropped")[0]["count"], 1);

    let bytes = std::fs::read(s.path("out/model.recotem")).unwrap();
    let ring = KeyRing::parse(KEYS).unwrap();
    let verified = Container::parse(&bytes, u64::MAX).unwrap().verify(&ring).unwrap();
    let payload = Payload::decode(verified.payload).unwrap();
    let fields: Vec<&str> = payload.metadata.fields.iter().map(|f| &**f).collect();
    assert_eq!(fields, ["genre", "title"]);
    let first = payload.items.get("i0000").expect("item i0000 is in the model") as usize;
    assert_eq!(payload.metadata.columns[1][first].as_deref(), Some("Title of i0000"), "first row of an id wins");
    assert!(payload.metadata.columns.iter().all(|c| c.len() == payload.items.len()));
}

#[test]
fn item_metadata_missing_field_is_exit_3_or_nulls_when_asked() {
    let s = Scratch::new();
    let run = s.run(&["train", metadata_recipe(&s, "[title, price]").to_str().unwrap()]);
    run.expect_code(3);
    let e = run.train_error();
    assert_eq!(e["code"], "datasource_error");
    assert!(e["error"].as_str().unwrap().contains("item_metadata") && e["error"].as_str().unwrap().contains("price"), "{e}");
    assert!(!s.path("out/model.recotem").exists());

    let text = std::fs::read_to_string(metadata_recipe(&s, "[title, price]")).unwrap();
    let recipe = s.recipe("meta-null", &text.replace("fields: [title, price]", "fields: [title, price], on_field_missing: null"));
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(0);
    assert_eq!(run.events_named("metadata_field_missing_filled_null")[0]["field"], "price");

    let text = std::fs::read_to_string(metadata_recipe(&s, "[title]")).unwrap();
    let recipe = s.recipe("meta-id", &text.replace("fields: [title]", "fields: [title], item_id_column: sku"));
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(3);
    assert!(run.train_error()["error"].as_str().unwrap().contains("\"sku\""));
}
