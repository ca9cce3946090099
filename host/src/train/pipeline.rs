//! `recotem train`: recipe → data → cleansing → split → search → refit →
//! signed artifact, with one structured event per phase.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::journal::Journal;
use super::progress::Progress;
use super::search::{self, Outcome, SearchSettings};
use super::tpe::Sampler;
use crate::artifact::keys::SigningKey;
use crate::artifact::payload::{self, Payload};
use crate::artifact::{container, store};
use crate::data::{Split, Splits};
use crate::data::interactions::{Cleaned, Interactions};
use crate::error::{Error, Result, TrainingCode};
use crate::model::Model;
use crate::events::Event;
use crate::plugin::Registry;
use crate::plugin::engine::Runtime;
use crate::plugin::source::SourceComponent;
use crate::plugin::trainer::TrainerComponent;
use crate::recipe::LoadedRecipe;
use crate::recipe::model::Metric;

/// Default deadline of one trial when the recipe sets none.
const DEFAULT_TRIAL_TIMEOUT: Duration = Duration::from_secs(3600);

/// Settings of one run, from the command line.
pub struct TrainOptions {
    /// Run id (events, header).
    pub run_id: String,
    /// When the run started (RFC 3339, seconds).
    pub trained_at: String,
    /// Suppress `trial_done` events.
    pub quiet: bool,
    /// Add params to `trial_done` events.
    pub verbose: bool,
    /// The signing key to use.
    pub key: SigningKey,
}

/// Facts learned during a run, for the `train_error` event.
#[derive(Debug, Default, Clone)]
pub struct RunFacts {
    /// Signing kid, once resolved.
    pub kid: Option<String>,
    /// Recipe hash.
    pub recipe_hash: Option<String>,
    /// Data statistics, once known.
    pub stats: Option<(u64, u64, u64)>,
}

/// What a successful run produced.
pub struct TrainSummary {
    /// The artifact file.
    pub artifact: PathBuf,
    /// Best trainer.
    pub best_class: String,
    /// Its score.
    pub best_score: f64,
    /// Trials run.
    pub trials: usize,
}

/// The signing key ring for `train`: `RECOTEM_SIGNING_KEYS` is required.
/// Logs `signing_keyring_built` (fingerprints only).
pub fn signing_key() -> Result<SigningKey> {
    match crate::settings::get().key_ring()? {
        Some(ring) => {
            ring.log_built();
            Ok(ring.active().clone())
        }
        None => Err(Error::signing_key_missing(
            "RECOTEM_SIGNING_KEYS is not set: an artifact cannot be signed. Generate a key with \
             `recotem keygen` and export the printed env_entry",
        )),
    }
}

/// Run the pipeline. `facts` is filled as the run proceeds.
///
/// The run is its stages, each a function from one typed value to the
/// next: [`prepare`] → [`read`] → [`clean`] → [`split`] → [`search`] →
/// [`refit`] → [`seal`] → [`write`]. Between stages the run stops if it was
/// cancelled (SIGINT/SIGTERM), before anything is written.
pub fn run(
    runtime: &Runtime,
    registry: &Registry,
    loaded: &LoadedRecipe,
    options: &TrainOptions,
    facts: &mut RunFacts,
) -> Result<TrainSummary> {
    let recipe = &loaded.recipe;
    facts.kid = Some(options.key.kid.clone());
    facts.recipe_hash = Some(loaded.hash.clone());
    let started = Instant::now();
    Event::info("training_started")
        .field("name", recipe.name.clone())
        .field("run_id", options.run_id.clone())
        .field("recipe_hash", loaded.hash.clone())
        .field("kid", options.key.kid.clone())
        .emit();

    let plan = prepare(registry, loaded)?;
    checkpoint("read")?;
    let table = read(runtime, &plan)?;
    checkpoint("clean")?;
    let cleaned = clean(table, &recipe.cleansing)?;
    facts.stats = Some((cleaned.n_rows, cleaned.users.len() as u64, cleaned.items.len() as u64));
    // Item metadata of the model's items, read now so a bad file fails the
    // run before the search.
    let metadata = match (&recipe.item_metadata, plan.metadata_source) {
        (Some(meta), Some(component)) => crate::data::item_metadata::read(runtime, component, meta, &cleaned.items)?,
        _ => payload::ItemMetadata::default(),
    };
    checkpoint("split")?;
    let Splits { search: split, refit: refit_matrix, test } = split(&cleaned, &recipe.training.split)?;
    checkpoint("search")?;
    let searched = search(runtime, &plan, loaded, &split, options)?;
    drop(split);
    checkpoint("refit")?;
    let mut cleaned = cleaned;
    if let Some(matrix) = refit_matrix {
        // A fixed split: the final model (and the artifact's interactions)
        // never include the test rows.
        cleaned.matrix = matrix;
    }
    let model = refit(runtime, &plan, &cleaned, &searched)?;
    let test_score = test.map(|test| score_test(&plan, &model, &test));
    checkpoint("write")?;
    let sealed = seal(&plan, loaded, options, cleaned, model, metadata, &searched, test_score)?;
    let written = write(&plan, &sealed)?;
    Event::info("artifact_written")
        .field("versioning", recipe.output.versioning.as_str())
        .field("artifact", written.artifact.display().to_string())
        .field("pointer", written.pointer.as_ref().map(|p| p.display().to_string()))
        .field("kid", options.key.kid.clone())
        .field("bytes", sealed.bytes.len())
        .field("wall_seconds", started.elapsed().as_secs_f64())
        .emit();
    Ok(TrainSummary {
        artifact: written.artifact,
        best_class: plan.trainers[searched.best.trainer].info.name.clone(),
        best_score: searched.best.score,
        trials: searched.results.len(),
    })
}

