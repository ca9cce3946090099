//! Loading a recipe: bounded read → safe YAML parse → `source.type`
//! resolution → env expansion → stage 1 (recipe JSON Schema) → typed decode
//! → cross-field and path rules → stage 2 (the source component's JSON
//! Schema) → `RECOTEM_ARTIFACT_ROOT` containment → hash.
//!
//! A recipe is untrusted text. The YAML parser (serde-saphyr: pure Rust,
//! maintained, no unsafe C) runs with a budget: nesting depth, node and
//! event counts, anchors, aliases and alias replay are bounded, so a
//! "billion laughs" file fails in milliseconds; duplicate keys are errors;
//! parse errors keep their line and column. Every stage reports all its
//! problems at once, each with its field path. Every fault is exit 2.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use serde_saphyr::options::DuplicateKeyPolicy;

use super::catalog::Catalog;
use super::env::{self, EnvSource};
use super::model::Recipe;
use super::{Problem, paths, problems_error, schema};
use crate::error::{Error, Result};

/// Largest recipe file accepted. Recipes are small; a larger file is a
/// mistake or an attack.
pub const MAX_RECIPE_BYTES: u64 = 1024 * 1024;

/// Deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 32;

/// A validated recipe and what was derived from it.
#[derive(Debug, Clone)]
pub struct LoadedRecipe {
    /// The typed recipe (env-expanded).
    pub recipe: Recipe,
    /// SHA-256 of the canonical JSON of the recipe (all defaults included).
    pub hash: String,
}

/// What a recipe is loaded against.
pub struct LoadOptions<'a> {
    /// Registered sources and trainers.
    pub catalog: &'a Catalog,
    /// `--env-var` values (override the process environment).
    pub env_overrides: &'a BTreeMap<String, String>,
}

/// Read, parse and validate the recipe at `path`.
pub fn load_file(path: &Path, options: &LoadOptions<'_>) -> Result<LoadedRecipe> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::recipe(format!("recipe {shown}: cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(Error::recipe(format!("recipe {shown}: not a regular file")));
    }
    if meta.len() > MAX_RECIPE_BYTES {
        return Err(Error::recipe(format!(
            "recipe {shown}: {} bytes is larger than the {MAX_RECIPE_BYTES}-byte limit for recipes",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::recipe(format!("recipe {shown}: cannot read it as UTF-8 text: {e}")))?;
    let loaded = parse(&text, options).map_err(|e| e.context(format!("recipe {shown}")))?;
    crate::events::Event::info("recipe_loaded")
        .field("name", loaded.recipe.name.clone())
        .field("path", shown.to_string())
        .field("recipe_hash", loaded.hash.clone())
        .emit();
    Ok(loaded)
}

/// Parse YAML text into a JSON value under the parser budget.
pub fn parse_yaml(text: &str) -> Result<Value> {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_documents: 1,
            max_events: 200_000,
            max_nodes: 100_000,
            max_anchors: 1_000,
            max_aliases: 1_000,
            max_merge_keys: 100,
            max_recorded_anchor_events: 100_000,
            max_recorded_anchor_bytes: 4 << 20,
            max_total_scalar_bytes: 2 << 20,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 10_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 1_000,
        },
        duplicate_keys: DuplicateKeyPolicy::Error,
        // One line with line and column; no snippet of the file, which could
        // repeat a secret written in the recipe.
        with_snippet: false,
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| Error::recipe(format!("invalid YAML: {e}")))
}

