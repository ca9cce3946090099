//! Models the host scores natively, for evaluation and for serving. A
//! trainer plugin returns one of these kinds; no plugin code runs at scoring
//! time.

pub use recotem_numerics::{Csr, dot, top_k};


/// A model the host can score.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// One score per item.
    Popularity(Vec<f32>),
    /// score(u, i) = users[u] · items[i].
    Factors {
        /// Latent dimension.
        dim: u32,
        /// `n_users × dim`, row-major.
        users: Vec<f32>,
        /// `n_items × dim`, row-major.
        items: Vec<f32>,
    },
    /// score(u, ·) = history(u) × similarity (items × items, sparse).
    SparseItemItem(Csr),
    /// score(u, ·) = history(u) × similarity (items × items, dense row-major).
    DenseItemItem {
        /// Number of items.
        n: u32,
        /// `n × n` values.
        values: Vec<f32>,
    },
}

impl Model {
    /// The kind's name, as stored in artifact headers.
    pub fn kind(&self) -> &'static str {
        match self {
            Model::Popularity(_) => "popularity",
            Model::Factors { .. } => "factors",
            Model::SparseItemItem(_) => "sparse-item-item",
            Model::DenseItemItem { .. } => "dense-item-item",
        }
    }

    /// Check a model against the data it was trained on (`n_users ×
    /// n_items`): every array has the shape the kind implies and holds only
    /// finite numbers. A trainer's model is untrusted input; this runs before
    /// it is scored or stored.
    pub fn validate(&self, n_users: u32, n_items: u32) -> Result<(), String> {
        let finite = |v: &[f32], what: &str| {
            if v.iter().all(|x| x.is_finite()) { Ok(()) } else { Err(format!("{what} contains NaN or infinite values")) }
        };
        match self {
            Model::Popularity(scores) => {
                if scores.len() != n_items as usize {
                    return Err(format!("popularity has {} scores for {n_items} items", scores.len()));
                }
                finite(scores, "popularity")
            }
            Model::Factors { dim, users, items } => {
                let dim = *dim;
                if dim == 0 {
                    return Err("factor dimension is zero".into());
                }
                let expect = |count: u32, values: &[f32], what: &str| {
                    if values.len() as u64 == count as u64 * dim as u64 {
                        Ok(())
                    } else {
                        Err(format!("{what} factors hold {} values, expected {count} × {dim}", values.len()))
                    }
                };
                expect(n_users, users, "user")?;
                expect(n_items, items, "item")?;
                finite(users, "user factors")?;
                finite(items, "item factors")
            }
            Model::SparseItemItem(csr) => {
                if csr.rows != n_items || csr.cols != n_items {
                    return Err(format!("similarity is {} × {}, expected {n_items} × {n_items}", csr.rows, csr.cols));
                }
                csr.validate().map_err(|e| format!("similarity matrix: {e}"))
            }
            Model::DenseItemItem { n, values } => {
                if *n != n_items || values.len() as u64 != n_items as u64 * n_items as u64 {
                    return Err(format!("dense similarity must be {n_items} × {n_items}"));
                }
                finite(values, "dense similarity")
            }
        }
    }

    /// Number of items the model scores.
    pub fn n_items(&self) -> u32 {
        match self {
            Model::Popularity(s) => s.len() as u32,
            Model::Factors { dim, items, .. } => (items.len() / (*dim).max(1) as usize) as u32,
            Model::SparseItemItem(m) => m.rows,
            Model::DenseItemItem { n, .. } => *n,
        }
    }

    /// Write the score of every item for `user` (with interaction history
    /// `history`) into `out` (length = number of items).
    pub fn score_user(&self, user: u32, history: (&[u32], &[f32]), out: &mut [f32]) {
        match self {
            Model::Popularity(scores) => out.copy_from_slice(scores),
            Model::Factors { dim, users, items } => {
                let d = *dim as usize;
                let start = user as usize * d;
                let Some(u) = users.get(start..start + d) else {
                    out.fill(0.0);
                    return;
                };
                for (score, item) in out.iter_mut().zip(items.chunks_exact(d)) {
                    *score = dot(u, item);
                }
            }
            Model::SparseItemItem(sim) => {
                out.fill(0.0);
                for (&i, &w) in history.0.iter().zip(history.1) {
                    let (cols, vals) = sim.row(i);
                    for (&j, &s) in cols.iter().zip(vals) {
                        out[j as usize] += w * s;
                    }
                }
            }
            Model::DenseItemItem { n, values } => {
                out.fill(0.0);
                let n = *n as usize;
                for (&i, &w) in history.0.iter().zip(history.1) {
                    let row = &values[i as usize * n..(i as usize + 1) * n];
                    for (o, &s) in out.iter_mut().zip(row) {
                        *o += w * s;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history() -> Csr {
        // user 0 saw item 0; user 1 saw items 1, 2.
        Csr { rows: 2, cols: 3, indptr: vec![0, 1, 3], indices: vec![0, 1, 2], values: vec![1.0; 3] }
    }

    #[test]
    fn factors_score_dot_products() {
        let m = Model::Factors { dim: 2, users: vec![1.0, 0.0, 0.0, 1.0], items: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] };
        let mut out = [0.0; 3];
        m.score_user(1, history().row(1), &mut out);
        assert_eq!(out, [2.0, 4.0, 6.0]);
    }

    #[test]
    fn item_item_scores_sum_over_history() {
        let sim = Csr { rows: 3, cols: 3, indptr: vec![0, 1, 2, 3], indices: vec![1, 0, 0], values: vec![0.5, 0.25, 2.0] };
        let h = history();
        let mut out = [0.0; 3];
        Model::SparseItemItem(sim).score_user(1, h.row(1), &mut out);
        assert_eq!(out, [2.25, 0.0, 0.0]);
        let dense = Model::DenseItemItem { n: 3, values: vec![0.0, 0.5, 0.0, 0.25, 0.0, 0.0, 2.0, 0.0, 0.0] };
        dense.score_user(1, h.row(1), &mut out);
        assert_eq!(out, [2.25, 0.0, 0.0]);
    }

    #[test]
    fn models_are_checked_against_the_data() {
        assert!(Model::Popularity(vec![1.0, 2.0]).validate(1, 3).is_err());
        assert!(Model::Popularity(vec![1.0, f32::NAN, 0.0]).validate(1, 3).is_err());
        assert!(Model::Popularity(vec![1.0, 2.0, 0.0]).validate(1, 3).is_ok());
        let bad_csr = Csr { rows: 3, cols: 3, indptr: vec![0, 2, 1, 1], indices: vec![0], values: vec![1.0] };
        assert!(Model::SparseItemItem(bad_csr).validate(1, 3).is_err());
        let f = Model::Factors { dim: 2, users: vec![0.0; 2], items: vec![0.0; 5] };
        assert!(f.validate(1, 3).unwrap_err().contains("item factors"));
    }
}
