//! `recotem train`: recipe → data → cleansing → split → search → refit →
//! signed artifact, with one structured event per phase.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::search::{self, Outcome, SearchSettings};
use crate::artifact::keys::{KeyRing, SigningKey};
use crate::artifact::payload::{self, Payload};
use crate::artifact::{container, store};
use crate::data::interactions::Cleaned;
use crate::error::{Error, Result, TrainingCode};
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
    match KeyRing::from_env()? {
        Some(ring) => {
            ring.log_built();
            Ok(ring.active().clone())
        }
        None => Err(Error::SigningKeyMissing(
            "RECOTEM_SIGNING_KEYS is not set: an artifact cannot be signed. Generate a key with \
             `recotem keygen` and export the printed env_entry"
                .into(),
        )),
    }
}

/// Run the pipeline. `facts` is filled as the run proceeds.
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

    if !recipe.training.storage_path.is_empty() {
        return Err(Error::Recipe(
            "training.storage_path: persisted searches are not supported by this version of recotem yet; remove it".into(),
        ));
    }

    let output = crate::recipe::paths::local_path(&recipe.output.path).ok_or_else(|| {
        let scheme = crate::recipe::paths::split_scheme(&recipe.output.path).scheme.unwrap_or_default();
        Error::Artifact(format!(
            "output.path: {scheme}:// outputs are not supported by this version of recotem yet; write to a local path"
        ))
    })?;
    // Both caps are read (and their order checked, exit 8) before any work.
    let caps = store::Caps::from_env()?;
    let source = registry.source(recipe.source_type())?;
    let trainers = resolve_trainers(registry, &recipe.training.algorithms)?;
    if let Some(pins) = &recipe.plugins {
        registry.check_pins(&pins.sha256)?;
    }

    // Fetch.
    Event::info("fetching_data").field("type", source.type_name().to_string()).emit();
    let table = crate::data::ingest::read_source(runtime, source, recipe)?;
    Event::info("data_fetched").field("n_rows", table.n_rows()).emit();

    // Cleanse.
    let cleaned: Cleaned = table.cleanse(&recipe.cleansing)?;
    facts.stats = Some((cleaned.n_rows, cleaned.users.len() as u64, cleaned.items.len() as u64));
    Event::info("data_cleansed")
        .field("n_rows", cleaned.n_rows)
        .field("drop_count", cleaned.drop_count)
        .field("n_users", cleaned.users.len())
        .field("n_items", cleaned.items.len())
        .emit();

    // Item metadata of the model's items, read now so a bad file fails the
    // run before the search.
    let metadata = match &recipe.item_metadata {
        Some(meta) => crate::data::item_metadata::read(runtime, registry, meta, &cleaned.items)?,
        None => payload::ItemMetadata::default(),
    };

    // Split.
    let split_cfg = &recipe.training.split;
    Event::info("splitting_data").field("scheme", split_cfg.scheme.as_str()).emit();
    let split = crate::data::split(&cleaned, split_cfg)?;
    let heldout_rows: usize = split.heldout.iter().map(|(_, h)| h.len()).sum();
    Event::info("split_done")
        .field("n_train", split.train.nnz())
        .field("n_heldout", heldout_rows)
        .field("n_eval_users", split.heldout.len())
        .emit();

    // Search.
    let t = &recipe.training;
    let explicit: Vec<Option<i64>> = trainers
        .iter()
        .map(|tr| {
            t.per_algorithm_trials
                .as_ref()
                .and_then(|m| m.iter().find(|(k, _)| tr.answers_to(k)).map(|(_, v)| *v))
        })
        .collect();
    let budget = search::budgets(t.n_trials, &explicit);
    let trials = search::plan(&trainers, &budget, split_cfg.seed);
    Event::info("search_started")
        .field("algorithms", trainers.iter().map(|tr| tr.info.name.clone()).collect::<Vec<_>>())
        .field("n_trials", trials.len())
        .field("metric", t.metric.as_str())
        .field("cutoff", t.cutoff)
        .emit();
    let per_trial_timeout = t.per_trial_timeout_seconds.map_or(DEFAULT_TRIAL_TIMEOUT, Duration::from_secs);
    let settings = SearchSettings {
        metric: t.metric,
        cutoff: t.cutoff as usize,
        seed: split_cfg.seed,
        parallelism: t.parallelism as usize,
        per_trial_timeout,
        timeout: t.timeout_seconds.map(Duration::from_secs),
        quiet: options.quiet,
        verbose: options.verbose,
    };
    let results = search::run(runtime, &trainers, trials, &split, &settings);
    let completed: Vec<(&search::TrialResult, f64)> = results
        .iter()
        .filter_map(|r| match r.outcome {
            Outcome::Scored(s) => Some((r, s)),
            _ => None,
        })
        .collect();
    let timeouts = results.iter().filter(|r| matches!(r.outcome, Outcome::TimedOut)).count();
    if timeouts > 0 && timeouts as f64 > completed.len() as f64 / 2.0 {
        return Err(Error::training(
            TrainingCode::ExcessivePerTrialTimeouts,
            format!(
                "{timeouts} of {} trials hit the per-trial timeout of {} s; increase training.per_trial_timeout_seconds",
                results.len(),
                per_trial_timeout.as_secs()
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
    let best_trainer = trainers[best.trial.trainer];
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

    // Refit on all data.
    Event::info("training_final_model").field("recommender", best_trainer.info.name.clone()).emit();
    let model = search::fit(
        runtime,
        best_trainer,
        &cleaned.matrix,
        &best.trial.params,
        split_cfg.seed,
        per_trial_timeout.saturating_mul(2),
    )
    .map_err(|outcome| {
        let why = match outcome {
            Outcome::Failed(m) => m,
            Outcome::TimedOut => format!("timed out after {} s", per_trial_timeout.saturating_mul(2).as_secs()),
            Outcome::Scored(_) | Outcome::Skipped => "unexpected outcome".into(),
        };
        Error::training(TrainingCode::FinalTrainingError, format!("the final refit of {} failed: {why}", best_trainer.info.name))
    })?;
    Event::info("final_model_trained").field("kind", model.kind()).emit();

    // Artifact.
    let mut sources_used = vec![("source", source)];
    if let Some(meta) = recipe.item_metadata.as_ref().and_then(|m| registry.find_source(&m.kind)) {
        sources_used.push(("metadata", meta));
    }
    let header = json!({
        "recipe_name": recipe.name,
        "recipe_hash": loaded.hash,
        "run_id": options.run_id,
        "trained_at": options.trained_at,
        "kid": options.key.kid,
        "recotem_version": env!("CARGO_PKG_VERSION"),
        "wit_version": crate::plugin::registry::WIT_VERSION,
        "best_class": best_trainer.info.name,
        "best_params": search::params_json(&best.trial.params),
        "best_score": best_score,
        "metric": t.metric.as_str(),
        "cutoff": t.cutoff,
        "model_kind": model.kind(),
        "algorithms": trainers.iter().map(|tr| tr.info.name.clone()).collect::<Vec<_>>(),
        "tuning": {
            "tried_algorithms": trainers.iter().map(|tr| tr.info.name.clone()).collect::<Vec<_>>(),
            "n_trials": results.len(),
            "n_completed": completed.len(),
            "n_failed": results.iter().filter(|r| matches!(r.outcome, Outcome::Failed(_))).count(),
            "n_timed_out": timeouts,
            "n_orphaned": 0,
            "best_trial_number": best.trial.number,
            "search_seed": split_cfg.seed,
        },
        "data_stats": {
            "n_rows": cleaned.n_rows,
            "n_users": cleaned.users.len(),
            "n_items": cleaned.items.len(),
            "drop_count": cleaned.drop_count,
            "dedup_policy": recipe.cleansing.dedup.as_str(),
        },
        "components": components_json(&sources_used, &trainers),
        "payload": { "format": payload::FORMAT, "version": payload::VERSION },
    });
    let header_bytes = serde_json::to_vec(&header).map_err(|e| Error::Internal(e.to_string()))?;
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
    caps.admit(bytes.len() as u64, payload.len() as u64)?;
    let written = store::write(&output, recipe.output.versioning, &bytes, store::artifact_root().as_deref())?;
    Event::info("artifact_written")
        .field("versioning", recipe.output.versioning.as_str())
        .field("artifact", written.artifact.display().to_string())
        .field("pointer", written.pointer.as_ref().map(|p| p.display().to_string()))
        .field("kid", options.key.kid.clone())
        .field("bytes", bytes.len())
        .field("wall_seconds", started.elapsed().as_secs_f64())
        .emit();
    Ok(TrainSummary {
        artifact: written.artifact,
        best_class: best_trainer.info.name.clone(),
        best_score,
        trials: results.len(),
    })
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
        return Err(Error::Recipe(format!(
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
