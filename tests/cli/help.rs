//! `--help` teaches: every command documents its flags and the exit codes.

use crate::common::Scratch;

#[test]
fn every_command_help_lists_exit_codes() {
    let s = Scratch::new();
    for args in [vec!["--help"], vec!["train", "--help"], vec!["inspect", "--help"], vec!["keygen", "--help"]] {
        let run = s.run(&args);
        run.expect_code(0);
        let out = run.stdout();
        assert!(out.contains("Exit codes:") && out.contains("8  configuration error"), "{args:?}: {out}");
    }
    let train = s.run(&["train", "--help"]).stdout();
    for flag in ["--run-id", "--quiet", "--verbose", "--plugin-dir", "--dev-allow-unsigned", "RECOTEM_SIGNING_KEYS"] {
        assert!(train.contains(flag), "train --help lacks {flag}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let s = Scratch::new();
    s.run(&["train"]).expect_code(2);
    s.run(&["no-such-command"]).expect_code(2);
    s.run(&["inspect", "--bogus", "x"]).expect_code(2);
}
