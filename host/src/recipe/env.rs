//! `${RECOTEM_RECIPE_*}` expansion of recipe values (ENV-01..08).
//!
//! - Syntax `${NAME}`: `${`, one or more characters other than `}`, `}`.
//!   `${}` and an unterminated `${X` stay literal. No defaults
//!   (`${X:-d}` is the name `X:-d`), no escapes, a single pass: substituted
//!   text is never scanned again.
//! - Applied to every string *value* at any depth (never to keys), except
//!   under keys named `query` or `query_parameters` (case-insensitive, any
//!   depth) and under the top-level `source` fields the component declares
//!   never-expand.
//! - A name is allowed when it is not blacklisted (checked first,
//!   case-insensitively) and its upper-cased form starts with
//!   `RECOTEM_RECIPE_`. The value is looked up with the name as written:
//!   first in the `--env-var` overrides, then in the process environment.
//! - An empty value expands to "" and emits `recipe_env_var_empty`.
//!
//! Messages name the variable, never its value.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Problem;
use crate::events::Event;

/// The prefix every expandable variable must have.
pub const PREFIX: &str = "RECOTEM_RECIPE_";

/// Keys whose values are never expanded, at any depth.
const NEVER_EXPAND_KEYS: &[&str] = &["query", "query_parameters"];

const BLACKLIST_EXACT: &[&str] = &["RECOTEM_SIGNING_KEYS", "RECOTEM_API_KEYS"];
const BLACKLIST_PREFIXES: &[&str] = &[
    "AWS_", "GCP_", "GOOGLE_", "AZURE_", "ALIYUN_", "ALICLOUD_", "OCI_", "IBM_", "DO_", "HCLOUD_", "DIGITALOCEAN_",
];
/// Deliberately broad: `KEY` blocks `APIKEY`, `KEYBOARD` and `PARTITION_KEY`.
const BLACKLIST_SUBSTRINGS: &[&str] =
    &["SECRET", "PASSWORD", "PASSWD", "TOKEN", "KEY", "AUTH", "BEARER", "CRED", "PRIVATE"];

/// Where variable values come from.
pub struct EnvSource<'a> {
    /// `--env-var KEY=VALUE` values; they win over the process environment.
    pub overrides: &'a BTreeMap<String, String>,
    /// Read the `RECOTEM_RECIPE_*` variables captured in the settings
    /// (false in unit tests).
    pub process: bool,
}

impl EnvSource<'_> {
    fn get(&self, name: &str) -> Option<String> {
        if let Some(v) = self.overrides.get(name) {
            return Some(v.clone());
        }
        if self.process { crate::settings::get().recipe_env.get(name).cloned() } else { None }
    }
}

/// Parse `--env-var` arguments (`KEY=VALUE`, repeatable; the last one of a
/// key wins). The key is checked only when the recipe references it.
pub fn parse_overrides(args: &[String]) -> Result<BTreeMap<String, String>, crate::Error> {
    let mut out = BTreeMap::new();
    for arg in args {
        match arg.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                out.insert(key.to_string(), value.to_string());
            }
            _ => {
                // Never echo the argument: it may carry a value.
                let key = arg.split('=').next().unwrap_or_default();
                let shown = if arg.contains('=') { "an empty name".to_string() } else { format!("{key:?}") };
                return Err(crate::Error::recipe(format!(
                    "--env-var: expected KEY=VALUE, got {shown}; write it as --env-var {PREFIX}NAME=value"
                )));
            }
        }
    }
    Ok(out)
}

/// Why a variable name may not be used, or `None` when it may.
pub fn check_name(name: &str) -> Option<String> {
    let upper = name.to_ascii_uppercase();
    if BLACKLIST_EXACT.contains(&upper.as_str()) {
        return Some(format!("${{{name}}}: {upper} may never be expanded into a recipe"));
    }
    if let Some(p) = BLACKLIST_PREFIXES.iter().find(|p| upper.starts_with(*p)) {
        return Some(format!("${{{name}}}: variables starting with {p} (cloud credentials) may not be expanded"));
    }
    if let Some(s) = BLACKLIST_SUBSTRINGS.iter().find(|s| upper.contains(*s)) {
        return Some(format!(
            "${{{name}}}: names containing {s} look like secrets and may not be expanded; rename the variable"
        ));
    }
    if !upper.starts_with(PREFIX) {
        return Some(format!("${{{name}}}: only variables named {PREFIX}* may be expanded"));
    }
    None
}

