//! Bounded top-k selection.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A candidate in the heap: ordered so the *worst* kept item is on top.
#[derive(PartialEq)]
struct Worst(f32, u32);

impl Eq for Worst {}

impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        // Lower score is "greater" (worse); on ties the higher index is worse.
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

/// The `k` best items by score, best first; ties go to the lower index.
/// `exclude` must be sorted ascending (a user's seen items).
pub fn top_k(scores: &[f32], k: usize, exclude: &[u32]) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Worst> = BinaryHeap::with_capacity(k + 1);
    let mut skip = exclude.iter().peekable();
    for (i, &s) in scores.iter().enumerate() {
        let i = i as u32;
        while skip.peek().is_some_and(|&&e| e < i) {
            skip.next();
        }
        if skip.peek().is_some_and(|&&e| e == i) {
            continue;
        }
        if heap.len() < k {
            heap.push(Worst(s, i));
        } else if let Some(worst) = heap.peek() {
            if s > worst.0 {
                heap.pop();
                heap.push(Worst(s, i));
            }
        }
    }
    let mut out: Vec<(u32, f32)> = heap.into_iter().map(|Worst(s, i)| (i, s)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_first_with_exclusions_and_ties() {
        let scores = [0.5, 3.0, 3.0, 1.0, 9.0];
        assert_eq!(top_k(&scores, 3, &[4]), vec![(1, 3.0), (2, 3.0), (3, 1.0)]);
        assert_eq!(top_k(&scores, 10, &[0, 1, 2, 3, 4]), vec![]);
        assert_eq!(top_k(&scores, 0, &[]), vec![]);
        assert_eq!(top_k(&scores, 1, &[]), vec![(4, 9.0)]);
    }
}
