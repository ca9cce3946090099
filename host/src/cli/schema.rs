//! `recotem schema`: print the recipe JSON Schema (draft 2020-12), with
//! `source` as the union of every registered component's config schema.

use super::{SchemaArgs, components};
use crate::error::{Error, Result};
use crate::recipe::schema::full_schema;

pub(super) fn run(args: SchemaArgs) -> u8 {
    match render(&args) {
        Ok(text) => {
            println!("{text}");
            0
        }
        Err(error) => super::fail("schema", &error),
    }
}

fn render(args: &SchemaArgs) -> Result<String> {
    let (_, _, catalog) = components(args.plugin_dir.as_deref())?;
    let schema = full_schema(&catalog)?;
    serde_json::to_string_pretty(&schema).map_err(|e| Error::internal(format!("rendering the schema: {e}")))
}
