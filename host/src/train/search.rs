//! Hyper-parameter search: budgets per algorithm, sampling from the space
//! each trainer publishes, and running trials in parallel sandboxes.
//!
//! The first trial of each algorithm uses the trainer's defaults; later ones
//! come from the TPE sampler ([`super::tpe`]), which sees every finished
//! trial of that algorithm and, among the bad ones, every trial still
//! running. Trials that report epochs are pruned by the median rule
//! ([`MedianPruner`], Optuna's defaults). A trainer with no hyper-parameters runs once: more trials would
//! repeat the same computation. With a journal ([`super::journal`]) every
//! finished trial is on disk before the next starts, and [`restore`] turns a
//! journal back into results, so an interrupted study continues.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::data::Split;
use crate::events::Event;
use crate::model::{Csr, Model};
use crate::plugin::bindings::source::recotem::plugin::types::{Param, ParamValue};
use crate::plugin::bindings::trainer::exports::recotem::plugin::trainer_plugin::{ParamDomain, ParamSpec};
use crate::plugin::early_stop::EarlyStop;
use crate::plugin::engine::{CallFailure, Runtime};
use crate::plugin::trainer::{TrainFailure, TrainerComponent};
use crate::error::{Error, Result};
use crate::recipe::model::Metric;
use crate::util::Rng;

use super::journal::{self, Journal};
use super::progress::Progress;
use super::tpe::{Observation, Sampler, Status};

/// Split `n_trials` among algorithms following the recipe's
/// `per_algorithm_trials` rules; `explicit[i]` is the recipe's value for
/// algorithm `i` (negative values count as 0).
pub fn budgets(n_trials: u32, explicit: &[Option<i64>]) -> Vec<u32> {
    let n = explicit.len();
    let mut out = vec![0u32; n];
    let even = |slots: &[usize], total: u32, out: &mut Vec<u32>| {
        if slots.is_empty() {
            return;
        }
        let base = total / slots.len() as u32;
        let extra = total as usize % slots.len();
        for (k, &i) in slots.iter().enumerate() {
            out[i] = base + u32::from(k < extra);
        }
    };
    let unspecified: Vec<usize> = (0..n).filter(|&i| explicit[i].is_none()).collect();
    let positive: Vec<usize> = (0..n).filter(|&i| explicit[i].is_some_and(|v| v > 0)).collect();
    let sum: u64 = positive.iter().map(|&i| explicit[i].unwrap_or(0) as u64).sum();
    if positive.is_empty() {
        if unspecified.is_empty() {
            even(&(0..n).collect::<Vec<_>>(), n_trials, &mut out);
        } else {
            even(&unspecified, n_trials, &mut out);
        }
        return out;
    }
    if (n_trials as usize) < positive.len() {
        for &i in positive.iter().take(n_trials as usize) {
            out[i] = 1;
        }
        return out;
    }
    if sum > n_trials as u64 {
        let scale = n_trials as f64 / sum as f64;
        let mut given = 0u32;
        for (k, &i) in positive.iter().enumerate() {
            let left_after = (positive.len() - k - 1) as u32;
            out[i] = if k + 1 == positive.len() {
                n_trials - given
            } else {
                let v = ((explicit[i].unwrap_or(0) as f64 * scale).round() as u32).max(1);
                v.min(n_trials - given - left_after)
            };
            given += out[i];
        }
        return out;
    }
    for &i in &positive {
        out[i] = explicit[i].unwrap_or(0) as u32;
    }
    let left = n_trials - sum as u32;
    if unspecified.is_empty() {
        if let Some(&last) = positive.last() {
            out[last] += left;
        }
    } else {
        even(&unspecified, left, &mut out);
    }
    out
}

/// One planned trial.
#[derive(Debug, Clone)]
pub struct Trial {
    /// Global trial number, from 0.
    pub number: usize,
    /// Index into the list of trainers being searched.
    pub trainer: usize,
    /// The hyper-parameters.
    pub params: Vec<Param>,
}

