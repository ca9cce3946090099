//! Reads the WIT package version from `wit/package.wit` (the one place it is
//! written) and generates the binding invocations that must name it.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let package = manifest.join("../wit/package.wit");
    println!("cargo:rerun-if-changed={}", package.display());
    let text = std::fs::read_to_string(&package).expect("read wit/package.wit");
    let version = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("package recotem:plugin@"))
        .and_then(|rest| rest.strip_suffix(';'))
        .expect("wit/package.wit declares `package recotem:plugin@<version>;`");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("wit_version.rs"), format!("{version:?}")).expect("write wit_version.rs");
    // Trainers are built for `shaped-trainer` (the `trainer` world plus the
    // optional `trainer-by-shape` export, 0.2.2). The trainer world shares the types and host interfaces generated for
    // the source world; `with` keys must name the exact package version.
    let trainer = format!(
        r#"wit_bindgen::generate!({{
    path: "../wit",
    world: "shaped-trainer",
    pub_export_macro: true,
    export_macro_name: "__export_trainer_world",
    default_bindings_module: "recotem_guest_sdk::trainer::bindings",
    with: {{
        "recotem:plugin/types@{version}": crate::source::bindings::recotem::plugin::types,
        "recotem:plugin/host@{version}": crate::source::bindings::recotem::plugin::host,
    }},
}});
"#
    );
    std::fs::write(out.join("trainer_bindings.rs"), trainer).expect("write trainer_bindings.rs");
}
