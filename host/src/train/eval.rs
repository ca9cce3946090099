//! Host-side evaluation: the plugin never grades its own work.
//!
//! Metric definitions (binary gains, the user's training items masked, users
//! without held-out items skipped), averaged over evaluated users:
//! - `ndcg@k`: DCG of the top k over the ideal DCG of min(k, |held out|) hits;
//! - `recall@k`: hits / |held out|;
//! - `map@k`: Σ precision-at-each-hit / |held out|;
//! - `hit@k`: 1 when any held-out item is in the top k.
//!
//! The top k of a user is exactly what serving ranks ([`top_k`] over
//! [`Model::score_user`]): best score first, ties to the lower item index.
//! Evaluation computes it per model kind in blocks, on all cores:
//! - popularity: the items are ranked once; each user walks that list,
//!   skipping their training items (O(k + |history|) per user);
//! - factors: a blocked matrix product (a block of users × a block of items
//!   at a time, the item block held in L1) through numerics' `dot_block`,
//!   the kernel serving also scores with: every score has the bits of
//!   [`dot`], and on x86-64 with AVX it runs register-tiled, 8 lanes wide;
//!   the bounded selection then skips groups of 8 scores that cannot enter
//!   the list;
//! - item-item (sparse and dense): each user's similarity rows accumulated
//!   into one score vector, as serving does.
//!
//! Users are cut into blocks handed to worker threads; every user's metric
//! value lands in its own slot and the slots are summed in user order at the
//! end, so the result is bit-identical whatever the number of threads.

use std::sync::Mutex;

use crate::data::Split;
use crate::model::{Csr, Model};
#[cfg(test)]
use crate::model::top_k;
#[cfg(doc)]
use crate::model::dot;
use crate::recipe::model::Metric;

/// Mean metric over the split's evaluated users.
///
/// The model is expected to have passed [`Model::validate`] against the
/// split's training matrix (the trainer path does so before a trial is
/// scored); a model that does not, or whose scores overflow to non-finite
/// values, yields NaN here. Callers that must tell that apart use
/// [`try_evaluate`].
pub fn evaluate(model: &Model, split: &Split, metric: Metric, cutoff: usize) -> f64 {
    try_evaluate(model, split, metric, cutoff).unwrap_or(f64::NAN)
}

/// [`evaluate`], failing (with a message that says why) when the model does
/// not fit the split's shape, holds non-finite numbers, or produces a
/// non-finite score for an evaluated user. A search fails such a trial.
pub fn try_evaluate(model: &Model, split: &Split, metric: Metric, cutoff: usize) -> Result<f64, String> {
    model.validate(split.train.rows, split.train.cols)?;
    let users: Vec<(u32, &[u32])> =
        split.heldout.iter().filter(|(_, held)| !held.is_empty()).map(|(u, held)| (*u, held.as_slice())).collect();
    if users.is_empty() {
        return Ok(0.0);
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let values = per_user_values(model, &split.train, &users, metric, cutoff, threads)?;
    // Summed in user order from +0.0: the same bits for any thread count.
    let total = values.iter().fold(0.0, |sum, v| sum + v);
    Ok(total / users.len() as f64)
}

/// Evaluated users handed to a worker at a time.
const USER_BLOCK: usize = 64;
/// Bytes of item factors per block of the factor product: small enough to
/// stay in a core's L1 data cache while every user of a block passes over it.
const ITEM_BLOCK_BYTES: usize = 16 << 10;

/// The metric value of every user of `users` (user, held-out items), in
/// order, computed by `threads` workers.
fn per_user_values(
    model: &Model,
    train: &Csr,
    users: &[(u32, &[u32])],
    metric: Metric,
    cutoff: usize,
    threads: usize,
) -> Result<Vec<f64>, String> {
    let plan = Plan::new(model, train.cols as usize);
    let mut values = vec![0f64; users.len()];
    let blocks = users.len().div_ceil(USER_BLOCK);
    let queue = Mutex::new(values.chunks_mut(USER_BLOCK).zip(users.chunks(USER_BLOCK)).enumerate());
    let failure: Mutex<Option<(usize, String)>> = Mutex::new(None);
    let work = || {
        let mut ws = Workspace::default();
        loop {
            let next = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).next();
            let Some((b, (out, block))) = next else { break };
            if let Err(e) = plan.score_block(train, block, metric, cutoff, &mut ws, out) {
                // Keep the first failing block's message, whatever the timing.
                let mut f = failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if f.as_ref().is_none_or(|(first, _)| b < *first) {
                    *f = Some((b, e));
                }
            }
        }
    };
    let workers = threads.clamp(1, blocks.max(1));
    if workers == 1 {
        work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(work);
            }
        });
    }
    match failure.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        Some((_, e)) => Err(e),
        None => Ok(values),
    }
}

