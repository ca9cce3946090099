//! `recotem inspect`: verification without decoding, and its exit codes.

use crate::common::Scratch;

fn trained(s: &Scratch) -> Vec<u8> {
    let recipe = s.recipe("r", &s.basic_recipe());
    s.run(&["train", "-q", recipe.to_str().unwrap()]).expect_code(0);
    std::fs::read(s.path("out/model.recotem")).unwrap()
}

#[test]
fn a_flipped_byte_anywhere_exits_5() {
    let s = Scratch::new();
    let bytes = trained(&s);
    // Every byte of the fixed prefix and header, then a stride through the
    // payload (every byte of a 50 KB payload would mean thousands of
    // processes; the unit test in artifact::container covers every byte).
    let mut positions: Vec<usize> = (0..bytes.len().min(400)).collect();
    positions.extend((400..bytes.len()).step_by(997));
    positions.push(bytes.len() - 1);
    for pos in positions {
        let mut b = bytes.clone();
        b[pos] ^= 0x20;
        s.write("tampered.recotem", &b);
        let run = s.run(&["inspect", "tampered.recotem"]);
        assert_eq!(run.code(), 5, "byte {pos}: {}", run.stderr());
    }
}

#[test]
fn truncation_and_garbage_exit_5_with_a_reason() {
    let s = Scratch::new();
    let bytes = trained(&s);
    for (name, data, expect) in [
        ("short", bytes[..30].to_vec(), "truncated"),
        ("empty", Vec::new(), "magic"),
        ("text", b"hello world, not an artifact".to_vec(), "magic"),
        ("cut", bytes[..bytes.len() - 1].to_vec(), "HMAC mismatch"),
    ] {
        s.write(name, &data);
        let run = s.run(&["inspect", name]);
        run.expect_code(5);
        assert!(run.stderr().contains(expect), "{name}: {}", run.stderr());
    }
}

#[test]
fn no_keys_exits_8_but_structural_faults_still_exit_5() {
    let mut s = Scratch::new();
    trained(&s);
    s.unset("RECOTEM_SIGNING_KEYS");
    let run = s.run(&["inspect", "out/model.recotem"]);
    run.expect_code(8);
    assert!(run.stderr().contains("RECOTEM_SIGNING_KEYS"));
    s.write("junk", b"junk");
    s.run(&["inspect", "junk"]).expect_code(5);
}

#[test]
fn unknown_kid_exits_5_naming_it() {
    let mut s = Scratch::new();
    trained(&s);
    s.env("RECOTEM_SIGNING_KEYS", &format!("other:{}", "11".repeat(32)));
    let run = s.run(&["inspect", "out/model.recotem"]);
    run.expect_code(5);
    assert!(run.stderr().contains("unknown kid \\\"test\\\""), "{}", run.stderr());
}

#[test]
fn rotation_keeps_old_artifacts_verifiable() {
    let mut s = Scratch::new();
    trained(&s);
    s.env("RECOTEM_SIGNING_KEYS", &format!("new:{},{}", "22".repeat(32), crate::common::KEYS));
    s.run(&["inspect", "out/model.recotem"]).expect_code(0);
}

#[test]
fn missing_file_exits_5() {
    let s = Scratch::new();
    s.run(&["inspect", "nope.recotem"]).expect_code(5);
}

// ------------------------------------------------------------------ crafted artifacts
//
// The cases below seal artifacts with the library (same key as the harness),
// then break exactly one structural rule, so each message can be checked.

use recotem::artifact::KeyRing;
use recotem::artifact::container::seal_version;

fn ring() -> KeyRing {
    KeyRing::parse(crate::common::KEYS).unwrap()
}

fn sealed(version: u16, header: &str, payload: &[u8]) -> Vec<u8> {
    seal_version(version, ring().active(), header.as_bytes(), payload).unwrap()
}

/// Run inspect on `bytes` and return the `command_failed` error text.
fn inspect_fails(s: &Scratch, bytes: &[u8], code: i32) -> String {
    s.write("crafted.recotem", bytes);
    let run = s.run(&["inspect", "crafted.recotem"]);
    run.expect_code(code);
    assert!(run.stdout().is_empty(), "nothing on stdout on failure: {}", run.stdout());
    let failed = run.events_named("command_failed");
    assert_eq!(failed.len(), 1, "{}", run.stderr());
    assert_eq!(failed[0]["exit_code"], code);
    failed[0]["error"].as_str().unwrap().to_string()
}