/// What an expansion did.
#[derive(Debug, Default)]
pub struct Expansion {
    /// Every problem, each naming its field and variable.
    pub problems: Vec<Problem>,
    /// JSON pointers of the values that were exactly one reference
    /// (`"${X}"`): the only ones a typed field may take from a variable
    /// (see [`super::schema::coerce_expanded`]).
    pub whole_references: Vec<String>,
}

struct Walker<'a, 'e> {
    env: &'a EnvSource<'e>,
    out: Expansion,
    empty: Vec<String>,
}

/// Expand `recipe` in place. `never_expand` are the source component's
/// never-expand fields (top-level keys of `source`).
pub fn expand(recipe: &mut Value, never_expand: &[String], env: &EnvSource<'_>) -> Expansion {
    let mut w = Walker { env, out: Expansion::default(), empty: Vec::new() };
    if let Value::Object(top) = recipe {
        for (key, value) in top.iter_mut() {
            if key == "source"
                && let Value::Object(source) = value
            {
                for (field, v) in source.iter_mut() {
                    if never_expand.iter().any(|n| n.eq_ignore_ascii_case(field)) {
                        continue;
                    }
                    w.walk(v, field, &format!("source.{field}"), &format!("/source/{}", escape(field)));
                }
                continue;
            }
            w.walk(value, key, key, &format!("/{}", escape(key)));
        }
    }
    for name in &w.empty {
        Event::warn("recipe_env_var_empty").field("name", name.clone()).emit();
    }
    w.out
}

/// A JSON-pointer segment.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl Walker<'_, '_> {
    fn walk(&mut self, value: &mut Value, key: &str, path: &str, pointer: &str) {
        if NEVER_EXPAND_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            return;
        }
        match value {
            Value::String(s) => {
                if let Some(expanded) = self.expand_str(s, path) {
                    if is_whole_reference(s) {
                        self.out.whole_references.push(pointer.to_string());
                    }
                    *s = expanded;
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    // An element of a list keeps the key of the list.
                    self.walk(item, key, &format!("{path}[{i}]"), &format!("{pointer}/{i}"));
                }
            }
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    self.walk(v, k, &format!("{path}.{k}"), &format!("{pointer}/{}", escape(k)));
                }
            }
            _ => {}
        }
    }

    /// Expand one string; `None` when it has no reference (or on error).
    fn expand_str(&mut self, s: &str, path: &str) -> Option<String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        let mut changed = false;
        let mut failed = false;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            if end == 0 {
                // `${}` stays literal.
                out.push_str(&rest[..start + 3]);
                rest = &rest[start + 3..];
                continue;
            }
            let name = &after[..end];
            out.push_str(&rest[..start]);
            rest = &after[end + 1..];
            changed = true;
            if let Some(why) = check_name(name) {
                self.out.problems.push(Problem::security(format!("{path}: {why}")));
                failed = true;
                continue;
            }
            match self.env.get(name) {
                Some(v) => {
                    if v.is_empty() && !self.empty.iter().any(|e| e == name) {
                        self.empty.push(name.to_string());
                    }
                    out.push_str(&v);
                }
                None => {
                    self.out.problems.push(Problem::plain(format!(
                        "{path}: ${{{name}}} is not set; export it or pass --env-var {name}=... to recotem train"
                    )));
                    failed = true;
                }
            }
        }
        out.push_str(rest);
        (changed && !failed).then_some(out)
    }
}

