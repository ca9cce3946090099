//! TopPop: recommends the items with the most interactions (weighted by the
//! matrix values). It has no hyper-parameters and ignores the seed; every
//! personalised model is measured against it.

use recotem_guest_sdk::prelude::*;

struct TopPop;

impl Trainer for TopPop {
    fn describe() -> TrainerInfo {
        TrainerInfo::new(
            "TopPop",
            env!("CARGO_PKG_VERSION"),
            "Item popularity: the same ranking for every user, unseen items first.",
            ModelKind::Popularity,
        )
        .with_alias("TopPopRecommender")
    }

    fn train(interactions: CsrMatrix, _params: Params, _seed: u64) -> Result<Model, PluginError> {
        popularity(&interactions).map(Model::Popularity)
    }
}

/// Column sums of a CSR matrix.
fn popularity(m: &CsrMatrix) -> Result<Vec<f32>, PluginError> {
    if m.indices.len() != m.values.len() {
        return Err(PluginError::invalid_input("matrix indices and values differ in length"));
    }
    let mut scores = vec![0f32; m.cols as usize];
    for (&col, &value) in m.indices.iter().zip(&m.values) {
        let slot = scores
            .get_mut(col as usize)
            .ok_or_else(|| PluginError::invalid_input(format!("column index {col} out of range")))?;
        *slot += value;
    }
    Ok(scores)
}

export_trainer!(TopPop);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_weighted_interactions_per_item() {
        let m = CsrMatrix {
            rows: 2,
            cols: 3,
            indptr: vec![0, 2, 3],
            indices: vec![0, 2, 2],
            values: vec![1.0, 1.0, 2.0],
        };
        assert_eq!(popularity(&m).unwrap(), vec![1.0, 0.0, 3.0]);
    }

    #[test]
    fn rejects_out_of_range_columns() {
        let m = CsrMatrix { rows: 1, cols: 1, indptr: vec![0, 1], indices: vec![5], values: vec![1.0] };
        assert!(popularity(&m).is_err());
    }
}
