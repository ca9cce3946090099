//! Recipes: the model ([`model`]), loading ([`load`]: bounded read, safe
//! YAML, env expansion ([`env`]), the recipe and source JSON Schemas
//! ([`schema`]), cross-field and path rules ([`paths`])), what recipes are
//! checked against ([`catalog`]) and recipe directories ([`dir`]).

pub mod catalog;
pub mod dir;
pub mod env;
pub mod load;
pub mod model;
pub mod paths;
pub mod schema;

pub use catalog::Catalog;
pub use load::{LoadOptions, LoadedRecipe, load_file};
pub use model::Recipe;

/// One thing wrong with a recipe, as `field.path: what is wrong`.
/// `security` marks violations of a security rule (env blacklist, path
/// schemes, credentials, containment), which directory loading logs as such.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The message, starting with the field path.
    pub message: String,
    /// A security-rule violation.
    pub security: bool,
}

impl Problem {
    /// An ordinary problem.
    pub fn plain(message: String) -> Self {
        Problem { message, security: false }
    }

    /// A security-rule violation.
    pub fn security(message: String) -> Self {
        Problem { message, security: true }
    }
}

/// Every problem of a stage as one error (exit 2): a security error when
/// any of them is one.
pub fn problems_error(problems: Vec<Problem>) -> crate::Error {
    let security = problems.iter().any(|p| p.security);
    let message = match problems.len() {
        1 => problems.into_iter().map(|p| p.message).collect::<String>(),
        n => format!(
            "{n} problems: {}",
            problems.into_iter().map(|p| p.message).collect::<Vec<_>>().join("; ")
        ),
    };
    if security { crate::Error::recipe_security(message) } else { crate::Error::recipe(message) }
}
