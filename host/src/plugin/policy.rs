//! Grants: what a component may do, decided in two layers.
//!
//! 1. **Declaration** — the component says what it needs: its imports (its
//!    capability surface, checked by [`super::surface`]) and, for sources,
//!    the `capabilities` of `describe` (`input-stream`, `network(field)`).
//!    Asking is not getting.
//! 2. **Operator** — the recipe grants the one input it names (the host opens
//!    `source.path` read-only and hands over a stream), and the operator
//!    policy file (`RECOTEM_PLUGIN_POLICY`, YAML or JSON) restricts or
//!    allows per component name or sha256: refuse a component, pin its
//!    digest, withhold the input stream, or grant outbound TCP to exact
//!    `host:port` endpoints.
//!
//! Without a policy file every component gets the defaults: a source that
//! asks for `input-stream` gets the recipe's input; nothing gets a network.
//!
//! ```yaml
//! version: 1
//! unlisted: allow        # or `deny`: refuse every component not listed
//! plugins:
//!   - name: jsonl        # source type or trainer name
//!     sha256: 9f2c…      # optional pin: refuse the component if it differs
//!   - name: warehouse
//!     network: ["db.internal:5432"]
//!     allow_private_network: true   # db.internal resolves to 10.x
//!   - sha256: 0123…      # by digest only
//!     deny: true
//! ```

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// The environment variable naming the policy file.
pub const POLICY_ENV: &str = "RECOTEM_PLUGIN_POLICY";

/// Largest policy file read.
const MAX_POLICY_BYTES: u64 = 1 << 20;

/// The operator policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Format version; only 1 exists.
    #[serde(default = "one")]
    pub version: u32,
    /// What components that no entry matches may do.
    #[serde(default)]
    pub unlisted: Unlisted,
    /// Per-component entries.
    #[serde(default)]
    pub plugins: Vec<Entry>,
    /// Where the policy came from (`none` when no file is set).
    #[serde(skip)]
    pub origin: Option<String>,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// Treatment of components without a matching entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unlisted {
    /// The defaults (input stream if asked, nothing else).
    #[default]
    Allow,
    /// Refused.
    Deny,
}

/// One policy entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Source type name or trainer name (case-sensitive for sources,
    /// case-insensitive for trainers, like recipes).
    #[serde(default)]
    pub name: Option<String>,
    /// With `name`: a pin (another digest is refused). Alone: the match key.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Refuse the component.
    #[serde(default)]
    pub deny: bool,
    /// Hand the component the input stream the recipe names (default true).
    #[serde(default = "yes")]
    pub input_stream: bool,
    /// Outbound TCP endpoints, exactly `host:port`.
    #[serde(default)]
    pub network: Vec<String>,
    /// Let network grants reach loopback, private (RFC 1918, ULA) and
    /// link-local addresses. Off by default: such addresses are refused even
    /// when a granted name resolves to them.
    #[serde(default)]
    pub allow_private_network: bool,
}

impl Policy {
    /// The policy named by `RECOTEM_PLUGIN_POLICY`, or the default policy.
    /// A file that cannot be read or parsed is a configuration error
    /// (exit 8); the variable's value is never echoed.
    pub fn from_env() -> Result<Policy> {
        match &crate::settings::get().plugin_policy {
            Some(path) => Policy::load(path),
            None => Ok(Policy::default()),
        }
    }