/// Parse and validate recipe text.
pub fn parse(text: &str, options: &LoadOptions<'_>) -> Result<LoadedRecipe> {
    let mut value = parse_yaml(text)?;
    if !value.is_object() {
        return Err(Error::recipe("the top level must be a mapping of recipe fields"));
    }
    let catalog = options.catalog;

    // The source component decides which fields are never expanded and
    // which schema the block follows: resolve it first.
    let source_type = value.get("source").and_then(|s| s.get("type")).and_then(Value::as_str).map(str::to_string);
    let spec = match &source_type {
        Some(t) => Some(catalog.source(t).ok_or_else(|| {
            Error::recipe(format!("source.type: unknown data source {t:?}; registered types: {}", catalog.source_types()))
        })?),
        None => None,
    };
    let never_expand = spec.map(|s| s.never_expand.clone()).unwrap_or_default();
    let env = EnvSource { overrides: options.env_overrides, process: true };
    let expansion = env::expand(&mut value, &never_expand, &env);
    fail_on(expansion.problems)?;
    let component_schema = match spec {
        Some(spec) => Some(schema::parse_component_schema(&spec.type_name, &spec.config_schema)?),
        None => None,
    };
    let recipe_schema = schema::recipe_schema(schema::open_source_schema());
    schema::coerce_expanded(&mut value, &expansion.whole_references, &recipe_schema, component_schema.as_ref());

    // Stage 1: the recipe.
    fail_on(schema::check(&recipe_schema, &value, "")?)?;
    let recipe: Recipe = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." { Error::recipe(inner.to_string()) } else { Error::recipe(format!("{path}: {inner}")) }
    })?;
    fail_on(recipe.validate(catalog))?;

    // Stage 2: the source block against its component's schema.
    if let Some(component_schema) = &component_schema {
        fail_on(schema::check(component_schema, &recipe.source, "source")?)?;
    }
    // And item metadata against the schema of the component it names.
    if let Some(meta) = &recipe.item_metadata {
        let spec = catalog.source(&meta.kind).ok_or_else(|| {
            Error::recipe(format!(
                "item_metadata.type: unknown data source {:?}; registered types: {}",
                meta.kind,
                catalog.source_types()
            ))
        })?;
        let meta_schema = schema::parse_component_schema(&spec.type_name, &spec.config_schema)?;
        fail_on(schema::check(&meta_schema, &meta.component_config(), "item_metadata")?)?;
    }

    if let Some(root) = crate::settings::get().artifact_root.as_deref().and_then(|r| r.to_str()) {
        paths::check_artifact_root(&recipe.output.path, root).map_err(|p| problems_error(vec![p]))?;
    }

    let canonical = crate::util::canonical_json(
        &serde_json::to_value(&recipe).map_err(|e| Error::internal(e.to_string()))?,
    );
    let hash = crate::util::sha256_hex(canonical.to_string().as_bytes());
    Ok(LoadedRecipe { recipe, hash })
}

fn fail_on(problems: Vec<Problem>) -> Result<()> {
    if problems.is_empty() { Ok(()) } else { Err(problems_error(problems)) }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::recipe::catalog::{AlgorithmSpec, SourceSpec};

    /// A catalog like the built-ins: `csv` (schema without extras) and
    /// `sql` (never-expand `query`, `dsn_env`), trainer TopPop.
    pub(crate) fn catalog() -> Catalog {
        Catalog {
            sources: vec![
                SourceSpec {
                    type_name: "csv".into(),
                    config_schema: r#"{"type":"object","additionalProperties":false,"required":["type","path"],
                        "properties":{"type":{"const":"csv"},"path":{"type":"string"},"sha256":{"type":"string"},
                        "delimiter":{"type":"string","maxLength":2}}}"#
                        .into(),
                    never_expand: vec![],
                },
                SourceSpec {
                    type_name: "sql".into(),
                    config_schema: r#"{"type":"object"}"#.into(),
                    never_expand: vec!["dsn_env".into()],
                },
            ],
            algorithms: vec![AlgorithmSpec { name: "TopPop".into(), aliases: vec![] }],
        }
    }

    pub(crate) const MINIMAL: &str = "