/// How a trial ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Completed with this score (with early stopping: the best reported
    /// epoch's score).
    Scored(f64),
    /// Stopped by the pruner after the report of `epoch`: its best score so
    /// far was below the median of completed trials at the same epoch
    /// ([`MedianPruner`]). `best` is its best reported score; a pruned trial
    /// is never selected as best.
    Pruned {
        /// The epoch of the report that pruned it.
        epoch: u32,
        /// Its best reported score.
        best: f64,
    },
    /// The trainer failed, trapped, or returned an unusable model.
    Failed(String),
    /// The trial passed its deadline and was stopped.
    TimedOut,
    /// Not started: the search's overall deadline had passed.
    Skipped,
}

/// A finished trial.
#[derive(Debug, Clone)]
pub struct TrialResult {
    /// The plan.
    pub trial: Trial,
    /// What happened.
    pub outcome: Outcome,
    /// Its early-stop reports, `(epoch, score)` in order (empty for a
    /// trainer that does not report). The pruner compares later trials
    /// with these; they are journaled so a resumed study prunes alike.
    pub reports: Vec<(u32, f64)>,
}

/// Search settings.
pub struct SearchSettings {
    /// Metric and cut-off.
    pub metric: Metric,
    /// `@k`.
    pub cutoff: usize,
    /// Seed of sampling and training.
    pub seed: u64,
    /// Trials run at once.
    pub parallelism: usize,
    /// Deadline of one trial.
    pub per_trial_timeout: Duration,
    /// Deadline of the whole search.
    pub timeout: Option<Duration>,
    /// Suppress `trial_done` events.
    pub quiet: bool,
    /// Add `params` to `trial_done` events.
    pub verbose: bool,
    /// How later trials are sampled.
    pub sampler: Sampler,
    /// When trials that report epochs are pruned.
    pub pruner: MedianPruner,
}

/// A slot of the plan: trial `number` belongs to trainer `trainer`; its
/// parameters are chosen when it starts (they depend on the trials before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Global trial number, from 0.
    pub number: usize,
    /// Index into the list of trainers.
    pub trainer: usize,
    /// Whether this is the trainer's first trial (its defaults).
    pub first: bool,
}

/// Plan the slots: `budget[i]` trials for trainer `i`, all of trainer 0
/// first, then trainer 1, … (every budgeted trial is queued up front,
/// HPO-04). A trainer with no hyper-parameters runs once: more trials
/// would repeat the same computation.
pub fn plan(trainers: &[&TrainerComponent], budget: &[u32]) -> Vec<Slot> {
    let mut slots = Vec::new();
    for (t, trainer) in trainers.iter().enumerate() {
        let count = if trainer.info.params.is_empty() { budget[t].min(1) } else { budget[t] };
        for k in 0..count {
            slots.push(Slot { number: slots.len(), trainer: t, first: k == 0 });
        }
    }
    slots
}

pub(crate) fn defaults(space: &[ParamSpec]) -> Vec<Param> {
    space
        .iter()
        .map(|p| Param {
            name: p.name.clone(),
            value: match &p.domain {
                ParamDomain::Int(r) => ParamValue::Int(r.default),
                ParamDomain::Float(r) => ParamValue::Float(r.default),
                ParamDomain::Categorical(c) => ParamValue::Text(c.default.clone()),
            },
        })
        .collect()
}

/// Parameters as a JSON object (for events and the artifact header).
pub fn params_json(params: &[Param]) -> Value {
    let mut map = Map::new();
    for p in params {
        let v = match &p.value {
            ParamValue::Int(i) => Value::from(*i),
            ParamValue::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            ParamValue::Text(s) => Value::from(s.clone()),
        };
        map.insert(p.name.clone(), v);
    }
    Value::Object(map)
}

/// Parameters back from [`params_json`], typed by the space; `None` when
/// the object does not fit the space (a journal of another trainer).
pub fn params_from_json(space: &[ParamSpec], value: &Value) -> Option<Vec<Param>> {
    space
        .iter()
        .map(|p| {
            let v = value.get(&p.name)?;
            let value = match &p.domain {
                ParamDomain::Int(_) => ParamValue::Int(v.as_i64()?),
                ParamDomain::Float(_) => ParamValue::Float(v.as_f64()?),
                ParamDomain::Categorical(_) => ParamValue::Text(v.as_str()?.to_string()),
            };
            Some(Param { name: p.name.clone(), value })
        })
        .collect()
}

