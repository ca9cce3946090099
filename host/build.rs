//! Builds the built-in components (plugins/*) and the test fixture components
//! (tests/fixtures/*) for `wasm32-wasip2`, then generates the table that embeds
//! the built-ins in the `recotem` binary.
//!
//! The components are compiled by a nested `cargo build` into
//! `<target>/wasm/`, so the host and the components share one target directory
//! without contending for the same build lock. They always use the `wasm`
//! profile (optimised): a debug build of a trainer would be far too slow to be
//! useful, even in tests.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Built-in components embedded in the binary: (crate, file stem).
const BUILTINS: &[&str] = &["recotem-source-csv", "recotem-source-echo", "recotem-trainer-toppop"];

/// Fixture components used by the black-box tests; built, never embedded.
const FIXTURES: &[&str] = &[
    "recotem-fixture-hostile-source",
    "recotem-fixture-hostile-trainer",
    "recotem-fixture-hostile-net",
    "recotem-fixture-hostile-describe",
    "recotem-fixture-hostile-describe-panic",
    "recotem-fixture-wit-future",
    "recotem-fixture-undeclared-net",
];

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("host/ sits inside the workspace").to_path_buf();
    for watched in ["wit", "guest-sdk", "plugins", "tests/fixtures", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let target_root = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"));
    let wasm_target_dir = target_root.join("wasm");

    build_components(&root, &wasm_target_dir);

    let out_dir = wasm_target_dir.join(TARGET).join("wasm");
    let mut table = String::from(
        "/// Built-in components: (file name, bytes).\n\
         pub static BUILTIN_COMPONENTS: &[(&str, &[u8])] = &[\n",
    );
    for krate in BUILTINS {
        let file = out_dir.join(format!("{}.wasm", krate.replace('-', "_")));
        assert!(file.is_file(), "component {} was not produced", file.display());
        writeln!(table, "    ({:?}, include_bytes!({:?})),", krate, file.display().to_string())
            .expect("write to string");
    }
    table.push_str("];\n");
    let generated = PathBuf::from(env::var("OUT_DIR").expect("set by cargo")).join("builtin_components.rs");
    std::fs::write(&generated, table).expect("write generated table");

    // For the black-box tests: where the fixture components are.
    println!("cargo:rustc-env=RECOTEM_TEST_COMPONENTS_DIR={}", out_dir.display());
}

fn build_components(root: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // One `cargo rustc` per crate: the crates are rlibs (so their unit tests
    // run natively) and only become components here, as cdylibs.
    for krate in BUILTINS.iter().chain(FIXTURES) {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(root)
            .arg("rustc")
            .arg("--quiet")
            .args(["-p", krate, "--lib", "--crate-type", "cdylib"])
            .args(["--profile", "wasm", "--target", TARGET])
            .arg("--target-dir")
            .arg(target_dir);
        // The outer build's flags are for the host target, not for wasm.
        for var in [
            "CARGO_ENCODED_RUSTFLAGS",
            "RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTC_WORKSPACE_WRAPPER",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            cmd.env_remove(var);
        }
        let status = cmd.status().expect("run cargo to build the components");
        if !status.success() {
            panic!(
                "building the wasm component {krate} failed (see above). If the error says the \
                 `{TARGET}` target is missing, run `rustup target add {TARGET}`."
            );
        }
    }
}
