//! The recipe: one YAML file = one model = one recommendation endpoint.
//!
//! Every object rejects unknown keys. Defaults follow the reference
//! (`docs/recipe.md`). Shapes, types and ranges are checked against the
//! recipe JSON Schema ([`super::schema`]) before deserialisation; the
//! cross-field rules by [`Recipe::validate`] after it. Both report every
//! problem at once with its field path.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::Problem;
use super::catalog::Catalog;
use super::paths::{self, Role};

/// A training recipe.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// `^[A-Za-z0-9_-]{1,64}$`; names the serving endpoint.
    pub name: String,
    /// The data source block; `type` selects the component, the rest is
    /// validated against the JSON Schema the component publishes.
    pub source: Value,
    /// Which columns hold users, items and (optionally) time.
    pub schema: Schema,
    /// Row filtering before training.
    #[serde(default)]
    pub cleansing: Cleansing,
    /// Item metadata to store in the artifact.
    #[serde(default)]
    pub item_metadata: Option<ItemMetadata>,
    /// Search and evaluation settings.
    pub training: Training,
    /// Where the artifact goes.
    pub output: Output,
    /// Component pins: `plugins.sha256.<source type or algorithm name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<PluginPins>,
}

/// Pins of the components a recipe uses (see docs/security.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginPins {
    /// Component name → expected SHA-256 of its bytes; a component whose
    /// digest differs is refused.
    #[serde(default)]
    pub sha256: std::collections::BTreeMap<String, String>,
}

/// Column mapping.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Column holding user ids.
    pub user_column: String,
    /// Column holding item ids.
    pub item_column: String,
    /// Optional time column (needed by time-based splits).
    #[serde(default)]
    pub time_column: Option<String>,
    /// Unit of a numeric time column.
    #[serde(default)]
    pub time_unit: Option<TimeUnit>,
}

/// Unit of a numeric epoch time column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// Seconds.
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds.
    Us,
    /// Nanoseconds.
    Ns,
}

/// How duplicate (user, item) pairs are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Dedup {
    /// Keep the first occurrence in source order.
    KeepFirst,
    /// Keep the last occurrence in source order.
    #[default]
    KeepLast,
    /// Keep every row.
    None,
}

impl Dedup {
    /// The name as written in recipes.
    pub fn as_str(self) -> &'static str {
        match self {
            Dedup::KeepFirst => "keep_first",
            Dedup::KeepLast => "keep_last",
            Dedup::None => "none",
        }
    }
}

/// Row filtering.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cleansing {
    /// Drop rows whose user or item is null.
    #[serde(default = "yes")]
    pub drop_null_ids: bool,
    /// Duplicate policy.
    #[serde(default)]
    pub dedup: Dedup,
    /// Minimum rows after cleansing.
    #[serde(default)]
    pub min_rows: Option<u64>,
    /// Minimum distinct users after cleansing.
    #[serde(default)]
    pub min_users: Option<u64>,
    /// Minimum distinct items after cleansing.
    #[serde(default)]
    pub min_items: Option<u64>,
}

impl Default for Cleansing {
    fn default() -> Self {
        Cleansing { drop_null_ids: true, dedup: Dedup::default(), min_rows: None, min_users: None, min_items: None }
    }
}

/// Item metadata read at train time and stored in the artifact.
///
/// Read through any registered data-source component (`type`); keys other
/// than the metadata ones below are that component's configuration, checked
/// against the JSON Schema it publishes, as `source` is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemMetadata {
    /// The data-source component that reads it (`csv`, or any registered
    /// source type).
    #[serde(rename = "type")]
    pub kind: String,
    /// Where the metadata lives.
    pub path: String,
    /// Fields to keep, in order.
    pub fields: Vec<String>,
    /// What to do when a listed field is missing from the metadata.
    #[serde(default, deserialize_with = "on_field_missing")]
    pub on_field_missing: OnFieldMissing,
    /// Optional pin of the file's SHA-256.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The column holding item ids.
    #[serde(default = "item_id_default")]
    pub item_id_column: String,
    /// Further keys: configuration of the source component.
    #[serde(flatten)]
    pub config: serde_json::Map<String, serde_json::Value>,
}

