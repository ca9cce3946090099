//! Compressed sparse rows.

/// A sparse matrix in CSR form (rows × cols).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Csr {
    /// Number of rows.
    pub rows: u32,
    /// Number of columns.
    pub cols: u32,
    /// `rows + 1` offsets into `indices`/`values`.
    pub indptr: Vec<u32>,
    /// Column of each entry, sorted within a row.
    pub indices: Vec<u32>,
    /// Value of each entry.
    pub values: Vec<f32>,
}

impl Csr {
    /// A matrix from `(row, col, value)` triplets in any order; a repeated
    /// `(row, col)` keeps its last value. Panics if an index is out of range
    /// (meant for generated data and tests, not for untrusted input).
    pub fn from_triplets(rows: u32, cols: u32, entries: &[(u32, u32, f32)]) -> Csr {
        let mut sorted: Vec<(u32, u32, f32)> = entries.to_vec();
        sorted.sort_by_key(|e| (e.0, e.1));
        // Keep the last of equal keys (stable sort kept input order).
        let mut kept: Vec<(u32, u32, f32)> = Vec::with_capacity(sorted.len());
        for e in sorted {
            match kept.last_mut() {
                Some(last) if (last.0, last.1) == (e.0, e.1) => *last = e,
                _ => kept.push(e),
            }
        }
        let mut indptr = vec![0u32; rows as usize + 1];
        for &(r, c, _) in &kept {
            assert!(r < rows && c < cols, "triplet ({r}, {c}) outside {rows} × {cols}");
            indptr[r as usize + 1] += 1;
        }
        for i in 0..rows as usize {
            indptr[i + 1] += indptr[i];
        }
        Csr {
            rows,
            cols,
            indptr,
            indices: kept.iter().map(|e| e.1).collect(),
            values: kept.iter().map(|e| e.2).collect(),
        }
    }

    /// Entries of row `r` (empty when out of range).
    pub fn row(&self, r: u32) -> (&[u32], &[f32]) {
        let r = r as usize;
        match (self.indptr.get(r), self.indptr.get(r + 1)) {
            (Some(&a), Some(&b)) if a <= b && (b as usize) <= self.indices.len() => {
                (&self.indices[a as usize..b as usize], &self.values[a as usize..b as usize])
            }
            _ => (&[], &[]),
        }
    }

    /// Number of stored entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Check the structure: offsets monotonic and in range, columns in range
    /// and strictly increasing within a row, values finite.
    pub fn validate(&self) -> Result<(), String> {
        if self.indptr.len() != self.rows as usize + 1 {
            return Err(format!(
                "indptr has {} entries, expected rows + 1 = {}",
                self.indptr.len(),
                self.rows as usize + 1
            ));
        }
        if self.indices.len() != self.values.len() {
            return Err(format!("{} indices but {} values", self.indices.len(), self.values.len()));
        }
        if self.indptr[0] != 0 || *self.indptr.last().unwrap_or(&0) as usize != self.indices.len() {
            return Err("indptr must start at 0 and end at the number of entries".into());
        }
        for r in 0..self.rows as usize {
            let (a, b) = (self.indptr[r], self.indptr[r + 1]);
            if a > b {
                return Err(format!("indptr decreases at row {r}"));
            }
            if b as usize > self.indices.len() {
                return Err(format!("indptr points past the entries at row {r}"));
            }
            let cols = &self.indices[a as usize..b as usize];
            if let Some(&c) = cols.iter().find(|&&c| c >= self.cols) {
                return Err(format!("row {r} has column {c}, but there are {} columns", self.cols));
            }
            if cols.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("row {r}: columns are not strictly increasing"));
            }
        }
        if self.values.iter().any(|v| !v.is_finite()) {
            return Err("values must be finite (found NaN or infinity)".into());
        }
        Ok(())
    }

    /// The transpose (cols × rows), columns sorted within each row. O(nnz).
    pub fn transpose(&self) -> Csr {
        Csr::transpose_of(self.rows, self.cols, &self.indptr, &self.indices, &self.values)
    }

    /// The transpose of the (valid) `rows × cols` matrix given by its
    /// arrays, without owning them (the host transposes a matrix it holds
    /// in another representation). O(nnz).
    pub fn transpose_of(rows: u32, cols: u32, indptr: &[u32], indices: &[u32], values: &[f32]) -> Csr {
        let mut counts = vec![0u32; cols as usize + 1];
        for &c in indices {
            counts[c as usize + 1] += 1;
        }
        for i in 0..cols as usize {
            counts[i + 1] += counts[i];
        }
        let out_indptr = counts.clone();
        let mut next = counts;
        let mut out_indices = vec![0u32; indices.len()];
        let mut out_values = vec![0f32; indices.len()];
        for r in 0..rows as usize {
            let span = indptr[r] as usize..indptr[r + 1] as usize;
            for (&c, &v) in indices[span.clone()].iter().zip(&values[span]) {
                let slot = &mut next[c as usize];
                out_indices[*slot as usize] = r as u32;
                out_values[*slot as usize] = v;
                *slot += 1;
            }
        }
        Csr { rows: cols, cols: rows, indptr: out_indptr, indices: out_indices, values: out_values }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Csr {
        // row 0: col 0; row 1: cols 1, 2.
        Csr { rows: 2, cols: 3, indptr: vec![0, 1, 3], indices: vec![0, 1, 2], values: vec![1.0, 2.0, 3.0] }
    }

    #[test]
    fn validation() {
        assert!(sample().validate().is_ok());
        let mut m = sample();
        m.indices[2] = 1;
        assert!(m.validate().unwrap_err().contains("strictly increasing"));
        let mut m = sample();
        m.values[0] = f32::NAN;
        assert!(m.validate().is_err());
    }

    #[test]
    fn from_triplets_sorts_and_keeps_last_duplicate() {
        let m = Csr::from_triplets(2, 3, &[(1, 2, 3.0), (0, 0, 9.0), (1, 1, 2.0), (0, 0, 1.0)]);
        assert_eq!(m, sample());
    }

    #[test]
    fn transpose_round_trips() {
        let t = sample().transpose();
        assert_eq!((t.rows, t.cols), (3, 2));
        assert_eq!(t.row(2), (&[1u32][..], &[3.0f32][..]));
        assert!(t.validate().is_ok());
        assert_eq!(t.transpose(), sample());
    }
}
