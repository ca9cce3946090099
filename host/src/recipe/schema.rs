//! The recipe's JSON Schema (draft 2020-12) and validation against JSON
//! Schemas with every error reported at its field path.
//!
//! The schema is the single description of the recipe's shape: types,
//! required fields, unknown keys, enums, ranges and patterns. Loading
//! validates the recipe against it (stage 1, with `source` left open except
//! for `type`), then the `source` block against the schema its component
//! publishes (stage 2). `recotem schema` prints it with `source` as the
//! union (`oneOf`, discriminated by `type`) of every registered component's
//! schema. Cross-field rules live in [`super::model::Recipe::validate`].

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use serde_json::{Value, json};

use super::Problem;
use super::catalog::Catalog;
use crate::error::{Error, Result};

/// The `$id` of the recipe schema.
pub const SCHEMA_ID: &str = "https://recotem.invalid/schemas/recipe.json";

/// The recipe schema. `source` is the given schema of the `source` block.
pub fn recipe_schema(source: Value) -> Value {
    let positive_or_null = |d: &str| json!({"type": ["integer", "null"], "minimum": 1, "default": null, "description": d});
    let count_or_null = |d: &str| json!({"type": ["integer", "null"], "minimum": 0, "default": null, "description": d});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "recotem recipe",
        "description": "One recipe = one model = one recommendation endpoint. See docs/recipe.md.",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "source", "schema", "training", "output"],
        "properties": {
            "name": {
                "type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$",
                "description": "Recipe name; becomes /v1/recipes/<name>."
            },
            "source": source,
            "schema": {
                "type": "object", "additionalProperties": false,
                "required": ["user_column", "item_column"],
                "description": "Which columns hold users, items and time.",
                "properties": {
                    "user_column": {"type": "string", "minLength": 1, "description": "Column of user ids."},
                    "item_column": {"type": "string", "minLength": 1, "description": "Column of item ids."},
                    "time_column": {"type": ["string", "null"], "minLength": 1, "default": null,
                                    "description": "Column of interaction times (needed by time-based splits)."},
                    "time_unit": {"enum": ["s", "ms", "us", "ns", null], "default": null,
                                  "description": "Unit of a numeric time column."}
                }
            },
            "cleansing": {
                "type": "object", "additionalProperties": false,
                "description": "Row filtering before training.",
                "properties": {
                    "drop_null_ids": {"type": "boolean", "default": true, "description": "Drop rows whose user or item is null."},
                    "dedup": {"enum": ["keep_first", "keep_last", "none"], "default": "keep_last",
                              "description": "What to do with repeated (user, item) pairs, in source order."},
                    "min_rows": count_or_null("Fail (min_data_violation) below this many rows after cleansing."),
                    "min_users": count_or_null("Fail below this many distinct users."),
                    "min_items": count_or_null("Fail below this many distinct items.")
                }
            },
            "item_metadata": {
                "type": ["object", "null"], "default": null,
                "required": ["type", "path", "fields"],
                "description": "Item metadata stored in the artifact, read through a registered data-source component; keys other than these are that component's configuration, checked against its schema.",
                "properties": {
                    "type": {"type": "string", "minLength": 1, "description": "A registered data-source type."},
                    "path": {"type": "string", "minLength": 1, "description": "Local path or URL (http(s) needs sha256)."},
                    "fields": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                    "on_field_missing": {"enum": ["error", "null", null], "default": "error"},
                    "sha256": {"type": ["string", "null"], "pattern": "^[0-9a-f]{64}$", "default": null},
                    "item_id_column": {"type": "string", "pattern": "\\S", "default": "item_id"}
                }
            },
            "training": {
                "type": "object", "additionalProperties": false, "required": ["algorithms"],
                "description": "Search and evaluation settings.",
                "properties": {
                    "algorithms": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1},
                                   "description": "Trainer names or aliases (case-insensitive; `<Name>Recommender` accepted)."},
                    "metric": {"enum": ["ndcg", "map", "recall", "hit"], "default": "ndcg"},
                    "cutoff": {"type": "integer", "minimum": 1, "default": 20},
                    "n_trials": {"type": "integer", "minimum": 1, "default": 40},
                    "per_algorithm_trials": {
                        "type": ["object", "null"], "default": null,
                        "additionalProperties": {"type": "integer"},
                        "description": "Per-algorithm budgets; keys must name listed algorithms; 0 disables one."
                    },
                    "per_trial_timeout_seconds": positive_or_null("Deadline of one trial, seconds."),
                    "timeout_seconds": positive_or_null("Deadline of the whole search, seconds."),
                    "parallelism": {"type": "integer", "minimum": 1, "default": 1},
                    "storage_path": {"type": "string", "default": ""},
                    "split": {
                        "type": "object", "additionalProperties": false,
                        "properties": {
                            "scheme": {"enum": ["random", "time_global", "time_user"], "default": "random"},
                            "heldout_ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.1},
                            "test_user_ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1.0},
                            "seed": {"type": "integer", "minimum": 0, "default": 42}
                        }
                    }
                }
            },
            "plugins": {
                "type": "object", "additionalProperties": false,
                "description": "Component pins (see docs/security.md).",
                "properties": {
                    "sha256": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        "description": "Source type or algorithm name -> SHA-256 of the component; another build is refused."
                    }
                }
            },
            "output": {
                "type": "object", "additionalProperties": false, "required": ["path"],
                "description": "Where the signed artifact goes.",
                "properties": {
                    "path": {"type": "string", "minLength": 1, "description": "Local path, file://, s3://, gs://, az://, abfs(s)://."},
                    "versioning": {"enum": ["always_overwrite", "append_sha"], "default": "append_sha"}
                }
            }
        }
    })
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