/// Train one configuration in its own sandbox (the final refit: early-stop
/// reports are answered "go on" and nothing is scored, so the refit runs
/// every epoch of the chosen parameters).
pub fn fit(
    runtime: &Runtime,
    trainer: &TrainerComponent,
    matrix: &Csr,
    params: &[Param],
    seed: u64,
    timeout: Duration,
) -> Result<Model, Outcome> {
    fit_with(runtime, trainer, matrix, params, seed, timeout, None)
}

fn fit_with(
    runtime: &Runtime,
    trainer: &TrainerComponent,
    matrix: &Csr,
    params: &[Param],
    seed: u64,
    timeout: Duration,
    early_stop: Option<Box<dyn EarlyStop>>,
) -> Result<Model, Outcome> {
    match trainer.train_with(runtime, matrix, params, seed, timeout, early_stop) {
        Ok(model) => Ok(model),
        Err(TrainFailure::Call(CallFailure::Timeout(_))) => Err(Outcome::TimedOut),
        Err(failure) => Err(Outcome::Failed(format!("{}: {failure}", trainer.info.name))),
    }
}

/// Reports without improvement after which a trial is told to stop.
pub const PATIENCE: usize = 3;

/// The median stopping rule, as Optuna's `MedianPruner` with its defaults
/// (`n_startup_trials=5`, `n_warmup_steps=0`, `interval_steps=1`,
/// `n_min_trials=1`): nothing is pruned until `n_startup_trials` trials of
/// the same algorithm have completed; after that a trial is pruned at a
/// report when its best score so far is below the median of the completed
/// trials' scores at that same epoch, if at least `n_min_trials` of them
/// reported it. Completed means scored: pruned, failed and running trials
/// take no part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MedianPruner {
    /// Completed trials of the algorithm before anything is pruned.
    pub n_startup_trials: usize,
    /// Completed trials with a report at the epoch needed to judge it.
    pub n_min_trials: usize,
}

impl Default for MedianPruner {
    fn default() -> Self {
        MedianPruner { n_startup_trials: 5, n_min_trials: 1 }
    }
}

/// The reports of finished (scored) trials, per algorithm and epoch: what
/// the median pruner compares a running trial with.
#[derive(Debug, Default)]
struct Curves {
    /// Per trainer: epoch → scores of finished trials at that epoch.
    by_trainer: Vec<BTreeMap<u32, Vec<f64>>>,
    /// Per trainer: completed (scored) trials, with reports or without.
    completed: Vec<usize>,
}

impl Curves {
    /// Record a completed trial of `trainer` and its reports.
    fn add(&mut self, trainer: usize, reports: &[(u32, f64)]) {
        if self.by_trainer.len() <= trainer {
            self.by_trainer.resize_with(trainer + 1, BTreeMap::new);
            self.completed.resize(trainer + 1, 0);
        }
        self.completed[trainer] += 1;
        for &(epoch, score) in reports {
            self.by_trainer[trainer].entry(epoch).or_default().push(score);
        }
    }

    /// True when a trial whose best score so far is `best`, reporting
    /// `epoch`, is below the median of the completed trials' scores at that
    /// epoch (once `pruner` lets it judge: see [`MedianPruner`]).
    fn prunes(&self, pruner: MedianPruner, trainer: usize, epoch: u32, best: f64) -> bool {
        let completed = self.completed.get(trainer).copied().unwrap_or(0);
        if completed == 0 || completed < pruner.n_startup_trials {
            return false;
        }
        let Some(scores) = self.by_trainer.get(trainer).and_then(|m| m.get(&epoch)) else { return false };
        if scores.is_empty() || scores.len() < pruner.n_min_trials {
            return false;
        }
        let mut sorted = scores.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        best < median
    }
}

/// Why a trial was told to stop.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    /// No improvement for [`PATIENCE`] reports.
    Patience,
    /// Its best so far below the median at this epoch.
    Pruned(u32),
}

/// A trial's reports so far, shared between its hook (inside the sandbox
/// call) and the worker that runs it.
#[derive(Debug, Default)]
struct Curve {
    reports: Vec<(u32, f64)>,
    best: Option<f64>,
    since_best: usize,
    stop: Option<Stop>,
}

/// A model to score on the validation part, and where the score goes.
type EvalRequest = (Model, std::sync::mpsc::SyncSender<f64>);

