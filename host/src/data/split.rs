//! Hold-out splits for evaluation.

use crate::data::interactions::{Cleaned, Part};
use crate::error::{Error, Result, TrainingCode};
use crate::model::Csr;
use crate::recipe::model::{self, SplitScheme};
use crate::util::Rng;

/// A training matrix and, per evaluated user, the held-out items.
#[derive(Debug, Clone)]
pub struct Split {
    /// users × items with the held-out entries removed.
    pub train: Csr,
    /// (user, held-out items sorted ascending), users ascending.
    pub heldout: Vec<(u32, Vec<u32>)>,
}

/// What the run trains and scores on: the search's split, and for a
/// `fixed` split the final model's training matrix and its test part.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Each trial trains on `search.train` and is scored on its held-out
    /// items.
    pub search: Split,
    /// The final model's training matrix: `None` means every cleaned
    /// interaction (the generated schemes); the `fixed` scheme's train and
    /// validation rows otherwise.
    pub refit: Option<Csr>,
    /// The `fixed` scheme's test part, scored once on the final model
    /// (`train` is the refit matrix, whose items are masked).
    pub test: Option<Split>,
}

/// The splits a recipe's `training.split` asks for: [`split`] for the
/// generated schemes, [`split_fixed`] for the one the data carries.
pub fn splits(cleaned: &Cleaned, cfg: &model::Split) -> Result<Splits> {
    if cfg.scheme != SplitScheme::Fixed {
        return Ok(Splits { search: split(cleaned, cfg)?, refit: None, test: None });
    }
    let parts = cleaned.parts.as_deref().ok_or_else(|| {
        Error::recipe("training.split.scheme: fixed needs training.split.column, the column that labels each row")
    })?;
    split_fixed(&cleaned.matrix, parts)
}

/// The split a recipe's `training.split` asks for. The time schemes need
/// the entry times of `cleaned` (a recipe with a time split always reads its
/// time column). Every scheme is deterministic for a seed on every
/// platform: users are chosen by the portable seeded generator, ties in
/// time are broken by item index, nothing depends on hash order.
pub fn split(cleaned: &Cleaned, cfg: &model::Split) -> Result<Split> {
    let m = &cleaned.matrix;
    let times = || {
        cleaned.times.as_deref().ok_or_else(|| {
            Error::recipe(format!("training.split.scheme: {} needs schema.time_column", cfg.scheme.as_str()))
        })
    };
    match cfg.scheme {
        SplitScheme::Random => split_random(m, cfg.heldout_ratio, cfg.test_user_ratio, cfg.seed),
        SplitScheme::TimeUser => split_time_user(m, times()?, cfg.heldout_ratio, cfg.test_user_ratio, cfg.seed),
        SplitScheme::TimeGlobal => split_time_global(m, times()?, cfg.heldout_ratio, cfg.test_user_ratio, cfg.seed),
        SplitScheme::Fixed => Ok(splits(cleaned, cfg)?.search),
    }
}

/// The split the data carries (`parts`: one [`Part`] code per entry of
/// `m`): trials train on the train entries and are scored on each user's
/// validation items; the final model trains on train + validation and is
/// scored on the test items. No validation entry → exit 4 `split_error`;
/// no test entry means no test score.
pub fn split_fixed(m: &Csr, parts: &[u8]) -> Result<Splits> {
    if parts.len() != m.nnz() {
        return Err(Error::internal(format!("{} part codes for {} interactions", parts.len(), m.nnz())));
    }
    let part = |p: usize| Part::from_code(parts[p]);
    let users_with = |which: Part| -> Vec<u32> {
        (0..m.rows).filter(|&u| (m.indptr[u as usize] as usize..m.indptr[u as usize + 1] as usize).any(|p| part(p) == which)).collect()
    };
    // Search: validation held out, test dropped from training.
    let not_train: Vec<bool> = (0..m.nnz()).map(|p| part(p) != Part::Train).collect();
    let val_users = users_with(Part::Val);
    if val_users.is_empty() {
        return Err(Error::training(
            TrainingCode::SplitError,
            "the fixed split has no validation rows to score trials on: label some rows with \
             training.split.labels.val",
        ));
    }
    let mut search = carve(m, &not_train, &val_users)?;
    for (u, held) in &mut search.heldout {
        let (a, b) = (m.indptr[*u as usize] as usize, m.indptr[*u as usize + 1] as usize);
        held.retain(|i| m.indices[a..b].binary_search(i).is_ok_and(|k| part(a + k) == Part::Val));
    }
    // Final model: train + validation; test held out.
    let is_test: Vec<bool> = (0..m.nnz()).map(|p| part(p) == Part::Test).collect();
    let test_users = users_with(Part::Test);
    let (refit, test) = if test_users.is_empty() {
        (m.clone(), None)
    } else {
        let test = carve(m, &is_test, &test_users)?;
        (test.train.clone(), Some(test))
    };
    Ok(Splits { search, refit: Some(refit), test })
}