name: demo
source: {type: csv, path: data.csv}
schema: {user_column: u, item_column: i}
training: {algorithms: [TopPop]}
output: {path: out.recotem}
";

    fn load(text: &str) -> Result<LoadedRecipe> {
        let overrides = BTreeMap::new();
        parse(text, &LoadOptions { catalog: &catalog(), env_overrides: &overrides })
    }

    fn err(text: &str) -> String {
        load(text).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn minimal_recipe_gets_defaults() {
        let r = load(MINIMAL).unwrap();
        assert_eq!(r.recipe.training.cutoff, 20);
        assert_eq!(r.recipe.training.n_trials, 40);
        assert_eq!(r.recipe.training.split.seed, 42);
        assert_eq!(r.recipe.source_type(), "csv");
        assert_eq!(r.hash.len(), 64);
    }

    #[test]
    fn unknown_keys_name_their_path() {
        let e = err(&MINIMAL.replace("training: {algorithms: [TopPop]}", "training: {algorithms: [TopPop], split: {bogus: 1}}"));
        assert!(e.contains("training.split: unknown field \"bogus\""), "{e}");
    }

    #[test]
    fn cross_field_rules_are_all_reported() {
        let e = err(&MINIMAL.replace(
            "training: {algorithms: [TopPop]}",
            "training: {algorithms: [TopPopRecommender, Nope], per_algorithm_trials: {Other: 1}, split: {scheme: time_user}}",
        ));
        assert!(e.starts_with("3 problems"), "{e}");
        assert!(e.contains("training.algorithms[1]: unknown algorithm \"Nope\""), "{e}");
        assert!(e.contains("training.per_algorithm_trials.Other"), "{e}");
        assert!(e.contains("schema.time_column"), "{e}");
    }

    #[test]
    fn budget_keys_must_name_listed_algorithms() {
        let mut catalog = catalog();
        catalog.algorithms.push(AlgorithmSpec { name: "IALS".into(), aliases: vec!["ImplicitALS".into()] });
        let overrides = BTreeMap::new();
        let options = LoadOptions { catalog: &catalog, env_overrides: &overrides };
        let text = MINIMAL.replace("training: {algorithms: [TopPop]}", "training: {algorithms: [TopPop], per_algorithm_trials: {ialsrecommender: 2}}");
        let e = parse(&text, &options).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("training.per_algorithm_trials.ialsrecommender: not one of training.algorithms"), "{e}");
        let text = text.replace("algorithms: [TopPop]", "algorithms: [TopPop, ImplicitALSRecommender]");
        assert!(parse(&text, &options).is_ok());
    }

    #[test]
    fn stage_two_uses_the_component_schema() {
        let e = err(&MINIMAL.replace("{type: csv, path: data.csv}", "{type: csv, path: data.csv, delimiter: ';;;', extra: 1}"));
        assert!(e.contains("source.delimiter: must be at most 2 characters long"), "{e}");
        assert!(e.contains("source: unknown field \"extra\""), "{e}");
    }

    #[test]
    fn unknown_source_type_lists_the_registered_ones() {
        let e = err(&MINIMAL.replace("type: csv", "type: nosuch"));
        assert!(e.contains("\"nosuch\"") && e.contains("csv, sql"), "{e}");
    }

    #[test]
    fn plugin_never_expand_fields_stay_literal() {
        let r = load(&MINIMAL.replace("{type: csv, path: data.csv}", "{type: sql, dsn_env: '${RECOTEM_RECIPE_NOT_SET}'}")).unwrap();
        assert_eq!(r.recipe.source["dsn_env"], "${RECOTEM_RECIPE_NOT_SET}");
    }

    #[test]
    fn yaml_safety() {
        let e = err("name: a\nname: b\n");
        assert!(e.contains("invalid YAML") && e.contains("line 2") && e.contains("duplicate"), "{e}");
        assert!(!e.contains('\n'), "one line, no snippet: {e}");
        let deep = format!("a: {}{}", "[".repeat(100), "]".repeat(100));
        assert!(err(&deep).contains("invalid YAML"));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            bomb.push_str(&format!("{}: &{} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n",
                (b'a' + i) as char, (b'a' + i) as char, p = (b'a' + i - 1) as char));
        }
        let started = std::time::Instant::now();
        assert!(err(&bomb).contains("invalid YAML"));
        assert!(started.elapsed().as_secs() < 2);
        assert!(err("- 1\n- 2\n").contains("top level must be a mapping"));
    }

    #[test]
    fn same_recipe_same_hash() {
        assert_eq!(load(MINIMAL).unwrap().hash, load(MINIMAL).unwrap().hash);
    }
}
