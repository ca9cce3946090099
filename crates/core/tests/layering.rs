//! The core must never depend on the plugin runtime: `train`, `inspect` and
//! `serve` read and score artifacts through it alone.

use std::process::Command;

#[test]
fn core_does_not_depend_on_wasmtime() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--offline", "-p", "recotem-core", "-e", "normal,build", "--prefix", "none", "--format", "{p}"])
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.lines().any(|l| l.starts_with("recotem-core ")), "cargo tree printed no tree:\n{tree}");
    let runtime: Vec<&str> = tree.lines().filter(|l| l.starts_with("wasmtime") || l.starts_with("cranelift")).collect();
    assert!(runtime.is_empty(), "recotem-core depends on the plugin runtime: {runtime:?}");
}
