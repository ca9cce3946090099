//! The interaction table: (user, item) pairs with interned ids.

use std::fmt::Write as _;

use crate::error::{DataCounts, Error, Result};
use crate::model::Csr;
use crate::plugin::bindings::source::recotem::plugin::types::{Batch, Column, ColumnData};
use crate::recipe::model::{Cleansing, Dedup};

pub use recotem_core::ids::Interner;

/// Interactions as read from the source, before cleansing.
#[derive(Debug, Default)]
pub struct Interactions {
    /// User ids.
    pub users: Interner,
    /// Item ids.
    pub items: Interner,
    /// Per row: user index, or `None` when null.
    user_of_row: Vec<Option<u32>>,
    /// Per row: item index, or `None` when null.
    item_of_row: Vec<Option<u32>>,
}

/// The cleansed data: unique (user, item) pairs (or weighted duplicates).
#[derive(Debug)]
pub struct Cleaned {
    /// User ids (index = matrix row).
    pub users: Interner,
    /// Item ids (index = matrix column).
    pub items: Interner,
    /// users × items, value = number of kept interactions.
    pub matrix: Csr,
    /// Rows kept.
    pub n_rows: u64,
    /// Rows dropped (null ids + duplicates).
    pub drop_count: u64,
}

impl Interactions {
    /// Rows read so far.
    pub fn n_rows(&self) -> usize {
        self.user_of_row.len()
    }

    /// Append a batch. The batch is untrusted plugin output: column lengths,
    /// offsets and UTF-8 are checked.
    pub fn push_batch(&mut self, batch: &Batch, user_column: &str, item_column: &str) -> Result<()> {
        let rows = check_batch(batch)?;
        let find = |name: &str| {
            find_column(batch, name).ok_or_else(|| {
                Error::data_source(format!(
                    "column {name:?} is missing from the data (schema names it); the source returned: {}",
                    column_names(batch)
                ))
            })
        };
        let (uc, ic) = (find(user_column)?, find(item_column)?);
        intern_column(uc, rows, &mut self.users, &mut self.user_of_row)?;
        intern_column(ic, rows, &mut self.items, &mut self.item_of_row)?;
        Ok(())
    }

    /// Drop null ids and duplicates, check the minimums, build the matrix.
    pub fn cleanse(self, rules: &Cleansing) -> Result<Cleaned> {
        let total = self.user_of_row.len() as u64;
        // Rows with a null id never reach the matrix: with `drop_null_ids`
        // they are dropped (and counted as dropped); without it they still
        // count as rows, as in the reference implementation.
        let mut pairs: Vec<(u32, u32, u32)> = Vec::with_capacity(self.user_of_row.len());
        let mut nulls = 0u64;
        for (row, (u, i)) in self.user_of_row.iter().zip(&self.item_of_row).enumerate() {
            match (u, i) {
                (Some(u), Some(i)) => pairs.push((*u, *i, row as u32)),
                _ => nulls += 1,
            }
        }
        let null_drops = if rules.drop_null_ids { nulls } else { 0 };
        pairs.sort_unstable();
        let mut entries: Vec<(u32, u32, f32)> = Vec::with_capacity(pairs.len());
        let mut dup_drops = 0u64;
        for group in pairs.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
            let (u, i, _) = group[0];
            let weight = match rules.dedup {
                Dedup::KeepFirst | Dedup::KeepLast => {
                    dup_drops += group.len() as u64 - 1;
                    1.0
                }
                Dedup::None => group.len() as f32,
            };
            entries.push((u, i, weight));
        }
        let n_rows = total - null_drops - dup_drops;
        // Ids only seen on dropped rows still got an index: compact them.
        let (users, user_map) = compact(&self.users, entries.iter().map(|e| e.0));
        let (items, item_map) = compact(&self.items, entries.iter().map(|e| e.1));
        let counts = DataCounts {
            n_rows,
            n_users: users.len() as u64,
            n_items: items.len() as u64,
            min_rows: rules.min_rows.unwrap_or(0),
            min_users: rules.min_users.unwrap_or(0),
            min_items: rules.min_items.unwrap_or(0),
        };
        let mut violations = Vec::new();
        if counts.n_rows < counts.min_rows {
            violations.push(format!("n_rows={} < min_rows={}", counts.n_rows, counts.min_rows));
        }
        if counts.n_users < counts.min_users {
            violations.push(format!("n_users={} < min_users={}", counts.n_users, counts.min_users));
        }
        if counts.n_items < counts.min_items {
            violations.push(format!("n_items={} < min_items={}", counts.n_items, counts.min_items));
        }
        if !violations.is_empty() {
            return Err(Error::min_data(format!("Data precondition failed: {}", violations.join(", ")), counts));
        }
        if entries.is_empty() {
            return Err(Error::data_source("the source returned no usable interactions (0 rows after cleansing)"));
        }
        for e in &mut entries {
            e.0 = user_map[e.0 as usize];
            e.1 = item_map[e.1 as usize];
        }
        entries.sort_unstable_by_key(|e| (e.0, e.1));
        let matrix = csr_from_sorted(users.len() as u32, items.len() as u32, &entries);
        Ok(Cleaned { users, items, matrix, n_rows, drop_count: null_drops + dup_drops })
    }
}

