//! Host-side evaluation: the plugin never grades its own work.
//!
//! Metric definitions (binary gains, the user's training items masked, users
//! without held-out items skipped), averaged over evaluated users:
//! - `ndcg@k`: DCG of the top k over the ideal DCG of min(k, |held out|) hits;
//! - `recall@k`: hits / |held out|;
//! - `map@k`: Σ precision-at-each-hit / |held out|;
//! - `hit@k`: 1 when any held-out item is in the top k.

use crate::data::Split;
use crate::model::{Model, top_k};
use crate::recipe::model::Metric;

/// Mean metric over the split's evaluated users.
pub fn evaluate(model: &Model, split: &Split, metric: Metric, cutoff: usize) -> f64 {
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
    use crate::model::Csr;

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
        let model = Model::Popularity(vec![5.0, 3.0, 1.0]);
        assert_eq!(evaluate(&model, &split, Metric::Ndcg, 1), 1.0);
        let reversed = Model::Popularity(vec![5.0, 1.0, 3.0]);
        assert_eq!(evaluate(&reversed, &split, Metric::Hit, 1), 0.0);
        assert_eq!(evaluate(&reversed, &split, Metric::Hit, 2), 1.0);
    }
}
