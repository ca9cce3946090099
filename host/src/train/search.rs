//! Hyper-parameter search: budgets per algorithm, sampling from the space
//! each trainer publishes, and running trials in parallel sandboxes.
//!
//! The sampler is seeded random search: the first trial of each algorithm
//! uses the trainer's defaults, later ones draw uniformly (or log-uniformly)
//! from the published ranges. A trainer with no hyper-parameters runs once:
//! more trials would repeat the same computation.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::data::Split;
use crate::events::Event;
use crate::model::{Csr, Model};
use crate::plugin::bindings::source::recotem::plugin::types::{Param, ParamValue};
use crate::plugin::bindings::trainer::exports::recotem::plugin::trainer_plugin::{ParamDomain, ParamSpec};
use crate::plugin::engine::{CallFailure, Runtime};
use crate::plugin::trainer::{TrainFailure, TrainerComponent};
use crate::recipe::model::Metric;
use crate::util::Rng;

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
    /// Completed with this score.
    Scored(f64),
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
}

/// Plan trials: `budget[i]` trials for trainer `i`.
pub fn plan(trainers: &[&TrainerComponent], budget: &[u32], seed: u64) -> Vec<Trial> {
    let mut trials = Vec::new();
    for (t, trainer) in trainers.iter().enumerate() {
        let space = &trainer.info.params;
        let count = if space.is_empty() { budget[t].min(1) } else { budget[t] };
        for k in 0..count {
            let number = trials.len();
            let params = if k == 0 {
                defaults(space)
            } else {
                let mut rng = Rng::new(seed ^ (number as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                sample(space, &mut rng)
            };
            trials.push(Trial { number, trainer: t, params });
        }
    }
    trials
}

fn defaults(space: &[ParamSpec]) -> Vec<Param> {
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

fn sample(space: &[ParamSpec], rng: &mut Rng) -> Vec<Param> {
    space
        .iter()
        .map(|p| {
            let value = match &p.domain {
                ParamDomain::Int(r) => {
                    // i128/f64 arithmetic: no range the contract allows
                    // (i64::MIN..=i64::MAX included) can overflow.
                    let (lo, hi) = (r.low.min(r.high), r.low.max(r.high));
                    if r.log && lo >= 1 {
                        let (a, b) = ((lo as f64).ln(), (hi as f64 + 1.0).ln());
                        let x = (a + rng.next_f64() * (b - a)).exp();
                        ParamValue::Int(if x >= hi as f64 { hi } else { (x.floor() as i64).clamp(lo, hi) })
                    } else {
                        let span = (i128::from(hi) - i128::from(lo) + 1) as u128;
                        let offset = if span > u128::from(u64::MAX) { u128::from(rng.next_u64()) } else { u128::from(rng.below(span as u64)) };
                        ParamValue::Int((i128::from(lo) + offset as i128) as i64)
                    }
                }
                ParamDomain::Float(r) => {
                    let (lo, hi) = (r.low.min(r.high), r.low.max(r.high));
                    let x = if r.log && lo > 0.0 {
                        (lo.ln() + rng.next_f64() * (hi.ln() - lo.ln())).exp()
                    } else {
                        lo + rng.next_f64() * (hi - lo)
                    };
                    ParamValue::Float(x.clamp(lo, hi))
                }
                ParamDomain::Categorical(c) if !c.choices.is_empty() => {
                    ParamValue::Text(c.choices[rng.below(c.choices.len() as u64) as usize].clone())
                }
                ParamDomain::Categorical(c) => ParamValue::Text(c.default.clone()),
            };
            Param { name: p.name.clone(), value }
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

/// Train and evaluate one configuration in its own sandbox.
pub fn fit(
    runtime: &Runtime,
    trainer: &TrainerComponent,
    matrix: &Csr,
    params: &[Param],
    seed: u64,
    timeout: Duration,
) -> Result<Model, Outcome> {
    match trainer.train(runtime, matrix, params, seed, timeout) {
        Ok(model) => Ok(model),
        Err(TrainFailure::Call(CallFailure::Timeout(_))) => Err(Outcome::TimedOut),
        Err(failure) => Err(Outcome::Failed(format!("{}: {failure}", trainer.info.name))),
    }
}

/// Run every planned trial (in parallel up to `settings.parallelism`) and
/// return the results ordered by trial number.
pub fn run(
    runtime: &Runtime,
    trainers: &[&TrainerComponent],
    trials: Vec<Trial>,
    split: &Split,
    settings: &SearchSettings,
) -> Vec<TrialResult> {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<usize, TrialResult>> = Mutex::new(BTreeMap::new());
    let workers = settings.parallelism.clamp(1, trials.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(trial) = trials.get(k) else { break };
                    let trainer = trainers[trial.trainer];
                    let outcome = if settings.timeout.is_some_and(|t| started.elapsed() >= t) || crate::plugin::cancel::requested() {
                        Outcome::Skipped
                    } else {
                        match fit(runtime, trainer, &split.train, &trial.params, settings.seed, settings.per_trial_timeout) {
                            Ok(model) => Outcome::Scored(super::eval::evaluate(&model, split, settings.metric, settings.cutoff)),
                            Err(outcome) => outcome,
                        }
                    };
                    report(trial, trainer, &outcome, settings);
                    if let Ok(mut r) = results.lock() {
                        r.insert(trial.number, TrialResult { trial: trial.clone(), outcome });
                    }
                }
            });
        }
    });
    results.into_inner().map(|r| r.into_values().collect()).unwrap_or_default()
}

fn report(trial: &Trial, trainer: &TrainerComponent, outcome: &Outcome, settings: &SearchSettings) {
    let event = match outcome {
        Outcome::Scored(score) => {
            if settings.quiet {
                return;
            }
            Event::info("trial_done").field("score", *score)
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
            for p in sample(&space, &mut rng) {
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
