//! A component's capability surface: the interfaces it imports, each
//! classified against what this host links for its world.
//!
//! The host links, for every plugin, the `recotem:plugin` contract (`host`,
//! `types`; `io` for sources) and the WASI interfaces language runtimes
//! (Rust's standard library, CPython) link against, each backed by a context
//! that grants nothing (no directories, no environment, no arguments, stdin
//! closed, stdout discarded). `wasi:sockets` is linked for every plugin, but
//! it reaches something only for a source that declares a `network`
//! capability **and** that the operator policy grants endpoints (TCP to
//! those endpoints only; UDP never). For any other plugin — a trainer, a
//! source that declares no `network` — the sockets are linked so that a
//! runtime importing more than it uses still loads, and every use is refused
//! (no address, no name lookup): the class `linked-refused`.
//! Trainers may also import (WIT 0.2.1) `recotem:plugin/early-stop`
//! (contract) and `recotem:plugin/linalg` (class `host-compute`: linear
//! algebra the host runs natively on the arrays passed in, and since 0.2.2
//! on iALS factors it holds for the call), and (0.2.2)
//! `recotem:plugin/call-input` (contract: the call's matrix on request).
//! Anything else — `wasi:http`, unknown interfaces — is never linked: a
//! component importing it is refused at load with the import named.

use serde_json::{Value, json};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::registry::Kind;

/// How the host treats one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Part of the recotem contract.
    Contract,
    /// Linked, backed by a context that grants nothing (or harmless:
    /// clocks, random numbers).
    Inert,
    /// Linked; reaches the granted endpoints of a source that declares
    /// `network` (and nothing without a grant).
    Network,
    /// Linked, every use refused: sockets of a plugin that declares no
    /// `network` (a trainer, or a source whose runtime imports more than it
    /// uses).
    LinkedRefused,
    /// Trainers only (WIT 0.2.1): data-only computation the host runs
    /// natively (`recotem:plugin/linalg`); it reads its arguments and the
    /// current call's interaction matrix, nothing else.
    HostCompute,
    /// Never linked for this world.
    Refused,
}

impl Class {
    fn as_str(self) -> &'static str {
        match self {
            Class::Contract => "contract",
            Class::Inert => "inert",
            Class::Network => "network-grant",
            Class::LinkedRefused => "linked-refused",
            Class::HostCompute => "host-compute",
            Class::Refused => "refused",
        }
    }
}

/// One import of a component.
#[derive(Debug, Clone)]
pub struct Import {
    /// The full name, with version (`wasi:sockets/tcp@0.2.3`).
    pub name: String,
    /// How the host treats it.
    pub class: Class,
    /// What it gives the component under this host, in a few words.
    pub effect: &'static str,
}

