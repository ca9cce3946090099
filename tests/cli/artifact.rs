//! Artifacts end to end: keys from `keygen`, reproducible bytes, caps at
//! train time, and atomic replacement under `kill -9`.

use crate::common::Scratch;

fn lines(out: &str) -> Vec<(String, String)> {
    out.lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("not key=value: {l}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn keygen_signing_key_signs_and_verifies() {
    let mut s = Scratch::new();
    let run = s.run(&["keygen", "--kid", "prod-2026"]);
    run.expect_code(0);
    let l = lines(&run.stdout());
    let keys: Vec<&str> = l.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["kid", "plaintext", "fingerprint", "env_entry"]);
    assert_eq!(l[0].1, "prod-2026");
    let hex_key = &l[1].1;
    assert_eq!(hex_key.len(), 64);
    let fingerprint = l[2].1.split_whitespace().next().unwrap();
    assert_eq!(fingerprint, &recotem::util::sha256_hex(&hex::decode(hex_key).unwrap())[..8]);
    assert_eq!(l[3].1, format!("RECOTEM_SIGNING_KEYS=prod-2026:{hex_key}"));
    // The env entry works as printed, and the startup log shows the same fingerprint.
    s.env("RECOTEM_SIGNING_KEYS", l[3].1.split_once('=').unwrap().1);
    let recipe = s.recipe("r", &s.basic_recipe());
    let train = s.run(&["train", "-q", recipe.to_str().unwrap()]);
    train.expect_code(0);
    let built = &train.events_named("signing_keyring_built")[0];
    assert_eq!(built["fingerprints"][0]["fingerprint"], fingerprint);
    assert!(!train.stderr().contains(hex_key.as_str()));
    s.run(&["inspect", "out/model.recotem"]).expect_code(0);
    // Default kid: 8 hex digits; two runs never repeat a key.
    let a = lines(&s.run(&["keygen"]).stdout());
    let b = lines(&s.run(&["keygen", "--type", "signing"]).stdout());
    assert_eq!(a[0].1.len(), 8);
    assert_ne!(a[1].1, b[1].1);
}

#[test]
fn keygen_api_key_hash_is_the_scrypt_digest() {
    let s = Scratch::new();
    let run = s.run(&["keygen", "--type", "api", "--kid", "web"]);
    run.expect_code(0);
    let l = lines(&run.stdout());
    let keys: Vec<&str> = l.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["kid", "plaintext", "hash", "env_entry"]);
    let plaintext = &l[1].1;
    assert_eq!(plaintext.len(), 43);
    assert!(plaintext.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    let hash = recotem::artifact::keys::api_key_hash(plaintext);
    assert_eq!(l[2].1, format!("sha256:{hash}"));
    assert_eq!(l[3].1, format!("RECOTEM_API_KEYS=web:sha256:{hash}"));
}

#[test]
fn keygen_misuse_exits_8() {
    let s = Scratch::new();
    for args in [
        &["keygen", "--type", "rsa"][..],
        &["keygen", "--kid", "has space"],
        &["keygen", "--kid", ""],
        &["keygen", "--type", "api", "--kid", &"a".repeat(33)],
        &["keygen", "--kid", &"ab".repeat(16)],
    ] {
        let run = s.run(args);
        run.expect_code(8);
        assert!(run.stdout().is_empty());
    }
}

#[test]
fn same_inputs_seed_and_key_give_byte_identical_artifacts() {
    let mut s = Scratch::new();
    s.env("SOURCE_DATE_EPOCH", "1764547200");
    let recipe = s.recipe("r", &s.basic_recipe());
    let r = recipe.to_str().unwrap();
    s.run(&["train", "-q", "--run-id", "repro", r]).expect_code(0);
    let first = std::fs::read(s.path("out/model.recotem")).unwrap();
    std::fs::remove_file(s.path("out/model.recotem")).unwrap();
    let run = s.run(&["train", "-q", "--run-id", "repro", r]);
    run.expect_code(0);
    let second = std::fs::read(s.path("out/model.recotem")).unwrap();
    assert!(first == second, "two identical runs wrote different artifacts");
    assert_eq!(run.events_named("train_done")[0]["trained_at"], "2025-12-01T00:00:00Z");
    let out = s.run(&["inspect", "out/model.recotem"]).stdout();
    let header: serde_json::Value = serde_json::from_str(out.split_once('\n').unwrap().1).unwrap();
    assert_eq!(header["trained_at"], "2025-12-01T00:00:00Z");
    assert_eq!(header["run_id"], "repro");
    assert_eq!(header["payload"]["format"], "recotem-payload");
    for field in ["recipe_name", "recipe_hash", "kid", "best_class", "best_params", "metric", "cutoff", "best_score",
                  "data_stats", "components", "recotem_version"] {
        assert!(header.get(field).is_some(), "header lacks {field}");
    }
    // A different key gives different bytes.
    s.env("RECOTEM_SIGNING_KEYS", &format!("test:{}", "42".repeat(32)));
    s.run(&["train", "-q", "--run-id", "repro", r]).expect_code(0);
    assert_ne!(std::fs::read(s.path("out/model.recotem")).unwrap(), first);
}

