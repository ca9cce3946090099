//! The interaction table: (user, item) pairs with interned ids, and the
//! cleansing that turns it into a matrix.
//!
//! Built for tens of millions of rows: ids are interned batch by batch (the
//! user and item columns on two threads), rows are kept as two `u32`
//! columns in fixed-size chunks (no reallocation copies; plus one `i64`
//! per row when there is a time column), and cleansing groups rows by user
//! with a counting sort instead of sorting them all.

use std::fmt::Write as _;

use crate::data::time::{self, TimeFault};
use crate::error::{DataCounts, Error, Result, TrainingCode};
use crate::model::Csr;
use crate::plugin::bindings::source::recotem::plugin::types::{Batch, Column, ColumnData};
use crate::recipe::model::{Cleansing, Dedup, SplitLabels, TimeUnit};

pub use recotem_core::ids::Interner;

/// Null marker in the row columns.
const NULL: u32 = u32::MAX;
/// Values per chunk of a row column.
const CHUNK: usize = 1 << 20;

/// A column of row values in fixed-size chunks: growing never copies, and
/// at most one chunk is spare.
#[derive(Debug)]
struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new(), len: 0 }
    }
}

impl<T: Copy> Chunked<T> {
    fn push(&mut self, v: T) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(v),
            _ => {
                let mut c = Vec::with_capacity(CHUNK);
                c.push(v);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.chunks.iter().flat_map(|c| c.iter().copied())
    }

    /// Value `k` (every chunk but the last is full).
    fn get(&self, k: usize) -> Option<T> {
        self.chunks.get(k / CHUNK).and_then(|c| c.get(k % CHUNK)).copied()
    }

    /// The values from index `start` on (every chunk but the last is full).
    fn iter_from(&self, start: usize) -> impl Iterator<Item = T> + '_ {
        let (first, offset) = (start / CHUNK, start % CHUNK);
        self.chunks[first.min(self.chunks.len())..]
            .iter()
            .enumerate()
            .flat_map(move |(k, c)| c[if k == 0 { offset } else { 0 }..].iter().copied())
    }
}

/// Interactions as read from the source, before cleansing.
#[derive(Debug, Default)]
pub struct Interactions {
    /// User ids.
    pub users: Interner,
    /// Item ids.
    pub items: Interner,
    /// Per row: user index, or [`NULL`].
    user_of_row: Chunked<u32>,
    /// Per row: item index, or [`NULL`].
    item_of_row: Chunked<u32>,
    /// Per row with both ids: its time (µs since the epoch), when the
    /// recipe has a time column.
    time_of_row: Option<Chunked<i64>>,
    time_unit: Option<TimeUnit>,
    time_column: Option<String>,
    /// Per row with both ids: its part ([`Part`] as `u8`), when the recipe
    /// has a fixed split.
    part_of_row: Option<Chunked<u8>>,
    /// The fixed split's column and labels.
    part_column: Option<(String, SplitLabels)>,
}

/// Where a row of a fixed split belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Part {
    /// Trained on by the search and the final model.
    Train = 0,
    /// Scored by each trial; trained on by the final model.
    Val = 1,
    /// Scored once by the final model; never trained on.
    Test = 2,
}

impl Part {
    /// The part of a stored code (codes come only from [`Part`] itself).
    pub fn from_code(code: u8) -> Part {
        match code {
            0 => Part::Train,
            1 => Part::Val,
            _ => Part::Test,
        }
    }
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
    /// Per matrix entry (same order as `matrix.indices`): its time in µs
    /// since the epoch (`keep_first`: the first row's, `keep_last`: the
    /// last row's, `none`: the latest), when the recipe has a time column.
    pub times: Option<Vec<i64>>,
    /// Per matrix entry: its [`Part`] code (`keep_first`: the first row's,
    /// `keep_last`: the last row's, `none`: the furthest from training,
    /// so a pair held out once is never trained on), when the recipe has a
    /// fixed split.
    pub parts: Option<Vec<u8>>,
    /// Rows kept.
    pub n_rows: u64,
    /// Rows dropped (null ids + duplicates).
    pub drop_count: u64,
}

impl Interactions {
    /// An empty table that also reads `time_column` (parsed with `unit`).
    pub fn with_time(time_column: Option<String>, unit: Option<TimeUnit>) -> Self {
        Interactions {
            time_of_row: time_column.as_ref().map(|_| Chunked::default()),
            time_unit: unit,
            time_column,
            ..Interactions::default()
        }
    }

