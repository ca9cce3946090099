//! Plugins get nothing they were not granted: hostile fixture components
//! driven through the real binary.

use crate::common::{Scratch, fixture_component};

fn hostile_recipe(s: &Scratch, source_type: &str) -> std::path::PathBuf {
    s.write("data.csv", "user_id,item_id\na,x\n");
    s.recipe(
        "hostile",
        &format!(
            "name: hostile\nsource: {{type: {source_type}, path: data.csv}}\n\
             schema: {{user_column: user_id, item_column: item_id}}\n\
             training: {{algorithms: [TopPop]}}\noutput: {{path: out/model.recotem}}\n"
        ),
    )
}

#[test]
fn a_source_that_reads_files_and_env_gets_nothing() {
    let s = Scratch::new();
    let plugins = s.path("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(fixture_component("recotem-fixture-hostile-fs"), plugins.join("hostile_fs.wasm")).unwrap();
    let recipe = hostile_recipe(&s, "hostile_fs");
    let run = s.run(&["train", "--plugin-dir", plugins.to_str().unwrap(), recipe.to_str().unwrap()]);
    run.expect_code(3);
    let msg = run.train_error()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("sandbox probe"), "the fixture did not run: {msg}");
    assert!(!msg.contains("LEAKED"), "sandbox hole: {msg}");
    for attempt in ["denied read /etc/passwd", "denied list /", "denied env", "denied read ../Cargo.toml"] {
        assert!(msg.contains(attempt), "missing {attempt:?} in {msg}");
    }
    assert!(!s.path("out").exists(), "no artifact may be written");
}

#[test]
fn unknown_source_type_exits_2_listing_registered_types() {
    let s = Scratch::new();
    let recipe = hostile_recipe(&s, "nosuch");
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(2);
    let msg = run.train_error()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("nosuch") && msg.contains("csv"), "{msg}");
}
