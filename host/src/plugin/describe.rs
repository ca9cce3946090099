//! The rules the WIT contract states for what a component publishes in
//! `describe`, checked when the component is loaded (so `plugins audit`,
//! `validate` and `train` refuse the same components, for the same reason):
//!
//! - names: a source type is `^[a-z][a-z0-9_-]{0,31}$`; a trainer name, each
//!   alias and each hyper-parameter name is `^[A-Za-z][A-Za-z0-9_.-]{0,63}$`;
//!   an alias must leave something once a trailing `Recommender` is removed
//!   (the host accepts `<Name>Recommender` for every name);
//! - texts (versions, descriptions, choices): bounded, no control
//!   characters, so nothing a plugin says can forge an output line or drive
//!   a terminal;
//! - search spaces: unique parameter names; integer ranges with
//!   `low ≤ default ≤ high` (log scale: `low ≥ 1`); real ranges finite, with
//!   `low ≤ default ≤ high` (log scale: `low > 0`); categoricals with 1–256
//!   distinct choices, the default among them;
//! - a source's config schema: valid JSON and a valid JSON Schema.
//!
//! [`quote`] bounds and escapes plugin data that the host repeats in its own
//! messages (column names, ids, names).

use super::bindings::source::exports::recotem::plugin::source_plugin::SourceInfo;
use super::bindings::trainer::exports::recotem::plugin::trainer_plugin::{ParamDomain, TrainerInfo};

/// Largest version string.
pub const MAX_VERSION: usize = 64;
/// Largest description (of a component or of a hyper-parameter).
pub const MAX_DESCRIPTION: usize = 4096;
/// Largest config schema, bytes.
pub const MAX_SCHEMA: usize = 1 << 20;
/// Most aliases of one trainer.
pub const MAX_ALIASES: usize = 32;
/// Most hyper-parameters of one trainer.
pub const MAX_PARAMS: usize = 64;
/// Most choices of one categorical hyper-parameter.
pub const MAX_CHOICES: usize = 256;
/// Longest plugin text the host repeats in a message, in characters.
pub const QUOTE_CHARS: usize = 64;

/// `text` for a host message: at most [`QUOTE_CHARS`] characters (then
/// `…` and the original length), quoted, control characters escaped.
pub fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for (n, c) in text.chars().enumerate() {
        if n == QUOTE_CHARS {
            out.push_str(&format!("…\" ({} bytes)", text.len()));
            return out;
        }
        out.extend(c.escape_debug());
    }
    out.push('"');
    out
}

/// A plugin text: at most `max` bytes, no control characters.
fn text(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("{field} is {} bytes, more than the {max} allowed", value.len()));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!("{field} {} holds the control character {c:?}; texts may not", quote(value)));
    }
    Ok(())
}

/// An identifier: `^[A-Za-z][A-Za-z0-9_.-]{0,63}$`.
fn identifier(field: &str, value: &str) -> Result<(), String> {
    let ok = value.len() <= 64
        && value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok { Ok(()) } else { Err(format!("{field} {} does not match ^[A-Za-z][A-Za-z0-9_.-]{{0,63}}$", quote(value))) }
}

/// Check a source's `describe`.
pub fn check_source(info: &SourceInfo) -> Result<(), String> {
    let name = &info.type_name;
    let ok_name = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !ok_name {
        return Err(format!("the type name {} does not match ^[a-z][a-z0-9_-]{{0,31}}$", quote(name)));
    }
    text("version", &info.version, MAX_VERSION)?;
    text("description", &info.description, MAX_DESCRIPTION)?;
    if info.config_schema.len() > MAX_SCHEMA {
        return Err(format!("the config schema is {} bytes, more than the {MAX_SCHEMA} allowed", info.config_schema.len()));
    }
    if info.never_expand.len() > 1024 || info.capabilities.len() > 64 {
        return Err("never-expand lists more than 1024 fields or capabilities more than 64 entries".into());
    }
    for field in &info.never_expand {
        text("a never-expand field", field, 256)?;
    }
    crate::recipe::schema::parse_component_schema(name, &info.config_schema).map_err(|e| e.message().to_string())?;
    Ok(())
}

/// Check a trainer's `describe`.
pub fn check_trainer(info: &TrainerInfo) -> Result<(), String> {
    identifier("the name", &info.name)?;
    text("version", &info.version, MAX_VERSION)?;
    text("description", &info.description, MAX_DESCRIPTION)?;
    if info.aliases.len() > MAX_ALIASES {
        return Err(format!("{} aliases, more than the {MAX_ALIASES} allowed", info.aliases.len()));
    }
    for alias in &info.aliases {
        identifier("the alias", alias)?;
        if alias.eq_ignore_ascii_case("recommender") {
            return Err(format!("the alias {} would answer to every `…Recommender` name", quote(alias)));
        }
    }
    if info.params.len() > MAX_PARAMS {
        return Err(format!("{} hyper-parameters, more than the {MAX_PARAMS} allowed", info.params.len()));
    }
    for (i, p) in info.params.iter().enumerate() {
        identifier("a hyper-parameter name", &p.name)?;
        if info.params[..i].iter().any(|q| q.name == p.name) {
            return Err(format!("the hyper-parameter {} is declared twice", quote(&p.name)));
        }
        let field = format!("hyper-parameter {}", quote(&p.name));
        text(&format!("the description of {field}"), &p.description, MAX_DESCRIPTION)?;
        check_domain(&field, &p.domain)?;
    }
    Ok(())
}