#[test]
fn every_structural_fault_exits_5_with_its_own_message() {
    let s = Scratch::new();
    let good = sealed(2, r#"{"recipe_name":"demo"}"#, b"payload");
    let kid = 4; // "test"
    let len_at = 13 + kid + 32;
    let set = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        edit(&mut b);
        b
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"PK\x03\x04 a zip file".to_vec(), "magic"),
        (set(&|b| b[8] = 9), "unsupported format version 9"),
        (set(&|b| b[8..10].copy_from_slice(&0u16.to_le_bytes())), "unsupported format version 0"),
        (set(&|b| b[11] = 1), "reserved field is 256"),
        (set(&|b| b[12] = 0), "kid length 0"),
        (set(&|b| b[12] = 40), "kid length 40"),
        (good[..9].to_vec(), "inside the version and reserved fields"),
        (good[..12].to_vec(), "inside the kid length"),
        (good[..15].to_vec(), "inside the kid"),
        (good[..13 + kid + 10].to_vec(), "inside the HMAC"),
        (good[..len_at + 2].to_vec(), "inside the header length"),
        (good[..len_at + 10].to_vec(), "inside the header"),
        (set(&|b| b[len_at..len_at + 4].copy_from_slice(&65_537u32.to_le_bytes())), "header length 65537 exceeds"),
        (set(&|b| b[13] = 0xff), "kid is not valid UTF-8"),
        (set(&|b| b[len_at + 4 + 2] = 0xff), "header is not valid UTF-8"),
    ];
    for (bytes, expect) in cases {
        let msg = inspect_fails(&s, &bytes, 5);
        assert!(msg.contains(expect), "expected {expect:?} in: {msg}");
        assert!(msg.contains("crafted.recotem"), "the message names the file: {msg}");
    }
}