/// How a model's users are ranked.
enum Plan<'m> {
    /// Items best first (ties to the lower index), shared by every user.
    Ranked(Vec<u32>),
    /// A blocked matrix product. `checked`: the factors are large enough
    /// that a score could overflow, so every score is checked.
    Factors { dim: usize, users: &'m [f32], items: &'m [f32], n_items: usize, checked: bool },
    /// Score every item per user as serving does, then select.
    PerUser(&'m Model, usize),
}

impl<'m> Plan<'m> {
    fn new(model: &'m Model, n_items: usize) -> Plan<'m> {
        match model {
            // A −0.0 beside a +0.0 compares equal to the selection heap but
            // not to a sort; such a vector takes the general path.
            Model::Popularity(scores) if !scores.iter().any(|s| s.to_bits() == (-0f32).to_bits()) => {
                let mut order: Vec<u32> = (0..scores.len() as u32).collect();
                // Stable: equal scores keep ascending item order.
                order.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
                Plan::Ranked(order)
            }
            Model::Factors { dim, users, items } => {
                let d = *dim as usize;
                Plan::Factors { dim: d, users, items, n_items: items.len() / d.max(1), checked: may_overflow(users, items, d) }
            }
            _ => Plan::PerUser(model, n_items),
        }
    }

    /// Write the metric value of each user of `block` into `out`.
    fn score_block(
        &self,
        train: &Csr,
        block: &[(u32, &[u32])],
        metric: Metric,
        cutoff: usize,
        ws: &mut Workspace,
        out: &mut [f64],
    ) -> Result<(), String> {
        match self {
            Plan::Ranked(order) => {
                for ((user, held), o) in block.iter().zip(out) {
                    let history = train.row(*user).0;
                    ws.hits.clear();
                    for &i in order {
                        if ws.hits.len() == cutoff {
                            break;
                        }
                        if history.binary_search(&i).is_err() {
                            ws.hits.push(held.binary_search(&i).is_ok());
                        }
                    }
                    *o = metric_value(metric, &ws.hits, held.len(), cutoff);
                }
            }
            Plan::PerUser(model, n_items) => {
                ws.scores.resize(*n_items, 0.0);
                let mut top = TopK::new(cutoff);
                for ((user, held), o) in block.iter().zip(out) {
                    let history = train.row(*user);
                    model.score_user(*user, history, &mut ws.scores);
                    all_finite(&ws.scores, *user)?;
                    top.reset();
                    let mut cursor = 0;
                    top.scan(&ws.scores, 0, history.0, &mut cursor);
                    *o = top.value(metric, held, cutoff, &mut ws.hits);
                }
            }
            Plan::Factors { dim, users, items, n_items, checked } => {
                let d = *dim;
                ws.rows.clear();
                for (user, _) in block {
                    let start = *user as usize * d;
                    match users.get(start..start + d) {
                        Some(row) => ws.rows.extend_from_slice(row),
                        // Serving scores an unknown user 0 everywhere.
                        None => ws.rows.extend(std::iter::repeat_n(0.0, d)),
                    }
                }
                ws.tops.resize_with(block.len(), || TopK::new(cutoff));
                for top in &mut ws.tops {
                    top.k = cutoff;
                    top.reset();
                }
                ws.cursors.clear();
                ws.cursors.resize(block.len(), 0);
                let item_block = (ITEM_BLOCK_BYTES / (4 * d.max(1))).max(8);
                let mut start = 0;
                while start < *n_items {
                    let end = (start + item_block).min(*n_items);
                    let nb = end - start;
                    ws.scores.resize(block.len() * nb, 0.0);
                    recotem_numerics::dot_block(&ws.rows, &items[start * d..end * d], d, &mut ws.scores);
                    for (r, (user, _)) in block.iter().enumerate() {
                        let scores = &ws.scores[r * nb..(r + 1) * nb];
                        if *checked {
                            all_finite(scores, *user)?;
                        }
                        ws.tops[r].scan(scores, start as u32, train.row(*user).0, &mut ws.cursors[r]);
                    }
                    start = end;
                }
                for ((top, (_, held)), o) in ws.tops.iter().zip(block).zip(out) {
                    *o = top.value(metric, held, cutoff, &mut ws.hits);
                }
            }
        }
        Ok(())
    }
}

/// Whether a dot product of a `users` row with an `items` row can be
/// infinite or NaN. With finite factors it cannot when `d · max|u| · max|i|`
/// stays well below `f32::MAX` (every partial sum is bounded by it, rounding
/// included), and then the per-score check is skipped.
fn may_overflow(users: &[f32], items: &[f32], d: usize) -> bool {
    let max_abs = |v: &[f32]| v.iter().fold(0f32, |m, x| if x.abs() > m || x.is_nan() { x.abs() } else { m });
    let (mu, mi) = (max_abs(users), max_abs(items));
    !(mu.is_finite() && mi.is_finite() && (d as f64) * (mu as f64) * (mi as f64) < f32::MAX as f64 / 4.0)
}

fn all_finite(scores: &[f32], user: u32) -> Result<(), String> {
    // A fold rather than `all` so the check vectorises.
    if scores.iter().fold(true, |ok, s| ok & s.is_finite()) {
        Ok(())
    } else {
        Err(format!(
            "the model gives user {user} a score that is NaN or infinite (its numbers overflow); retrain it with \
             stronger regularisation or smaller values"
        ))
    }
}

/// A worker's reusable buffers.
#[derive(Default)]
struct Workspace {
    scores: Vec<f32>,
    rows: Vec<f32>,
    tops: Vec<TopK>,
    cursors: Vec<usize>,
    hits: Vec<bool>,
}

/// Streaming top-k selection with exactly the semantics of [`top_k`]:
/// items are offered in ascending index order, an item enters a full list
/// only when its score is strictly greater than the worst kept one, and the
/// worst is the lowest score (total order), the higher index on ties.
struct TopK {
    k: usize,
    /// Kept items, best first.
    best: Vec<(f32, u32)>,
    /// The worst kept score once the list is full (+∞ when k = 0, so nothing
    /// enters).
    bar: f32,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK { k, best: Vec::with_capacity(k.min(4096) + 1), bar: f32::INFINITY }
    }