impl ItemMetadata {
    /// The configuration handed to the source component: `type`, `path`,
    /// `sha256` when pinned, and the component's own keys.
    pub fn component_config(&self) -> serde_json::Value {
        let mut config = serde_json::Map::new();
        config.insert("type".into(), self.kind.clone().into());
        config.insert("path".into(), self.path.clone().into());
        if let Some(pin) = &self.sha256 {
            config.insert("sha256".into(), pin.clone().into());
        }
        config.extend(self.config.clone());
        serde_json::Value::Object(config)
    }
}

/// Evaluation metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Normalised discounted cumulative gain.
    #[default]
    Ndcg,
    /// Mean average precision.
    Map,
    /// Recall.
    Recall,
    /// Hit rate.
    Hit,
}

impl Metric {
    /// The name as written in recipes.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Ndcg => "ndcg",
            Metric::Map => "map",
            Metric::Recall => "recall",
            Metric::Hit => "hit",
        }
    }
}

impl SplitScheme {
    /// The name as written in recipes.
    pub fn as_str(self) -> &'static str {
        match self {
            SplitScheme::Random => "random",
            SplitScheme::TimeGlobal => "time_global",
            SplitScheme::TimeUser => "time_user",
        }
    }
}

/// How interactions are held out for evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SplitScheme {
    /// Random interactions of randomly chosen users.
    #[default]
    Random,
    /// Interactions after a global time cut-off.
    TimeGlobal,
    /// Each user's most recent interactions.
    TimeUser,
}

/// Held-out split settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// Scheme.
    #[serde(default)]
    pub scheme: SplitScheme,
    /// Share of a chosen user's interactions held out, in (0, 1).
    #[serde(default = "heldout_default")]
    pub heldout_ratio: f64,
    /// Share of users evaluated, in (0, 1].
    #[serde(default = "one")]
    pub test_user_ratio: f64,
    /// Seed of the split and of the search.
    #[serde(default = "seed_default")]
    pub seed: u64,
}

impl Default for Split {
    fn default() -> Self {
        Split { scheme: SplitScheme::Random, heldout_ratio: 0.1, test_user_ratio: 1.0, seed: 42 }
    }
}

/// Search and evaluation settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    /// Algorithm names (trainer names or aliases, case-insensitive).
    pub algorithms: Vec<String>,
    /// Metric optimised by the search.
    #[serde(default)]
    pub metric: Metric,
    /// Metric cut-off (`@k`).
    #[serde(default = "cutoff_default")]
    pub cutoff: u32,
    /// Total trial budget.
    #[serde(default = "n_trials_default")]
    pub n_trials: u32,
    /// Per-algorithm budgets (names must be listed in `algorithms`).
    #[serde(default)]
    pub per_algorithm_trials: Option<std::collections::BTreeMap<String, i64>>,
    /// Deadline of one trial, seconds.
    #[serde(default)]
    pub per_trial_timeout_seconds: Option<u64>,
    /// Deadline of the whole search, seconds.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Trials run at once.
    #[serde(default = "one_u32")]
    pub parallelism: u32,
    /// Persisted study location ("" = in memory).
    #[serde(default)]
    pub storage_path: String,
    /// Held-out split.
    #[serde(default)]
    pub split: Split,
}

/// Artifact versioning policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Versioning {
    /// Write `output.path` in place (atomically).
    AlwaysOverwrite,
    /// Write `<stem>.<sha8>.recotem` and point `output.path` at it.
    #[default]
    AppendSha,
}

impl From<Versioning> for recotem_core::artifact::store::Versioning {
    fn from(v: Versioning) -> Self {
        match v {
            Versioning::AlwaysOverwrite => Self::AlwaysOverwrite,
            Versioning::AppendSha => Self::AppendSha,
        }
    }
}

impl Versioning {
    /// The name as written in recipes.
    pub fn as_str(self) -> &'static str {
        match self {
            Versioning::AlwaysOverwrite => "always_overwrite",
            Versioning::AppendSha => "append_sha",
        }
    }
}

