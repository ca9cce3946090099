//! Recipe directories (RCP-18): only the direct `*.yaml` children (not
//! `.yml`, not recursive), in name order; each must still be inside the
//! directory after resolving symlinks.
//!
//! - [`load_strict`] (train-style use, `recotem validate DIR`): the first
//!   failure aborts, and so does a name used by two files.
//! - [`load_lenient`] (serve): nothing aborts except an unreadable
//!   directory. A file that fails becomes a stub named after its stem
//!   (`_1`, `_2`… when taken) with `recipe_load_error_skipped`, or
//!   `recipe_security_violation_skipped` when it broke a security rule; a
//!   duplicate name keeps the first file and logs
//!   `recipe_duplicate_name_skipped`.

use std::path::{Path, PathBuf};

use super::load::{LoadOptions, LoadedRecipe, load_file};
use crate::error::{Error, Result};
use crate::events::Event;

/// One file of a leniently loaded directory.
#[derive(Debug)]
pub enum Entry {
    /// A valid recipe.
    Loaded {
        /// The file.
        path: PathBuf,
        /// The recipe.
        recipe: Box<LoadedRecipe>,
    },
    /// A file that failed: serve registers it as not loaded.
    Broken {
        /// Stub name derived from the file stem.
        name: String,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        error: String,
        /// It broke a security rule.
        security: bool,
    },
}

/// Load every recipe of `dir`, failing on the first problem.
pub fn load_strict(dir: &Path, options: &LoadOptions<'_>) -> Result<Vec<(PathBuf, LoadedRecipe)>> {
    let mut out: Vec<(PathBuf, LoadedRecipe)> = Vec::new();
    for path in yaml_children(dir)? {
        let loaded = load_one(dir, &path, options)?;
        if let Some((first, _)) = out.iter().find(|(_, r)| r.recipe.name == loaded.recipe.name) {
            return Err(Error::recipe(format!(
                "recipes {} and {} both use the name {:?}; names must be unique in a directory",
                first.display(),
                path.display(),
                loaded.recipe.name
            )));
        }
        out.push((path, loaded));
    }
    Event::info("recipes_directory_loaded").field("dir", dir.display().to_string()).field("count", out.len()).emit();
    Ok(out)
}

/// Load every recipe of `dir`, skipping (and logging) what fails.
pub fn load_lenient(dir: &Path, options: &LoadOptions<'_>) -> Result<Vec<Entry>> {
    let mut out: Vec<Entry> = Vec::new();
    let taken = |out: &[Entry], name: &str| {
        out.iter().any(|e| match e {
            Entry::Loaded { recipe, .. } => recipe.recipe.name == name,
            Entry::Broken { name: n, .. } => n == name,
        })
    };
    for path in yaml_children(dir)? {
        match load_one(dir, &path, options) {
            Ok(loaded) => {
                let kept = out.iter().find_map(|e| match e {
                    Entry::Loaded { path: p, recipe } if recipe.recipe.name == loaded.recipe.name => Some(p.clone()),
                    _ => None,
                });
                if let Some(kept) = kept {
                    Event::warn("recipe_duplicate_name_skipped")
                        .field("name", loaded.recipe.name.clone())
                        .field("path", path.display().to_string())
                        .field("kept", kept.display().to_string())
                        .emit();
                    continue;
                }
                out.push(Entry::Loaded { path, recipe: Box::new(loaded) });
            }
            Err(error) => {
                let security = error.kind() == crate::error::Kind::RecipeSecurity;
                let event = if security {
                    Event::error("recipe_security_violation_skipped")
                } else {
                    Event::warn("recipe_load_error_skipped")
                };
                event.field("path", path.display().to_string()).field("error", error.to_string()).emit();
                let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let mut name = stem.clone();
                let mut n = 0;
                while taken(&out, &name) {
                    n += 1;
                    name = format!("{stem}_{n}");
                }
                out.push(Entry::Broken { name, path, error: error.to_string(), security });
            }
        }
    }
    let loaded = out.iter().filter(|e| matches!(e, Entry::Loaded { .. })).count();
    Event::info("recipes_directory_loaded_lenient")
        .field("dir", dir.display().to_string())
        .field("loaded", loaded)
        .field("failed", out.len() - loaded)
        .emit();
    Ok(out)
}