/// A `test_user_ratio` share (rounded up) of `eligible`, chosen with the
/// seeded generator, in ascending order.
fn choose_users(rng: &mut Rng, mut eligible: Vec<u32>, test_user_ratio: f64) -> Vec<u32> {
    rng.shuffle(&mut eligible);
    let n_eval = ((eligible.len() as f64) * test_user_ratio).ceil() as usize;
    eligible.truncate(n_eval.min(eligible.len()));
    eligible.sort_unstable();
    eligible
}

/// How many of a user's `n` interactions to hold out: `heldout_ratio` of
/// them, at least one, never all.
fn held_count(n: usize, heldout_ratio: f64) -> usize {
    ((n as f64 * heldout_ratio).floor() as usize).clamp(1, n - 1)
}

/// Random partial-user hold-out: a `test_user_ratio` share of the users with
/// at least two interactions is evaluated; for each, `heldout_ratio` of their
/// interactions (at least one, and never all) is held out. Deterministic for
/// a given seed.
pub fn split_random(m: &Csr, heldout_ratio: f64, test_user_ratio: f64, seed: u64) -> Result<Split> {
    let mut rng = Rng::new(seed);
    let eligible: Vec<u32> = (0..m.rows).filter(|&u| m.row(u).0.len() >= 2).collect();
    let chosen = choose_users(&mut rng, eligible, test_user_ratio);
    let mut held = vec![false; m.nnz()];
    let mut positions: Vec<usize> = Vec::new();
    for &u in &chosen {
        let start = m.indptr[u as usize] as usize;
        let n = m.row(u).0.len();
        positions.clear();
        positions.extend(0..n);
        rng.shuffle(&mut positions);
        for &p in &positions[..held_count(n, heldout_ratio)] {
            held[start + p] = true;
        }
    }
    carve(m, &held, &chosen)
}

/// Time-based partial-user hold-out: users are chosen as for
/// [`split_random`] (same seed, same users), and each chosen user's most
/// recent `heldout_ratio` of interactions (at least one, never all) is held
/// out; equal times are ordered by item index.
pub fn split_time_user(m: &Csr, times: &[i64], heldout_ratio: f64, test_user_ratio: f64, seed: u64) -> Result<Split> {
    let mut rng = Rng::new(seed);
    let eligible: Vec<u32> = (0..m.rows).filter(|&u| m.row(u).0.len() >= 2).collect();
    let chosen = choose_users(&mut rng, eligible, test_user_ratio);
    let mut held = vec![false; m.nnz()];
    let mut order: Vec<(i64, u32, usize)> = Vec::new();
    for &u in &chosen {
        let (a, b) = (m.indptr[u as usize] as usize, m.indptr[u as usize + 1] as usize);
        order.clear();
        order.extend((a..b).map(|p| (times[p], m.indices[p], p)));
        order.sort_unstable();
        let k = held_count(b - a, heldout_ratio);
        for &(_, _, p) in &order[order.len() - k..] {
            held[p] = true;
        }
    }
    carve(m, &held, &chosen)
}

/// Global time cut-off: the cut-off is the `1 - heldout_ratio` quantile of
/// all interaction times (linear interpolation, as pandas); every
/// interaction at or after it leaves the training matrix. A
/// `test_user_ratio` share (seeded) of the users with interactions after
/// the cut-off is evaluated on them (users new after the cut-off included,
/// with an empty history); users without any become train-only. Nothing
/// before the cut-off (all at one instant) is a `split_error`.
pub fn split_time_global(m: &Csr, times: &[i64], heldout_ratio: f64, test_user_ratio: f64, seed: u64) -> Result<Split> {
    let mut rng = Rng::new(seed);
    let cutoff = quantile(times, 1.0 - heldout_ratio);
    let after: Vec<bool> = times.iter().map(|&t| t as f64 >= cutoff).collect();
    let eligible: Vec<u32> = (0..m.rows)
        .filter(|&u| after[m.indptr[u as usize] as usize..m.indptr[u as usize + 1] as usize].iter().any(|a| *a))
        .collect();
    let chosen = choose_users(&mut rng, eligible, test_user_ratio);
    // Everything after the cut-off leaves the training matrix; only the
    // chosen users' part is evaluated.
    let split = carve(m, &after, &chosen)?;
    if split.train.nnz() == 0 {
        return Err(Error::training(
            TrainingCode::SplitError,
            "training.split: time_global leaves nothing to train on (every interaction is at or after the \
             cut-off); lower heldout_ratio or use time_user",
        ));
    }
    Ok(split)
}

