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