/// Stop the run when it was cancelled, naming the stage it did not start.
fn checkpoint(next: &str) -> Result<()> {
    Event::debug("stage_started").field("stage", next.to_string()).emit();
    if crate::plugin::cancel::requested() {
        return Err(Error::training(
            TrainingCode::Cancelled,
            format!("the run was cancelled (SIGINT/SIGTERM) before the {next} stage; no artifact was written"),
        ));
    }
    Ok(())
}

/// What a run will use, resolved before any data is read.
pub struct Plan<'a> {
    recipe: &'a crate::recipe::Recipe,
    output: PathBuf,
    caps: store::Caps,
    source: &'a SourceComponent,
    /// The source component of `item_metadata`, when the recipe has one.
    metadata_source: Option<&'a SourceComponent>,
    trainers: Vec<&'a TrainerComponent>,
    per_trial_timeout: Duration,
    /// When the run started (`training.timeout_seconds` counts from here).
    started: Instant,
    /// `training.storage_path`: the directory of the study journals.
    storage: Option<PathBuf>,
}

/// Check what this version supports, resolve the output, caps, source and
/// trainers, and the recipe's pins.
fn prepare<'a>(registry: &'a Registry, loaded: &'a LoadedRecipe) -> Result<Plan<'a>> {
    let recipe = &loaded.recipe;
    let storage = match recipe.training.storage_path.trim() {
        "" => None,
        raw => Some(crate::recipe::paths::local_path(raw).ok_or_else(|| {
            Error::recipe(
                "training.storage_path: only a local directory is supported (database URLs such as sqlite:// or \
                 postgresql:// are not); give the directory that keeps the study journals",
            )
        })?),
    };
    let output = crate::recipe::paths::local_path(&recipe.output.path).ok_or_else(|| {
        let scheme = crate::recipe::paths::split_scheme(&recipe.output.path).scheme.unwrap_or_default();
        Error::artifact(format!(
            "output.path: {scheme}:// outputs are not supported by this version of recotem yet; write to a local path"
        ))
    })?;
    // Both caps are read (and their order checked, exit 8) before any work.
    let caps = crate::settings::get().caps()?;
    let source = registry.source(recipe.source_type())?;
    let trainers = resolve_trainers(registry, &recipe.training.algorithms)?;
    if let Some(pins) = &recipe.plugins {
        registry.check_pins(&pins.sha256)?;
    }
    let metadata_source = recipe.item_metadata.as_ref().map(|meta| crate::data::item_metadata::component(registry, meta)).transpose()?;
    let per_trial_timeout = recipe.training.per_trial_timeout_seconds.map_or(DEFAULT_TRIAL_TIMEOUT, Duration::from_secs);
    Ok(Plan { recipe, output, caps, source, metadata_source, trainers, per_trial_timeout, started: Instant::now(), storage })
}

/// Read every interaction through the source component.
fn read(runtime: &Runtime, plan: &Plan<'_>) -> Result<Interactions> {
    Event::info("fetching_data").field("type", plan.source.type_name().to_string()).emit();
    let table = crate::data::ingest::read_source(runtime, plan.source, plan.recipe, plan.started)?;
    Event::info("data_fetched").field("n_rows", table.n_rows()).emit();
    Ok(table)
}

