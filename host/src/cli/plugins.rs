//! `recotem plugins list | inspect <name|path> | audit [--json] | install <file>`: what each
//! component is and what it may do — its imports (capability surface), what
//! it declares it needs, what the current policy grants it, its limits and
//! its config schema. `audit` fails (exit 3, or 4 when only trainers are at
//! fault) when any component is refused, e.g. because it asks for more than
//! the policy grants, so CI can gate on it.
//!
//! The JSON document (`--json`) is stable; `docs/security.md` documents it.

use std::path::Path;

use serde_json::{Value, json};

use super::{PluginsAction, PluginsArgs};
use crate::error::{Error, Result};
use crate::plugin::bindings::trainer::exports::recotem::plugin::trainer_plugin::ParamDomain;
use crate::plugin::engine::Runtime;
use crate::plugin::limits::Limits;
use crate::plugin::policy::POLICY_ENV;
use crate::plugin::registry::{Kind, Profile, Refused, Registry, WIT_VERSION};
use crate::plugin::surface;
use crate::plugin::{source::SourceComponent, trainer::TrainerComponent};

/// Version of the JSON document printed with `--json`.
pub const FORMAT_VERSION: u32 = 1;

pub(super) fn run(args: PluginsArgs) -> u8 {
    let command = match &args.action {
        PluginsAction::List { .. } => "plugins list",
        PluginsAction::Inspect { .. } => "plugins inspect",
        PluginsAction::Audit { .. } => "plugins audit",
        PluginsAction::Install { .. } => "plugins install",
    };
    match execute(&args) {
        Ok((text, code)) => {
            println!("{text}");
            code
        }
        Err(error) => super::fail(command, &error),
    }
}

fn execute(args: &PluginsArgs) -> Result<(String, u8)> {
    let runtime = Runtime::new()?;
    if let PluginsAction::Install { file } = &args.action {
        return install(&runtime, args.plugin_dir.as_deref(), file).map(|text| (text, 0));
    }
    let mut registry = Registry::survey(&runtime, args.plugin_dir.as_deref())?;
    match &args.action {
        PluginsAction::List { json } => {
            let doc = document(&registry, describe_all(&registry));
            Ok((if *json { pretty(&doc)? } else { list_text(&doc) }, 0))
        }
        PluginsAction::Audit { json } => {
            let doc = document(&registry, describe_all(&registry));
            let code = audit_code(&registry);
            if code != 0 {
                crate::events::Event::error("plugins_audit_failed")
                    .field("refused", registry.refused.len())
                    .field("exit_code", code)
                    .emit();
            }
            Ok((if *json { pretty(&doc)? } else { audit_text(&doc) }, code))
        }
        PluginsAction::Install { .. } => unreachable!("handled above"),
        PluginsAction::Inspect { target, json } => {
            let one = pick(&runtime, &mut registry, target)?;
            let code = if one["status"] == "refused" { one["exit_code"].as_u64().unwrap_or(3) as u8 } else { 0 };
            Ok((if *json { pretty(&one)? } else { component_text(&one) }, code))
        }
    }
}

/// `plugins install <file>`: load the component beside the installed ones
/// under the current policy (which compiles it and writes the compiled code
/// to the cache), and copy it into the plugin directory only if accepted.
fn install(runtime: &Runtime, plugin_dir: Option<&Path>, file: &Path) -> Result<String> {
    let dir = plugin_dir.ok_or_else(|| {
        Error::config("plugins install: no plugin directory; pass --plugin-dir DIR or set RECOTEM_PLUGIN_DIR")
    })?;
    if !dir.is_dir() {
        return Err(Error::config(format!(
            "plugins install: plugin directory {} does not exist; create it first",
            dir.display()
        )));
    }
    let bytes = crate::plugin::registry::read_component(file)?;
    let digest = crate::util::sha256_hex(&bytes);
    let file_name = file
        .file_name()
        .filter(|n| Path::new(n).extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| Error::recipe(format!("plugins install: {} is not a `.wasm` file", file.display())))?;
    let dest = dir.join(file_name);
    let present = match std::fs::read(&dest) {
        Ok(existing) if crate::util::sha256_hex(&existing) == digest => true,
        Ok(_) => {
            return Err(Error::config(format!(
                "plugins install: {} already exists with other contents; remove it first (and update any sha256 pin)",
                dest.display()
            )));
        }
        Err(_) => false,
    };
    let mut registry = Registry::survey(runtime, Some(dir))?;
    let started = std::time::Instant::now();
    if !present {
        registry.add(runtime, &dest.display().to_string(), &bytes);
    }
    let load_seconds = started.elapsed().as_secs_f64();
    if let Some(refused) = registry.refused.iter().find(|r| r.profile.digest == digest) {
        return Err(Error::new(refused.error.kind(), refused.error.to_string()));
    }
    let found = describe_all(&registry)
        .into_iter()
        .find(|c| c["sha256"] == digest.as_str())
        .ok_or_else(|| Error::internal(format!("component {} was read but not recorded", file.display())))?;
    if !present {
        let tmp = dir.join(format!(".{}.installing", file_name.to_string_lossy()));
        std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::rename(&tmp, &dest))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Error::config(format!("plugins install: cannot write {}: {e}", dest.display()))
            })?;
    }
    let name = found["name"].as_str().unwrap_or_default();
    let cache = if runtime.caches() {
        format!("compiled code cached ({load_seconds:.2} s to compile, load and describe); later loads read it")
    } else {
        "compiled-code cache is off (RECOTEM_CACHE_DIR=off): every run compiles it".to_string()
    };
    Ok(format!(
        "installed {} ({} {name} {}, {} bytes)\nsha256 {digest}\n{cache}\n\
         pin it in the policy file (RECOTEM_PLUGIN_POLICY), under `plugins:`:\n  - name: {name}\n    sha256: \"{digest}\"",
        text(&Value::String(dest.display().to_string())),
        text(&found["kind"]),
        text(&found["version"]),
        bytes.len(),
    ))
}

