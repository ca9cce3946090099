//! The recipe: one YAML file = one model = one recommendation endpoint.
//!
//! Every object rejects unknown keys. Defaults follow the reference
//! (`docs/recipe.md`). Values are validated by [`Recipe::validate`] after
//! deserialisation, which reports every problem at once with its field path.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemMetadata {
    /// `csv` or `parquet`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Where the metadata lives.
    pub path: String,
    /// Fields to keep, in order.
    pub fields: Vec<String>,
    /// `error` or `null` when a field is missing.
    #[serde(default = "on_field_missing_default")]
    pub on_field_missing: String,
    /// Optional pin of the file's SHA-256.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The column holding item ids.
    #[serde(default = "item_id_default")]
    pub item_id_column: String,
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
fn on_field_missing_default() -> String {
    "error".to_string()
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

    /// Every value problem, each as `field.path: what is wrong`.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            errors.push(format!(
                "name: {:?} must match ^[A-Za-z0-9_-]{{1,64}}$ (it becomes the URL /v1/recipes/<name>)",
                self.name
            ));
        }
        match self.source.get("type") {
            Some(Value::String(t)) if !t.is_empty() => {}
            _ => errors.push("source.type: required, a non-empty string naming the data source".into()),
        }
        if self.schema.user_column.trim().is_empty() {
            errors.push("schema.user_column: must not be empty".into());
        }
        if self.schema.item_column.trim().is_empty() {
            errors.push("schema.item_column: must not be empty".into());
        }
        let t = &self.training;
        if t.algorithms.is_empty() {
            errors.push("training.algorithms: list at least one algorithm".into());
        }
        if t.cutoff < 1 {
            errors.push("training.cutoff: must be >= 1".into());
        }
        if t.n_trials < 1 {
            errors.push("training.n_trials: must be >= 1".into());
        }
        if t.parallelism < 1 {
            errors.push("training.parallelism: must be >= 1".into());
        }
        if t.per_trial_timeout_seconds == Some(0) {
            errors.push("training.per_trial_timeout_seconds: must be >= 1 or null".into());
        }
        if t.timeout_seconds == Some(0) {
            errors.push("training.timeout_seconds: must be >= 1 or null".into());
        }
        let s = &t.split;
        if !(s.heldout_ratio > 0.0 && s.heldout_ratio < 1.0) {
            errors.push(format!("training.split.heldout_ratio: must be in (0, 1), got {}", s.heldout_ratio));
        }
        if !(s.test_user_ratio > 0.0 && s.test_user_ratio <= 1.0) {
            errors.push(format!("training.split.test_user_ratio: must be in (0, 1], got {}", s.test_user_ratio));
        }
        if matches!(s.scheme, SplitScheme::TimeGlobal | SplitScheme::TimeUser) && self.schema.time_column.is_none() {
            errors.push("training.split.scheme: time-based schemes need schema.time_column".into());
        }
        if self.output.path.trim().is_empty() {
            errors.push("output.path: must not be empty".into());
        }
        errors
    }
}