/// Drop nulls and duplicates, check the minimums, build the matrix.
fn clean(table: Interactions, rules: &crate::recipe::model::Cleansing) -> Result<Cleaned> {
    let cleaned = table.cleanse(rules)?;
    Event::info("data_cleansed")
        .field("n_rows", cleaned.n_rows)
        .field("drop_count", cleaned.drop_count)
        .field("n_users", cleaned.users.len())
        .field("n_items", cleaned.items.len())
        .emit();
    Ok(cleaned)
}

/// Hold out interactions for evaluation, as `training.split` says.
fn split(cleaned: &Cleaned, cfg: &crate::recipe::model::Split) -> Result<Splits> {
    Event::info("splitting_data").field("scheme", cfg.scheme.as_str()).emit();
    let splits = crate::data::splits(cleaned, cfg)?;
    let held = |s: &Split| s.heldout.iter().map(|(_, h)| h.len()).sum::<usize>();
    let mut done = Event::info("split_done")
        .field("n_train", splits.search.train.nnz())
        .field("n_heldout", held(&splits.search))
        .field("n_eval_users", splits.search.heldout.len());
    if let Some(test) = &splits.test {
        done = done.field("n_test", held(test)).field("n_test_users", test.heldout.len());
    }
    done.emit();
    Ok(splits)
}

/// Score the final model once on a fixed split's test part (`test_scored`),
/// with the search's metric and cut-off.
fn score_test(plan: &Plan<'_>, model: &Model, test: &Split) -> f64 {
    let t = &plan.recipe.training;
    let score = crate::train::eval::evaluate(model, test, t.metric, t.cutoff as usize);
    Event::info("test_scored")
        .field("metric", t.metric.as_str())
        .field("cutoff", t.cutoff)
        .field("score", score)
        .field("n_users", test.heldout.len())
        .emit();
    score
}

/// The best trial of a search.
struct Best {
    /// Index into the plan's trainers.
    trainer: usize,
    params: Vec<crate::plugin::bindings::source::recotem::plugin::types::Param>,
    number: usize,
    score: f64,
}

/// What the search found.
struct Searched {
    results: Vec<search::TrialResult>,
    best: Best,
    n_completed: usize,
    n_timed_out: usize,
}