    /// Read a policy file.
    pub fn load(path: &Path) -> Result<Policy> {
        let fail = |what: String| Error::config(format!("plugin policy ({POLICY_ENV}): {what}"));
        let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read the file: {e}")))?;
        if meta.len() > MAX_POLICY_BYTES {
            return Err(fail(format!("the file is larger than {MAX_POLICY_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read the file as UTF-8: {e}")))?;
        let value = crate::recipe::load::parse_yaml(&text).map_err(|e| fail(e.to_string()))?;
        let mut policy: Policy = serde_json::from_value(value).map_err(|e| fail(e.to_string()))?;
        policy.check().map_err(fail)?;
        policy.origin = Some(path.display().to_string());
        Ok(policy)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.version != 1 {
            return Err(format!("version {} is not supported; use version: 1", self.version));
        }
        for (i, e) in self.plugins.iter().enumerate() {
            if e.name.is_none() && e.sha256.is_none() {
                return Err(format!("plugins[{i}]: needs `name`, `sha256` or both"));
            }
            if e.sha256.as_deref().is_some_and(|d| !crate::recipe::paths::is_sha256_hex(d)) {
                return Err(format!("plugins[{i}].sha256: must be 64 lower-case hex digits"));
            }
            for ep in &e.network {
                parse_endpoint(ep).map_err(|m| format!("plugins[{i}].network: {m}"))?;
            }
        }
        Ok(())
    }

    /// The entry for a component, if any: by name, else by digest alone.
    pub fn entry(&self, name: &str, trainer: bool, digest: &str) -> Option<(usize, &Entry)> {
        let by_name = |n: &String| if trainer { n.eq_ignore_ascii_case(name) } else { n == name };
        self.plugins
            .iter()
            .enumerate()
            .find(|(_, e)| e.name.as_ref().is_some_and(by_name))
            .or_else(|| self.plugins.iter().enumerate().find(|(_, e)| e.name.is_none() && e.sha256.as_deref() == Some(digest)))
    }

    /// A digest-only entry that denies `digest` (checked before the component
    /// runs at all).
    pub fn denies_digest(&self, digest: &str) -> bool {
        self.plugins.iter().any(|e| e.name.is_none() && e.deny && e.sha256.as_deref() == Some(digest))
    }

    /// Where the policy came from, for reports.
    pub fn origin_label(&self) -> String {
        match &self.origin {
            Some(_) => format!("the operator policy ({POLICY_ENV})"),
            None => format!("the default policy ({POLICY_ENV} not set)"),
        }
    }
}

/// What a component needs, as declared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// It asks for the recipe's input stream.
    pub input_stream: bool,
    /// It asks for outbound TCP to the endpoint named by these config fields.
    pub network_fields: Vec<String>,
    /// It imports `wasi:sockets` interfaces (its surface allows networking).
    pub imports_sockets: bool,
}

impl Needs {
    /// The needs as JSON strings (`input-stream`, `network(<field>)`).
    pub fn to_json(&self) -> Value {
        let mut v: Vec<Value> = Vec::new();
        if self.input_stream {
            v.push("input-stream".into());
        }
        for f in &self.network_fields {
            v.push(format!("network({f})").into());
        }
        Value::from(v)
    }
}

/// A TCP grant: the exact endpoints, and whether private addresses are ok.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkGrant {
    /// `host:port` strings as granted.
    pub endpoints: Vec<String>,
    /// Loopback, private and link-local addresses allowed.
    pub allow_private: bool,
}

impl NetworkGrant {
    /// Resolve every endpoint now. Returns the socket addresses a connect
    /// may target (others are refused by the sandbox), and whether any
    /// endpoint is a host name (then the plugin may resolve names).
    pub fn resolve(&self) -> (BTreeSet<SocketAddr>, bool) {
        let mut addrs = BTreeSet::new();
        let mut names = false;
        for ep in &self.endpoints {
            let Ok((host, port)) = parse_endpoint(ep) else { continue };
            if host.parse::<IpAddr>().is_err() {
                names = true;
            }
            if let Ok(resolved) = (host.as_str(), port).to_socket_addrs() {
                addrs.extend(resolved);
            }
        }
        (addrs, names)
    }

    /// The granted host names (endpoints that are not IP addresses): the
    /// only names the plugin may look up.
    pub fn host_names(&self) -> Vec<String> {
        self.endpoints
            .iter()
            .filter_map(|ep| parse_endpoint(ep).ok())
            .filter(|(host, _)| host.parse::<IpAddr>().is_err())
            .map(|(host, _)| host)
            .collect()
    }