/// `${NAME}` and nothing else.
fn is_whole_reference(s: &str) -> bool {
    s.strip_prefix("${").and_then(|r| r.strip_suffix('}')).is_some_and(|name| !name.is_empty() && !name.contains('}'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(mut v: Value, never: &[&str], vars: &[(&str, &str)]) -> (Value, Vec<String>) {
        let overrides: BTreeMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let never: Vec<String> = never.iter().map(|s| s.to_string()).collect();
        let expansion = expand(&mut v, &never, &EnvSource { overrides: &overrides, process: false });
        (v, expansion.problems.into_iter().map(|p| p.message).collect())
    }

    #[test]
    fn expands_values_at_any_depth_single_pass() {
        let (v, p) = run(
            json!({"a": "x-${RECOTEM_RECIPE_A}-y", "b": [{"c": "${RECOTEM_RECIPE_B}"}], "${RECOTEM_RECIPE_A}": 1}),
            &[],
            &[("RECOTEM_RECIPE_A", "1"), ("RECOTEM_RECIPE_B", "${RECOTEM_RECIPE_A}")],
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(v["a"], "x-1-y");
        assert_eq!(v["b"][0]["c"], "${RECOTEM_RECIPE_A}", "no re-scan");
        assert!(v.get("${RECOTEM_RECIPE_A}").is_some(), "keys are never expanded");
    }

    #[test]
    fn whole_references_are_recorded_as_pointers() {
        let overrides: BTreeMap<String, String> =
            [("RECOTEM_RECIPE_N".to_string(), "5".to_string())].into_iter().collect();
        let mut v = json!({"t": {"n": "${RECOTEM_RECIPE_N}", "m": "x${RECOTEM_RECIPE_N}", "l": ["${RECOTEM_RECIPE_N}"]}, "a/b": "${RECOTEM_RECIPE_N}"});
        let e = expand(&mut v, &[], &EnvSource { overrides: &overrides, process: false });
        assert_eq!(e.whole_references, ["/t/n", "/t/l/0", "/a~1b"]);
    }

    #[test]
    fn literals_stay() {
        let (v, p) = run(json!({"a": "${}", "b": "${RECOTEM_RECIPE_X", "c": "$RECOTEM_RECIPE_X"}), &[], &[]);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(v, json!({"a": "${}", "b": "${RECOTEM_RECIPE_X", "c": "$RECOTEM_RECIPE_X"}));
    }

    #[test]
    fn names_are_checked_blacklist_first() {
        for (name, frag) in [
            ("RECOTEM_SIGNING_KEYS", "never be expanded"),
            ("recotem_api_keys", "never be expanded"),
            ("AWS_REGION", "AWS_"),
            ("RECOTEM_RECIPE_APIKEY", "KEY"),
            ("RECOTEM_RECIPE_KEYBOARD", "KEY"),
            ("RECOTEM_RECIPE_DB_PASSWORD", "PASSWORD"),
            ("HOME", "RECOTEM_RECIPE_*"),
        ] {
            let why = check_name(name).unwrap_or_default();
            assert!(why.contains(frag), "{name}: {why}");
        }
        assert_eq!(check_name("RECOTEM_RECIPE_GCP_PROJECT"), None);
        assert_eq!(check_name("recotem_recipe_lower"), None);
    }

    #[test]
    fn never_expand_keys_and_plugin_fields() {
        let (v, p) = run(
            json!({"source": {"query": "${X}", "dsn_env": "${Y}", "opts": {"Query_Parameters": {"a": "${Z}"}}}}),
            &["dsn_env"],
            &[],
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(v["source"]["dsn_env"], "${Y}");
    }

    #[test]
    fn missing_and_bad_names_are_all_reported_without_values() {
        let (_, p) = run(
            json!({"a": "${RECOTEM_RECIPE_MISSING}", "b": "${HOME}", "c": "${RECOTEM_RECIPE_OK}"}),
            &[],
            &[("RECOTEM_RECIPE_OK", "s3cr3t-value")],
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("a: ${RECOTEM_RECIPE_MISSING} is not set"));
        assert!(p[1].starts_with("b: ${HOME}"));
        assert!(!p.concat().contains("s3cr3t"));
    }

    #[test]
    fn overrides_parse() {
        let o = parse_overrides(&["RECOTEM_RECIPE_A=1=2".into(), "RECOTEM_RECIPE_B=".into()]).unwrap();
        assert_eq!(o["RECOTEM_RECIPE_A"], "1=2");
        assert_eq!(o["RECOTEM_RECIPE_B"], "");
        let e = parse_overrides(&["NOVALUE".into()]).unwrap_err().to_string();
        assert!(e.contains("KEY=VALUE"), "{e}");
        assert!(parse_overrides(&["=x".into()]).is_err());
    }
}