#[test]
fn version_1_artifacts_still_verify_and_tampering_is_caught() {
    let s = Scratch::new();
    let v1 = sealed(1, r#"{"recipe_name":"legacy"}"#, b"old payload");
    s.write("v1.recotem", &v1);
    let run = s.run(&["inspect", "v1.recotem"]);
    run.expect_code(0);
    assert!(run.stdout().starts_with("HMAC: OK  (kid='test')\n"), "{}", run.stdout());
    assert!(run.stdout().contains("\"recipe_name\": \"legacy\""));
    let mut bad = v1.clone();
    *bad.last_mut().unwrap() ^= 1;
    assert!(inspect_fails(&s, &bad, 5).contains("HMAC mismatch"));
}

#[test]
fn a_header_that_is_not_a_json_object_exits_5_after_verification() {
    let s = Scratch::new();
    assert!(inspect_fails(&s, &sealed(2, "{not json", b""), 5).contains("not valid JSON"));
    assert!(inspect_fails(&s, &sealed(2, "[1,2]", b""), 5).contains("not a JSON object"));
}

#[test]
fn size_caps_exit_5_and_a_payload_cap_over_the_artifact_cap_exits_8() {
    let mut s = Scratch::new();
    let big = sealed(2, "{}", &vec![7u8; (1 << 20) + 10]);
    s.env("RECOTEM_MAX_ARTIFACT_BYTES", "1048576");
    s.env("RECOTEM_MAX_PAYLOAD_BYTES", "1048576");
    assert!(inspect_fails(&s, &big, 5).contains("over RECOTEM_MAX_ARTIFACT_BYTES (1048576)"));
    s.env("RECOTEM_MAX_ARTIFACT_BYTES", "4194304");
    assert!(inspect_fails(&s, &big, 5).contains("exceeds RECOTEM_MAX_PAYLOAD_BYTES (1048576)"));
    s.unset("RECOTEM_MAX_PAYLOAD_BYTES");
    s.env("RECOTEM_MAX_ARTIFACT_BYTES", "2097152");
    let msg = inspect_fails(&s, &big, 8);
    assert!(msg.contains("RECOTEM_MAX_PAYLOAD_BYTES") && msg.contains("RECOTEM_MAX_ARTIFACT_BYTES"), "{msg}");
    // Below the floor: clamped to 1 MiB with an event; the value is not echoed as a secret.
    s.env("RECOTEM_MAX_ARTIFACT_BYTES", "12");
    s.env("RECOTEM_MAX_PAYLOAD_BYTES", "12");
    s.write("crafted.recotem", &big);
    let run = s.run(&["inspect", "crafted.recotem"]);
    run.expect_code(5);
    assert_eq!(run.events_named("env_var_clamped").len(), 2, "{}", run.stderr());
}

#[test]
fn unknown_kid_and_mismatch_log_their_events_with_fingerprints_only() {
    let mut s = Scratch::new();
    let good = sealed(2, "{}", b"p");
    s.env("RECOTEM_SIGNING_KEYS", &format!("other:{}", "11".repeat(32)));
    s.write("a.recotem", &good);
    let run = s.run(&["inspect", "a.recotem"]);
    run.expect_code(5);
    assert_eq!(run.events_named("artifact_kid_unknown")[0]["kid"], "test");
    let built = &run.events_named("signing_keyring_built")[0];
    assert_eq!(built["n_keys"], 1);
    assert_eq!(built["active_kid"], "other");
    assert_eq!(built["fingerprints"][0]["fingerprint"].as_str().unwrap().len(), 8);
    assert!(!run.stderr().contains(&"11".repeat(32)), "key material in the log");

    s.env("RECOTEM_SIGNING_KEYS", &format!("test:{}", "11".repeat(32)));
    let run = s.run(&["inspect", "a.recotem"]);
    run.expect_code(5);
    assert_eq!(run.events_named("artifact_hmac_mismatch")[0]["kid"], "test");
    assert!(run.stderr().contains("HMAC mismatch for kid"));
}

#[test]
fn malformed_keys_exit_8_without_echoing_them() {
    let mut s = Scratch::new();
    s.write("a.recotem", sealed(2, "{}", b"p"));
    for bad in ["k:zz-secret-zz", "nocolon", &format!("a:{0},a:{0}", "11".repeat(32))] {
        s.env("RECOTEM_SIGNING_KEYS", bad);
        let run = s.run(&["inspect", "a.recotem"]);
        run.expect_code(8);
        assert!(!run.stderr().contains("zz-secret-zz") && !run.stderr().contains(&"11".repeat(32)));
    }
}

#[test]
fn append_sha_pointers_are_followed_and_a_dangling_one_exits_5() {
    let s = Scratch::new();
    let recipe = s.recipe("r", &s.basic_recipe().replace("always_overwrite", "append_sha"));
    let run = s.run(&["train", "-q", recipe.to_str().unwrap()]);
    run.expect_code(0);
    let artifact = std::path::PathBuf::from(run.stdout().trim());
    let name = artifact.file_name().unwrap().to_str().unwrap().to_string();
    let bytes = std::fs::read(s.path("out").join(&name)).unwrap();
    let sha8 = &recotem::util::sha256_hex(&bytes)[..8];
    assert_eq!(name, format!("model.{sha8}.recotem"));
    assert_eq!(std::fs::read_to_string(s.path("out/model.recotem")).unwrap(), format!("{name}\n"));
    let ok = s.run(&["inspect", "out/model.recotem"]);
    ok.expect_code(0);
    assert_eq!(ok.events_named("artifact_pointer_followed").len(), 1);

    s.write("out/dangling.recotem", "model.00000000.recotem\n");
    let run = s.run(&["inspect", "out/dangling.recotem"]);
    run.expect_code(5);
    let msg = run.events_named("command_failed")[0]["error"].as_str().unwrap().to_string();
    assert!(msg.contains("pointer") && msg.contains("model.00000000.recotem"), "{msg}");
}

#[test]
fn dev_mode_gates_and_verification() {
    let mut s = Scratch::new();
    let dev = seal_version(2, &recotem::artifact::keys::SigningKey::dev(), b"{}", b"p").unwrap();
    s.write("dev.recotem", &dev);
    s.unset("RECOTEM_SIGNING_KEYS");
    // Without RECOTEM_ENV=development: exit 8 before the file is even opened
    // (it does not exist here), with or without the confirmation flag.
    s.run(&["inspect", "--dev-allow-unsigned", "missing.recotem"]).expect_code(8);
    s.run(&["inspect", "--dev-allow-unsigned", "--i-understand-this-loads-arbitrary-code", "missing.recotem"])
        .expect_code(8);
    s.env("RECOTEM_ENV", "production");
    s.run(&["inspect", "--dev-allow-unsigned", "--i-understand-this-loads-arbitrary-code", "dev.recotem"])
        .expect_code(8);
    s.env("RECOTEM_ENV", " Development ");
    let run = s.run(&["inspect", "--dev-allow-unsigned", "--i-understand-this-loads-arbitrary-code", "dev.recotem"]);
    run.expect_code(0);
    assert!(run.stdout().starts_with("HMAC: OK  (kid='dev')"));
    assert_eq!(run.events_named("signing_keyring_built")[0]["fingerprints"][0]["fingerprint"], "66687aad");
    // Without the flag a dev-signed artifact needs keys: exit 8.
    s.run(&["inspect", "dev.recotem"]).expect_code(8);
    // With keys configured the flag is ignored (warning) and the ring decides.
    s.env("RECOTEM_SIGNING_KEYS", crate::common::KEYS);
    let run = s.run(&["inspect", "--dev-allow-unsigned", "--i-understand-this-loads-arbitrary-code", "dev.recotem"]);
    run.expect_code(5);
    assert_eq!(run.events_named("dev_allow_unsigned_ignored").len(), 1);
}

#[test]
fn inspect_never_decodes_the_payload() {
    // A correctly signed artifact whose payload is garbage: inspect verifies
    // the signature and prints the header; only a loader would decode it.
    let s = Scratch::new();
    s.write("odd.recotem", sealed(2, r#"{"recipe_name":"odd"}"#, b"\xff not a payload at all"));
    let run = s.run(&["inspect", "odd.recotem"]);
    run.expect_code(0);
    assert!(run.stdout().contains("\"recipe_name\": \"odd\""));
}

#[test]
fn usage_errors_exit_2() {
    let s = Scratch::new();
    s.run(&["inspect"]).expect_code(2);
}

/// CLI-19 asks inspect only for RECOTEM_ENV=development: it never decodes the
/// payload, so --i-understand-this-loads-arbitrary-code (which train and
/// serve require) is not needed, and still accepted.
#[test]
fn dev_mode_inspect_needs_no_arbitrary_code_confirmation() {
    let mut s = Scratch::new();
    s.write("dev.recotem", seal_version(2, &recotem::artifact::keys::SigningKey::dev(), b"{}", b"p").unwrap());
    s.unset("RECOTEM_SIGNING_KEYS");
    s.env("RECOTEM_ENV", "development");
    let run = s.run(&["inspect", "--dev-allow-unsigned", "dev.recotem"]);
    run.expect_code(0);
    assert!(run.stdout().starts_with("HMAC: OK  (kid='dev')"), "{}", run.stderr());
    assert!(!run.stderr().contains("i-understand"), "{}", run.stderr());
    let run = s.run(&["inspect", "--dev-allow-unsigned", "--i-understand-this-loads-arbitrary-code", "dev.recotem"]);
    run.expect_code(0);
    // The environment gate still holds, before any I/O.
    s.env("RECOTEM_ENV", "staging");
    let run = s.run(&["inspect", "--dev-allow-unsigned", "missing.recotem"]);
    run.expect_code(8);
    let msg = run.events_named("command_failed")[0]["error"].as_str().unwrap().to_string();
    assert!(msg.contains("RECOTEM_ENV=development") && !msg.contains("missing.recotem"), "{msg}");
    // train still asks for the confirmation.
    s.env("RECOTEM_ENV", "development");
    let recipe = s.recipe("r", &s.basic_recipe());
    let run = s.run(&["train", "--dev-allow-unsigned", recipe.to_str().unwrap()]);
    run.expect_code(8);
    assert!(run.train_error()["error"].as_str().unwrap().contains("--i-understand-this-loads-arbitrary-code"));
}

/// CLI-15: ARTIFACT may be a `file://` URL wherever a path works, pointers
/// included; schemes this version cannot read exit 5 naming the scheme,
/// never the URL.
#[test]
fn file_urls_work_where_paths_do() {
    let s = Scratch::new();
    let recipe = s.recipe("r", &s.basic_recipe().replace("always_overwrite", "append_sha"));
    s.run(&["train", "-q", recipe.to_str().unwrap()]).expect_code(0);
    let pointer = s.path("out/model.recotem");
    assert!(pointer.is_absolute());
    let abs = pointer.display().to_string();
    for arg in [format!("file://{abs}"), format!("file://localhost{abs}"), format!("FILE://{abs}"), format!("file:{abs}")] {
        let run = s.run(&["inspect", &arg]);
        run.expect_code(0);
        assert!(run.stdout().starts_with("HMAC: OK  (kid='test')"), "{arg}: {}", run.stderr());
        assert_eq!(run.events_named("artifact_pointer_followed").len(), 1, "{arg}");
    }
    let run = s.run(&["inspect", &format!("file://{}", s.path("out/nope.recotem").display())]);
    run.expect_code(5);
    assert!(run.stderr().contains("cannot open artifact"), "{}", run.stderr());
    for (arg, expect) in [
        ("file://otherhost/m.recotem", "names a host"),
        ("s3://AKIAX:hunter2@bucket/m.recotem", "s3:// artifacts are not read by this version"),
        ("https://example.com/m.recotem", "https:// artifacts are not read by this version"),
    ] {
        let run = s.run(&["inspect", arg]);
        run.expect_code(5);
        let msg = run.events_named("command_failed")[0]["error"].as_str().unwrap().to_string();
        assert!(msg.contains(expect), "{arg}: {msg}");
        assert!(!run.stderr().contains("hunter2"), "{}", run.stderr());
    }
}