    fn reset(&mut self) {
        self.best.clear();
        self.bar = if self.k == 0 { f32::INFINITY } else { f32::NEG_INFINITY };
    }

    fn full(&self) -> bool {
        self.best.len() >= self.k
    }

    /// Offer `scores` (items `base..`), skipping the sorted `history` from
    /// position `cursor` on (advanced as items pass).
    #[inline]
    fn scan(&mut self, scores: &[f32], base: u32, history: &[u32], cursor: &mut usize) {
        // Once the list is full almost no score beats the bar: test eight at
        // a time (a branch-free fold the compiler vectorises) and look at
        // the items only of a group where one does.
        const GROUP: usize = 8;
        for (g, group) in scores.chunks(GROUP).enumerate() {
            if self.full() && !group.iter().fold(false, |any, &s| any | (s > self.bar)) {
                continue;
            }
            self.scan_each(group, base + (g * GROUP) as u32, history, cursor);
        }
    }

    #[inline]
    fn scan_each(&mut self, scores: &[f32], base: u32, history: &[u32], cursor: &mut usize) {
        for (o, &s) in scores.iter().enumerate() {
            if !(s > self.bar) && self.full() {
                continue;
            }
            let i = base + o as u32;
            while history.get(*cursor).is_some_and(|&h| h < i) {
                *cursor += 1;
            }
            if history.get(*cursor) == Some(&i) {
                continue;
            }
            self.offer(s, i);
        }
    }

    fn offer(&mut self, s: f32, i: u32) {
        if self.full() {
            if !(s > self.bar) {
                return;
            }
            self.best.pop();
        }
        let better = |e: &(f32, u32)| e.0.total_cmp(&s).then(i.cmp(&e.1)).is_gt();
        let at = self.best.partition_point(better);
        self.best.insert(at, (s, i));
        if self.full() {
            self.bar = self.best.last().map_or(f32::INFINITY, |w| w.0);
        }
    }

    fn value(&self, metric: Metric, held: &[u32], cutoff: usize, hits: &mut Vec<bool>) -> f64 {
        hits.clear();
        hits.extend(self.best.iter().map(|(_, i)| held.binary_search(i).is_ok()));
        metric_value(metric, hits, held.len(), cutoff)
    }
}

