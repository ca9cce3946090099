//! Plugins: WebAssembly components behind the `recotem:plugin` WIT contract.
//!
//! - [`cancel`]: SIGINT/SIGTERM cancellation of running calls.
//! - [`decompress`]: gzip inputs decompressed by the host, under a cap.
//! - [`describe`]: the contract's rules for what `describe` publishes.
//! - [`engine`]: the wasmtime engine, compiled-code cache and epoch ticker.
//! - [`sandbox`]: the per-call store: deny-by-default WASI context, limits,
//!   and the host functions offered to plugins.
//! - [`source`] / [`trainer`]: typed calls into the two worlds.
//! - [`registry`]: built-in and plugin-directory components, by name.
//! - [`surface`]: each component's imports, checked against what its world
//!   may link.
//! - [`policy`]: the operator policy file and the grants it decides.
//! - [`grants`]: the grant broker — every input a component receives.
//! - [`fetch`]: http(s) inputs downloaded by the host (SSRF guard, pin).
//! - [`limits`]: the always-on limits.
//! - [`progress`]: where trainers' progress calls go besides their event.
//! - [`early_stop`]: trainers hand intermediate models to the search
//!   (`recotem:plugin/early-stop`, WIT 0.2.1).
//! - [`linalg`]: data-only linear algebra trainers may import, run natively
//!   on all cores (`recotem:plugin/linalg`, WIT 0.2.1; host-held iALS
//!   factors and `call-input`, 0.2.2).

pub mod cancel;
pub mod decompress;
pub mod describe;
pub mod early_stop;
pub mod engine;
pub mod fetch;
pub mod grants;
pub mod limits;
pub mod linalg;
pub mod policy;
pub mod progress;
pub mod registry;
pub mod sandbox;
pub mod source;
pub mod surface;
pub mod trainer;

/// Generated host bindings of the WIT worlds.
pub mod bindings {
    /// The `source` world.
    pub mod source {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "source",
            with: {
                "recotem:plugin/io.input": crate::plugin::sandbox::InputStream,
            },
            imports: { default: trappable },
        });
    }

    /// The `trainer` world (shares types and host functions with `source`).
    pub mod trainer {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "trainer",
            with: {
                "recotem:plugin/types": super::source::recotem::plugin::types,
                "recotem:plugin/host": super::source::recotem::plugin::host,
                "recotem:plugin/linalg.ials-factors": crate::plugin::linalg::IalsFactors,
            },
            imports: { default: trappable },
        });
    }

    /// The `shaped-trainer` world (0.2.2): the `trainer` world plus the
    /// optional `trainer-by-shape` export. Only its export is used; the
    /// imports are the `trainer` world's.
    pub mod shaped {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "shaped-trainer",
            with: {
                "recotem:plugin/types": super::source::recotem::plugin::types,
                "recotem:plugin/host": super::source::recotem::plugin::host,
                "recotem:plugin/early-stop": super::trainer::recotem::plugin::early_stop,
                "recotem:plugin/linalg": super::trainer::recotem::plugin::linalg,
                "recotem:plugin/call-input": super::trainer::recotem::plugin::call_input,
            },
            imports: { default: trappable },
        });
    }
}

pub use registry::Registry;

/// The WIT name of a plugin error kind, shown with the plugin's message.
pub fn error_kind_name(kind: bindings::source::recotem::plugin::types::ErrorKind) -> &'static str {
    use bindings::source::recotem::plugin::types::ErrorKind;
    match kind {
        ErrorKind::InvalidConfig => "invalid-config",
        ErrorKind::InvalidInput => "invalid-input",
        ErrorKind::Io => "io",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Internal => "internal",
    }
}
