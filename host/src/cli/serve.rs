//! `recotem serve`: flags and gates; the server itself is [`crate::serve`].

use super::ServeArgs;
use crate::error::{Error, Result};

pub(super) fn run(args: ServeArgs) -> u8 {
    match serve(args) {
        Ok(()) => 0,
        Err(error) => super::fail("serve", &error),
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    if !args.recipes.is_dir() {
        return Err(Error::recipe(format!(
            "--recipes {}: not a directory (give the directory holding the recipe *.yaml files)",
            args.recipes.display()
        )));
    }
    let dev_allow_unsigned = args.dev.check()?;
    let plugin_dir = args.plugin_dir.clone();
    let options = crate::serve::Options {
        recipes: args.recipes,
        host: args.host,
        port: args.port,
        insecure_no_auth: args.insecure_no_auth,
        dev_allow_unsigned,
        plugin_dir: plugin_dir.clone(),
    };
    crate::serve::run(options, move || super::components(plugin_dir.as_deref()).map(|(_, _, catalog)| catalog))
}