/// Where the artifact goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Artifact (or pointer) path.
    pub path: String,
    /// Versioning policy.
    #[serde(default)]
    pub versioning: Versioning,
}

fn yes() -> bool {
    true
}
fn one() -> f64 {
    1.0
}
fn one_u32() -> u32 {
    1
}
fn heldout_default() -> f64 {
    0.1
}
fn seed_default() -> u64 {
    42
}
fn cutoff_default() -> u32 {
    20
}
fn n_trials_default() -> u32 {
    40
}
/// `item_metadata.on_field_missing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnFieldMissing {
    /// Fail.
    #[default]
    Error,
    /// Fill the field with nulls.
    Null,
}

/// `error`, `null` or a YAML null (the same as `null`).
fn on_field_missing<'de, D: Deserializer<'de>>(d: D) -> Result<OnFieldMissing, D::Error> {
    match Option::<String>::deserialize(d)?.as_deref() {
        None | Some("null") => Ok(OnFieldMissing::Null),
        Some("error") => Ok(OnFieldMissing::Error),
        Some(_) => Err(serde::de::Error::custom("must be error or null")),
    }
}
fn item_id_default() -> String {
    "item_id".to_string()
}

impl Recipe {
    /// The `source.type` value (validated to be a string at load).
    pub fn source_type(&self) -> &str {
        self.source.get("type").and_then(Value::as_str).unwrap_or("")
    }

    /// The `source.path` value, when the block has one.
    pub fn source_path(&self) -> Option<&str> {
        self.source.get("path").and_then(Value::as_str)
    }

    /// Every cross-field problem, each as `field.path: what is wrong`:
    /// time-based splits need `schema.time_column`; every algorithm (in
    /// `algorithms` and as a `per_algorithm_trials` key) must name a
    /// registered trainer, and each budget key one of the listed
    /// algorithms; every path field follows the path rules. Shapes, types
    /// and ranges are the JSON Schema's job ([`super::schema`]).
    pub fn validate(&self, catalog: &Catalog) -> Vec<Problem> {
        let mut problems = Vec::new();
        let t = &self.training;
        if matches!(t.split.scheme, SplitScheme::TimeGlobal | SplitScheme::TimeUser) && self.schema.time_column.is_none() {
            problems.push(Problem::plain(format!(
                "training.split.scheme: {} needs schema.time_column; set it or use the random scheme",
                t.split.scheme.as_str()
            )));
        }
        let mut listed = Vec::new();
        for (i, name) in t.algorithms.iter().enumerate() {
            match catalog.algorithm(name) {
                Some(canonical) => listed.push(canonical),
                None => problems.push(Problem::plain(format!(
                    "training.algorithms[{i}]: unknown algorithm {name:?}; registered: {}",
                    catalog.algorithm_names()
                ))),
            }
        }
        for key in t.per_algorithm_trials.iter().flat_map(|m| m.keys()) {
            match catalog.algorithm(key) {
                Some(canonical) if listed.contains(&canonical) => {}
                Some(_) => problems.push(Problem::plain(format!(
                    "training.per_algorithm_trials.{key}: not one of training.algorithms; list it there or remove the budget"
                ))),
                None => problems.push(Problem::plain(format!(
                    "training.per_algorithm_trials.{key}: unknown algorithm; registered: {}",
                    catalog.algorithm_names()
                ))),
            }
        }
        if let Some(path) = self.source_path() {
            problems.extend(paths::check("source.path", path, Role::Input));
            // A pin that is not a string is reported as a bad pin, not a missing one.
            let pin = match self.source.get("sha256") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_str().unwrap_or_default()),
            };
            problems.extend(paths::check_pin("source", path, pin));
        }
        if let Some(meta) = &self.item_metadata {
            problems.extend(paths::check("item_metadata.path", &meta.path, Role::Input));
            problems.extend(paths::check_pin("item_metadata", &meta.path, meta.sha256.as_deref()));
        }
        problems.extend(paths::check("output.path", &self.output.path, Role::Output));
        problems
    }
}