    /// Also read a fixed split's part column with its labels.
    pub fn with_parts(mut self, column: String, labels: SplitLabels) -> Self {
        self.part_of_row = Some(Chunked::default());
        self.part_column = Some((column, labels));
        self
    }

    /// Rows read so far.
    pub fn n_rows(&self) -> usize {
        self.user_of_row.len
    }

    /// Append a batch. The batch is untrusted plugin output: column lengths,
    /// offsets and UTF-8 are checked. The user and item columns are
    /// interned on two threads when the batch is large enough to pay.
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
        let tc = match &self.time_column {
            Some(name) => Some(find(name)?),
            None => None,
        };
        let pc = match &self.part_column {
            Some((name, _)) => Some(find(name)?),
            None => None,
        };
        let first_row = self.n_rows();
        let (users, items) = (&mut self.users, &mut self.items);
        let (user_of_row, item_of_row) = (&mut self.user_of_row, &mut self.item_of_row);
        let (ur, ir) = if rows >= 4096 {
            std::thread::scope(|s| {
                let u = s.spawn(|| intern_column(uc, rows, users, user_of_row));
                let i = intern_column(ic, rows, items, item_of_row);
                (u.join().unwrap_or_else(|_| Err(Error::internal("the interning thread panicked"))), i)
            })
        } else {
            (intern_column(uc, rows, users, user_of_row), intern_column(ic, rows, items, item_of_row))
        };
        ur?;
        ir?;
        if tc.is_none() && pc.is_none() {
            return Ok(());
        }
        // Only rows with both ids: the others never reach the matrix
        // (CLN-01: null ids are dropped before the time is parsed).
        let both: Vec<bool> = self
            .user_of_row
            .iter_from(first_row)
            .zip(self.item_of_row.iter_from(first_row))
            .map(|(u, i)| u != NULL && i != NULL)
            .collect();
        if let (Some(tc), Some(times)) = (tc, self.time_of_row.as_mut()) {
            let unit = self.time_unit;
            let column = self.time_column.as_deref().unwrap_or_default();
            parse_times(tc, rows, &both, unit, first_row, column, times)?;
        }
        if let (Some(pc), Some(parts), Some((_, labels))) = (pc, self.part_of_row.as_mut(), self.part_column.as_ref()) {
            parse_parts(pc, rows, &both, labels, first_row, parts)?;
        }
        Ok(())
    }

    /// Drop null ids and duplicates, check the minimums, build the matrix
    /// (and the time of each entry).
    pub fn cleanse(self, rules: &Cleansing) -> Result<Cleaned> {
        let Interactions { users, items, user_of_row, item_of_row, time_of_row, part_of_row, .. } = self;
        let total = user_of_row.len as u64;
        let n_users = users.len();

        // Group the rows by user (counting sort, stable: row order is kept
        // inside a user).
        let mut indptr = vec![0u32; n_users + 1];
        let mut nulls = 0u64;
        for (u, i) in user_of_row.iter().zip(item_of_row.iter()) {
            if u == NULL || i == NULL {
                nulls += 1;
            } else {
                indptr[u as usize + 1] += 1;
            }
        }
        let kept = total - nulls;
        if kept > u64::from(u32::MAX) {
            return Err(Error::data_source("more than 4 294 967 295 interactions; split the data"));
        }
        for u in 0..n_users {
            indptr[u + 1] += indptr[u];
        }
        let mut cursor = indptr.clone();
        let mut indices = vec![0u32; kept as usize];
        // With times or parts, each entry first records which kept row it
        // came from (4 bytes), and the row columns are dropped before the
        // times (8 bytes) are gathered: the row columns and every per-entry
        // array never live all at once (the peak of a timed ingest).
        let gather = time_of_row.is_some() || part_of_row.is_some();
        let mut source_row = if gather { vec![0u32; kept as usize] } else { Vec::new() };
        let mut k = 0u32;
        for (u, i) in user_of_row.iter().zip(item_of_row.iter()) {
            if u == NULL || i == NULL {
                continue;
            }
            let at = cursor[u as usize] as usize;
            cursor[u as usize] += 1;
            indices[at] = i;
            if gather {
                source_row[at] = k;
            }
            k += 1;
        }
        drop((cursor, user_of_row, item_of_row));
        // Times and parts are stored per kept row (rows with both ids).
        let mut times = time_of_row.map(|t| source_row.iter().map(|&k| t.get(k as usize).unwrap_or_default()).collect::<Vec<i64>>());
        let mut parts = part_of_row.map(|p| source_row.iter().map(|&k| p.get(k as usize).unwrap_or_default()).collect::<Vec<u8>>());
        drop(source_row);

        // Inside each user: sort by item, fold duplicates, compact in place.
        let mut values = Vec::with_capacity(indices.len());
        let mut scratch: Vec<(u32, u32)> = Vec::new();
        let (mut user_times, mut user_parts): (Vec<i64>, Vec<u8>) = (Vec::new(), Vec::new());
        let mut write = 0usize;
        let mut dup_drops = 0u64;
        let mut new_indptr = Vec::with_capacity(indptr.len());
        new_indptr.push(0u32);
        for u in 0..n_users {
            let (a, b) = (indptr[u] as usize, indptr[u + 1] as usize);
            scratch.clear();
            scratch.extend(indices[a..b].iter().enumerate().map(|(k, &i)| (i, k as u32)));
            scratch.sort_unstable();
            user_times.clear();
            user_times.extend_from_slice(times.as_ref().map_or(&[][..], |t| &t[a..b]));
            user_parts.clear();
            user_parts.extend_from_slice(parts.as_ref().map_or(&[][..], |p| &p[a..b]));
            for group in scratch.chunk_by(|x, y| x.0 == y.0) {
                let (item, first) = group[0];
                let last = group[group.len() - 1].1;
                let weight = match rules.dedup {
                    Dedup::KeepFirst | Dedup::KeepLast => {
                        dup_drops += group.len() as u64 - 1;
                        1.0
                    }
                    Dedup::None => group.len() as f32,
                };
                // The user's times and parts were copied out first: the
                // compaction below overwrites positions a later group of
                // this user may still read.
                if let Some(parts) = parts.as_mut() {
                    parts[write] = match rules.dedup {
                        Dedup::KeepFirst => user_parts[first as usize],
                        Dedup::KeepLast => user_parts[last as usize],
                        Dedup::None => group.iter().map(|g| user_parts[g.1 as usize]).max().unwrap_or_default(),
                    };
                }
                if let Some(times) = times.as_mut() {
                    times[write] = match rules.dedup {
                        Dedup::KeepFirst => user_times[first as usize],
                        Dedup::KeepLast => user_times[last as usize],
                        Dedup::None => group.iter().map(|g| user_times[g.1 as usize]).max().unwrap_or_default(),
                    };
                }
                indices[write] = item;
                values.push(weight);
                write += 1;
            }
            new_indptr.push(write as u32);
        }
        indices.truncate(write);
        indices.shrink_to_fit();
        if let Some(t) = times.as_mut() {
            t.truncate(write);
            t.shrink_to_fit();
        }
        if let Some(p) = parts.as_mut() {
            p.truncate(write);
            p.shrink_to_fit();
        }
        drop(indptr);
        let null_drops = if rules.drop_null_ids { nulls } else { 0 };
        let n_rows = total - null_drops - dup_drops;

        // Ids only seen on rows with a null partner got an index: drop them
        // (order kept, so rows stay sorted).
        let (users, user_map) = compact(users, (0..n_users).map(|u| new_indptr[u + 1] > new_indptr[u]));
        let mut item_seen = vec![false; items.len()];
        for &i in &indices {
            item_seen[i as usize] = true;
        }
        let (items, item_map) = compact(items, item_seen.into_iter());
        if let Some(map) = &user_map {
            let mut kept_indptr = Vec::with_capacity(users.len() + 1);
            kept_indptr.push(0u32);
            for (u, &m) in map.iter().enumerate() {
                if m != NULL {
                    kept_indptr.push(new_indptr[u + 1]);
                }
            }
            new_indptr = kept_indptr;
        }
        if let Some(map) = &item_map {
            for i in &mut indices {
                *i = map[*i as usize];
            }
        }

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
        if indices.is_empty() {
            return Err(Error::data_source("the source returned no usable interactions (0 rows after cleansing)"));
        }
        let matrix = Csr { rows: users.len() as u32, cols: items.len() as u32, indptr: new_indptr, indices, values };
        Ok(Cleaned { users, items, matrix, times, parts, n_rows, drop_count: null_drops + dup_drops })
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

/// Keep only the ids flagged in `used` (one flag per id), in order; the
/// old → new index map ([`NULL`] for dropped ids), or `None` when every id
/// is kept.
fn compact(ids: Interner, used: impl Iterator<Item = bool>) -> (Interner, Option<Vec<u32>>) {
    let used: Vec<bool> = used.collect();
    if used.iter().all(|u| *u) {
        return (ids, None);
    }
    let mut map = vec![NULL; ids.len()];
    for (new, (m, _)) in map.iter_mut().zip(&used).filter(|(_, u)| **u).enumerate() {
        *m = new as u32;
    }
    // A subset of distinct ids is distinct.
    let interner = Interner::from_ids(ids.iter().zip(&used).filter(|(_, u)| **u).map(|(id, _)| id)).unwrap_or_default();
    (interner, Some(map))
}

fn column_len(c: &Column) -> usize {
    match &c.data {
        ColumnData::Int64(v) => v.len(),
        ColumnData::Float64(v) => v.len(),
        ColumnData::Boolean(v) => v.len(),
        ColumnData::Utf8(s) => s.offsets.len().saturating_sub(1),
    }
}

fn intern_column(c: &Column, rows: usize, ids: &mut Interner, out: &mut Chunked<u32>) -> Result<()> {
    if matches!(c.data, ColumnData::Boolean(_)) {
        return Err(Error::data_source(format!("column {:?} holds booleans, which cannot be ids", c.name)));
    }
    for_each_text(c, rows, |text| {
        out.push(match text.map(str::trim).filter(|t| !t.is_empty()) {
            Some(id) => ids.intern(id)?,
            None => NULL,
        });
        Ok(())
    })
}

/// Parse the time of every row flagged in `both` into `out`.
fn parse_times(
    c: &Column,
    rows: usize,
    both: &[bool],
    unit: Option<TimeUnit>,
    first_row: usize,
    name: &str,
    out: &mut Chunked<i64>,
) -> Result<()> {
    let fail = |r: usize, fault: TimeFault, shown: &str| {
        let row = first_row + r + 1;
        let shown: String = shown.chars().take(64).collect();
        match fault {
            TimeFault::UnitRequired => Error::training(
                TrainingCode::TimeUnitRequired,
                format!(
                    "schema.time_column {name:?} holds numbers (row {row}: {shown:?}); set schema.time_unit \
                     to s, ms, us or ns to say what they count"
                ),
            ),
            TimeFault::Unparseable => Error::training(
                TrainingCode::TimeColumnParseError,
                format!(
                    "schema.time_column {name:?}: row {row} holds {shown:?}, which is not a time (use RFC 3339 / \
                     ISO 8601 date-times such as 2024-03-01T12:30:00Z, or numbers with schema.time_unit)"
                ),
            ),
            TimeFault::OutOfRange => Error::training(
                TrainingCode::TimeColumnParseError,
                format!("schema.time_column {name:?}: row {row} holds {shown:?}, which is out of range"),
            ),
        }
    };
    let valid = |r: usize| c.valid.as_ref().is_none_or(|v| v[r]);
    match &c.data {
        ColumnData::Int64(_) | ColumnData::Float64(_) => {
            let epoch = |r: usize, unit: TimeUnit| match &c.data {
                ColumnData::Int64(v) => time::epoch_int(v[r], unit),
                ColumnData::Float64(v) => time::epoch_float(v[r], unit),
                _ => Err(TimeFault::Unparseable),
            };
            let shown = |r: usize| match &c.data {
                _ if !valid(r) => String::new(),
                ColumnData::Int64(v) => v[r].to_string(),
                ColumnData::Float64(v) => v[r].to_string(),
                _ => String::new(),
            };
            for r in (0..rows).filter(|r| both[*r]) {
                let t = match (valid(r), unit) {
                    (false, _) => Err(TimeFault::Unparseable),
                    (true, None) => Err(TimeFault::UnitRequired),
                    (true, Some(unit)) => epoch(r, unit),
                };
                out.push(t.map_err(|f| fail(r, f, &shown(r)))?);
            }
        }
        ColumnData::Boolean(_) => {
            return Err(fail(0, TimeFault::Unparseable, "true/false"));
        }
        ColumnData::Utf8(_) => {
            let mut r = 0;
            for_each_text(c, rows, |text| {
                let at = r;
                r += 1;
                if !both[at] {
                    return Ok(());
                }
                let text = text.unwrap_or("");
                out.push(time::parse(text, unit).map_err(|f| fail(at, f, text))?);
                Ok(())
            })?;
        }
    }
    Ok(())
}

/// Map the part label of every row flagged in `both` into `out`; a label
/// that is none of the three is a data fault naming its row.
fn parse_parts(c: &Column, rows: usize, both: &[bool], labels: &SplitLabels, first_row: usize, out: &mut Chunked<u8>) -> Result<()> {
    let mut r = 0;
    for_each_text(c, rows, |text| {
        let at = r;
        r += 1;
        if !both[at] {
            return Ok(());
        }
        let value = text.map(str::trim).unwrap_or("");
        let part = if value == labels.train {
            Part::Train
        } else if value == labels.val {
            Part::Val
        } else if value == labels.test {
            Part::Test
        } else {
            let shown: String = value.chars().take(64).collect();
            return Err(Error::data_source(format!(
                "training.split.column {:?}: row {} holds {shown:?}, which is none of the labels {:?}, {:?}, {:?} \
                 (set training.split.labels to the values your data uses)",
                c.name,
                first_row + at + 1,
                labels.train,
                labels.val,
                labels.test
            )));
        };
        out.push(part as u8);
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
        assert_eq!(c.users.len(), 2, "c only appears with a null item");
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

    fn timed(users: &[Option<&str>], items: &[Option<&str>], times: &[Option<&str>]) -> Batch {
        let mut b = batch(users, items);
        b.columns.push(utf8("t", times));
        b
    }

    #[test]
    fn entry_times_stay_with_their_items_when_a_user_lists_items_out_of_order() {
        // Item x is interned before y, but user b lists y first: sorting b's
        // row by item must carry each time along, not read a slot the
        // compaction already overwrote.
        let b = timed(
            &[Some("a"), Some("a"), Some("b"), Some("b"), Some("b")],
            &[Some("x"), Some("y"), Some("y"), Some("x"), Some("y")],
            &[Some("2024-01-01"), Some("2024-01-02"), Some("2024-01-03"), Some("2024-01-04"), Some("2024-01-05")],
        );
        let mut t = Interactions::with_time(Some("t".into()), None);
        t.push_batch(&b, "u", "i").unwrap();
        let c = t.cleanse(&Cleansing::default()).unwrap();
        let day = 86_400_000_000i64;
        let jan1 = 1_704_067_200_000_000i64;
        // b: x at jan 4; y last seen jan 5 (keep_last, the default).
        assert_eq!(c.matrix.indices, vec![0, 1, 0, 1]);
        assert_eq!(c.times, Some(vec![jan1, jan1 + day, jan1 + 3 * day, jan1 + 4 * day]));
        let mut t = Interactions::with_time(Some("t".into()), None);
        t.push_batch(&b, "u", "i").unwrap();
        let c = t.cleanse(&Cleansing { dedup: Dedup::KeepFirst, ..Cleansing::default() }).unwrap();
        assert_eq!(c.times, Some(vec![jan1, jan1 + day, jan1 + 3 * day, jan1 + 2 * day]));
    }

    #[test]
    fn entry_parts_follow_the_dedup_policy_and_unknown_labels_fail() {
        let labels = SplitLabels { train: "tr".into(), val: "va".into(), test: "te".into() };
        let b = || {
            let mut b = batch(&[Some("a"), Some("a"), Some("b"), None], &[Some("x"), Some("x"), Some("x"), Some("y")]);
            b.columns.push(utf8("p", &[Some("te"), Some("tr"), Some(" va "), Some("junk")]));
            b
        };
        let (t, v, x) = (Part::Train as u8, Part::Val as u8, Part::Test as u8);
        for (dedup, a_part) in [(Dedup::KeepFirst, x), (Dedup::KeepLast, t), (Dedup::None, x)] {
            let mut table = Interactions::default().with_parts("p".into(), labels.clone());
            table.push_batch(&b(), "u", "i").unwrap();
            let c = table.cleanse(&Cleansing { dedup, ..Cleansing::default() }).unwrap();
            assert_eq!(c.parts, Some(vec![a_part, v]), "{dedup:?}");
        }
        let mut table = Interactions::default().with_parts("p".into(), labels);
        let mut bad = b();
        bad.columns[2] = utf8("p", &[Some("tr"), Some("validation"), Some("va"), None]);
        let e = table.push_batch(&bad, "u", "i").unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("row 2") && e.to_string().contains("\"validation\""), "{e}");
    }

    #[test]
    fn entry_times_follow_the_dedup_policy() {
        let b = timed(
            &[Some("a"), Some("a"), Some("b"), None],
            &[Some("x"), Some("x"), Some("x"), Some("y")],
            &[Some("2024-01-02"), Some("2024-01-01"), Some("2024-01-03"), Some("not a time")],
        );
        let day = 86_400_000_000i64;
        let jan1 = 1_704_067_200_000_000i64;
        for (dedup, a_time) in [(Dedup::KeepFirst, jan1 + day), (Dedup::KeepLast, jan1), (Dedup::None, jan1 + day)] {
            let mut t = Interactions::with_time(Some("t".into()), None);
            t.push_batch(&b, "u", "i").unwrap();
            let c = t.cleanse(&Cleansing { dedup, ..Cleansing::default() }).unwrap();
            assert_eq!(c.times.unwrap(), vec![a_time, jan1 + 2 * day], "{dedup:?}; the null-user row is never parsed");
        }
    }

    #[test]
    fn entry_times_skip_rows_with_a_null_id_before_them() {
        let b = timed(
            &[None, Some("a"), Some("b"), Some("a")],
            &[Some("x"), Some("y"), Some("x"), Some("x")],
            &[Some("not a time"), Some("2024-01-02"), Some("2024-01-03"), Some("2024-01-04")],
        );
        let mut t = Interactions::with_time(Some("t".into()), None);
        t.push_batch(&b, "u", "i").unwrap();
        let c = t.cleanse(&Cleansing::default()).unwrap();
        let day = 86_400_000_000i64;
        let jan1 = 1_704_067_200_000_000i64;
        // Items are interned in row order (x, y): a holds x (jan 4) and y (jan 2), b holds x (jan 3).
        assert_eq!(c.matrix.indices, vec![0, 1, 0]);
        assert_eq!(c.times, Some(vec![jan1 + 3 * day, jan1 + day, jan1 + 2 * day]));
    }

    #[test]
    fn chunked_values_are_found_across_chunks() {
        let mut c = Chunked::default();
        for v in 0..(CHUNK + 5) as u32 {
            c.push(v);
        }
        for k in [0, 1, CHUNK - 1, CHUNK, CHUNK + 4] {
            assert_eq!(c.get(k), Some(k as u32));
        }
        assert_eq!(c.get(CHUNK + 5), None);
        assert_eq!(c.iter_from(CHUNK - 1).take(2).collect::<Vec<_>>(), [CHUNK as u32 - 1, CHUNK as u32]);
    }

    #[test]
    fn time_faults_name_the_first_bad_row() {
        let mut t = Interactions::with_time(Some("t".into()), None);
        let e = t.push_batch(&timed(&[Some("a"), Some("b")], &[Some("x"), Some("y")], &[Some("2024-01-01"), Some("12")]), "u", "i");
        let e = e.unwrap_err();
        assert_eq!(e.code(), "time_unit_required");
        assert!(e.to_string().contains("row 2"), "{e}");
        let mut t = Interactions::with_time(Some("t".into()), Some(TimeUnit::S));
        t.push_batch(&timed(&[Some("a")], &[Some("x")], &[Some("12")]), "u", "i").unwrap();
        let e = t.push_batch(&timed(&[Some("a")], &[Some("x")], &[Some("soon")]), "u", "i").unwrap_err();
        assert_eq!((e.code(), e.exit_code()), ("time_column_parse_error", 4));
        assert!(e.to_string().contains("row 2") && e.to_string().contains("\"soon\""), "{e}");
    }

    #[test]
    fn many_rows_cross_chunks_and_threads() {
        let mut t = Interactions::default();
        let users: Vec<String> = (0..10_000).map(|r| format!("u{}", r % 97)).collect();
        let items: Vec<String> = (0..10_000).map(|r| format!("i{}", r % 89)).collect();
        fn opt(v: &[String]) -> Vec<Option<&str>> {
            v.iter().map(|s| Some(s.as_str())).collect()
        }
        for _ in 0..3 {
            t.push_batch(&batch(&opt(&users), &opt(&items)), "u", "i").unwrap();
        }
        assert_eq!(t.n_rows(), 30_000);
        let c = t.cleanse(&Cleansing::default()).unwrap();
        c.matrix.validate().unwrap();
        // 97 and 89 are coprime: every (u, i) pair appears, each 30000/8633 times.
        assert_eq!((c.users.len(), c.items.len(), c.matrix.nnz()), (97, 89, 97 * 89));
        assert_eq!(c.users.id(0), "u0");
        assert_eq!(c.users.get("u5"), Some(5));
        assert_eq!(c.drop_count, 30_000 - 97 * 89);
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