/// The early-stop hook of one trial (see `plugin::early_stop`): scores
/// each report on the validation part (through the search's evaluation
/// thread, which holds the split), keeps the best, and answers "stop" on
/// patience or when the median pruner prunes the trial.
struct TrialHook {
    number: usize,
    trainer: usize,
    algorithm: String,
    eval: std::sync::mpsc::Sender<EvalRequest>,
    curve: Arc<Mutex<Curve>>,
    curves: Arc<Mutex<Curves>>,
    pruner: MedianPruner,
    quiet: bool,
}

impl EarlyStop for TrialHook {
    fn report(&mut self, epoch: u32, model: Model) -> std::result::Result<bool, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.eval.send((model, tx)).map_err(|_| "the search's evaluation has ended".to_string())?;
        let score = rx.recv().map_err(|_| "the search's evaluation has ended".to_string())?;
        if !score.is_finite() {
            return Err(format!("the model reported after epoch {epoch} scored {score}"));
        }
        let mut curve = self.curve.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        curve.reports.push((epoch, score));
        if curve.best.is_none_or(|b| score > b) {
            curve.best = Some(score);
            curve.since_best = 0;
        } else {
            curve.since_best += 1;
        }
        // Optuna's rule: the best report so far (this one included) against
        // the median at this epoch.
        let best = curve.best.unwrap_or(score);
        let pruned =
            self.curves.lock().unwrap_or_else(std::sync::PoisonError::into_inner).prunes(self.pruner, self.trainer, epoch, best);
        let stop = if pruned {
            Some(Stop::Pruned(epoch))
        } else if curve.since_best >= PATIENCE {
            Some(Stop::Patience)
        } else {
            None
        };
        curve.stop = stop;
        if !self.quiet {
            Event::info("trial_report")
                .field("trial", self.number)
                .field("algorithm", self.algorithm.clone())
                .field("epoch", epoch)
                .field("score", score)
                .field(
                    "decision",
                    match stop {
                        None => "continue",
                        Some(Stop::Patience) => "stop_patience",
                        Some(Stop::Pruned(_)) => "stop_pruned",
                    },
                )
                .emit();
        }
        Ok(stop.is_none())
    }
}

/// The shared state of a running search.
struct State {
    /// Index of the next pending slot to start.
    next: usize,
    /// Per trainer: finished trials, in the order they finished.
    history: Vec<Vec<Observation>>,
    /// Per trainer: trials running now (number, values).
    running: Vec<Vec<(usize, Vec<ParamValue>)>>,
    /// Every finished trial, by number.
    results: BTreeMap<usize, TrialResult>,
    /// The best score so far.
    best: Option<f64>,
    /// The first journal failure: no new trial starts after it.
    failure: Option<Error>,
}

fn observation(result: &TrialResult) -> Observation {
    Observation {
        values: result.trial.params.iter().map(|p| p.value.clone()).collect(),
        status: match (&result.outcome, result.reports.last()) {
            (Outcome::Scored(s), _) => Status::Complete(*s),
            // The sampler ranks a pruned trial by its last report (Optuna's
            // rule), which is the report that pruned it.
            (Outcome::Pruned { .. }, Some(&(epoch, score))) => Status::Pruned { epoch, score },
            _ => Status::Failed,
        },
    }
}