fn check_domain(field: &str, domain: &ParamDomain) -> Result<(), String> {
    match domain {
        ParamDomain::Int(r) => {
            if r.low > r.high {
                return Err(format!("{field}: low {} is above high {}", r.low, r.high));
            }
            if r.log && r.low < 1 {
                return Err(format!("{field}: a log-scale integer range needs low ≥ 1, it is {}", r.low));
            }
            if !(r.low..=r.high).contains(&r.default) {
                return Err(format!("{field}: the default {} is outside [{}, {}]", r.default, r.low, r.high));
            }
        }
        ParamDomain::Float(r) => {
            if !(r.low.is_finite() && r.high.is_finite() && r.default.is_finite()) {
                return Err(format!("{field}: low, high and default must be finite numbers"));
            }
            if r.low > r.high {
                return Err(format!("{field}: low {} is above high {}", r.low, r.high));
            }
            if r.log && r.low <= 0.0 {
                return Err(format!("{field}: a log-scale real range needs low > 0, it is {}", r.low));
            }
            if !(r.low..=r.high).contains(&r.default) {
                return Err(format!("{field}: the default {} is outside [{}, {}]", r.default, r.low, r.high));
            }
        }
        ParamDomain::Categorical(c) => {
            if c.choices.is_empty() || c.choices.len() > MAX_CHOICES {
                return Err(format!("{field}: a categorical needs 1 to {MAX_CHOICES} choices, it has {}", c.choices.len()));
            }
            for (i, choice) in c.choices.iter().enumerate() {
                text(&format!("{field}: a choice"), choice, 256)?;
                if c.choices[..i].contains(choice) {
                    return Err(format!("{field}: the choice {} is listed twice", quote(choice)));
                }
            }
            if !c.choices.contains(&c.default) {
                return Err(format!("{field}: the default {} is not one of the choices", quote(&c.default)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::bindings::trainer::exports::recotem::plugin::trainer_plugin::{
        Categorical, FloatRange, IntRange, ParamSpec,
    };
    use super::super::bindings::source::recotem::plugin::types::ModelKind;
    use super::*;

    fn trainer(params: Vec<ParamSpec>) -> TrainerInfo {
        TrainerInfo {
            name: "Good".into(),
            aliases: vec!["GoodAlias".into()],
            version: "1.0.0".into(),
            description: "fine".into(),
            params,
            model_kind: ModelKind::Popularity,
        }
    }

    fn param(name: &str, domain: ParamDomain) -> ParamSpec {
        ParamSpec { name: name.into(), description: String::new(), domain }
    }

    fn int(low: i64, high: i64, log: bool, default: i64) -> ParamDomain {
        ParamDomain::Int(IntRange { low, high, log, default })
    }

    fn float(low: f64, high: f64, log: bool, default: f64) -> ParamDomain {
        ParamDomain::Float(FloatRange { low, high, log, default })
    }

    #[test]
    fn well_formed_spaces_pass_including_extreme_ranges() {
        let ok = trainer(vec![
            param("a", int(i64::MIN, i64::MAX, false, 0)),
            param("b", int(1, i64::MAX, true, 1)),
            param("c", float(1e-9, 1e9, true, 1.0)),
            param("d", ParamDomain::Categorical(Categorical { choices: vec!["x".into(), "y".into()], default: "y".into() })),
        ]);
        assert_eq!(check_trainer(&ok), Ok(()));
    }

    #[test]
    fn malformed_spaces_are_refused_naming_the_rule() {
        let cases: Vec<(Vec<ParamSpec>, &str)> = vec![
            (vec![param("a", float(f64::NAN, 1.0, false, 0.5))], "finite"),
            (vec![param("a", int(5, 1, false, 3))], "low 5 is above high 1"),
            (vec![param("a", int(0, 10, true, 1))], "needs low ≥ 1"),
            (vec![param("a", float(0.0, 1.0, true, 0.5))], "needs low > 0"),
            (vec![param("a", int(0, 10, false, 11))], "default 11 is outside"),
            (vec![param("a", ParamDomain::Categorical(Categorical { choices: vec![], default: "x".into() }))], "1 to 256 choices"),
            (vec![param("a", ParamDomain::Categorical(Categorical { choices: vec!["x".into()], default: "z".into() }))], "not one of the choices"),
            (vec![param("a", int(0, 1, false, 0)), param("a", int(0, 1, false, 0))], "declared twice"),
            (vec![param("bad name", int(0, 1, false, 0))], "does not match"),
        ];
        for (params, needle) in cases {
            let e = check_trainer(&trainer(params)).unwrap_err();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn names_aliases_and_texts_are_checked() {
        let mut t = trainer(vec![]);
        t.name = "Evil\n\u{1b}[2J".into();
        assert!(check_trainer(&t).unwrap_err().contains("does not match"));
        let mut t = trainer(vec![]);
        t.aliases = vec![String::new()];
        assert!(check_trainer(&t).is_err());
        let mut t = trainer(vec![]);
        t.aliases = vec!["recommender".into()];
        assert!(check_trainer(&t).unwrap_err().contains("every `…Recommender` name"));
        let mut t = trainer(vec![]);
        t.description = "line\nforged".into();
        assert!(check_trainer(&t).unwrap_err().contains("control character"));
    }

    #[test]
    fn quotes_are_bounded_and_escaped() {
        assert_eq!(quote("a\nb"), "\"a\\nb\"");
        let long = "x".repeat(8 << 20);
        let q = quote(&long);
        assert!(q.len() < 100 && q.ends_with("(8388608 bytes)"), "{q}");
    }
}
