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
const BUILTINS: &[&str] = &[
    "recotem-source-csv",
    "recotem-source-echo",
    "recotem-source-parquet",
    "recotem-trainer-toppop",
    "recotem-trainer-ials",
    "recotem-trainer-cosine-knn",
    "recotem-trainer-rp3beta",
    "recotem-trainer-dense-slim",
    "recotem-trainer-truncated-svd",
    "recotem-trainer-bprfm",
];

/// Fixture components used by the black-box tests; built, never embedded.
const FIXTURES: &[&str] = &[
    "recotem-fixture-hostile-source",
    "recotem-fixture-hostile-trainer",
    "recotem-fixture-hostile-net",
    "recotem-fixture-hostile-describe",
    "recotem-fixture-hostile-describe-panic",
    "recotem-fixture-wit-future",
    "recotem-fixture-undeclared-net",
    "recotem-fixture-inputless-source",
    "recotem-fixture-polite-trainer",
    "recotem-fixture-tunable-trainer",
];

/// Fixture crates built once more per cargo feature, each build copied to
/// `<crate>_<feature>.wasm` (minus the `recotem_fixture_` prefix the tests
/// strip anyway): one crate, many variants of a `describe`.
const FIXTURE_VARIANTS: &[(&str, &[&str])] = &[
    (
        "recotem-fixture-hostile-space",
        &[
            "nan-bounds",
            "newline-name",
            "empty-alias",
            "recommender-alias",
            "dup-params",
            "low-above-high",
            "log-nonpositive",
            "empty-choices",
            "default-outside",
            "extreme-ints",
        ],
    ),
    ("recotem-fixture-inputless-source", &["bad-schema"]),
];

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("host/ sits inside the workspace").to_path_buf();
    for watched in ["wit", "guest-sdk", "crates/numerics", "plugins", "tests/fixtures", "Cargo.lock", ".cargo/config.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");

    let target_root = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"));
    let wasm_target_dir = target_root.join("wasm");

    // The WIT package version, written once in wit/package.wit.
    let package = std::fs::read_to_string(root.join("wit/package.wit")).expect("read wit/package.wit");
    let wit_version = package
        .lines()
        .find_map(|l| l.trim().strip_prefix("package recotem:plugin@"))
        .and_then(|rest| rest.strip_suffix(';'))
        .expect("wit/package.wit declares `package recotem:plugin@<version>;`");
    println!("cargo:rustc-env=RECOTEM_WIT_VERSION={wit_version}");

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
    // One `cargo rustc` per crate: the crates are rlibs (so their unit tests
    // run natively) and only become components here, as cdylibs.
    for krate in BUILTINS.iter().chain(FIXTURES) {
        build_one(root, target_dir, krate, None);
    }
    let out_dir = target_dir.join(TARGET).join("wasm");
    for (krate, features) in FIXTURE_VARIANTS {
        let file = krate.replace('-', "_");
        for feature in *features {
            build_one(root, target_dir, krate, Some(feature));
            let variant = format!("{file}_{}.wasm", feature.replace('-', "_"));
            std::fs::copy(out_dir.join(format!("{file}.wasm")), out_dir.join(variant)).expect("copy a fixture variant");
        }
        // Leave the default build in place for tests that use it (cheap:
        // cargo keeps each feature set's artifacts apart).
        if FIXTURES.contains(krate) {
            build_one(root, target_dir, krate, None);
        }
    }
}

fn build_one(root: &Path, target_dir: &Path, krate: &str, feature: Option<&str>) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(root)
            .arg("rustc")
            .arg("--quiet")
            .args(["-p", krate, "--lib", "--crate-type", "cdylib"])
            .args(["--profile", "wasm", "--target", TARGET])
            .args(feature.map(|f| vec!["--features".to_string(), f.to_string()]).unwrap_or_default())
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
