//! Building column batches.

use crate::{Batch, Column, ColumnData, Utf8Column};

/// Values of one column under construction.
#[derive(Debug, Clone)]
pub enum ColumnBuilder {
    /// 64-bit integers.
    Int64(Vec<i64>, Validity),
    /// 64-bit floats.
    Float64(Vec<f64>, Validity),
    /// Booleans.
    Boolean(Vec<bool>, Validity),
    /// UTF-8 strings in one buffer.
    Utf8(Utf8Values, Validity),
}

/// UTF-8 values in one buffer plus offsets.
#[derive(Debug, Clone)]
pub struct Utf8Values {
    data: Vec<u8>,
    offsets: Vec<u32>,
}

/// Null flags, allocated only once a null is pushed.
#[derive(Debug, Clone, Default)]
pub struct Validity {
    flags: Option<Vec<bool>>,
}

impl Validity {
    fn push(&mut self, len_before: usize, valid: bool) {
        match (&mut self.flags, valid) {
            (Some(flags), v) => flags.push(v),
            (None, true) => {}
            (None, false) => {
                let mut flags = vec![true; len_before];
                flags.push(false);
                self.flags = Some(flags);
            }
        }
    }
}

impl ColumnBuilder {
    /// An empty string column.
    pub fn utf8() -> Self {
        ColumnBuilder::Utf8(Utf8Values { data: Vec::new(), offsets: vec![0] }, Validity::default())
    }

    /// Number of values pushed so far.
    pub fn len(&self) -> usize {
        match self {
            ColumnBuilder::Int64(v, _) => v.len(),
            ColumnBuilder::Float64(v, _) => v.len(),
            ColumnBuilder::Boolean(v, _) => v.len(),
            ColumnBuilder::Utf8(v, _) => v.offsets.len() - 1,
        }
    }

    /// True when nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append a string (to a string column; other kinds ignore the call in
    /// release builds and panic in debug builds).
    pub fn push(&mut self, value: &str) {
        let len = self.len();
        match self {
            ColumnBuilder::Utf8(v, valid) => {
                v.data.extend_from_slice(value.as_bytes());
                v.offsets.push(u32::try_from(v.data.len()).unwrap_or(u32::MAX));
                valid.push(len, true);
            }
            _ => debug_assert!(false, "push(&str) on a non-string column"),
        }
    }

    /// Append a null.
    pub fn push_null(&mut self) {
        let len = self.len();
        match self {
            ColumnBuilder::Int64(v, valid) => {
                v.push(0);
                valid.push(len, false);
            }
            ColumnBuilder::Float64(v, valid) => {
                v.push(0.0);
                valid.push(len, false);
            }
            ColumnBuilder::Boolean(v, valid) => {
                v.push(false);
                valid.push(len, false);
            }
            ColumnBuilder::Utf8(v, valid) => {
                v.offsets.push(u32::try_from(v.data.len()).unwrap_or(u32::MAX));
                valid.push(len, false);
            }
        }
    }

    fn finish(self, name: String) -> Column {
        let (data, valid) = match self {
            ColumnBuilder::Int64(v, valid) => (ColumnData::Int64(v), valid),
            ColumnBuilder::Float64(v, valid) => (ColumnData::Float64(v), valid),
            ColumnBuilder::Boolean(v, valid) => (ColumnData::Boolean(v), valid),
            ColumnBuilder::Utf8(v, valid) => {
                (ColumnData::Utf8(Utf8Column { data: v.data, offsets: v.offsets }), valid)
            }
        };
        Column { name, data, valid: valid.flags }
    }
}

/// Builds one [`Batch`] column by column.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    names: Vec<String>,
    columns: Vec<ColumnBuilder>,
}

impl BatchBuilder {
    /// A batch of string columns with these names.
    pub fn new(names: &[&str]) -> Self {
        BatchBuilder {
            names: names.iter().map(|n| n.to_string()).collect(),
            columns: names.iter().map(|_| ColumnBuilder::utf8()).collect(),
        }
    }

    /// The builder of column `index` (panics when out of range: a plugin
    /// bug, which the host reports as a trap).
    pub fn utf8(&mut self, index: usize) -> &mut ColumnBuilder {
        &mut self.columns[index]
    }

    /// Rows pushed so far (the length of the first column).
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, ColumnBuilder::len)
    }

    /// Finish the batch. Columns must all have the same length; the host
    /// rejects the batch otherwise.
    pub fn finish(self) -> Batch {
        let num_rows = u32::try_from(self.rows()).unwrap_or(u32::MAX);
        let columns = self.names.into_iter().zip(self.columns).map(|(n, c)| c.finish(n)).collect();
        Batch { num_rows, columns }
    }
}