/// Build a CSR matrix from entries sorted by (row, col) without duplicates.
pub fn csr_from_sorted(rows: u32, cols: u32, entries: &[(u32, u32, f32)]) -> Csr {
    let mut indptr = vec![0u32; rows as usize + 1];
    for e in entries {
        indptr[e.0 as usize + 1] += 1;
    }
    for r in 0..rows as usize {
        indptr[r + 1] += indptr[r];
    }
    Csr {
        rows,
        cols,
        indptr,
        indices: entries.iter().map(|e| e.1).collect(),
        values: entries.iter().map(|e| e.2).collect(),
    }
}

/// Keep only the ids in `used`, in order of first index; returns the new
/// interner and old → new index map.
fn compact(ids: &Interner, used: impl Iterator<Item = u32>) -> (Interner, Vec<u32>) {
    let mut seen = vec![false; ids.len()];
    for u in used {
        seen[u as usize] = true;
    }
    let mut map = vec![u32::MAX; ids.len()];
    let mut kept = Vec::new();
    for (old, id) in ids.ids().iter().enumerate() {
        if seen[old] {
            map[old] = kept.len() as u32;
            kept.push(id.clone());
        }
    }
    let interner = Interner::from_ids(kept).unwrap_or_default();
    (interner, map)
}

fn column_len(c: &Column) -> usize {
    match &c.data {
        ColumnData::Int64(v) => v.len(),
        ColumnData::Float64(v) => v.len(),
        ColumnData::Boolean(v) => v.len(),
        ColumnData::Utf8(s) => s.offsets.len().saturating_sub(1),
    }
}

fn intern_column(c: &Column, rows: usize, ids: &mut Interner, out: &mut Vec<Option<u32>>) -> Result<()> {
    if matches!(c.data, ColumnData::Boolean(_)) {
        return Err(Error::data_source(format!("column {:?} holds booleans, which cannot be ids", c.name)));
    }
    out.reserve(rows);
    for_each_text(c, rows, |text| {
        out.push(match text.map(str::trim).filter(|t| !t.is_empty()) {
            Some(id) => Some(ids.intern(id)?),
            None => None,
        });
        Ok(())
    })
}

/// Check a batch's shape (it is untrusted plugin output): every column and
/// null mask has `num_rows` entries. Returns the row count.
pub(crate) fn check_batch(batch: &Batch) -> Result<usize> {
    let rows = batch.num_rows as usize;
    for c in &batch.columns {
        let len = column_len(c);
        if len != rows {
            return Err(Error::data_source(format!(
                "the source returned a malformed batch: column {:?} has {len} values, the batch has {rows} rows",
                c.name
            )));
        }
        if let Some(valid) = &c.valid {
            if valid.len() != rows {
                return Err(Error::data_source(format!(
                    "the source returned a malformed batch: column {:?} has {} null flags for {rows} rows",
                    c.name,
                    valid.len()
                )));
            }
        }
    }
    Ok(rows)
}

/// The column called `name`, if the batch has it.
pub(crate) fn find_column<'b>(batch: &'b Batch, name: &str) -> Option<&'b Column> {
    batch.columns.iter().find(|c| c.name == name)
}

