//! The recipe: one YAML file = one model = one recommendation endpoint.
//!
//! Every object rejects unknown keys. These types are the single statement
//! of the recipe's shape: the recipe JSON Schema ([`super::schema`]) is
//! derived from them (schemars), so each default is written once, as the
//! serde default the deserialiser applies, and each range, pattern and enum
//! once, as a `#[schemars(...)]` attribute; the doc comments of the fields
//! are the schema's descriptions. Shapes, types and ranges are checked
//! against that schema before deserialisation; the cross-field rules by
//! [`Recipe::validate`] after it. Both report every problem at once with its
//! field path. `docs/recipe.md` lists the same defaults, and a test compares
//! its tables with the schema.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::Problem;
use super::catalog::Catalog;
use super::paths::{self, Role};

/// The pattern of a SHA-256 pin: 64 lower-case hex digits.
pub const SHA256_PATTERN: &str = "^[0-9a-f]{64}$";

/// A training recipe.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "recotem recipe",
    description = "One recipe = one model = one recommendation endpoint. See docs/recipe.md."
)]
pub struct Recipe {
    /// Recipe name; becomes /v1/recipes/<name>.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub name: String,
    /// The data source; `type` selects the component, the rest is validated
    /// against the JSON Schema the component publishes (the schema printed
    /// by `recotem schema` puts their union here).
    pub source: Value,
    /// Which columns hold users, items and time.
    pub schema: Schema,
    /// Row filtering before training.
    #[serde(default)]
    pub cleansing: Cleansing,
    /// Item metadata stored in the artifact.
    #[serde(default)]
    pub item_metadata: Option<ItemMetadata>,
    /// Search and evaluation settings.
    pub training: Training,
    /// Where the signed artifact goes.
    pub output: Output,
    /// Component pins (see docs/security.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<PluginPins>,
}

/// Pins of the components a recipe uses (see docs/security.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginPins {
    /// Source type or algorithm name -> SHA-256 of the component; another
    /// build is refused.
    #[serde(default)]
    #[schemars(extend("additionalProperties" = {"type": "string", "pattern": SHA256_PATTERN}))]
    pub sha256: std::collections::BTreeMap<String, String>,
}

/// Column mapping.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Column of user ids.
    #[schemars(length(min = 1))]
    pub user_column: String,
    /// Column of item ids.
    #[schemars(length(min = 1))]
    pub item_column: String,
    /// Column of interaction times (needed by time-based splits).
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub time_column: Option<String>,
    /// Unit of a numeric time column.
    #[serde(default)]
    pub time_unit: Option<TimeUnit>,
}

/// Unit of a numeric epoch time column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = super::schema::plain_enum)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(transform = super::schema::plain_enum)]
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

/// Row filtering. A missing field takes its value from [`Cleansing::default`].
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Cleansing {
    /// Drop rows whose user or item is null.
    pub drop_null_ids: bool,
    /// What to do with repeated (user, item) pairs, in source order.
    pub dedup: Dedup,
    /// Fail (min_data_violation) below this many rows after cleansing.
    pub min_rows: Option<u64>,
    /// Fail below this many distinct users.
    pub min_users: Option<u64>,
    /// Fail below this many distinct items.
    pub min_items: Option<u64>,
}

/// The defaults of `cleansing` (also the schema's `default`s).
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
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ItemMetadata {
    /// The data-source component that reads the metadata (`csv`, or any
    /// registered source type).
    #[serde(rename = "type")]
    #[schemars(length(min = 1))]
    pub kind: String,
    /// Local path or URL (http(s) needs sha256).
    #[schemars(length(min = 1))]
    pub path: String,
    /// Fields to keep, in order.
    #[schemars(length(min = 1), inner(length(min = 1)))]
    pub fields: Vec<String>,
    /// What to do when a listed field is missing from the metadata (a YAML
    /// null means `null`).
    #[serde(default, deserialize_with = "on_field_missing")]
    #[schemars(with = "Option<OnFieldMissing>")]
    pub on_field_missing: OnFieldMissing,
    /// SHA-256 of the file, verified when it is read.
    #[serde(default)]
    #[schemars(regex(pattern = SHA256_PATTERN))]
    pub sha256: Option<String>,
    /// The column holding item ids.
    #[serde(default = "item_id_default")]
    #[schemars(regex(pattern = r"\S"))]
    pub item_id_column: String,
    /// Further keys: configuration of the source component.
    #[serde(flatten)]
    #[schemars(skip)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = super::schema::plain_enum)]
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
            SplitScheme::Fixed => "fixed",
        }
    }
}

/// How interactions are held out for evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(transform = super::schema::plain_enum)]
pub enum SplitScheme {
    /// Random interactions of randomly chosen users.
    #[default]
    Random,
    /// Interactions after a global time cut-off.
    TimeGlobal,
    /// Each user's most recent interactions.
    TimeUser,
    /// The split the data carries: `training.split.column` labels every
    /// row train, validation or test.
    Fixed,
}

