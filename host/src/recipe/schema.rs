//! The recipe's JSON Schema (draft 2020-12) and validation against JSON
//! Schemas with every error reported at its field path.
//!
//! The schema is the single description of the recipe's shape: types,
//! required fields, unknown keys, enums, ranges, patterns and defaults. It
//! is derived from the recipe types ([`super::model`]), so a default or a
//! range is written once, next to its field. Loading
//! validates the recipe against it (stage 1, with `source` left open except
//! for `type`), then the `source` block against the schema its component
//! publishes (stage 2). `recotem schema` prints it with `source` as the
//! union (`oneOf`, discriminated by `type`) of every registered component's
//! schema. Cross-field rules live in [`super::model::Recipe::validate`].

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use serde_json::{Map, Value, json};

use super::Problem;
use super::catalog::Catalog;
use super::model::Recipe;
use crate::error::{Error, Result};

/// The `$id` of the recipe schema.
pub const SCHEMA_ID: &str = "https://recotem.invalid/schemas/recipe.json";

/// The recipe schema. `source` is the given schema of the `source` block.
///
/// Generated from the recipe types ([`Recipe`] and the types of its fields):
/// every default is the serde default the deserialiser applies, every range,
/// pattern and enum the `#[schemars(...)]` attribute next to its field. The
/// generator inlines every sub-schema, so the `properties` path of a field
/// is its path in the recipe (the error messages and [`coerce_expanded`]
/// read the schema that way).
pub fn recipe_schema(source: Value) -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .with_transform(RecursiveTransform(tidy))
        .into_generator();
    let mut derived = match generator.into_root_schema_for::<Recipe>().to_value() {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if let Some(Value::Object(props)) = derived.get_mut("properties") {
        props.insert("source".into(), source);
    }
    // `$schema` and `$id` first, as a reader expects them.
    let mut schema = Map::new();
    schema.insert("$schema".into(), derived.remove("$schema").unwrap_or_else(|| json!(DRAFT_2020_12)));
    schema.insert("$id".into(), json!(SCHEMA_ID));
    for key in ["title", "description"] {
        if let Some(v) = derived.remove(key) {
            schema.insert(key.into(), v);
        }
    }
    schema.extend(derived);
    Value::Object(schema)
}

/// The meta-schema the recipe schema follows.
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// A unit enum as `{"type": "string", "enum": [...]}`. With doc comments on
/// its variants the derive writes a `oneOf` of constants instead, which
/// validators report as "matches none of the allowed forms" rather than
/// "must be one of ...". Applied to the enum type, before an `Option` adds
/// `null` to it.
pub(super) fn plain_enum(schema: &mut Schema) {
    let Some(Value::Array(variants)) = schema.get("oneOf") else { return };
    let values: Option<Vec<Value>> = variants.iter().map(|v| v.get("const").cloned()).collect();
    let Some(values) = values else { return };
    schema.remove("oneOf");
    schema.insert("type".into(), json!("string"));
    schema.insert("enum".into(), Value::Array(values));
}

/// Tidy what the generator writes: drop the non-standard `format`
/// (`uint32`, `double`, ...) it gives numbers (the range keywords say what
/// is allowed, and strict validators reject unknown formats), and unwrap
/// descriptions taken from doc comments into lines (paragraphs stay).
fn tidy(schema: &mut Schema) {
    if schema.get("format").is_some() && schema.get("type").is_some_and(is_numeric_type) {
        schema.remove("format");
    }
    if let Some(Value::String(text)) = schema.get_mut("description") {
        *text = text.split("\n\n").map(|p| p.replace('\n', " ")).collect::<Vec<_>>().join("\n\n");
    }
}

fn is_numeric_type(t: &Value) -> bool {
    let numeric = |v: &Value| matches!(v.as_str(), Some("integer" | "number"));
    match t {
        Value::Array(ts) => ts.iter().any(numeric),
        other => numeric(other),
    }
}

/// The `source` block as seen by stage 1: an object with a string `type`;
/// the rest belongs to the component's schema (stage 2).
pub fn open_source_schema() -> Value {
    json!({
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"type": "string", "minLength": 1}},
        "description": "The data source; `type` selects the component."
    })
}