#[test]
fn a_malformed_source_date_epoch_exits_8() {
    let mut s = Scratch::new();
    s.env("SOURCE_DATE_EPOCH", "yesterday");
    let recipe = s.recipe("r", &s.basic_recipe());
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(8);
    assert!(run.train_error()["error"].as_str().unwrap().contains("SOURCE_DATE_EPOCH"));
}

#[test]
fn train_checks_cap_order_before_work() {
    let mut s = Scratch::new();
    s.env("RECOTEM_MAX_ARTIFACT_BYTES", "1048576");
    s.env("RECOTEM_MAX_PAYLOAD_BYTES", "2097152");
    let recipe = s.recipe("r", &s.basic_recipe());
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(8);
    assert!(run.events_named("data_fetched").is_empty(), "caps are checked before fetching");
    assert!(!s.path("out/model.recotem").exists());
}

#[cfg(unix)]
#[test]
fn artifact_root_refuses_a_symlinked_output_directory() {
    let mut s = Scratch::new();
    std::fs::create_dir_all(s.path("root/out")).unwrap();
    std::fs::create_dir_all(s.path("elsewhere")).unwrap();
    s.env("RECOTEM_ARTIFACT_ROOT", s.path("root").to_str().unwrap());
    let inside = s.basic_recipe().replace("out/model.recotem", "root/out/model.recotem");
    let recipe = s.recipe("r", &inside);
    s.run(&["train", "-q", recipe.to_str().unwrap()]).expect_code(0);
    assert!(s.path("root/out/model.recotem").is_file());
    // Escaping through a symlinked directory is refused (at load: exit 2).
    std::os::unix::fs::symlink(s.path("elsewhere"), s.path("root/link")).unwrap();
    let recipe = s.recipe("r2", &s.basic_recipe().replace("out/model.recotem", "root/link/model.recotem"));
    s.run(&["train", "-q", recipe.to_str().unwrap()]).expect_code(2);
    assert!(!s.path("elsewhere/model.recotem").exists());
}

/// `kill -9` of a real `recotem train` at varying moments: whatever is at
/// the output path afterwards is the previous complete artifact or the new
/// one, never a partial file.
#[cfg(unix)]
#[test]
fn kill_9_during_train_never_leaves_a_partial_artifact() {
    let s = Scratch::new();
    for versioning in ["always_overwrite", "append_sha"] {
        let recipe = s.recipe(versioning, &s.basic_recipe().replace("always_overwrite", versioning));
        let r = recipe.to_str().unwrap();
        // A complete artifact to start with.
        s.run(&["train", "-q", r]).expect_code(0);
        let started = std::time::Instant::now();
        let full = s.run(&["train", "-q", r]);
        full.expect_code(0);
        let duration = started.elapsed();
        for round in 0..8u32 {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_recotem"))
                .args(["train", "-q", r])
                .current_dir(s.dir.path())
                .env_clear()
                .env("RECOTEM_SIGNING_KEYS", crate::common::KEYS)
                .env("RECOTEM_LOG_FORMAT", "json")
                .env("RECOTEM_CACHE_DIR", std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // Spread the kills over the whole run, the write at its end included.
            std::thread::sleep(duration.mul_f64(0.55 + 0.07 * round as f64));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            let run = s.run(&["inspect", "out/model.recotem"]);
            assert_eq!(run.code(), 0, "{versioning}, round {round}: after kill -9: {}", run.stderr());
        }
    }
}