/// Load one file after checking it stays inside `dir`.
fn load_one(dir: &Path, path: &Path, options: &LoadOptions<'_>) -> Result<LoadedRecipe> {
    let shown = path.display();
    let real_dir = std::fs::canonicalize(dir)
        .map_err(|e| Error::recipe(format!("recipe directory {}: cannot resolve it: {e}", dir.display())))?;
    let real = std::fs::canonicalize(path)
        .map_err(|e| Error::recipe(format!("recipe {shown}: cannot resolve it (a dangling symlink?): {e}")))?;
    if !real.starts_with(&real_dir) {
        return Err(Error::recipe_security(format!(
            "recipe {shown}: a symlink leading outside the recipe directory is not allowed; copy the file in instead"
        )));
    }
    load_file(path, options)
}

/// The direct `*.yaml` children of `dir`, sorted by name.
fn yaml_children(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::recipe(format!("recipe directory {}: cannot list it: {e}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::recipe(format!("recipe directory {}: {e}", dir.display())))?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "yaml") && !path.is_dir() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::load::tests::{MINIMAL, catalog};
    use std::collections::BTreeMap;

    fn write(dir: &Path, file: &str, name: &str) {
        std::fs::write(dir.join(file), MINIMAL.replace("name: demo", &format!("name: {name}"))).unwrap();
    }

    fn with_options<T>(f: impl FnOnce(&LoadOptions<'_>) -> T) -> T {
        let catalog = catalog();
        let overrides = BTreeMap::new();
        f(&LoadOptions { catalog: &catalog, env_overrides: &overrides })
    }

    #[test]
    fn only_direct_yaml_children_sorted() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "b.yaml", "b");
        write(d.path(), "a.yaml", "a");
        write(d.path(), "c.yml", "c");
        std::fs::create_dir(d.path().join("sub")).unwrap();
        write(&d.path().join("sub"), "d.yaml", "d");
        let names: Vec<String> =
            with_options(|o| load_strict(d.path(), o)).unwrap().into_iter().map(|(_, r)| r.recipe.name).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn strict_aborts_on_duplicates_and_errors() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.yaml", "same");
        write(d.path(), "b.yaml", "same");
        let e = with_options(|o| load_strict(d.path(), o)).unwrap_err().to_string();
        assert!(e.contains("both use the name \"same\""), "{e}");
        std::fs::write(d.path().join("b.yaml"), "name: [").unwrap();
        assert!(with_options(|o| load_strict(d.path(), o)).is_err());
    }

    #[test]
    fn lenient_keeps_first_and_stubs_broken_files() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.yaml", "same");
        write(d.path(), "b.yaml", "same");
        std::fs::write(d.path().join("same.yaml"), "name: [").unwrap();
        std::fs::write(d.path().join("x.yaml"), MINIMAL.replace("data.csv", "memory://x")).unwrap();
        let entries = with_options(|o| load_lenient(d.path(), o)).unwrap();
        assert_eq!(entries.len(), 3, "{entries:?}");
        assert!(matches!(&entries[0], Entry::Loaded { recipe, .. } if recipe.recipe.name == "same"));
        assert!(matches!(&entries[1], Entry::Broken { name, security: false, .. } if name == "same_1"));
        assert!(matches!(&entries[2], Entry::Broken { name, security: true, .. } if name == "x"));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_leaving_the_directory_are_rejected() {
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "evil.yaml", "evil");
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("evil.yaml"), d.path().join("evil.yaml")).unwrap();
        let e = with_options(|o| load_strict(d.path(), o)).unwrap_err();
        assert_eq!(e.kind(), crate::error::Kind::RecipeSecurity, "{e}");
        let entries = with_options(|o| load_lenient(d.path(), o)).unwrap();
        assert!(matches!(&entries[0], Entry::Broken { security: true, .. }));
        std::fs::remove_file(d.path().join("evil.yaml")).unwrap();
        // Symlinks that resolve inside the directory are fine: to a file
        // deeper inside, and to a sibling (whose name is then used twice).
        std::fs::create_dir(d.path().join("nested")).unwrap();
        write(&d.path().join("nested"), "n.yaml", "nested");
        std::os::unix::fs::symlink(d.path().join("nested/n.yaml"), d.path().join("n.yaml")).unwrap();
        let names: Vec<String> =
            with_options(|o| load_strict(d.path(), o)).unwrap().into_iter().map(|(_, r)| r.recipe.name).collect();
        assert_eq!(names, ["nested"]);
        write(d.path(), "real.yaml", "real");
        std::os::unix::fs::symlink(d.path().join("real.yaml"), d.path().join("alias.yaml")).unwrap();
        let e = with_options(|o| load_strict(d.path(), o)).unwrap_err().to_string();
        assert!(e.contains("both use the name \"real\""), "{e}");
    }
}