/// The schema printed by `recotem schema`: `source` is the union of every
/// registered component's config schema, each required to carry its own
/// `type` constant.
pub fn full_schema(catalog: &Catalog) -> Result<Value> {
    let mut variants = Vec::new();
    for source in &catalog.sources {
        let mut schema = parse_component_schema(&source.type_name, &source.config_schema)?;
        if let Value::Object(map) = &mut schema {
            // Nested `$schema` is redundant inside one document.
            map.remove("$schema");
            let props = map.entry("properties").or_insert_with(|| json!({}));
            if let Value::Object(props) = props {
                props.insert("type".into(), json!({"const": source.type_name}));
            }
            let required = map.entry("required").or_insert_with(|| json!([]));
            if let Value::Array(req) = required
                && !req.iter().any(|r| r == "type")
            {
                req.insert(0, json!("type"));
            }
        }
        variants.push(schema);
    }
    Ok(recipe_schema(json!({
        "description": format!("The data source; `type` is one of: {}.", catalog.source_types()),
        "oneOf": variants
    })))
}

/// Parse a component's published schema and check that it compiles; a
/// broken one is the component's fault (exit 3).
pub fn parse_component_schema(type_name: &str, text: &str) -> Result<Value> {
    let schema: Value = serde_json::from_str(text).map_err(|e| {
        Error::data_source(format!("source {type_name:?}: its published config schema is not valid JSON: {e}"))
    })?;
    jsonschema::draft202012::new(&schema).map_err(|e| {
        Error::data_source(format!("source {type_name:?}: its published config schema is not a valid JSON Schema: {e}"))
    })?;
    Ok(schema)
}

/// Give typed fields their type back: a value that was exactly one
/// `${RECOTEM_RECIPE_*}` reference (at `pointers`) is a string after
/// expansion; where the schema wants an integer, a number or a boolean
/// (and not a string) and the text parses as one, it becomes that. Other
/// values are left for the schema check to report.
pub fn coerce_expanded(recipe: &mut Value, pointers: &[String], recipe_schema: &Value, source_schema: Option<&Value>) {
    for pointer in pointers {
        let segments: Vec<String> =
            pointer.split('/').skip(1).map(|s| s.replace("~1", "/").replace("~0", "~")).collect();
        let Some(node) = schema_at(recipe_schema, source_schema, &segments) else { continue };
        let types: Vec<&str> = match node.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => continue,
        };
        if types.contains(&"string") {
            continue;
        }
        let Some(slot) = recipe.pointer_mut(pointer) else { continue };
        let Some(text) = slot.as_str().map(str::trim) else { continue };
        let typed = if types.contains(&"integer") && let Ok(i) = text.parse::<i64>() {
            Some(Value::from(i))
        } else if types.contains(&"integer") && let Ok(u) = text.parse::<u64>() {
            Some(Value::from(u))
        } else if types.contains(&"number") && let Ok(f) = text.parse::<f64>() {
            serde_json::Number::from_f64(f).map(Value::Number)
        } else if types.contains(&"boolean") {
            match text.to_ascii_lowercase().as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            }
        } else {
            None
        };
        if let Some(typed) = typed {
            *slot = typed;
        }
    }
}

/// The schema node describing the value at `segments`.
fn schema_at<'s>(recipe_schema: &'s Value, source_schema: Option<&'s Value>, segments: &[String]) -> Option<&'s Value> {
    let mut node = recipe_schema;
    for (i, seg) in segments.iter().enumerate() {
        if i == 0 && seg == "source" {
            node = source_schema?;
            continue;
        }
        node = match node.get("properties").and_then(|p| p.get(seg)) {
            Some(n) => n,
            None => match (node.get("additionalProperties"), node.get("items")) {
                (Some(ap), _) if ap.is_object() => ap,
                (_, Some(items)) if seg.parse::<usize>().is_ok() => items,
                _ => return None,
            },
        };
    }
    Some(node)
}

/// Validate `instance` against `schema`; every error becomes a problem
/// prefixed with `prefix` (e.g. `source`). Messages never repeat string
/// values (they may come from the environment).
pub fn check(schema: &Value, instance: &Value, prefix: &str) -> Result<Vec<Problem>> {
    let validator = jsonschema::draft202012::new(schema)
        .map_err(|e| Error::internal(format!("schema for {prefix:?} does not compile: {e}")))?;
    let mut problems = Vec::new();
    for error in validator.iter_errors(instance) {
        let mut path = prefix.to_string();
        for segment in error.instance_path().segments() {
            match segment {
                LocationSegment::Property(p) => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&p);
                }
                LocationSegment::Index(i) => path.push_str(&format!("[{i}]")),
            }
        }
        let keyword_node = parent_pointer(error.schema_path().as_str()).and_then(|p| schema.pointer(&p));
        let (path, message) = describe(error.kind(), keyword_node, path);
        let shown = if path.is_empty() { "(top level)".to_string() } else { path };
        problems.push(Problem::plain(format!("{shown}: {message}")));
    }
    Ok(problems)
}