/// The batch's column names, for messages.
pub(crate) fn column_names(batch: &Batch) -> String {
    batch.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// Call `f` with each row of a checked column as text (`None` for nulls and
/// non-finite floats): strings as they are (offsets and UTF-8 checked),
/// integers in decimal, whole floats without a fraction, booleans as
/// `true`/`false`.
pub(crate) fn for_each_text(c: &Column, rows: usize, mut f: impl FnMut(Option<&str>) -> Result<()>) -> Result<()> {
    let valid = |r: usize| c.valid.as_ref().is_none_or(|v| v[r]);
    let mut buf = String::new();
    match &c.data {
        ColumnData::Utf8(s) => {
            if s.offsets.first().is_some_and(|&o| o != 0) {
                return Err(bad_batch(c, "string offsets must start at 0"));
            }
            for r in 0..rows {
                let (a, b) = (s.offsets[r] as usize, s.offsets[r + 1] as usize);
                if a > b || b > s.data.len() {
                    return Err(bad_batch(c, &format!("string offsets out of range at row {r}")));
                }
                if !valid(r) {
                    f(None)?;
                    continue;
                }
                let text = std::str::from_utf8(&s.data[a..b])
                    .map_err(|_| bad_batch(c, &format!("value at row {r} is not UTF-8")))?;
                f(Some(text))?;
            }
        }
        ColumnData::Int64(v) => {
            for (r, x) in v.iter().enumerate().take(rows) {
                if !valid(r) {
                    f(None)?;
                    continue;
                }
                buf.clear();
                write!(buf, "{x}").map_err(|e| Error::internal(e.to_string()))?;
                f(Some(&buf))?;
            }
        }
        ColumnData::Float64(v) => {
            for (r, x) in v.iter().enumerate().take(rows) {
                if !valid(r) || !x.is_finite() {
                    f(None)?;
                    continue;
                }
                buf.clear();
                let written = if x.fract() == 0.0 && x.abs() < 1e15 { write!(buf, "{}", *x as i64) } else { write!(buf, "{x}") };
                written.map_err(|e| Error::internal(e.to_string()))?;
                f(Some(&buf))?;
            }
        }
        ColumnData::Boolean(v) => {
            for (r, x) in v.iter().enumerate().take(rows) {
                f(valid(r).then_some(if *x { "true" } else { "false" }))?;
            }
        }
    }
    Ok(())
}

fn bad_batch(c: &Column, what: &str) -> Error {
    Error::data_source(format!("the source returned a malformed batch: column {:?}: {what}", c.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::source::recotem::plugin::types::Utf8Column;

    fn utf8(name: &str, values: &[Option<&str>]) -> Column {
        let mut data = Vec::new();
        let mut offsets = vec![0u32];
        let mut valid = Vec::new();
        for v in values {
            data.extend_from_slice(v.unwrap_or("").as_bytes());
            offsets.push(data.len() as u32);
            valid.push(v.is_some());
        }
        Column { name: name.into(), data: ColumnData::Utf8(Utf8Column { data, offsets }), valid: Some(valid) }
    }

    fn batch(users: &[Option<&str>], items: &[Option<&str>]) -> Batch {
        Batch { num_rows: users.len() as u32, columns: vec![utf8("u", users), utf8("i", items)] }
    }

    #[test]
    fn dedup_nulls_and_counts() {
        let mut t = Interactions::default();
        let b = batch(
            &[Some("a"), Some("a"), Some("b"), None, Some("c")],
            &[Some("x"), Some("x"), Some("y"), Some("x"), None],
        );
        t.push_batch(&b, "u", "i").unwrap();
        let c = t.cleanse(&Cleansing::default()).unwrap();
        assert_eq!((c.n_rows, c.drop_count), (2, 3));
        assert_eq!(c.users.ids().len(), 2, "c only appears with a null item");
        assert_eq!(c.matrix.nnz(), 2);
        c.matrix.validate().unwrap();
    }

    #[test]
    fn dedup_none_sums_weights() {
        let mut t = Interactions::default();
        t.push_batch(&batch(&[Some("a"), Some("a")], &[Some("x"), Some("x")]), "u", "i").unwrap();
        let rules = Cleansing { dedup: Dedup::None, ..Cleansing::default() };
        let c = t.cleanse(&rules).unwrap();
        assert_eq!(c.matrix.values, vec![2.0]);
        assert_eq!(c.n_rows, 2);
    }

    #[test]
    fn minimums_report_every_violation() {
        let mut t = Interactions::default();
        t.push_batch(&batch(&[Some("a")], &[Some("x")]), "u", "i").unwrap();
        let rules = Cleansing { min_rows: Some(10), min_items: Some(5), ..Cleansing::default() };
        let e = t.cleanse(&rules).unwrap_err();
        assert_eq!(e.code(), "min_data_violation");
        let message = e.to_string();
        assert!(message.contains("n_rows=1 < min_rows=10") && message.contains("n_items=1 < min_items=5"));
        assert_eq!(e.counts().unwrap().min_users, 0);
    }

    #[test]
    fn malformed_batches_are_rejected() {
        let mut t = Interactions::default();
        let mut b = batch(&[Some("a"), Some("b")], &[Some("x"), Some("y")]);
        b.num_rows = 3;
        assert!(t.push_batch(&b, "u", "i").unwrap_err().to_string().contains("malformed"));
        let b = batch(&[Some("a")], &[Some("x")]);
        assert!(t.push_batch(&b, "user", "i").unwrap_err().to_string().contains("\"user\" is missing"));
    }
}