/// The parameters of `slot`: the trainer's defaults for its first trial,
/// else the sampler's suggestion given what finished and what is running.
/// Seeded by the search seed and the trial number only, so the same
/// history gives the same suggestion.
fn choose(slot: &Slot, trainer: &TrainerComponent, state: &State, settings: &SearchSettings) -> Vec<Param> {
    let space = &trainer.info.params;
    if slot.first {
        return defaults(space);
    }
    let mut seen = state.history[slot.trainer].clone();
    seen.extend(state.running[slot.trainer].iter().map(|(_, v)| Observation { values: v.clone(), status: Status::Running }));
    let mut rng = Rng::new(settings.seed ^ (slot.number as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let values = super::tpe::suggest(space, &seen, settings.sampler, &mut rng);
    space.iter().zip(values).map(|(p, value)| Param { name: p.name.clone(), value }).collect()
}

/// Run the `pending` slots (in parallel up to `settings.parallelism`),
/// given the trials a resumed study already finished (`done`, in the order
/// they finished). Each finished trial is appended to `journal` before the
/// next one starts. Returns every result (done and new) by trial number.
// Each argument is a distinct input of the search (what runs, on what,
// how, what was done, where it is journaled and shown); a bundle would only
// rename them.
#[allow(clippy::too_many_arguments)]
pub fn run(
    runtime: &Runtime,
    trainers: &[&TrainerComponent],
    pending: Vec<Slot>,
    done: Vec<TrialResult>,
    split: &Split,
    settings: &SearchSettings,
    journal: Option<&mut Journal>,
    progress: &Progress,
) -> Result<Vec<TrialResult>> {
    let started = Instant::now();
    let mut state = State {
        next: 0,
        history: vec![Vec::new(); trainers.len()],
        running: vec![Vec::new(); trainers.len()],
        results: BTreeMap::new(),
        best: None,
        failure: None,
    };
    let curves = Arc::new(Mutex::new(Curves::default()));
    for r in done {
        if let Outcome::Scored(_) = r.outcome {
            curves.lock().unwrap_or_else(std::sync::PoisonError::into_inner).add(r.trial.trainer, &r.reports);
        }
        state.history[r.trial.trainer].push(observation(&r));
        if let Outcome::Scored(s) = r.outcome {
            state.best = Some(state.best.map_or(s, |b: f64| b.max(s)));
        }
        state.results.insert(r.trial.number, r);
    }
    let state = Mutex::new(state);
    let journal = Mutex::new(journal);
    let workers = settings.parallelism.clamp(1, pending.len().max(1));
    let lock = || state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // Early-stop reports are scored here, where the split lives: a trial's
    // sandbox must own what it holds, so its hook sends the model over.
    std::thread::scope(|scope| {
        let (eval_tx, eval_rx) = std::sync::mpsc::channel::<EvalRequest>();
        scope.spawn(move || {
            for (model, reply) in eval_rx {
                let _ = reply.send(super::eval::evaluate(&model, split, settings.metric, settings.cutoff));
            }
        });
        let (pending, journal, curves) = (&pending, &journal, &curves);
        let workers: Vec<_> = (0..workers).map(|_| {
            let eval_tx = eval_tx.clone();
            scope.spawn(move || {
                loop {
                    let (slot, params) = {
                        let mut s = lock();
                        if s.failure.is_some() {
                            break;
                        }
                        let Some(slot) = pending.get(s.next).copied() else { break };
                        s.next += 1;
                        let params = choose(&slot, trainers[slot.trainer], &s, settings);
                        s.running[slot.trainer].push((slot.number, params.iter().map(|p| p.value.clone()).collect()));
                        (slot, params)
                    };
                    let trainer = trainers[slot.trainer];
                    let trial = Trial { number: slot.number, trainer: slot.trainer, params };
                    let skipped = settings.timeout.is_some_and(|t| started.elapsed() >= t) || crate::plugin::cancel::requested();
                    if !skipped {
                        progress.trial_started(slot.number, &trainer.info.name);
                    }
                    let curve = Arc::new(Mutex::new(Curve::default()));
                    let outcome = if skipped {
                        Outcome::Skipped
                    } else {
                        let hook = TrialHook {
                            number: slot.number,
                            trainer: slot.trainer,
                            algorithm: trainer.info.name.clone(),
                            eval: eval_tx.clone(),
                            curve: curve.clone(),
                            curves: curves.clone(),
                            pruner: settings.pruner,
                            quiet: settings.quiet,
                        };
                        let fitted = fit_with(
                            runtime,
                            trainer,
                            &split.train,
                            &trial.params,
                            settings.seed,
                            settings.per_trial_timeout,
                            Some(Box::new(hook)),
                        );
                        let c = curve.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        match (fitted, c.best, c.stop) {
                            (Ok(_), Some(best), Some(Stop::Pruned(epoch))) => Outcome::Pruned { epoch, best },
                            // It reported: its last report is its final
                            // model (the SDK reports the last epoch), so the
                            // trial's score is the best report's.
                            (Ok(_), Some(best), _) => Outcome::Scored(best),
                            (Ok(model), None, _) => match super::eval::try_evaluate(&model, split, settings.metric, settings.cutoff) {
                                Ok(score) => Outcome::Scored(score),
                                // Scores that overflow fail the trial, not the run.
                                Err(e) => Outcome::Failed(format!("{}: returned an unusable model: {e}", trainer.info.name)),
                            },
                            (Err(outcome), _, _) => outcome,
                        }
                    };
                    let reports = std::mem::take(&mut curve.lock().unwrap_or_else(std::sync::PoisonError::into_inner).reports);
                    report(&trial, trainer, &outcome, settings);
                    let result = TrialResult { trial, outcome, reports };
                    let mut s = lock();
                    s.running[slot.trainer].retain(|(n, _)| *n != slot.number);
                    // A skipped trial, or one the cancellation cut short, is
                    // not journaled: a resumed study runs it again.
                    let finished = !matches!(result.outcome, Outcome::Skipped) && !crate::plugin::cancel::requested();
                    if finished {
                        s.history[slot.trainer].push(observation(&result));
                        if let Outcome::Scored(score) = result.outcome {
                            s.best = Some(s.best.map_or(score, |b| b.max(score)));
                            curves.lock().unwrap_or_else(std::sync::PoisonError::into_inner).add(slot.trainer, &result.reports);
                        }
                        let mut j = journal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if let Some(j) = j.as_deref_mut()
                            && let Err(e) = j.append(&entry(&result, trainer))
                        {
                            s.failure.get_or_insert(e);
                        }
                        progress.trial_finished(s.best);
                    }
                    s.results.insert(result.trial.number, result);
                }
            })
        }).collect();
        for w in workers {
            let _ = w.join();
        }
        // Every hook is gone with its trial: closing the channel ends the
        // evaluation thread.
        drop(eval_tx);
    });
    let state = state.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(e) = state.failure {
        return Err(e);
    }
    Ok(state.results.into_values().collect())
}

/// The journal entry of a finished trial.
fn entry(result: &TrialResult, trainer: &TrainerComponent) -> journal::Entry {
    let (outcome, score, error) = match &result.outcome {
        Outcome::Scored(s) => ("scored", Some(*s), None),
        Outcome::Pruned { best, .. } => ("pruned", Some(*best), None),
        Outcome::Failed(m) => ("failed", None, Some(m.clone())),
        Outcome::TimedOut => ("timed_out", None, None),
        Outcome::Skipped => ("skipped", None, None),
    };
    journal::Entry {
        number: result.trial.number,
        algorithm: trainer.info.name.clone(),
        params: params_json(&result.trial.params),
        outcome: outcome.to_string(),
        score,
        error,
        reports: result.reports.clone(),
    }
}

/// The trials a journal holds, checked against this run's plan: each entry
/// must name the trainer its slot plans and carry parameters of its space.
/// Returns them in the order they finished, and the slots still to run.
pub fn restore(
    trainers: &[&TrainerComponent],
    slots: &[Slot],
    entries: &[journal::Entry],
    path: &std::path::Path,
) -> Result<(Vec<TrialResult>, Vec<Slot>)> {
    let mismatch = |why: String| {
        Error::recipe(format!(
            "study journal {}: {why}; it belongs to another plan — remove it, or use another --run-id",
            path.display()
        ))
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut done = Vec::new();
    for e in entries {
        let Some(slot) = slots.get(e.number) else {
            return Err(mismatch(format!("trial {} is beyond this plan's {} trials", e.number, slots.len())));
        };
        let trainer = trainers[slot.trainer];
        if trainer.info.name != e.algorithm {
            return Err(mismatch(format!("trial {} ran {}, this plan runs {} there", e.number, e.algorithm, trainer.info.name)));
        }
        let params = params_from_json(&trainer.info.params, &e.params)
            .ok_or_else(|| mismatch(format!("trial {} has parameters outside {}'s space", e.number, trainer.info.name)))?;
        let outcome = match (e.outcome.as_str(), e.score) {
            ("scored", Some(s)) => Outcome::Scored(s),
            ("pruned", Some(best)) => match e.reports.last() {
                Some(&(epoch, _)) => Outcome::Pruned { epoch, best },
                None => return Err(mismatch(format!("trial {} was pruned but has no reports", e.number))),
            },
            ("failed", _) => Outcome::Failed(e.error.clone().unwrap_or_default()),
            ("timed_out", _) => Outcome::TimedOut,
            _ => return Err(mismatch(format!("trial {} has an unknown outcome", e.number))),
        };
        if seen.insert(e.number) {
            done.push(TrialResult {
                trial: Trial { number: e.number, trainer: slot.trainer, params },
                outcome,
                reports: e.reports.clone(),
            });
        }
    }
    let pending = slots.iter().filter(|s| !seen.contains(&s.number)).copied().collect();
    Ok((done, pending))
}

fn report(trial: &Trial, trainer: &TrainerComponent, outcome: &Outcome, settings: &SearchSettings) {
    let event = match outcome {
        Outcome::Scored(score) => {
            if settings.quiet {
                return;
            }
            Event::info("trial_done").field("score", *score)
        }
        Outcome::Pruned { epoch, best } => {
            Event::info("trial_pruned").field("epoch", *epoch).field("best_score", *best)
        }
        Outcome::Failed(reason) => Event::warn("trial_learn_failed").field("error", reason.clone()),
        Outcome::TimedOut => Event::warn("trial_timed_out")
            .field("timeout_seconds", settings.per_trial_timeout.as_secs_f64()),
        Outcome::Skipped => Event::warn("trial_skipped").field(
            "reason",
            if crate::plugin::cancel::requested() { "the run was cancelled" } else { "training.timeout_seconds reached" },
        ),
    };
    let mut event = event.field("trial", trial.number).field("algorithm", trainer.info.name.clone());
    if settings.verbose {
        event = event.field("params", params_json(&trial.params));
    }
    event.emit();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_pruner_waits_for_five_completed_trials() {
        let pruner = MedianPruner::default();
        let mut c = Curves::default();
        assert!(!c.prunes(pruner, 0, 2, 0.0), "nothing completed: never prune");
        for (k, s) in [0.25, 0.75, 0.5, 0.6].into_iter().enumerate() {
            c.add(0, &[(2, s), (4, s + 0.1)]);
            assert!(!c.prunes(pruner, 0, 2, 0.0), "{} completed trials are not enough", k + 1);
        }
        // A completed trial without reports counts towards the five.
        c.add(0, &[]);
        // Median at epoch 2 of 0.25, 0.5, 0.6, 0.75 is 0.55.
        assert!(c.prunes(pruner, 0, 2, 0.549));
        assert!(!c.prunes(pruner, 0, 2, 0.55));
        assert!(!c.prunes(pruner, 0, 6, 0.0), "no completed trial reported epoch 6");
        assert!(!c.prunes(pruner, 1, 2, 0.0), "another algorithm's trials do not count");
        c.add(0, &[(2, 0.1)]);
        // Odd count: the middle value, 0.5.
        assert!(c.prunes(pruner, 0, 2, 0.49) && !c.prunes(pruner, 0, 2, 0.5));
    }

    #[test]
    fn the_median_pruner_needs_n_min_trials_at_the_epoch() {
        let mut c = Curves::default();
        c.add(0, &[(1, 0.5)]);
        c.add(0, &[(2, 0.3)]);
        let one = MedianPruner { n_startup_trials: 1, n_min_trials: 1 };
        let two = MedianPruner { n_startup_trials: 1, n_min_trials: 2 };
        // One report at epoch 1: enough for n_min_trials = 1 only.
        assert!(c.prunes(one, 0, 1, 0.4));
        assert!(!c.prunes(two, 0, 1, 0.4));
        c.add(0, &[(1, 0.7)]);
        assert!(c.prunes(two, 0, 1, 0.59) && !c.prunes(two, 0, 1, 0.6));
    }

    /// The decisions of a trial's hook for reports scoring `scores` at
    /// epochs 1, 2, …, beside five completed trials that scored 0.3 … 0.7
    /// at every epoch (median 0.5).
    fn decisions(scores: &[f64]) -> (Vec<bool>, Option<Stop>) {
        let (tx, rx) = std::sync::mpsc::channel::<EvalRequest>();
        let replies = scores.to_vec();
        let scorer = std::thread::spawn(move || {
            for ((_, reply), s) in rx.into_iter().zip(replies) {
                let _ = reply.send(s);
            }
        });
        let mut curves = Curves::default();
        for s in [0.3, 0.4, 0.5, 0.6, 0.7] {
            curves.add(0, &[(1, s), (2, s), (3, s)]);
        }
        let curve = Arc::new(Mutex::new(Curve::default()));
        let mut hook = TrialHook {
            number: 5,
            trainer: 0,
            algorithm: "X".into(),
            eval: tx,
            curve: curve.clone(),
            curves: Arc::new(Mutex::new(curves)),
            pruner: MedianPruner::default(),
            quiet: true,
        };
        let out = (1..=scores.len() as u32).map(|e| hook.report(e, Model::Popularity(vec![1.0].into())).expect("scored")).collect();
        drop(hook);
        scorer.join().expect("scorer");
        let stop = curve.lock().expect("curve").stop;
        (out, stop)
    }

    #[test]
    fn the_hook_prunes_on_the_best_report_so_far() {
        // 0.45 at epoch 2 is below the median, but the trial's best so far
        // (0.6) is not: it goes on (Optuna's rule).
        assert_eq!(decisions(&[0.6, 0.45]), (vec![true, true], None));
        // Best so far 0.45 at epoch 1: pruned there.
        assert_eq!(decisions(&[0.45]), (vec![false], Some(Stop::Pruned(1))));
        // Patience still stops a trial the pruner keeps.
        assert_eq!(decisions(&[0.9, 0.8, 0.8, 0.8]), (vec![true, true, true, false], Some(Stop::Patience)));
    }

    #[test]
    fn even_split_leading_absorb_remainder() {
        assert_eq!(budgets(10, &[None, None, None]), vec![4, 3, 3]);
        assert_eq!(budgets(2, &[None, None, None]), vec![1, 1, 0]);
    }

    #[test]
    fn explicit_budgets() {
        // explicit 0 disables; unspecified share the rest.
        assert_eq!(budgets(10, &[Some(0), None, Some(4)]), vec![0, 6, 4]);
        // leftover with nothing unspecified goes to the last non-zero explicit.
        assert_eq!(budgets(10, &[Some(2), Some(3), Some(0)]), vec![2, 8, 0]);
        // over-subscribed explicit budgets are scaled, each >= 1, last takes the rest.
        assert_eq!(budgets(10, &[Some(10), Some(10)]), vec![5, 5]);
        assert_eq!(budgets(10, &[Some(1), Some(100), None]).iter().sum::<u32>(), 10);
        // fewer trials than positive explicit entries: first ones get 1.
        assert_eq!(budgets(2, &[Some(5), Some(5), Some(5)]), vec![1, 1, 0]);
        // all zero and nothing unspecified: even split.
        assert_eq!(budgets(4, &[Some(0), Some(-3)]), vec![2, 2]);
    }

    #[test]
    fn sampling_respects_domains() {
        use crate::plugin::bindings::trainer::exports::recotem::plugin::trainer_plugin::{
            Categorical, FloatRange, IntRange,
        };
        let space = vec![
            ParamSpec { name: "k".into(), description: String::new(), domain: ParamDomain::Int(IntRange { low: 1, high: 512, log: true, default: 64 }) },
            ParamSpec { name: "reg".into(), description: String::new(), domain: ParamDomain::Float(FloatRange { low: 1e-4, high: 1.0, log: true, default: 0.01 }) },
            ParamSpec { name: "kind".into(), description: String::new(), domain: ParamDomain::Categorical(Categorical { choices: vec!["a".into(), "b".into()], default: "a".into() }) },
        ];
        let mut rng = Rng::new(3);
        for _ in 0..200 {
            let values = super::super::tpe::suggest(&space, &[], Sampler::Random, &mut rng);
            for p in space.iter().zip(values).map(|(s, value)| Param { name: s.name.clone(), value }) {
                match (p.name.as_str(), p.value) {
                    ("k", ParamValue::Int(v)) => assert!((1..=512).contains(&v)),
                    ("reg", ParamValue::Float(v)) => assert!((1e-4..=1.0).contains(&v)),
                    ("kind", ParamValue::Text(v)) => assert!(v == "a" || v == "b"),
                    other => panic!("{other:?}"),
                }
            }
        }
        assert_eq!(params_json(&defaults(&space)), serde_json::json!({"k": 64, "reg": 0.01, "kind": "a"}));
    }
}