/// Held-out split settings. A missing field takes its value from
/// [`Split::default`].
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Split {
    /// How interactions are held out (the time schemes need
    /// schema.time_column).
    pub scheme: SplitScheme,
    /// Share of a chosen user's interactions held out.
    #[schemars(extend("exclusiveMinimum" = 0, "exclusiveMaximum" = 1))]
    pub heldout_ratio: f64,
    /// Share of users evaluated.
    #[schemars(range(max = 1), extend("exclusiveMinimum" = 0))]
    pub test_user_ratio: f64,
    /// Seed of the split and of the search.
    pub seed: u64,
    /// The `fixed` scheme's column of part labels (train, validation or
    /// test per row); needed by that scheme and refused by the others.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), extend("default" = null))]
    pub column: Option<String>,
    /// The labels of `column` (the `fixed` scheme only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = null))]
    pub labels: Option<SplitLabels>,
}

/// The defaults of `training.split` (also the schema's `default`s).
impl Default for Split {
    fn default() -> Self {
        Split { scheme: SplitScheme::Random, heldout_ratio: 0.1, test_user_ratio: 1.0, seed: 42, column: None, labels: None }
    }
}

/// The values of a `fixed` split's column. A row whose label is none of
/// them is a data fault (exit 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SplitLabels {
    /// Rows the search trains on (and the final model, with `val`).
    #[schemars(length(min = 1))]
    pub train: String,
    /// Rows each trial is scored on.
    #[schemars(length(min = 1))]
    pub val: String,
    /// Rows the final model is scored on once, never trained on.
    #[schemars(length(min = 1))]
    pub test: String,
}

impl Default for SplitLabels {
    fn default() -> Self {
        SplitLabels { train: "train".into(), val: "val".into(), test: "test".into() }
    }
}

/// Search and evaluation settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Training {
    /// Trainer names or aliases (case-insensitive; `<Name>Recommender`
    /// accepted).
    #[schemars(length(min = 1), inner(length(min = 1)))]
    pub algorithms: Vec<String>,
    /// Metric optimised by the search.
    #[serde(default)]
    pub metric: Metric,
    /// Metric cut-off (`@k`).
    #[serde(default = "cutoff_default")]
    #[schemars(range(min = 1))]
    pub cutoff: u32,
    /// Total trial budget.
    #[serde(default = "n_trials_default")]
    #[schemars(range(min = 1))]
    pub n_trials: u32,
    /// Per-algorithm budgets; keys must name listed algorithms; 0 disables
    /// one.
    #[serde(default)]
    pub per_algorithm_trials: Option<std::collections::BTreeMap<String, i64>>,
    /// Deadline of one trial, seconds.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub per_trial_timeout_seconds: Option<u64>,
    /// Deadline of the whole search, seconds.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<u64>,
    /// Trials run at once.
    #[serde(default = "parallelism_default")]
    #[schemars(range(min = 1))]
    pub parallelism: u32,
    /// Persisted study location ("" = in memory).
    #[serde(default)]
    pub storage_path: String,
    /// Held-out split.
    #[serde(default)]
    pub split: Split,
}

/// Artifact versioning policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(transform = super::schema::plain_enum)]
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
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Output {
    /// Local path, file://, s3://, gs://, az://, abfs(s)://.
    #[schemars(length(min = 1))]
    pub path: String,
    /// `append_sha` writes `<stem>.<sha8>.recotem` and a pointer at `path`;
    /// `always_overwrite` replaces `path` atomically.
    #[serde(default)]
    pub versioning: Versioning,
}

// The defaults of the fields of `training` (also the schema's `default`s).
fn cutoff_default() -> u32 {
    20
}
fn n_trials_default() -> u32 {
    40
}
fn parallelism_default() -> u32 {
    1
}
/// `item_metadata.on_field_missing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = super::schema::plain_enum)]
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
        match (t.split.scheme, &t.split.column) {
            (SplitScheme::Fixed, None) => problems.push(Problem::plain(
                "training.split.scheme: fixed needs training.split.column, the column that labels each row train, \
                 val or test"
                    .to_string(),
            )),
            (SplitScheme::Fixed, Some(_)) => {
                let labels = t.split.labels.clone().unwrap_or_default();
                if labels.train == labels.val || labels.train == labels.test || labels.val == labels.test {
                    problems.push(Problem::plain(
                        "training.split.labels: train, val and test must be three different values".to_string(),
                    ));
                }
            }
            (scheme, _) if t.split.column.is_some() || t.split.labels.is_some() => problems.push(Problem::plain(format!(
                "training.split.column and training.split.labels belong to the fixed scheme, not {}; remove them or \
                 set training.split.scheme: fixed",
                scheme.as_str()
            ))),
            _ => {}
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