/// The imports of `component`, classified for `kind`.
pub fn imports(engine: &Engine, component: &Component, kind: Kind) -> Vec<Import> {
    let ty = component.component_type();
    let mut out: Vec<Import> = ty
        .imports(engine)
        .map(|(name, import)| {
            let (class, effect) = if kind == Kind::Trainer && name.starts_with("recotem:plugin/linalg@") && type_only(engine, &import.ty) {
                // Every trainer built for `shaped-trainer` (0.2.2) names
                // the `ials-factors` type in its exports' signatures; one
                // that calls nothing of `linalg` imports only that type.
                (Class::Contract, "the ials-factors type only (in signatures): no function, no computation")
            } else {
                classify(name, kind)
            };
            Import { name: name.to_string(), class, effect }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// True for an imported instance from which no function is imported (only
/// types).
fn type_only(engine: &Engine, item: &ComponentItem) -> bool {
    match item {
        ComponentItem::ComponentInstance(i) => {
            !i.exports(engine).any(|(_, e)| matches!(e.ty, ComponentItem::ComponentFunc(_) | ComponentItem::CoreFunc(_)))
        }
        _ => false,
    }
}

/// Classify an import name for a world.
pub fn classify(name: &str, kind: Kind) -> (Class, &'static str) {
    let bare = name.split('@').next().unwrap_or(name);
    match bare {
        "recotem:plugin/types" => (Class::Contract, "shared data types"),
        "recotem:plugin/host" => (Class::Contract, "log, progress and cancellation"),
        "recotem:plugin/io" if kind == Kind::Source => {
            (Class::Contract, "read-only streams the host opened for it")
        }
        "recotem:plugin/early-stop" if kind == Kind::Trainer => {
            (Class::Contract, "hands intermediate models to the search to score; learns whether to go on")
        }
        "recotem:plugin/linalg" if kind == Kind::Trainer => (
            Class::HostCompute,
            "linear algebra run natively on all cores: reads its arguments, the call's matrix and the factors it \
             holds for this call (counted against the memory cap), nothing else",
        ),
        "recotem:plugin/call-input" if kind == Kind::Trainer => {
            (Class::Contract, "a copy of the current train call's interaction matrix, on request")
        }
        "wasi:io/error" | "wasi:io/poll" | "wasi:io/streams" => (Class::Inert, "streams of the other WASI interfaces"),
        "wasi:clocks/wall-clock" | "wasi:clocks/monotonic-clock" => (Class::Inert, "reads the clock"),
        "wasi:random/random" | "wasi:random/insecure" | "wasi:random/insecure-seed" => {
            (Class::Inert, "random numbers")
        }
        "wasi:cli/environment" => (Class::Inert, "no variables, no arguments"),
        "wasi:cli/exit" => (Class::Inert, "ends the call (reported as a failure)"),
        "wasi:cli/stdin" => (Class::Inert, "closed"),
        "wasi:cli/stdout" => (Class::Inert, "discarded"),
        "wasi:cli/stderr" => (Class::Inert, "captured, quoted when the call fails"),
        "wasi:cli/terminal-input" | "wasi:cli/terminal-output" | "wasi:cli/terminal-stdin"
        | "wasi:cli/terminal-stdout" | "wasi:cli/terminal-stderr" => (Class::Inert, "no terminal"),
        "wasi:filesystem/preopens" => (Class::Inert, "no directories: every path fails"),
        "wasi:filesystem/types" => (Class::Inert, "no file can be opened"),
        "wasi:sockets/network" | "wasi:sockets/instance-network" | "wasi:sockets/tcp"
        | "wasi:sockets/tcp-create-socket" | "wasi:sockets/ip-name-lookup"
            if kind == Kind::Source =>
        {
            (Class::Network, "outbound TCP to granted host:port endpoints only")
        }
        // Rust's standard library imports UDP along with TCP; it is linked
        // for granted sources, and every use is refused by the context.
        "wasi:sockets/udp" | "wasi:sockets/udp-create-socket" if kind == Kind::Source => {
            (Class::Network, "linked with a network grant, every use refused (UDP is never granted)")
        }
        "wasi:sockets/network" | "wasi:sockets/instance-network" | "wasi:sockets/tcp"
        | "wasi:sockets/tcp-create-socket" | "wasi:sockets/ip-name-lookup" | "wasi:sockets/udp"
        | "wasi:sockets/udp-create-socket" => (Class::LinkedRefused, LINKED_REFUSED),
        _ => (Class::Refused, "not provided to plugins"),
    }
}

/// What a `linked-refused` import gives the component.
const LINKED_REFUSED: &str = "linked, every use refused (no `network` declared: no address, no name lookup)";

/// True when any import is a `wasi:sockets` interface (linked for sources
/// through [`super::sandbox::add_network_to_linker`]).
pub fn imports_sockets(imports: &[Import]) -> bool {
    imports.iter().any(|i| matches!(i.class, Class::Network | Class::LinkedRefused))
}

/// After `describe`: a source that declares no `network` capability keeps
/// its sockets linked, but every use is refused; say so in its surface.
pub fn seal_undeclared_network(imports: &mut [Import], declares_network: bool) {
    if declares_network {
        return;
    }
    for i in imports.iter_mut().filter(|i| i.class == Class::Network) {
        i.class = Class::LinkedRefused;
        i.effect = LINKED_REFUSED;
    }
}

/// Check the surface: refused imports fail with the import named and what
/// would allow it. (Sockets are never refused here: without a declared
/// `network` capability they are linked with every use refused, see
/// [`seal_undeclared_network`]; a declared one goes through the grants.)
pub fn check(origin: &str, kind: Kind, imports: &[Import]) -> Result<(), String> {
    let refused: Vec<&Import> = imports.iter().filter(|i| i.class == Class::Refused).collect();
    if let Some(first) = refused.first() {
        let names: Vec<&str> = refused.iter().map(|i| i.name.as_str()).collect();
        let hint = if first.name.starts_with("wasi:http/") {
            "wasi:http is never granted; declare `input-stream` and let the host fetch http(s) `source.path` \
             URLs through its SSRF guard and sha256 pin, or use TCP with a policy `network` grant"
        } else {
            "no grant allows it; rebuild the component without that import (check `recotem plugins inspect <file>`)"
        };
        return Err(format!(
            "component {origin} imports {} which this host never provides to a {} plugin: {hint}",
            names.join(", "),
            kind.as_str()
        ));
    }
    Ok(())
}

/// The imports as JSON, for `recotem plugins`.
pub fn to_json(imports: &[Import]) -> Value {
    Value::from(
        imports
            .iter()
            .map(|i| json!({"name": i.name, "class": i.class.as_str(), "effect": i.effect}))
            .collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_by_world() {
        assert_eq!(classify("recotem:plugin/io@0.1.0", Kind::Source).0, Class::Contract);
        assert_eq!(classify("recotem:plugin/io@0.1.0", Kind::Trainer).0, Class::Refused);
        assert_eq!(classify("recotem:plugin/early-stop@0.2.1", Kind::Trainer).0, Class::Contract);
        assert_eq!(classify("recotem:plugin/linalg@0.2.1", Kind::Trainer).0, Class::HostCompute);
        assert_eq!(classify("recotem:plugin/linalg@0.2.1", Kind::Source).0, Class::Refused);
        assert_eq!(classify("recotem:plugin/call-input@0.2.2", Kind::Trainer).0, Class::Contract);
        assert_eq!(classify("recotem:plugin/call-input@0.2.2", Kind::Source).0, Class::Refused);
        assert_eq!(classify("recotem:plugin/early-stop@0.2.1", Kind::Source).0, Class::Refused);
        assert_eq!(classify("wasi:filesystem/preopens@0.2.3", Kind::Trainer).0, Class::Inert);
        assert_eq!(classify("wasi:sockets/tcp@0.2.3", Kind::Source).0, Class::Network);
        assert_eq!(classify("wasi:sockets/tcp@0.2.9", Kind::Trainer).0, Class::LinkedRefused);
        assert_eq!(classify("wasi:sockets/udp@0.2.3", Kind::Source).0, Class::Network);
        assert_eq!(classify("wasi:sockets/udp@0.2.3", Kind::Trainer).0, Class::LinkedRefused);
        assert_eq!(classify("wasi:http/outgoing-handler@0.2.3", Kind::Source).0, Class::Refused);
    }

    #[test]
    fn refusals_name_the_import_and_the_way_out() {
        let imp = |name: &str, kind| {
            let (class, effect) = classify(name, kind);
            Import { name: name.into(), class, effect }
        };
        let e = check("x.wasm", Kind::Source, &[imp("wasi:http/types@0.2.0", Kind::Source)]).unwrap_err();
        assert!(e.contains("wasi:http/types@0.2.0") && e.contains("input-stream"), "{e}");
        let mut net = [imp("wasi:sockets/tcp@0.2.0", Kind::Source), imp("wasi:clocks/wall-clock@0.2.0", Kind::Source)];
        assert!(check("x.wasm", Kind::Source, &net).is_ok());
        assert!(imports_sockets(&net));
        seal_undeclared_network(&mut net, true);
        assert_eq!(net[0].class, Class::Network);
        seal_undeclared_network(&mut net, false);
        assert_eq!(net[0].class, Class::LinkedRefused);
        assert!(net[0].effect.contains("linked, every use refused"));
        assert_eq!(net[1].class, Class::Inert);
        assert!(imports_sockets(&net));
    }
}