fn pretty(v: &Value) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::internal(format!("rendering JSON: {e}")))
}

/// The exit code of an audit: 0 when every component was accepted; else 4
/// when only trainers were refused, 3 otherwise.
fn audit_code(registry: &Registry) -> u8 {
    if registry.refused.is_empty() {
        0
    } else if registry.refused.iter().all(|r| r.error.exit_code() == 4) {
        4
    } else {
        3
    }
}

/// One component named by type/algorithm name, or a component file.
fn pick(runtime: &Runtime, registry: &mut Registry, target: &str) -> Result<Value> {
    let path = Path::new(target);
    if path.is_file() {
        let bytes = crate::plugin::registry::read_component(path)?;
        let digest = crate::util::sha256_hex(&bytes);
        let found = describe_all(registry).into_iter().find(|c| c["sha256"] == digest.as_str());
        if let Some(found) = found {
            return Ok(found);
        }
        // Not installed: load it beside the others (a name clash shows as a
        // refusal, as it would in the plugin directory).
        registry.add(runtime, target, &bytes);
        return describe_all(registry)
            .into_iter()
            .find(|c| c["sha256"] == digest.as_str())
            .ok_or_else(|| Error::internal(format!("component {target} was read but not recorded")));
    }
    if let Some(s) = registry.sources.iter().find(|s| s.type_name() == target) {
        return Ok(describe_source(s));
    }
    if let Some(t) = registry.trainer(target) {
        return Ok(describe_trainer(t));
    }
    if let Some(r) = registry.refused.iter().find(|r| r.name.as_deref() == Some(target)) {
        return Ok(describe_refused(r));
    }
    let mut names: Vec<String> = registry.sources.iter().map(|s| s.type_name().to_string()).collect();
    names.extend(registry.trainers.iter().map(|t| t.info.name.clone()));
    Err(Error::recipe(format!(
        "plugins inspect: no component named {target:?} and no such file; known: {}",
        names.join(", ")
    )))
}

fn document(registry: &Registry, components: Vec<Value>) -> Value {
    let refused = registry.refused.len();
    json!({
        "format_version": FORMAT_VERSION,
        "recotem_version": env!("CARGO_PKG_VERSION"),
        "wit": {"package": "recotem:plugin", "version": WIT_VERSION},
        "policy": {
            "file": registry.policy.origin.as_ref().map(|_| POLICY_ENV),
            "unlisted": match registry.policy.unlisted {
                crate::plugin::policy::Unlisted::Allow => "allow",
                crate::plugin::policy::Unlisted::Deny => "deny",
            },
            "entries": registry.policy.plugins.len(),
            "unmatched_entries": unmatched_entries(registry, &components),
        },
        "ok": refused == 0,
        "refused": refused,
        "components": components,
    })
}

/// Policy entries no component matched (by name or digest): stale pins or
/// grants an auditor should look at.
fn unmatched_entries(registry: &Registry, components: &[Value]) -> Vec<String> {
    let matches = |e: &crate::plugin::policy::Entry, c: &Value| {
        let name = c["name"].as_str().unwrap_or_default();
        let by_name = e.name.as_deref().is_some_and(|n| {
            if c["kind"] == "trainer" { n.eq_ignore_ascii_case(name) } else { n == name }
        });
        by_name || (e.name.is_none() && e.sha256.as_deref() == c["sha256"].as_str())
    };
    registry
        .policy
        .plugins
        .iter()
        .enumerate()
        .filter(|(_, e)| !components.iter().any(|c| matches(e, c)))
        .map(|(i, _)| format!("plugins[{i}]"))
        .collect()
}

fn describe_all(registry: &Registry) -> Vec<Value> {
    let mut out: Vec<Value> = registry.sources.iter().map(describe_source).collect();
    out.extend(registry.trainers.iter().map(describe_trainer));
    out.extend(registry.refused.iter().map(describe_refused));
    out
}

