//! Reading a recipe file: bounded read, YAML parse, typed decode, validation.

use std::path::Path;

use serde_json::Value;

use super::model::Recipe;
use crate::error::{Error, Result};

/// Largest recipe file accepted. Recipes are small; a larger file is a
/// mistake or an attack.
pub const MAX_RECIPE_BYTES: u64 = 1024 * 1024;

/// A validated recipe and what was derived from it.
#[derive(Debug, Clone)]
pub struct LoadedRecipe {
    /// The typed recipe.
    pub recipe: Recipe,
    /// SHA-256 of the canonical JSON of the recipe (all defaults included).
    pub hash: String,
}

/// Read, parse and validate the recipe at `path`. Every fault is
/// [`Error::Recipe`] (exit 2).
pub fn load_file(path: &Path) -> Result<LoadedRecipe> {
    let shown = path.display();
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Recipe(format!("recipe {shown}: cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(Error::Recipe(format!("recipe {shown}: not a regular file")));
    }
    if meta.len() > MAX_RECIPE_BYTES {
        return Err(Error::Recipe(format!(
            "recipe {shown}: {} bytes is larger than the {MAX_RECIPE_BYTES}-byte limit for recipes",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Recipe(format!("recipe {shown}: cannot read it as UTF-8 text: {e}")))?;
    parse(&text).map_err(|e| e.context(format!("recipe {shown}")))
}

/// Parse and validate recipe text.
pub fn parse(text: &str) -> Result<LoadedRecipe> {
    let value: Value = serde_saphyr::from_str(text)
        .map_err(|e| Error::Recipe(format!("invalid YAML: {e}")))?;
    if !value.is_object() {
        return Err(Error::Recipe("the top level must be a mapping of recipe fields".into()));
    }
    let recipe: Recipe = serde_path_to_error::deserialize(&value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." { Error::Recipe(inner.to_string()) } else { Error::Recipe(format!("{path}: {inner}")) }
    })?;
    let errors = recipe.validate();
    if !errors.is_empty() {
        return Err(Error::Recipe(errors.join("; ")));
    }
    let canonical = crate::util::canonical_json(
        &serde_json::to_value(&recipe).map_err(|e| Error::Internal(e.to_string()))?,
    );
    let hash = crate::util::sha256_hex(canonical.to_string().as_bytes());
    Ok(LoadedRecipe { recipe, hash })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "
name: demo
source: {type: csv, path: data.csv}
schema: {user_column: u, item_column: i}
training: {algorithms: [TopPop]}
output: {path: out.recotem}
";

    #[test]
    fn minimal_recipe_gets_defaults() {
        let r = parse(MINIMAL).unwrap();
        assert_eq!(r.recipe.training.cutoff, 20);
        assert_eq!(r.recipe.training.n_trials, 40);
        assert_eq!(r.recipe.training.split.seed, 42);
        assert_eq!(r.recipe.source_type(), "csv");
        assert_eq!(r.hash.len(), 64);
    }

    #[test]
    fn unknown_keys_name_their_path() {
        let text = MINIMAL.replace("training: {algorithms: [TopPop]}", "training: {algorithms: [TopPop], split: {bogus: 1}}");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("training.split") && e.contains("bogus"), "{e}");
    }

    #[test]
    fn ranges_are_all_reported() {
        let text = MINIMAL
            .replace("name: demo", "name: 'bad name'")
            .replace("training: {algorithms: [TopPop]}", "training: {algorithms: [TopPop], split: {heldout_ratio: 1.5}}");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("name:") && e.contains("heldout_ratio"), "{e}");
    }

    #[test]
    fn same_recipe_same_hash() {
        assert_eq!(parse(MINIMAL).unwrap().hash, parse(MINIMAL).unwrap().hash);
    }
}
