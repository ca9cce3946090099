//! Recipes: the model ([`model`]) and loading from YAML ([`load`]).

pub mod load;
pub mod model;

pub use load::{LoadedRecipe, load_file};
pub use model::Recipe;
