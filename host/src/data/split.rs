//! Hold-out splits for evaluation.

use crate::error::{Error, Result, TrainingCode};
use crate::model::Csr;
use crate::util::Rng;

/// A training matrix and, per evaluated user, the held-out items.
#[derive(Debug, Clone)]
pub struct Split {
    /// users × items with the held-out entries removed.
    pub train: Csr,
    /// (user, held-out items sorted ascending), users ascending.
    pub heldout: Vec<(u32, Vec<u32>)>,
}

/// Random partial-user hold-out: a `test_user_ratio` share of the users with
/// at least two interactions is evaluated; for each, `heldout_ratio` of their
/// interactions (at least one, and never all) is held out. Deterministic for
/// a given seed.
pub fn split_random(m: &Csr, heldout_ratio: f64, test_user_ratio: f64, seed: u64) -> Result<Split> {
    let mut rng = Rng::new(seed);
    let mut eligible: Vec<u32> = (0..m.rows).filter(|&u| m.row(u).0.len() >= 2).collect();
    rng.shuffle(&mut eligible);
    let n_eval = ((eligible.len() as f64) * test_user_ratio).ceil() as usize;
    let mut chosen = eligible[..n_eval.min(eligible.len())].to_vec();
    chosen.sort_unstable();

    let mut held_flags: Vec<bool> = vec![false; m.nnz()];
    let mut heldout = Vec::with_capacity(chosen.len());
    for &u in &chosen {
        let start = m.indptr[u as usize] as usize;
        let n = m.row(u).0.len();
        let k = ((n as f64 * heldout_ratio).floor() as usize).clamp(1, n - 1);
        let mut positions: Vec<usize> = (0..n).collect();
        rng.shuffle(&mut positions);
        let mut items: Vec<u32> = positions[..k]
            .iter()
            .map(|&p| {
                held_flags[start + p] = true;
                m.indices[start + p]
            })
            .collect();
        items.sort_unstable();
        heldout.push((u, items));
    }
    if heldout.is_empty() {
        return Err(Error::training(
            TrainingCode::SplitError,
            "the held-out split is empty: no user has two or more interactions; \
             add data or lower cleansing thresholds",
        ));
    }
    let mut indptr = Vec::with_capacity(m.indptr.len());
    let mut indices = Vec::with_capacity(m.nnz());
    let mut values = Vec::with_capacity(m.nnz());
    indptr.push(0u32);
    for u in 0..m.rows as usize {
        for p in m.indptr[u] as usize..m.indptr[u + 1] as usize {
            if !held_flags[p] {
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

    #[test]
    fn empty_split_is_a_split_error() {
        let m = csr_from_sorted(2, 2, &[(0, 0, 1.0), (1, 1, 1.0)]);
        assert_eq!(split_random(&m, 0.5, 1.0, 1).unwrap_err().code(), "split_error");
    }
}
