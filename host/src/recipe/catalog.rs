//! What a recipe is checked against: the registered source types (with the
//! JSON Schema and never-expand fields each publishes) and the registered
//! algorithm names. Built from the plugin registry (`Registry::catalog`); plain data, so the
//! recipe rules are testable without compiling components.

/// True when `query` is `name` or one of `aliases`, case-insensitively,
/// optionally followed by `Recommender` (`toppop`, `TopPopRecommender`).
pub fn answers_to(name: &str, aliases: &[String], query: &str) -> bool {
    let stem = match query.len().checked_sub("recommender".len()) {
        Some(at) if query.is_char_boundary(at) && query[at..].eq_ignore_ascii_case("recommender") => &query[..at],
        _ => query,
    };
    std::iter::once(name)
        .chain(aliases.iter().map(String::as_str))
        .any(|n| n.eq_ignore_ascii_case(query) || (!stem.is_empty() && n.eq_ignore_ascii_case(stem)))
}

/// One registered data source.
#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// The `source.type` value that selects it.
    pub type_name: String,
    /// JSON Schema (text) of its `source` block.
    pub config_schema: String,
    /// Top-level `source` fields never env-expanded.
    pub never_expand: Vec<String>,
}

/// One registered trainer.
#[derive(Debug, Clone)]
pub struct AlgorithmSpec {
    /// Canonical name.
    pub name: String,
    /// Other names it answers to.
    pub aliases: Vec<String>,
}

/// Every registered source and trainer.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Sources, in registration order.
    pub sources: Vec<SourceSpec>,
    /// Trainers, in registration order.
    pub algorithms: Vec<AlgorithmSpec>,
}

impl Catalog {
    /// The source registered for `type_name`.
    pub fn source(&self, type_name: &str) -> Option<&SourceSpec> {
        self.sources.iter().find(|s| s.type_name == type_name)
    }

    /// Registered source types, comma-separated, for messages.
    pub fn source_types(&self) -> String {
        self.sources.iter().map(|s| s.type_name.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// The canonical name of the trainer `name` designates (its name or an
    /// alias, case-insensitive, optionally followed by `Recommender`).
    pub fn algorithm(&self, name: &str) -> Option<&str> {
        self.algorithms.iter().find(|a| answers_to(&a.name, &a.aliases, name)).map(|a| a.name.as_str())
    }

    /// Canonical algorithm names, comma-separated, for messages.
    pub fn algorithm_names(&self) -> String {
        self.algorithms.iter().map(|a| a.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}
