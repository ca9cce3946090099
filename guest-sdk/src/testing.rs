//! Helpers for testing a trainer natively (`cargo test`), without the host:
//! parameters from the trainer's own description and a small data set whose
//! right answer is known.

use crate::numerics::{Csr, Rng};
use crate::trainer::{ParamDomain, Params, TrainerInfo};
use crate::{Param, ParamValue};

/// One value per entry of the search space: each parameter's default.
pub fn default_params(info: &TrainerInfo) -> Params {
    Params::new(
        info.params
            .iter()
            .map(|p| Param {
                name: p.name.clone(),
                value: match &p.domain {
                    ParamDomain::Int(r) => ParamValue::Int(r.default),
                    ParamDomain::Float(r) => ParamValue::Float(r.default),
                    ParamDomain::Categorical(c) => ParamValue::Text(c.default.clone()),
                },
            })
            .collect(),
    )
}

/// `params` with `name` set to `value` (added when absent).
pub fn with_param(params: &Params, name: &str, value: ParamValue) -> Params {
    let mut list: Vec<Param> = params.as_slice().iter().filter(|p| p.name != name).cloned().collect();
    list.push(Param { name: name.to_string(), value });
    Params::new(list)
}

/// A data set where items 0 and 1 are always consumed together.
///
/// 60 users × 12 items: users 0–39 hold items 0 and 1 plus two others drawn
/// from 2–11; users 40–58 hold three items from 2–11; the last user, the
/// probe, holds item 0 and two items from 2–11 but not item 1. Any sensible
/// recommender ranks item 1 first among the probe's unseen items.
pub struct CoConsumed {
    /// The interactions (all values 1).
    pub matrix: Csr,
    /// The user to score.
    pub probe_user: u32,
    /// The item that must rank first for the probe user.
    pub expected_item: u32,
}

/// Build [`CoConsumed`] (the random filler items depend on `seed`).
pub fn co_consumed(seed: u64) -> CoConsumed {
    let (users, items) = (60u32, 12u32);
    let mut rng = Rng::new(seed);
    let mut entries = Vec::new();
    let mut others = |entries: &mut Vec<(u32, u32, f32)>, u: u32, n: usize| {
        let mut pool: Vec<u32> = (2..items).collect();
        rng.shuffle(&mut pool);
        entries.extend(pool[..n].iter().map(|&i| (u, i, 1.0)));
    };
    for u in 0..40 {
        entries.push((u, 0, 1.0));
        entries.push((u, 1, 1.0));
        others(&mut entries, u, 2);
    }
    for u in 40..users - 1 {
        others(&mut entries, u, 3);
    }
    let probe = users - 1;
    entries.push((probe, 0, 1.0));
    others(&mut entries, probe, 2);
    CoConsumed { matrix: Csr::from_triplets(users, items, &entries), probe_user: probe, expected_item: 1 }
}

/// The best-scored item of `user` among the items it has not interacted
/// with (`scores` has one entry per item).
pub fn best_unseen(matrix: &Csr, user: u32, scores: &[f32]) -> u32 {
    let (seen, _) = matrix.row(user);
    crate::numerics::top_k(scores, 1, seen).first().map(|e| e.0).unwrap_or(u32::MAX)
}

/// Scores of `user` under a `factors` model (`users`, `items` row-major
/// with `dim` columns).
pub fn factor_scores(users: &[f32], items: &[f32], dim: usize, user: u32) -> Vec<f32> {
    let p = &users[user as usize * dim..(user as usize + 1) * dim];
    items.chunks_exact(dim).map(|q| crate::numerics::dot(p, q)).collect()
}

/// Scores of a user with `history` under a sparse item-item model
/// (row = source item).
pub fn sparse_item_scores(w: &Csr, history: (&[u32], &[f32])) -> Vec<f32> {
    let mut out = vec![0f32; w.cols as usize];
    for (&i, &a) in history.0.iter().zip(history.1) {
        let (cols, vals) = w.row(i);
        for (&j, &s) in cols.iter().zip(vals) {
            out[j as usize] += a * s;
        }
    }
    out
}

/// Assert that `check` refuses each `(name, value)` set on top of `valid`,
/// with an `invalid-config` error that names the parameter.
#[track_caller]
pub fn assert_rejected<T>(
    check: impl Fn(&Params) -> Result<T, crate::PluginError>,
    valid: &Params,
    cases: &[(&str, ParamValue)],
) {
    assert!(check(valid).is_ok(), "the valid parameters must pass");
    for (name, value) in cases {
        match check(&with_param(valid, name, value.clone())) {
            Ok(_) => panic!("{name} = {value:?} was accepted"),
            Err(e) => {
                assert!(matches!(e.kind, crate::ErrorKind::InvalidConfig), "{name}: {e:?}");
                assert!(e.message.contains(name), "message does not name {name}: {}", e.message);
            }
        }
    }
}
