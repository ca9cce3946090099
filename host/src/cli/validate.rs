//! `recotem validate`: load a recipe (or every recipe of a directory) with
//! both validation stages, then run the source component's `probe` on the
//! same input a real run would open. Never reads the data, never touches
//! `output.path`.

use super::{ValidateArgs, components};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::recipe::{self, LoadOptions, LoadedRecipe};

pub(super) fn run(args: ValidateArgs) -> u8 {
    match validate(&args) {
        Ok(()) => {
            println!("Validation passed.");
            0
        }
        Err(error) => super::fail("validate", &error),
    }
}

fn validate(args: &ValidateArgs) -> Result<()> {
    let target = &args.target;
    if !target.exists() {
        return Err(Error::recipe(format!(
            "{}: no such file or directory (give a recipe YAML file or a directory of them)",
            target.display()
        )));
    }
    let (runtime, registry, catalog) = components(args.plugin_dir.as_deref())?;
    let overrides = Default::default();
    let options = LoadOptions { catalog: &catalog, env_overrides: &overrides };
    let recipes: Vec<LoadedRecipe> = if target.is_dir() {
        recipe::dir::load_strict(target, &options)?.into_iter().map(|(_, r)| r).collect()
    } else {
        vec![recipe::load_file(target, &options)?]
    };
    if recipes.is_empty() {
        return Err(Error::recipe(format!("{}: the directory holds no *.yaml recipe", target.display())));
    }
    for loaded in &recipes {
        let recipe = &loaded.recipe;
        println!("Recipe '{}': schema OK", recipe.name);
        let source = registry.source(recipe.source_type())?;
        if let Some(pins) = &recipe.plugins {
            registry.check_pins(&pins.sha256)?;
        }
        let input = crate::plugin::grants::grant_for_probe(source, crate::plugin::grants::Request::source(recipe))?;
        let config = serde_json::to_string(&recipe.source).map_err(|e| Error::internal(e.to_string()))?;
        let summary = source.probe(&runtime, &config, input).map_err(|e| e.context(format!("recipe {:?}", recipe.name)))?;
        Event::info("source_probe_done")
            .field("name", recipe.name.clone())
            .field("type", source.type_name().to_string())
            .field("probed", summary.is_some())
            .field("summary", summary.clone().unwrap_or_default())
            .emit();
        match summary {
            Some(_) => println!("DataSource: probe OK ({})", source.type_name()),
            None => println!("DataSource: extras OK ({}, no probe defined)", source.type_name()),
        }
    }
    Ok(())
}