/// The `q` quantile of `values` (not empty), linearly interpolated.
fn quantile(values: &[i64], q: f64) -> f64 {
    let mut v = values.to_vec();
    let pos = (v.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (lo_i, hi_i) = (pos.floor() as usize, pos.ceil() as usize);
    let lo = *v.select_nth_unstable(lo_i).1;
    let hi = *v.select_nth_unstable(hi_i).1;
    lo as f64 + (hi - lo) as f64 * (pos - lo_i as f64)
}

fn empty_split() -> Error {
    Error::training(
        TrainingCode::SplitError,
        "the held-out split is empty: no user has interactions to hold out; \
         add data, lower cleansing thresholds or change training.split",
    )
}

/// Remove the `held` entries from `m`; the held-out items of each
/// `evaluated` user (ascending) form the evaluation set.
fn carve(m: &Csr, held: &[bool], evaluated: &[u32]) -> Result<Split> {
    let mut heldout = Vec::with_capacity(evaluated.len());
    for &u in evaluated {
        let (a, b) = (m.indptr[u as usize] as usize, m.indptr[u as usize + 1] as usize);
        // Rows are sorted by item, so the held-out items come out sorted.
        let items: Vec<u32> = (a..b).filter(|&p| held[p]).map(|p| m.indices[p]).collect();
        heldout.push((u, items));
    }
    if heldout.iter().all(|(_, items)| items.is_empty()) {
        return Err(empty_split());
    }
    let kept = held.iter().filter(|h| !**h).count();
    let mut indptr = Vec::with_capacity(m.indptr.len());
    let mut indices = Vec::with_capacity(kept);
    let mut values = Vec::with_capacity(kept);
    indptr.push(0u32);
    for u in 0..m.rows as usize {
        for p in m.indptr[u] as usize..m.indptr[u + 1] as usize {
            if !held[p] {
                indices.push(m.indices[p]);
                values.push(m.values[p]);
            }
        }
        indptr.push(indices.len() as u32);
    }
    Ok(Split { train: Csr { rows: m.rows, cols: m.cols, indptr, indices, values }, heldout })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::interactions::csr_from_sorted;

    fn matrix() -> Csr {
        let mut e = Vec::new();
        for u in 0..20u32 {
            for i in 0..(u % 7 + 1) {
                e.push((u, i * 3 % 11 + (u % 2), 1.0));
            }
        }
        e.sort_by_key(|x| (x.0, x.1));
        e.dedup_by_key(|x| (x.0, x.1));
        csr_from_sorted(20, 12, &e)
    }

    #[test]
    fn holds_out_without_emptying_users_and_is_deterministic() {
        let m = matrix();
        let a = split_random(&m, 0.3, 1.0, 42).unwrap();
        let b = split_random(&m, 0.3, 1.0, 42).unwrap();
        assert_eq!(a.heldout, b.heldout);
        a.train.validate().unwrap();
        let held: usize = a.heldout.iter().map(|(_, i)| i.len()).sum();
        assert_eq!(a.train.nnz() + held, m.nnz());
        for (u, items) in &a.heldout {
            assert!(!a.train.row(*u).0.is_empty());
            for i in items {
                assert!(!a.train.row(*u).0.contains(i));
                assert!(m.row(*u).0.contains(i));
            }
        }
        let c = split_random(&m, 0.3, 1.0, 43).unwrap();
        assert_ne!(a.heldout, c.heldout);
    }

    #[test]
    fn user_ratio_limits_evaluated_users() {
        let m = matrix();
        let eligible = (0..m.rows).filter(|&u| m.row(u).0.len() >= 2).count();
        let s = split_random(&m, 0.5, 0.5, 1).unwrap();
        assert_eq!(s.heldout.len(), (eligible as f64 * 0.5).ceil() as usize);
    }

    /// Entry times: entry p of the matrix gets time (p * 7) % 13 so that
    /// times disagree with item order.
    fn times(m: &Csr) -> Vec<i64> {
        (0..m.nnz() as i64).map(|p| (p * 7) % 13).collect()
    }

    #[test]
    fn time_user_holds_out_each_users_latest() {
        let m = matrix();
        let t = times(&m);
        let s = split_time_user(&m, &t, 0.3, 1.0, 5).unwrap();
        assert_eq!(s.heldout, split_time_user(&m, &t, 0.3, 1.0, 5).unwrap().heldout);
        s.train.validate().unwrap();
        for (u, items) in &s.heldout {
            let (a, b) = (m.indptr[*u as usize] as usize, m.indptr[*u as usize + 1] as usize);
            let time_of = |item: u32| t[(a..b).find(|&p| m.indices[p] == item).unwrap()];
            let newest_kept = s.train.row(*u).0.iter().map(|&i| (time_of(i), i)).max().unwrap();
            let oldest_held = items.iter().map(|&i| (time_of(i), i)).min().unwrap();
            assert!(newest_kept < oldest_held, "user {u}: kept {newest_kept:?} is newer than held {oldest_held:?}");
            assert_eq!(items.len(), ((b - a) as f64 * 0.3).floor().clamp(1.0, (b - a - 1) as f64) as usize);
        }
        // The same users as the random scheme with the same seed.
        let r = split_random(&m, 0.3, 0.5, 5).unwrap();
        let tu = split_time_user(&m, &t, 0.3, 0.5, 5).unwrap();
        let users = |s: &Split| s.heldout.iter().map(|h| h.0).collect::<Vec<_>>();
        assert_eq!(users(&r), users(&tu));
    }

    #[test]
    fn time_global_cuts_at_the_quantile() {
        let m = matrix();
        let t = times(&m);
        let cutoff = quantile(&t, 0.7);
        let s = split_time_global(&m, &t, 0.3, 1.0, 5).unwrap();
        s.train.validate().unwrap();
        let kept_after = (0..m.nnz()).filter(|&p| t[p] as f64 >= cutoff).count();
        assert_eq!(s.train.nnz(), m.nnz() - kept_after, "every entry after the cut-off leaves train");
        assert!(s.heldout.iter().all(|(_, items)| !items.is_empty()));
        assert_eq!(quantile(&[1, 2, 3, 4], 0.5), 2.5);
        // All at one instant: everything is after the cut-off, nobody has
        // a past to train on.
        let same = vec![3; m.nnz()];
        assert_eq!(split_time_global(&m, &same, 0.3, 1.0, 5).unwrap_err().code(), "split_error");
    }

    #[test]
    fn fixed_split_trains_on_train_scores_on_val_and_keeps_test_out_of_the_refit() {
        // user 0: items 0 (train), 1 (val), 2 (test); user 1: 0 (train), 3 (test);
        // user 2: 1 (train), 2 (val).
        let m = csr_from_sorted(3, 4, &[(0, 0, 1.0), (0, 1, 1.0), (0, 2, 1.0), (1, 0, 1.0), (1, 3, 1.0), (2, 1, 1.0), (2, 2, 1.0)]);
        let (t, v, x) = (Part::Train as u8, Part::Val as u8, Part::Test as u8);
        let s = split_fixed(&m, &[t, v, x, t, x, t, v]).unwrap();
        assert_eq!(s.search.train.indices, vec![0, 0, 1]);
        assert_eq!(s.search.train.indptr, vec![0, 1, 2, 3]);
        assert_eq!(s.search.heldout, vec![(0, vec![1]), (2, vec![2])]);
        let refit = s.refit.unwrap();
        assert_eq!(refit.indices, vec![0, 1, 0, 1, 2]);
        let test = s.test.unwrap();
        assert_eq!(test.heldout, vec![(0, vec![2]), (1, vec![3])]);
        assert_eq!(test.train, refit);

        // No test rows: the refit is everything and there is no test part.
        let s = split_fixed(&m, &[t, v, t, t, t, t, v]).unwrap();
        assert_eq!(s.refit.unwrap(), m);
        assert!(s.test.is_none());
        // No validation rows: nothing to score trials on.
        assert_eq!(split_fixed(&m, &[t, x, x, t, x, t, t]).unwrap_err().code(), "split_error");
    }

    #[test]
    fn empty_split_is_a_split_error() {
        let m = csr_from_sorted(2, 2, &[(0, 0, 1.0), (1, 1, 1.0)]);
        assert_eq!(split_random(&m, 0.5, 1.0, 1).unwrap_err().code(), "split_error");
    }
}