/// Plan the trials, run them, pick the best, apply the outcome rules
/// (timeouts, no completed trial, zero score).
fn search(runtime: &Runtime, plan: &Plan<'_>, loaded: &LoadedRecipe, split: &Split, options: &TrainOptions) -> Result<Searched> {
    let t = &plan.recipe.training;
    let seed = t.split.seed;
    let explicit: Vec<Option<i64>> = plan
        .trainers
        .iter()
        .map(|tr| {
            t.per_algorithm_trials
                .as_ref()
                .and_then(|m| m.iter().find(|(k, _)| tr.answers_to(k)).map(|(_, v)| *v))
        })
        .collect();
    let budget = search::budgets(t.n_trials, &explicit);
    let slots = search::plan(&plan.trainers, &budget);
    // A study with a journal resumes: what it holds is not run again.
    let mut journal = None;
    let (done, pending) = match &plan.storage {
        Some(dir) => {
            let study = format!("recotem_{}_{}", plan.recipe.name, options.run_id);
            let (j, entries) = Journal::open(dir, &study, &loaded.hash)?;
            let (done, pending) = search::restore(&plan.trainers, &slots, &entries, j.path())?;
            Event::info(if done.is_empty() { "study_started" } else { "study_resumed" })
                .field("study", study)
                .field("journal", j.path().display().to_string())
                .field("n_done", done.len())
                .field("n_remaining", pending.len())
                .emit();
            journal = Some(j);
            (done, pending)
        }
        None => (Vec::new(), slots.clone()),
    };
    Event::info("search_started")
        .field("algorithms", plan.trainers.iter().map(|tr| tr.info.name.clone()).collect::<Vec<_>>())
        .field("n_trials", slots.len())
        .field("n_remaining", pending.len())
        .field("budgets", plan.trainers.iter().zip(&budget).map(|(tr, b)| (tr.info.name.clone(), Value::from(*b))).collect::<serde_json::Map<_, _>>())
        .field("metric", t.metric.as_str())
        .field("cutoff", t.cutoff)
        .emit();
    let settings = SearchSettings {
        metric: t.metric,
        cutoff: t.cutoff as usize,
        seed,
        parallelism: t.parallelism as usize,
        per_trial_timeout: plan.per_trial_timeout,
        timeout: t.timeout_seconds.map(Duration::from_secs),
        quiet: options.quiet,
        verbose: options.verbose,
        sampler: Sampler::Tpe,
        pruner: search::MedianPruner::default(),
    };
    let progress = Progress::new(slots.len(), done.len(), options.quiet);
    let results = search::run(runtime, &plan.trainers, pending, done, split, &settings, journal.as_mut(), &progress);
    drop(progress);
    let results = results?;
    checkpoint("selection of the best trial")?;
    let completed: Vec<(&search::TrialResult, f64)> = results
        .iter()
        .filter_map(|r| match r.outcome {
            Outcome::Scored(s) => Some((r, s)),
            _ => None,
        })
        .collect();
    let n_timed_out = results.iter().filter(|r| matches!(r.outcome, Outcome::TimedOut)).count();
    if n_timed_out > 0 && n_timed_out as f64 > completed.len() as f64 / 2.0 {
        return Err(Error::training(
            TrainingCode::ExcessivePerTrialTimeouts,
            format!(
                "{n_timed_out} of {} trials hit the per-trial timeout of {} s; increase training.per_trial_timeout_seconds",
                results.len(),
                plan.per_trial_timeout.as_secs()
            ),
        ));
    }
    let best = completed
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.trial.number.cmp(&a.0.trial.number)))
        .copied();
    let Some((best, best_score)) = best else {
        let reasons: Vec<String> = results
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Failed(m) => Some(m.clone()),
                _ => None,
            })
            .take(3)
            .collect();
        return Err(Error::training(
            TrainingCode::NoCompletedTrials,
            format!("no trial completed ({} run); first failures: {}", results.len(), reasons.join(" | ")),
        ));
    };
    let best_trainer = plan.trainers[best.trial.trainer];
    Event::info("tuning_complete")
        .field("n_completed", completed.len())
        .field("best_score", best_score)
        .field("best_algorithm", best_trainer.info.name.clone())
        .emit();
    if best_score == 0.0 {
        if t.metric == Metric::Hit {
            Event::warn("zero_score_hit_metric").emit();
        } else {
            return Err(Error::training(
                TrainingCode::ZeroScore,
                format!(
                    "every completed trial scored 0 ({}@{}); the held-out split may be too small — adjust training.split or cleansing",
                    t.metric.as_str(),
                    t.cutoff
                ),
            ));
        }
    }
    Event::info("search_done")
        .field("best_class", best_trainer.info.name.clone())
        .field("best_score", best_score)
        .field("n_completed", completed.len())
        .emit();
    let best = Best { trainer: best.trial.trainer, params: best.trial.params.clone(), number: best.trial.number, score: best_score };
    let n_completed = completed.len();
    Ok(Searched { results, best, n_completed, n_timed_out })
}

/// Fit the best configuration on all the data.
fn refit(runtime: &Runtime, plan: &Plan<'_>, cleaned: &Cleaned, searched: &Searched) -> Result<Model> {
    let trainer = plan.trainers[searched.best.trainer];
    Event::info("training_final_model").field("recommender", trainer.info.name.clone()).emit();
    let timeout = plan.per_trial_timeout.saturating_mul(2);
    let model = search::fit(runtime, trainer, &cleaned.matrix, &searched.best.params, plan.recipe.training.split.seed, timeout)
        .map_err(|outcome| {
            let why = match outcome {
                Outcome::Failed(m) => m,
                Outcome::TimedOut => format!("timed out after {} s", timeout.as_secs()),
                Outcome::Scored(_) | Outcome::Pruned { .. } | Outcome::Skipped => "unexpected outcome".into(),
            };
            Error::training(TrainingCode::FinalTrainingError, format!("the final refit of {} failed: {why}", trainer.info.name))
        })?;
    Event::info("final_model_trained").field("kind", model.kind()).emit();
    Ok(model)
}

/// A signed artifact, ready to write.
struct Sealed {
    bytes: Vec<u8>,
}