/// The metric for one user given the hit flags of the ranked list.
pub fn metric_value(metric: Metric, hits: &[bool], n_heldout: usize, cutoff: usize) -> f64 {
    let discount = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    match metric {
        Metric::Ndcg => {
            let dcg: f64 = hits.iter().enumerate().filter(|(_, h)| **h).map(|(r, _)| discount(r)).sum();
            let idcg: f64 = (0..n_heldout.min(cutoff)).map(discount).sum();
            if idcg == 0.0 { 0.0 } else { dcg / idcg }
        }
        Metric::Recall => hits.iter().filter(|h| **h).count() as f64 / n_heldout as f64,
        Metric::Map => {
            let mut found = 0usize;
            let mut sum = 0.0;
            for (r, h) in hits.iter().enumerate() {
                if *h {
                    found += 1;
                    sum += found as f64 / (r + 1) as f64;
                }
            }
            sum / n_heldout as f64
        }
        Metric::Hit => {
            if hits.iter().any(|h| *h) { 1.0 } else { 0.0 }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recotem_numerics::Rng;

    #[test]
    fn metric_definitions() {
        let hits = [true, false, true];
        let ndcg = metric_value(Metric::Ndcg, &hits, 2, 3);
        let expect = (1.0 + 1.0 / 4f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((ndcg - expect).abs() < 1e-12);
        assert_eq!(metric_value(Metric::Recall, &hits, 4, 3), 0.5);
        assert!((metric_value(Metric::Map, &hits, 2, 3) - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(metric_value(Metric::Hit, &[false, false], 1, 2), 0.0);
        assert_eq!(metric_value(Metric::Ndcg, &[true], 1, 1), 1.0);
    }

    #[test]
    fn popularity_evaluated_end_to_end() {
        // Users 0 and 1 saw item 0; user 1's held-out item 1 is the most
        // popular unseen item, so it ranks first.
        let split = Split {
            train: Csr { rows: 2, cols: 3, indptr: vec![0, 1, 2], indices: vec![0, 0], values: vec![1.0, 1.0] },
            heldout: vec![(1, vec![1])],
        };
        let model = Model::Popularity(vec![5.0, 3.0, 1.0].into());
        assert_eq!(evaluate(&model, &split, Metric::Ndcg, 1), 1.0);
        let reversed = Model::Popularity(vec![5.0, 1.0, 3.0].into());
        assert_eq!(evaluate(&reversed, &split, Metric::Hit, 1), 0.0);
        assert_eq!(evaluate(&reversed, &split, Metric::Hit, 2), 1.0);
    }

    /// The per-user reference: every item scored as serving does, then the
    /// bounded heap selection, users summed in order.
    fn reference(model: &Model, split: &Split, metric: Metric, cutoff: usize) -> f64 {
        let n_items = split.train.cols as usize;
        let mut scores = vec![0f32; n_items];
        let mut total = 0.0;
        let mut users = 0usize;
        for (user, held) in &split.heldout {
            if held.is_empty() {
                continue;
            }
            let history = split.train.row(*user);
            model.score_user(*user, history, &mut scores);
            let ranked = top_k(&scores, cutoff, history.0);
            let hits: Vec<bool> = ranked.iter().map(|(i, _)| held.binary_search(i).is_ok()).collect();
            total += metric_value(metric, &hits, held.len(), cutoff);
            users += 1;
        }
        if users == 0 { 0.0 } else { total / users as f64 }
    }

    /// A random split: some users with no history, some holding almost the
    /// whole catalogue, some with nothing held out.
    fn random_split(rng: &mut Rng, n_users: u32, n_items: u32) -> Split {
        let mut entries = Vec::new();
        let mut heldout = Vec::new();
        for u in 0..n_users {
            let density = match u % 5 {
                0 => 0.0,
                1 => 0.97,
                _ => rng.next_f64() * 0.2,
            };
            let mut held = Vec::new();
            for i in 0..n_items {
                if rng.next_f64() < density {
                    entries.push((u, i, 1.0 + rng.below(3) as f32));
                } else if rng.next_f64() < 0.02 {
                    held.push(i);
                }
            }
            if u % 7 != 3 {
                heldout.push((u, held));
            }
        }
        Split { train: Csr::from_triplets(n_users, n_items, &entries), heldout }
    }

    /// Values either continuous or from a tiny integer set (many ties).
    fn value(rng: &mut Rng, tied: bool) -> f32 {
        if tied { rng.below(3) as f32 - 1.0 } else { rng.next_f32() * 2.0 - 1.0 }
    }

    fn random_models(rng: &mut Rng, n_users: u32, n_items: u32, tied: bool) -> Vec<Model> {
        let mut models = vec![Model::Popularity((0..n_items).map(|_| value(rng, tied)).collect())];
        for dim in [1u32, 7, 8, 13, 64] {
            models.push(Model::Factors {
                dim,
                users: (0..n_users * dim).map(|_| value(rng, tied)).collect(),
                items: (0..n_items * dim).map(|_| value(rng, tied)).collect(),
            });
        }
        let mut sim = Vec::new();
        for i in 0..n_items {
            for _ in 0..rng.below(12) {
                sim.push((i, rng.below(n_items as u64) as u32, value(rng, tied)));
            }
        }
        models.push(Model::SparseItemItem(Csr::from_triplets(n_items, n_items, &sim)));
        models.push(Model::DenseItemItem {
            n: n_items,
            values: (0..n_items * n_items).map(|_| if rng.below(4) == 0 { value(rng, tied) } else { 0.0 }).collect(),
        });
        models
    }

    #[test]
    fn block_scoring_equals_the_per_user_reference() {
        let mut rng = Rng::new(9);
        // More users than one block, more items than one item block.
        let split = random_split(&mut rng, 150, 300);
        for tied in [false, true] {
            for model in random_models(&mut rng, 150, 300, tied) {
                model.validate(150, 300).unwrap();
                for metric in [Metric::Ndcg, Metric::Recall, Metric::Map, Metric::Hit] {
                    for cutoff in [0, 1, 5, 10, 299, 400] {
                        let expect = reference(&model, &split, metric, cutoff);
                        let got = evaluate(&model, &split, metric, cutoff);
                        let what = format!("{} tied={tied} {metric:?}@{cutoff}", model.kind());
                        assert_eq!(got.to_bits(), expect.to_bits(), "{what}: {got} != {expect}");
                        let users: Vec<(u32, &[u32])> = split
                            .heldout
                            .iter()
                            .filter(|(_, h)| !h.is_empty())
                            .map(|(u, h)| (*u, h.as_slice()))
                            .collect();
                        let one = per_user_values(&model, &split.train, &users, metric, cutoff, 1).unwrap();
                        let three = per_user_values(&model, &split.train, &users, metric, cutoff, 3).unwrap();
                        assert_eq!(one, three, "{what}: thread count changed the values");
                    }
                }
            }
        }
    }

    #[test]
    fn popularity_with_signed_zeros_matches_the_reference() {
        let mut rng = Rng::new(5);
        let split = random_split(&mut rng, 40, 30);
        let scores: Vec<f32> = (0..30).map(|i| if i % 2 == 0 { 0.0 } else { -0.0 }).collect();
        let model = Model::Popularity(scores.into());
        for cutoff in [1, 3, 10] {
            assert_eq!(evaluate(&model, &split, Metric::Ndcg, cutoff), reference(&model, &split, Metric::Ndcg, cutoff));
        }
    }

    #[test]
    fn unusable_models_fail_instead_of_scoring() {
        let split = Split {
            train: Csr { rows: 2, cols: 3, indptr: vec![0, 1, 2], indices: vec![0, 0], values: vec![4.0, 4.0] },
            heldout: vec![(1, vec![1])],
        };
        let short = Model::Popularity(vec![1.0, 2.0].into());
        assert!(try_evaluate(&short, &split, Metric::Ndcg, 2).unwrap_err().contains("3 items"));
        assert!(evaluate(&short, &split, Metric::Ndcg, 2).is_nan());
        let nan = Model::Factors { dim: 1, users: vec![1.0, f32::NAN].into(), items: vec![1.0; 3].into() };
        assert!(try_evaluate(&nan, &split, Metric::Ndcg, 2).is_err());
        // Finite factors whose products overflow.
        let huge = Model::Factors { dim: 2, users: vec![3e38; 4].into(), items: vec![3e38; 6].into() };
        let err = try_evaluate(&huge, &split, Metric::Ndcg, 2).unwrap_err();
        assert!(err.contains("NaN or infinite"), "{err}");
        let dense = Model::DenseItemItem { n: 3, values: vec![3e38; 9].into() };
        assert!(try_evaluate(&dense, &split, Metric::Recall, 2).is_err());
    }
}