/// The JSON pointer of the schema node holding the failing keyword.
fn parent_pointer(keyword_location: &str) -> Option<String> {
    keyword_location.rsplit_once('/').map(|(parent, _)| parent.to_string())
}

fn describe(kind: &ValidationErrorKind, node: Option<&Value>, path: String) -> (String, String) {
    let join = |path: &str, field: &str| if path.is_empty() { field.to_string() } else { format!("{path}.{field}") };
    match kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let known: Vec<String> = node
                .and_then(|n| n.get("properties"))
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let list = unexpected.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", ");
            let hint = if known.is_empty() { String::new() } else { format!("; known fields: {}", known.join(", ")) };
            (path, format!("unknown field{} {list}{hint}", if unexpected.len() == 1 { "" } else { "s" }))
        }
        ValidationErrorKind::Required { property } => {
            (join(&path, property.as_str().unwrap_or("?")), "required field is missing".to_string())
        }
        ValidationErrorKind::Type { kind } => {
            let names: Vec<String> = match kind {
                TypeKind::Single(t) => vec![t.to_string()],
                TypeKind::Multiple(set) => set.iter().map(|t| t.to_string()).collect(),
            };
            (path, format!("must be of type {}", names.join(" or ")))
        }
        ValidationErrorKind::Enum { options } => {
            let list = options
                .as_array()
                .map(|a| a.iter().map(Value::to_string).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            (path, format!("must be one of {list}"))
        }
        ValidationErrorKind::Constant { expected_value } => (path, format!("must be {expected_value}")),
        ValidationErrorKind::Minimum { .. }
        | ValidationErrorKind::Maximum { .. }
        | ValidationErrorKind::ExclusiveMinimum { .. }
        | ValidationErrorKind::ExclusiveMaximum { .. } => (path, range(kind, node)),
        ValidationErrorKind::MinLength { limit: 1 } => (path, "must not be empty".to_string()),
        ValidationErrorKind::MinLength { limit } => (path, format!("must be at least {limit} characters long")),
        ValidationErrorKind::MaxLength { limit } => (path, format!("must be at most {limit} characters long")),
        ValidationErrorKind::Pattern { pattern } => (path, format!("must match {pattern}")),
        ValidationErrorKind::MinItems { limit } => {
            (path, format!("must list at least {limit} item{}", if *limit == 1 { "" } else { "s" }))
        }
        ValidationErrorKind::MaxItems { limit } => (path, format!("must list at most {limit} items")),
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => {
            (path, "matches none of the allowed forms".to_string())
        }
        other => (path, format!("violates the schema ({})", keyword_name(other))),
    }
}

/// `must be in (0, 1)`, `must be >= 1`: the interval of the schema node.
fn range(kind: &ValidationErrorKind, node: Option<&Value>) -> String {
    let get = |k: &str| node.and_then(|n| n.get(k)).map(Value::to_string);
    let low = get("exclusiveMinimum").map(|v| ("(", v)).or_else(|| get("minimum").map(|v| ("[", v)));
    let high = get("exclusiveMaximum").map(|v| (")", v)).or_else(|| get("maximum").map(|v| ("]", v)));
    match (low, high) {
        (Some((lb, lo)), Some((hb, hi))) => format!("must be in {lb}{lo}, {hi}{hb}"),
        _ => match kind {
            ValidationErrorKind::Minimum { limit } => format!("must be >= {limit}"),
            ValidationErrorKind::Maximum { limit } => format!("must be <= {limit}"),
            ValidationErrorKind::ExclusiveMinimum { limit } => format!("must be > {limit}"),
            ValidationErrorKind::ExclusiveMaximum { limit } => format!("must be < {limit}"),
            _ => "out of range".to_string(),
        },
    }
}