/// Build the header and payload and sign them; refuse an artifact that a
/// reader with the same caps would refuse.
fn seal(
    plan: &Plan<'_>,
    loaded: &LoadedRecipe,
    options: &TrainOptions,
    cleaned: Cleaned,
    model: Model,
    metadata: payload::ItemMetadata,
    searched: &Searched,
    test_score: Option<f64>,
) -> Result<Sealed> {
    let recipe = plan.recipe;
    let t = &recipe.training;
    let best_trainer = plan.trainers[searched.best.trainer];
    let mut sources_used = vec![("source", plan.source)];
    if let Some(meta) = plan.metadata_source {
        sources_used.push(("metadata", meta));
    }
    let names: Vec<String> = plan.trainers.iter().map(|tr| tr.info.name.clone()).collect();
    let mut header = json!({
        "recipe_name": recipe.name,
        "recipe_hash": loaded.hash,
        "run_id": options.run_id,
        "trained_at": options.trained_at,
        "kid": options.key.kid,
        "recotem_version": env!("CARGO_PKG_VERSION"),
        "wit_version": crate::plugin::registry::WIT_VERSION,
        "best_class": best_trainer.info.name,
        "best_params": search::params_json(&searched.best.params),
        "best_score": searched.best.score,
        "metric": t.metric.as_str(),
        "cutoff": t.cutoff,
        "model_kind": model.kind(),
        "algorithms": names,
        "tuning": {
            "tried_algorithms": names,
            "n_trials": searched.results.len(),
            "n_completed": searched.n_completed,
            "n_failed": searched.results.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_))).count(),
            "n_timed_out": searched.n_timed_out,
            "n_orphaned": 0,
            "best_trial_number": searched.best.number,
            "search_seed": t.split.seed,
        },
        "data_stats": {
            "n_rows": cleaned.n_rows,
            "n_users": cleaned.users.len(),
            "n_items": cleaned.items.len(),
            "drop_count": cleaned.drop_count,
            "dedup_policy": recipe.cleansing.dedup.as_str(),
        },
        "components": components_json(&sources_used, &plan.trainers),
        "payload": { "format": payload::FORMAT, "version": payload::VERSION },
    });
    if let (Some(score), Some(fields)) = (test_score, header.as_object_mut()) {
        fields.insert("test_score".into(), json!(score));
    }
    let header_bytes = serde_json::to_vec(&header).map_err(|e| Error::internal(e.to_string()))?;
    let stats = payload::DataStats {
        n_rows: cleaned.n_rows,
        n_users: cleaned.users.len() as u64,
        n_items: cleaned.items.len() as u64,
        drop_count: cleaned.drop_count,
    };
    let payload = Payload::new(&cleaned.users, &cleaned.items, model, cleaned.matrix, stats, metadata).encode();
    let bytes = container::seal(&options.key, &header_bytes, &payload)?;
    // An artifact serve or inspect would refuse is a failed run, not a
    // surprise at load time.
    plan.caps.admit(bytes.len() as u64, payload.len() as u64)?;
    Ok(Sealed { bytes })
}

/// Write the artifact atomically (and its pointer, for `append_sha`).
fn write(plan: &Plan<'_>, sealed: &Sealed) -> Result<store::Written> {
    let root = crate::settings::get().artifact_root.as_deref();
    store::write(&plan.output, plan.recipe.output.versioning.into(), &sealed.bytes, root)
}

fn resolve_trainers<'r>(registry: &'r Registry, names: &[String]) -> Result<Vec<&'r TrainerComponent>> {
    let mut out: Vec<&TrainerComponent> = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        match registry.trainer(name) {
            Some(t) if out.iter().any(|o| std::ptr::eq(*o, t)) => {}
            Some(t) => out.push(t),
            None => unknown.push(name.as_str()),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::recipe(format!(
            "training.algorithms: unknown algorithm{} {}; available: {}",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", "),
            registry.trainer_names().join(", ")
        )));
    }
    Ok(out)
}

fn components_json(sources: &[(&str, &SourceComponent)], trainers: &[&TrainerComponent]) -> Value {
    let mut list: Vec<Value> = sources
        .iter()
        .map(|(role, source)| {
            json!({
                "role": role,
                "name": source.info.type_name,
                "version": source.info.version,
                "sha256": source.digest,
                "origin": source.origin,
            })
        })
        .collect();
    for t in trainers {
        list.push(json!({
            "role": "trainer",
            "name": t.info.name,
            "version": t.info.version,
            "sha256": t.digest,
            "origin": t.origin,
        }));
    }
    Value::Array(list)
}