    /// Whether a connect to `addr` is allowed: it is one of `allowed`, and
    /// not a loopback/private/link-local address unless those are allowed.
    pub fn permits(&self, allowed: &BTreeSet<SocketAddr>, addr: SocketAddr) -> bool {
        allowed.contains(&addr) && (self.allow_private || is_public(addr.ip()))
    }
}

/// `host:port` with a non-empty host (no wildcard) and a port in 1–65535.
pub fn parse_endpoint(ep: &str) -> std::result::Result<(String, u16), String> {
    let (host, port) = ep
        .rsplit_once(':')
        .ok_or_else(|| format!("{ep:?} must be host:port (one exact endpoint)"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains('*') || host.contains('/') {
        return Err(format!("{ep:?}: the host must be one exact name or address, no wildcard"));
    }
    let port: u16 = port.parse().map_err(|_| format!("{ep:?}: the port must be 1–65535"))?;
    if port == 0 {
        return Err(format!("{ep:?}: the port must be 1–65535"));
    }
    Ok((host.to_string(), port))
}

/// False for loopback, unspecified, private (RFC 1918, CGNAT, IPv6 ULA),
/// link-local (incl. cloud metadata 169.254.169.254), multicast and
/// broadcast addresses.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || (o[0] == 100 && (64..128).contains(&o[1])))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// What the operator grants one component, and what it refused.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// The recipe's input may be handed over as a read-only stream.
    pub input_stream: bool,
    /// Outbound TCP, when granted.
    pub network: Option<NetworkGrant>,
    /// Why the component may not run at all (pin mismatch, deny, unlisted
    /// under `unlisted: deny`, a declared need not granted), one line each,
    /// naming the layer and what to change.
    pub refusals: Vec<String>,
    /// Which policy entry applied (`plugins[i]`), if any.
    pub entry: Option<usize>,
}

impl Grants {
    /// Decide the grants of a component named `name` with `digest` that
    /// declares `needs`.
    pub fn decide(policy: &Policy, name: &str, trainer: bool, digest: &str, needs: &Needs) -> Grants {
        let layer = policy.origin_label();
        let mut g = Grants::default();
        let entry = policy.entry(name, trainer, digest);
        g.entry = entry.map(|(i, _)| i);
        let Some((i, entry)) = entry else {
            if policy.unlisted == Unlisted::Deny {
                g.refusals.push(format!(
                    "refused by {layer}: `unlisted: deny` and no entry names {name:?}; add `- name: {name}` \
                     (with `sha256: {digest}` to pin it) under `plugins:`"
                ));
            }
            g.input_stream = needs.input_stream;
            if !needs.network_fields.is_empty() || needs.imports_sockets {
                g.refusals.push(format!(
                    "refused by {layer}: the component needs outbound network access and no policy entry \
                     grants it; add `- name: {name}` with `network: [\"host:port\"]` under `plugins:` in {POLICY_ENV}"
                ));
            }
            return g;
        };
        if entry.deny {
            g.refusals.push(format!("refused by {layer}: plugins[{i}] denies it (`deny: true`)"));
        }
        if let (Some(pin), Some(_)) = (&entry.sha256, &entry.name)
            && pin != digest
        {
            g.refusals.push(format!(
                "refused by {layer}: plugins[{i}] pins sha256 {pin} but the component's sha256 is {digest}; \
                 install the pinned build or update the pin after reviewing the new one"
            ));
        }
        g.input_stream = needs.input_stream && entry.input_stream;
        if needs.input_stream && !entry.input_stream {
            g.refusals.push(format!(
                "refused by {layer}: the component needs the recipe's input stream and plugins[{i}] sets \
                 `input_stream: false`; remove that line to grant it"
            ));
        }
        let wants_network = !needs.network_fields.is_empty() || needs.imports_sockets;
        if wants_network && entry.network.is_empty() {
            g.refusals.push(format!(
                "refused by {layer}: the component needs outbound network access and plugins[{i}] grants none; \
                 add `network: [\"host:port\"]` to that entry"
            ));
        }
        // Endpoints granted to a component that does not import sockets are
        // harmless and unused: its sockets are simply not linked.
        if !entry.network.is_empty() && needs.imports_sockets {
            g.network = Some(NetworkGrant { endpoints: entry.network.clone(), allow_private: entry.allow_private_network });
        }
        g
    }

    /// The grants as JSON, for `recotem plugins` and the grant events.
    pub fn to_json(&self) -> Value {
        let mut list: Vec<Value> = Vec::new();
        if self.input_stream {
            list.push("input-stream".into());
        }
        if let Some(n) = &self.network {
            for ep in &n.endpoints {
                list.push(format!("network({ep})").into());
            }
        }
        json!({
            "granted": list,
            "allow_private_network": self.network.as_ref().is_some_and(|n| n.allow_private),
            "policy_entry": self.entry.map(|i| format!("plugins[{i}]")),
            "refusals": self.refusals,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> Policy {
        let value = crate::recipe::load::parse_yaml(yaml).unwrap();
        let p: Policy = serde_json::from_value(value).unwrap();
        p.check().unwrap();
        Policy { origin: Some("test".into()), ..p }
    }

    const D1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn defaults_grant_the_input_stream_and_no_network() {
        let needs = Needs { input_stream: true, ..Needs::default() };
        let g = Grants::decide(&Policy::default(), "csv", false, D1, &needs);
        assert!(g.input_stream && g.network.is_none() && g.refusals.is_empty());
        let needs = Needs { network_fields: vec!["dsn".into()], imports_sockets: true, ..Needs::default() };
        let g = Grants::decide(&Policy::default(), "sql", false, D1, &needs);
        assert_eq!(g.refusals.len(), 1, "{:?}", g.refusals);
        assert!(g.refusals[0].contains("network"), "{:?}", g.refusals);
    }

    #[test]
    fn pins_denials_and_unlisted() {
        let p = policy(&format!(
            "unlisted: deny\nplugins:\n  - {{name: csv, sha256: '{D1}'}}\n  - {{sha256: '{D2}', deny: true}}\n"
        ));
        let needs = Needs { input_stream: true, ..Needs::default() };
        assert!(Grants::decide(&p, "csv", false, D1, &needs).refusals.is_empty());
        let g = Grants::decide(&p, "csv", false, D2, &needs);
        assert!(g.refusals[0].contains("pins sha256"), "{:?}", g.refusals);
        assert!(p.denies_digest(D2) && !p.denies_digest(D1));
        let g = Grants::decide(&p, "other", false, D1, &needs);
        assert!(g.refusals[0].contains("unlisted: deny"), "{:?}", g.refusals);
    }

    #[test]
    fn network_grants_are_exact_and_refuse_private_addresses() {
        let p = policy("plugins:\n  - {name: sql, network: ['127.0.0.1:5432']}\n");
        let needs = Needs { network_fields: vec!["dsn".into()], imports_sockets: true, ..Needs::default() };
        let g = Grants::decide(&p, "sql", false, D1, &needs);
        assert!(g.refusals.is_empty(), "{:?}", g.refusals);
        let net = g.network.unwrap();
        let (allowed, names) = net.resolve();
        assert!(!names);
        let ok: SocketAddr = "127.0.0.1:5432".parse().unwrap();
        assert!(allowed.contains(&ok));
        assert!(!net.permits(&allowed, ok), "loopback needs allow_private_network");
        let private = NetworkGrant { allow_private: true, ..net };
        assert!(private.permits(&allowed, ok));
        assert!(!private.permits(&allowed, "127.0.0.1:22".parse().unwrap()));
    }

    #[test]
    fn endpoints_and_addresses() {
        assert!(parse_endpoint("db:5432").is_ok());
        assert!(parse_endpoint("[::1]:80").is_ok());
        for bad in ["db", "*.x:1", "db:0", "db:http", ":80"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
        for ip in ["127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "100.64.0.1", "::1", "fd00::1", "fe80::1", "::ffff:10.0.0.1"] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