/// Fields every component has, accepted or not.
fn base(profile: &Profile, name: Option<&str>, limits: Option<Limits>) -> Value {
    json!({
        "name": name,
        "kind": profile.kind.map(Kind::as_str),
        "version": profile.version,
        "description": profile.description,
        "origin": profile.origin,
        "builtin": profile.builtin(),
        "sha256": profile.digest,
        "size_bytes": profile.size,
        "wit": {
            "world": profile.kind.map(|k| format!("recotem:plugin/{}", k.as_str())),
            "version": profile.wit_version,
        },
        "imports": surface::to_json(&profile.imports),
        "needs": profile.needs.to_json(),
        "grants": profile.grants.to_json(),
        "limits": limits.map(|l| l.to_json()),
        "status": "ok",
        "error": null,
        "exit_code": null,
    })
}

fn describe_source(s: &SourceComponent) -> Value {
    let mut v = base(&s.profile, Some(&s.info.type_name), Some(Limits::source()));
    v["never_expand"] = s.info.never_expand.clone().into();
    v["config_schema"] = serde_json::from_str(&s.info.config_schema).unwrap_or(Value::Null);
    v
}

fn describe_trainer(t: &TrainerComponent) -> Value {
    let mut v = base(&t.profile, Some(&t.info.name), Some(Limits::trainer()));
    v["aliases"] = t.info.aliases.clone().into();
    v["model_kind"] = crate::plugin::trainer::kind_name(t.info.model_kind).into();
    v["params"] = t
        .info
        .params
        .iter()
        .map(|p| {
            let domain = match &p.domain {
                ParamDomain::Int(r) => json!({"type": "int", "low": r.low, "high": r.high, "log": r.log, "default": r.default}),
                ParamDomain::Float(r) => json!({"type": "float", "low": r.low, "high": r.high, "log": r.log, "default": r.default}),
                ParamDomain::Categorical(c) => json!({"type": "categorical", "choices": c.choices, "default": c.default}),
            };
            json!({"name": p.name, "description": p.description, "domain": domain})
        })
        .collect::<Vec<_>>()
        .into();
    v
}

fn describe_refused(r: &Refused) -> Value {
    let mut v = base(&r.profile, r.name.as_deref(), None);
    v["status"] = "refused".into();
    v["error"] = r.error.to_string().into();
    v["exit_code"] = r.error.exit_code().into();
    v
}

fn short(v: &Value) -> String {
    v.as_str().map(|s| s.chars().take(12).collect()).unwrap_or_else(|| "-".into())
}

/// A value for the text output: plugin-supplied strings (names, versions,
/// refusal messages quoting plugin stderr) with control characters escaped,
/// so none can forge a line or drive the terminal.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => crate::events::escape_controls(s).into_owned(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn strings(v: &Value) -> String {
    let items: Vec<String> = v.as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default();
    if items.is_empty() { "none".into() } else { items.join(", ") }
}

fn list_text(doc: &Value) -> String {
    let mut out = format!("{:<16} {:<8} {:<9} {:<12} {:<8} ORIGIN\n", "NAME", "KIND", "VERSION", "SHA256", "STATUS");
    for c in doc["components"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<16} {:<8} {:<9} {:<12} {:<8} {}\n",
            text(&c["name"]),
            text(&c["kind"]),
            text(&c["version"]),
            short(&c["sha256"]),
            text(&c["status"]),
            text(&c["origin"]),
        ));
    }
    out.trim_end().to_string()
}

fn component_text(c: &Value) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<14} {v}\n"));
    line("name", text(&c["name"]));
    line("kind", text(&c["kind"]));
    line("version", text(&c["version"]));
    line("status", text(&c["status"]));
    if c["status"] == "refused" {
        line("refused", text(&c["error"]));
    }
    line("origin", text(&c["origin"]));
    line("sha256", text(&c["sha256"]));
    line("wit", format!("{} @ {}", text(&c["wit"]["world"]), text(&c["wit"]["version"])));
    line("needs", strings(&c["needs"]));
    line("granted", strings(&c["grants"]["granted"]));
    if let Some(entry) = c["grants"]["policy_entry"].as_str() {
        line("policy entry", entry.to_string());
    }
    if let Some(l) = c["limits"].as_object() {
        let mem = l.get("memory_bytes").and_then(Value::as_u64).unwrap_or(0) >> 20;
        let secs = l.get("call_timeout_seconds").and_then(Value::as_f64).unwrap_or(0.0);
        line("limits", format!("memory {mem} MiB, {secs} s per call, wasm stack 2 MiB"));
    }
    out.push_str("imports\n");
    for i in c["imports"].as_array().into_iter().flatten() {
        out.push_str(&format!("  {:<44} {:<14} {}\n", text(&i["name"]), text(&i["class"]), text(&i["effect"])));
    }
    if !c["config_schema"].is_null() {
        out.push_str(&format!("config schema  {}\n", c["config_schema"]));
    }
    out.trim_end().to_string()
}

fn audit_text(doc: &Value) -> String {
    let mut out = String::new();
    for c in doc["components"].as_array().into_iter().flatten() {
        out.push_str(&component_text(c));
        out.push_str("\n\n");
    }
    let refused = doc["refused"].as_u64().unwrap_or(0);
    if refused == 0 {
        out.push_str("Audit passed: every component asks for no more than the policy grants.");
    } else {
        out.push_str(&format!("Audit FAILED: {refused} component(s) refused (see `refused` above)."));
    }
    out
}