fn keyword_name(kind: &ValidationErrorKind) -> String {
    let debug = format!("{kind:?}");
    debug.split([' ', '{', '(']).next().unwrap_or("unknown").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(instance: Value) -> Vec<String> {
        let schema = recipe_schema(open_source_schema());
        check(&schema, &instance, "").unwrap().into_iter().map(|p| p.message).collect()
    }

    fn minimal() -> Value {
        json!({
            "name": "demo",
            "source": {"type": "csv", "path": "x.csv"},
            "schema": {"user_column": "u", "item_column": "i"},
            "training": {"algorithms": ["TopPop"]},
            "output": {"path": "out.recotem"}
        })
    }

    #[test]
    fn minimal_recipe_is_valid() {
        assert!(problems(minimal()).is_empty());
    }

    #[test]
    fn every_error_is_reported_with_its_path() {
        let mut r = minimal();
        r["name"] = json!("bad name");
        r["training"]["split"] = json!({"heldout_ratio": 1.5, "test_user_ratio": 0});
        r["training"]["cutoff"] = json!(0);
        r["training"]["bogus"] = json!(1);
        r["output"] = json!({"versioning": "sometimes"});
        let p = problems(r);
        let all = p.join("\n");
        for want in [
            "name: must match ^[A-Za-z0-9_-]{1,64}$",
            "training.split.heldout_ratio: must be in (0, 1)",
            "training.split.test_user_ratio: must be in (0, 1]",
            "training.cutoff: must be >= 1",
            "training: unknown field \"bogus\"",
            "output.path: required field is missing",
            "output.versioning: must be one of",
        ] {
            assert!(all.contains(want), "missing {want:?} in\n{all}");
        }
        assert!(!all.contains("bad name"), "string values are not echoed:\n{all}");
    }

    #[test]
    fn expanded_whole_references_take_the_field_type() {
        let schema = recipe_schema(open_source_schema());
        let source = json!({"properties": {"header": {"type": "integer"}, "flag": {"type": ["boolean", "null"]}}});
        let mut r = minimal();
        r["name"] = json!("123");
        r["training"]["n_trials"] = json!("7");
        r["training"]["cutoff"] = json!("ten");
        r["training"]["split"] = json!({"heldout_ratio": "0.25"});
        r["training"]["per_algorithm_trials"] = json!({"TopPop": "-2"});
        r["source"]["header"] = json!("1");
        r["source"]["flag"] = json!("TRUE");
        let pointers: Vec<String> = [
            "/name", "/training/n_trials", "/training/cutoff", "/training/split/heldout_ratio",
            "/training/per_algorithm_trials/TopPop", "/source/header", "/source/flag",
        ].iter().map(|s| s.to_string()).collect();
        coerce_expanded(&mut r, &pointers, &schema, Some(&source));
        assert_eq!(r["name"], "123", "string fields stay strings");
        assert_eq!(r["training"]["n_trials"], 7);
        assert_eq!(r["training"]["cutoff"], "ten", "left for the schema to report");
        assert_eq!(r["training"]["split"]["heldout_ratio"], 0.25);
        assert_eq!(r["training"]["per_algorithm_trials"]["TopPop"], -2);
        assert_eq!(r["source"]["header"], 1);
        assert_eq!(r["source"]["flag"], true);
    }

    #[test]
    fn broken_component_schemas_are_the_component_fault() {
        for text in ["{not json", r#"{"type": 5}"#, r#"{"minimum": "x"}"#] {
            let e = parse_component_schema("bad", text).unwrap_err();
            assert_eq!(e.exit_code(), 3, "{text}: {e}");
            assert!(e.to_string().contains("source \"bad\""), "{e}");
        }
        assert!(parse_component_schema("ok", r#"{"type": "object"}"#).is_ok());
    }

    /// Every default the schema states is the value deserialisation gives
    /// an absent field: both come from the recipe types.
    #[test]
    fn schema_defaults_are_what_deserialisation_fills_in() {
        let schema = recipe_schema(open_source_schema());
        let mut given = minimal();
        given["item_metadata"] = json!({"type": "csv", "path": "m.csv", "fields": ["a"]});
        let recipe: Recipe = serde_json::from_value(given.clone()).unwrap();
        let filled = serde_json::to_value(&recipe).unwrap();
        // `given` is what the recipe wrote; a field it left out must have
        // been filled with the schema's default.
        fn walk(node: &Value, given: Option<&Value>, value: &Value, at: &str, seen: &mut Vec<String>) {
            let Some(props) = node.get("properties").and_then(Value::as_object) else { return };
            for (key, sub) in props {
                let Some(v) = value.get(key) else { continue };
                let path = format!("{at}.{key}");
                let written = given.and_then(|g| g.get(key));
                if written.is_none()
                    && let Some(default) = sub.get("default")
                {
                    assert_eq!(v, default, "{path}: the schema's default differs from the deserialised one");
                    seen.push(path.clone());
                }
                walk(sub, written, v, &path, seen);
            }
        }
        let mut seen = Vec::new();
        walk(&schema, Some(&given), &filled, "", &mut seen);
        for want in [
            ".cleansing.drop_null_ids", ".cleansing.dedup", ".cleansing.min_rows",
            ".item_metadata.on_field_missing", ".item_metadata.item_id_column", ".schema.time_unit",
            ".training.cutoff", ".training.n_trials", ".training.parallelism", ".training.split.heldout_ratio",
            ".training.split.test_user_ratio", ".training.split.seed", ".output.versioning",
        ] {
            assert!(seen.iter().any(|s| s == want), "{want} has no default in the schema: {seen:?}");
        }
    }

    /// The tables of docs/recipe.md (field | default | rule) list every
    /// field of the recipe blocks with the schema's default, `required` or
    /// `null`, so the reference cannot drift from the types.
    #[test]
    fn docs_recipe_tables_match_the_schema() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/recipe.md")).unwrap();
        let schema = recipe_schema(open_source_schema());
        let mut block: Option<String> = None;
        let mut documented: Vec<String> = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                block = line
                    .strip_prefix("### `")
                    .and_then(|h| h.strip_suffix('`'))
                    .filter(|b| *b != "source" && schema["properties"][*b]["properties"].is_object())
                    .map(str::to_string);
                continue;
            }
            let Some(block) = &block else { continue };
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if !line.starts_with('|') || cells.len() < 4 {
                continue;
            }
            let Some(field) = cells[1].strip_prefix('`').and_then(|f| f.strip_suffix('`')) else { continue };
            let (mut parent, mut node) = (&Value::Null, &schema["properties"][block.as_str()]);
            for segment in field.split('.') {
                parent = node;
                node = &node["properties"][segment];
            }
            let name = format!("{block}.{field}");
            assert!(node.is_object(), "docs/recipe.md lists {name}, which the schema does not have");
            let last = field.rsplit('.').next().unwrap_or(field);
            match cells[2] {
                "required" => assert!(
                    parent["required"].as_array().is_some_and(|r| r.contains(&json!(last))),
                    "docs/recipe.md: {name} is not required by the schema"
                ),
                "null" => assert_eq!(node.get("default"), Some(&Value::Null), "docs/recipe.md: {name}"),
                cell => {
                    let literal = cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')).unwrap_or_else(|| {
                        panic!("docs/recipe.md: {name}: write the default as `value`, null or required, not {cell:?}")
                    });
                    let doc: Value = serde_saphyr::from_str(literal).unwrap();
                    assert_eq!(node.get("default"), Some(&doc), "docs/recipe.md: the default of {name}");
                }
            }
            documented.push(name);
        }
        let mut expected = Vec::new();
        for (block, node) in schema["properties"].as_object().unwrap() {
            for (field, sub) in node["properties"].as_object().into_iter().flatten() {
                match sub["properties"].as_object() {
                    Some(nested) => expected.extend(nested.keys().map(|k| format!("{block}.{field}.{k}"))),
                    None => expected.push(format!("{block}.{field}")),
                }
            }
        }
        expected.retain(|e| !e.starts_with("source.") && !e.starts_with("plugins."));
        for name in &expected {
            assert!(documented.contains(name), "docs/recipe.md does not list {name}");
        }
    }

    #[test]
    fn full_schema_makes_source_a_discriminated_union() {
        let catalog = Catalog {
            sources: vec![super::super::catalog::SourceSpec {
                type_name: "csv".into(),
                config_schema: r#"{"type":"object","additionalProperties":false,"properties":{"path":{"type":"string"}}}"#.into(),
                never_expand: vec![],
            }],
            algorithms: vec![],
        };
        let schema = full_schema(&catalog).unwrap();
        assert_eq!(schema["properties"]["source"]["oneOf"][0]["properties"]["type"]["const"], "csv");
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        assert!(validator.is_valid(&minimal()));
        let mut bad = minimal();
        bad["source"]["type"] = json!("nosuch");
        assert!(!validator.is_valid(&bad));
    }
}
