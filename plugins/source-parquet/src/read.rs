//! Reading the projected columns of a Parquet file, row group by row group,
//! into column batches.
//!
//! Types (what the host receives):
//! - BOOLEAN → booleans;
//! - INT32 / INT64 (plain, signed or unsigned INTEGER up to 32 bits, TIME)
//!   → 64-bit integers; unsigned 64-bit (UINT_64) → decimal strings;
//! - DATE → `YYYY-MM-DD`; TIMESTAMP (millis, micros, nanos; also the legacy
//!   TIMESTAMP_MILLIS / _MICROS converted types and INT96) → RFC 3339 text
//!   with microseconds (`Z` when adjusted to UTC), which the host's time
//!   column reads without `time_unit`;
//! - FLOAT / DOUBLE, DECIMAL on INT32 / INT64 → 64-bit floats;
//! - BYTE_ARRAY (STRING, ENUM, JSON or unannotated, which must be UTF-8)
//!   → strings; FIXED_LEN_BYTE_ARRAY UUID → hyphenated lowercase hex.
//!
//! Anything else (nested or repeated columns, decimals stored as bytes,
//! FLOAT16, INTERVAL) is refused at open, naming the column.

use std::io::Write;

use parquet::basic::{Compression, ConvertedType, LogicalType, TimeUnit, Type as Physical};
use parquet::column::reader::{ColumnReader, ColumnReaderImpl};
use parquet::data_type::DataType;
use parquet::errors::ParquetError;
use parquet::file::reader::FileReader;
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::schema::types::ColumnDescriptor;
use recotem_guest_sdk::prelude::*;

use crate::chunks::{At, Chunks};

/// Codecs this build decodes (the parquet crate's pure-Rust ones).
pub const CODECS: &str = "uncompressed, snappy, gzip, lz4, lz4_raw, brotli";

/// How a column's values reach the host.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    /// INT32 / INT64 as they are.
    Int,
    /// Unsigned 32-bit integers stored in INT32.
    UInt32,
    /// Unsigned 64-bit integers stored in INT64: decimal text.
    UInt64,
    /// Days since the epoch (INT32).
    Date,
    /// INT64 counting `per_second` units since the epoch.
    Timestamp { per_second: i64, utc: bool },
    /// Legacy INT96 timestamps (UTC).
    Int96,
    /// FLOAT / DOUBLE.
    Float,
    /// DECIMAL on INT32 / INT64: value / 10^scale.
    Decimal { scale: i32 },
    /// UTF-8 text in BYTE_ARRAY.
    Text,
    /// FIXED_LEN_BYTE_ARRAY(16) UUID.
    Uuid,
}

/// One projected column.
struct Projected {
    /// The name the host asked for (the column's dotted path).
    name: String,
    /// Leaf column index in the file.
    index: usize,
    kind: Kind,
    max_def: i16,
}

/// The batches of one file.
pub struct ParquetBatches<A: At + 'static> {
    file: SerializedFileReader<Chunks<A>>,
    chunks: Chunks<A>,
    columns: Vec<Projected>,
    /// The next row group to open.
    next_group: usize,
    /// The open row group: its index, rows left, first row's number.
    group: usize,
    left: u64,
    row: u64,
    readers: Vec<ColumnReader>,
    defs: Vec<i16>,
}

/// Open the file: read the footer and check the projected columns.
pub fn open_file<A: At + 'static>(src: A) -> Result<(SerializedFileReader<Chunks<A>>, Chunks<A>), PluginError> {
    let size = src.size();
    if size < 12 {
        return Err(PluginError::invalid_input(format!("not a Parquet file: it is {size} bytes long")));
    }
    let chunks = Chunks::new(src);
    let file = SerializedFileReader::new(chunks.clone())
        .map_err(|e| PluginError::invalid_input(format!("not a readable Parquet file: {e}")))?;
    Ok((file, chunks))
}

/// The file's leaf columns: (dotted path, type shown to the operator).
pub fn describe_columns<A: At + 'static>(file: &SerializedFileReader<Chunks<A>>) -> Vec<(String, String)> {
    let schema = file.metadata().file_metadata().schema_descr();
    schema.columns().iter().map(|c| (c.path().string(), describe_type(c))).collect()
}

impl<A: At + 'static> ParquetBatches<A> {
    pub fn new(src: A, wanted: Vec<String>) -> Result<Self, PluginError> {
        let (file, chunks) = open_file(src)?;
        let meta = file.metadata();
        let schema = meta.file_metadata().schema_descr();
        let mut columns = Vec::new();
        let mut missing = Vec::new();
        for name in wanted {
            let Some(index) = schema.columns().iter().position(|c| c.path().string() == name) else {
                missing.push(name);
                continue;
            };
            let descr = schema.column(index);
            let kind = kind_of(&descr).map_err(|what| {
                PluginError::invalid_input(format!("column {name:?} ({}): {what}", describe_type(&descr)))
            })?;
            columns.push(Projected { name, index, kind, max_def: descr.max_def_level() });
        }
        if !missing.is_empty() {
            let list = missing.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", ");
            let plural = if missing.len() == 1 { "" } else { "s" };
            let has = describe_columns(&file).into_iter().map(|(n, _)| n).collect::<Vec<_>>().join(", ");
            return Err(PluginError::invalid_input(format!("column{plural} {list} not found in the Parquet file; it has: {has}")));
        }
        if columns.is_empty() {
            return Err(PluginError::invalid_config("the host asked for no columns"));
        }
        // Codecs, before any data is read.
        for (g, group) in meta.row_groups().iter().enumerate() {
            for c in &columns {
                let codec = group.column(c.index).compression();
                if !matches!(
                    codec,
                    Compression::UNCOMPRESSED
                        | Compression::SNAPPY
                        | Compression::GZIP(_)
                        | Compression::LZ4
                        | Compression::LZ4_RAW
                        | Compression::BROTLI(_)
                ) {
                    return Err(PluginError::invalid_input(format!(
                        "row group {g}, column {:?}: compressed with {codec}, which this parquet source does not \
                         decode (it decodes {CODECS}); rewrite the file with one of those (snappy is the usual default)",
                        c.name
                    )));
                }
            }
        }
        Ok(ParquetBatches { file, chunks, columns, next_group: 0, group: 0, left: 0, row: 0, readers: Vec::new(), defs: Vec::new() })
    }

    /// Open the next non-empty row group: fetch the projected columns'
    /// chunks and make their readers. False at the end of the file.
    fn open_group(&mut self) -> Result<bool, PluginError> {
        loop {
            let g = self.next_group;
            if g >= self.file.num_row_groups() {
                return Ok(false);
            }
            self.next_group += 1;
            let meta = self.file.metadata().row_group(g);
            let rows = u64::try_from(meta.num_rows()).map_err(|_| {
                PluginError::invalid_input(format!("row group {g}: negative row count {}", meta.num_rows()))
            })?;
            if rows == 0 {
                continue;
            }
            let mut replace = true;
            for c in &self.columns {
                let (start, len) = meta.column(c.index).byte_range();
                self.chunks.prefetch(start, len, std::mem::take(&mut replace)).map_err(|e| fault(g, &c.name, e))?;
            }
            let group = self.file.get_row_group(g).map_err(|e| PluginError::invalid_input(format!("row group {g}: {e}")))?;
            self.readers.clear();
            for c in &self.columns {
                self.readers.push(group.get_column_reader(c.index).map_err(|e| fault(g, &c.name, e))?);
            }
            self.group = g;
            self.left = rows;
            return Ok(true);
        }
    }
}

impl<A: At + 'static> BatchReader for ParquetBatches<A> {
    fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, PluginError> {
        if self.left == 0 && !self.open_group()? {
            return Ok(None);
        }
        let n = (max_rows.max(1) as u64).min(self.left) as usize;
        let g = self.group;
        let mut out = Vec::with_capacity(self.columns.len());
        for (c, reader) in self.columns.iter().zip(self.readers.iter_mut()) {
            let column = read_column(reader, c, n, &mut self.defs, self.row)
                .map_err(|e| match e {
                    Fault::Parquet(e) => fault(g, &c.name, e),
                    Fault::Value { row, what } => PluginError::invalid_input(format!(
                        "row group {g}, column {:?}, row {row}: {what}",
                        c.name
                    )),
                })?;
            out.push(column);
        }
        self.left -= n as u64;
        self.row += n as u64;
        Ok(Some(Batch { num_rows: n as u32, columns: out }))
    }
}

/// A decoding fault in row group `g`, column `name`.
fn fault(g: usize, name: &str, e: ParquetError) -> PluginError {
    PluginError::invalid_input(format!("row group {g}, column {name:?}: {e}"))
}

enum Fault {
    Parquet(ParquetError),
    /// A value the host cannot be given; `row` is 1-based in the file.
    Value { row: u64, what: String },
}

impl From<ParquetError> for Fault {
    fn from(e: ParquetError) -> Self {
        Fault::Parquet(e)
    }
}

/// `INT64 TIMESTAMP(MILLIS, UTC)`, `BYTE_ARRAY STRING`, `INT32`, ...
fn describe_type(c: &ColumnDescriptor) -> String {
    let physical = c.physical_type();
    match (c.logical_type_ref(), c.converted_type()) {
        (Some(LogicalType::Timestamp(t)), _) => {
            format!("{physical} TIMESTAMP({:?}{})", t.unit, if t.is_adjusted_to_u_t_c { ", UTC" } else { "" })
        }
        (Some(LogicalType::Integer(i)), _) => {
            format!("{physical} {}INT{}", if i.is_signed { "" } else { "U" }, i.bit_width)
        }
        (_, ConvertedType::NONE) => match c.logical_type_ref() {
            Some(l) => format!("{physical} {l:?}").to_uppercase(),
            None => physical.to_string(),
        },
        (_, converted) => format!("{physical} {converted}"),
    }
}

/// How column `c` is handed to the host, or why it cannot be.
fn kind_of(c: &ColumnDescriptor) -> Result<Kind, String> {
    if c.max_rep_level() > 0 {
        return Err("a repeated (list) column; only flat columns can be read".into());
    }
    let per_second = |unit: &TimeUnit| match unit {
        TimeUnit::MILLIS => 1_000,
        TimeUnit::MICROS => 1_000_000,
        TimeUnit::NANOS => 1_000_000_000,
    };
    let logical = c.logical_type_ref();
    let converted = c.converted_type();
    let unsupported = |what: &str| Err(format!("{what} columns are not supported; map a column of another type"));
    match c.physical_type() {
        Physical::BOOLEAN => Ok(Kind::Bool),
        Physical::INT32 => match (logical, converted) {
            (Some(LogicalType::Date), _) | (None, ConvertedType::DATE) => Ok(Kind::Date),
            (Some(LogicalType::Decimal(d)), _) => Ok(Kind::Decimal { scale: d.scale }),
            (None, ConvertedType::DECIMAL) => Ok(Kind::Decimal { scale: c.type_scale() }),
            (Some(LogicalType::Integer(i)), _) if !i.is_signed => Ok(Kind::UInt32),
            (None, ConvertedType::UINT_8 | ConvertedType::UINT_16 | ConvertedType::UINT_32) => Ok(Kind::UInt32),
            _ => Ok(Kind::Int),
        },
        Physical::INT64 => match (logical, converted) {
            (Some(LogicalType::Timestamp(t)), _) => {
                Ok(Kind::Timestamp { per_second: per_second(&t.unit), utc: t.is_adjusted_to_u_t_c })
            }
            (None, ConvertedType::TIMESTAMP_MILLIS) => Ok(Kind::Timestamp { per_second: 1_000, utc: true }),
            (None, ConvertedType::TIMESTAMP_MICROS) => Ok(Kind::Timestamp { per_second: 1_000_000, utc: true }),
            (Some(LogicalType::Decimal(d)), _) => Ok(Kind::Decimal { scale: d.scale }),
            (None, ConvertedType::DECIMAL) => Ok(Kind::Decimal { scale: c.type_scale() }),
            (Some(LogicalType::Integer(i)), _) if !i.is_signed => Ok(Kind::UInt64),
            (None, ConvertedType::UINT_64) => Ok(Kind::UInt64),
            _ => Ok(Kind::Int),
        },
        Physical::INT96 => Ok(Kind::Int96),
        Physical::FLOAT | Physical::DOUBLE => Ok(Kind::Float),
        Physical::BYTE_ARRAY => match (logical, converted) {
            (Some(LogicalType::Decimal(_)), _) | (None, ConvertedType::DECIMAL) => unsupported("DECIMAL stored as bytes"),
            _ => Ok(Kind::Text),
        },
        Physical::FIXED_LEN_BYTE_ARRAY => match logical {
            Some(LogicalType::Uuid) if c.type_length() == 16 => Ok(Kind::Uuid),
            _ => unsupported("FIXED_LEN_BYTE_ARRAY (other than UUID)"),
        },
    }
}

/// Read `n` rows of `c` (flat column: one level per row).
fn read_rows<T: DataType>(
    r: &mut ColumnReaderImpl<T>,
    n: usize,
    max_def: i16,
    defs: &mut Vec<i16>,
    values: &mut Vec<T::T>,
) -> Result<(), ParquetError> {
    defs.clear();
    values.clear();
    let mut rows = 0;
    while rows < n {
        let (records, _, _) = r.read_records(n - rows, (max_def > 0).then_some(&mut *defs), None, values)?;
        if records == 0 {
            return Err(ParquetError::EOF(format!("the column ends {} rows early", n - rows)));
        }
        rows += records;
    }
    Ok(())
}

/// Column values under construction, with their null flags.
struct Out {
    data: OutData,
    valid: Vec<bool>,
    nulls: bool,
}

enum OutData {
    Int(Vec<i64>),
    Float(Vec<f64>),
    Bool(Vec<bool>),
    Text { data: Vec<u8>, offsets: Vec<u32> },
}

impl Out {
    fn new(kind: Kind, n: usize) -> Self {
        let data = match kind {
            Kind::Bool => OutData::Bool(Vec::with_capacity(n)),
            Kind::Int | Kind::UInt32 => OutData::Int(Vec::with_capacity(n)),
            Kind::Float | Kind::Decimal { .. } => OutData::Float(Vec::with_capacity(n)),
            Kind::UInt64 | Kind::Date | Kind::Timestamp { .. } | Kind::Int96 | Kind::Text | Kind::Uuid => {
                let mut offsets = Vec::with_capacity(n + 1);
                offsets.push(0);
                OutData::Text { data: Vec::new(), offsets }
            }
        };
        Out { data, valid: Vec::with_capacity(n), nulls: false }
    }

    fn null(&mut self) {
        self.valid.push(false);
        self.nulls = true;
        match &mut self.data {
            OutData::Int(v) => v.push(0),
            OutData::Float(v) => v.push(0.0),
            OutData::Bool(v) => v.push(false),
            OutData::Text { data, offsets } => offsets.push(data.len() as u32),
        }
    }

    fn int(&mut self, x: i64) {
        self.valid.push(true);
        if let OutData::Int(v) = &mut self.data {
            v.push(x);
        }
    }

    fn float(&mut self, x: f64) {
        self.valid.push(true);
        if let OutData::Float(v) = &mut self.data {
            v.push(x);
        }
    }

    fn boolean(&mut self, x: bool) {
        self.valid.push(true);
        if let OutData::Bool(v) = &mut self.data {
            v.push(x);
        }
    }

    /// Append text written by `write` (into the column's own buffer).
    fn text(&mut self, write: impl FnOnce(&mut Vec<u8>) -> Result<(), String>) -> Result<(), String> {
        self.valid.push(true);
        if let OutData::Text { data, offsets } = &mut self.data {
            write(data)?;
            let end = u32::try_from(data.len()).map_err(|_| "more than 4 GiB of text in one batch".to_string())?;
            offsets.push(end);
        }
        Ok(())
    }

    fn finish(self, name: &str) -> Column {
        let data = match self.data {
            OutData::Int(v) => ColumnData::Int64(v),
            OutData::Float(v) => ColumnData::Float64(v),
            OutData::Bool(v) => ColumnData::Boolean(v),
            OutData::Text { data, offsets } => ColumnData::Utf8(Utf8Column { data, offsets }),
        };
        Column { name: name.to_string(), data, valid: self.nulls.then_some(self.valid) }
    }
}

/// Call `f(row, value)` for each row: `None` for nulls.
fn spread<T>(
    n: usize,
    max_def: i16,
    defs: &[i16],
    values: &[T],
    mut f: impl FnMut(usize, Option<&T>) -> Result<(), String>,
) -> Result<(), (usize, String)> {
    if max_def == 0 {
        for (r, v) in values.iter().enumerate().take(n) {
            f(r, Some(v)).map_err(|e| (r, e))?;
        }
        return Ok(());
    }
    let mut next = values.iter();
    for (r, d) in defs.iter().enumerate().take(n) {
        let v = if *d == max_def { Some(next.next().ok_or((r, "fewer values than levels".to_string()))?) } else { None };
        f(r, v).map_err(|e| (r, e))?;
    }
    Ok(())
}

/// Read `n` rows of column `c` into a batch column. `first_row` is the
/// 0-based number (in the file) of the first of them.
fn read_column(reader: &mut ColumnReader, c: &Projected, n: usize, defs: &mut Vec<i16>, first_row: u64) -> Result<Column, Fault> {
    let mut out = Out::new(c.kind, n);
    let kind = c.kind;
    let max_def = c.max_def;
    let value_fault = |(r, what): (usize, String)| Fault::Value { row: first_row + r as u64 + 1, what };
    // `$body` appends `$v` (a non-null value) to `out`: Result<(), String>.
    macro_rules! each {
        ($r:expr, |$v:ident| $body:expr) => {{
            let mut values = Vec::with_capacity(n);
            read_rows($r, n, max_def, defs, &mut values)?;
            spread(n, max_def, defs, &values, |_, v| match v {
                None => {
                    out.null();
                    Ok(())
                }
                Some($v) => $body,
            })
            .map_err(value_fault)?;
        }};
    }
    match reader {
        ColumnReader::BoolColumnReader(r) => each!(r, |v| {
                out.boolean(*v);
                Ok(())
            }),
        ColumnReader::Int32ColumnReader(r) => match kind {
            Kind::Date => each!(r, |v| out.text(|buf| date(buf, i64::from(*v)))),
            Kind::UInt32 => each!(r, |v| {
                out.int(i64::from(*v as u32));
                Ok(())
            }),
            Kind::Decimal { scale } => each!(r, |v| {
                out.float(f64::from(*v) / 10f64.powi(scale));
                Ok(())
            }),
            _ => each!(r, |v| {
                out.int(i64::from(*v));
                Ok(())
            }),
        },
        ColumnReader::Int64ColumnReader(r) => match kind {
            Kind::Timestamp { per_second, utc } => each!(r, |v| out.text(|buf| {
                let micros = match per_second {
                    1_000 => v.checked_mul(1_000).ok_or_else(|| format!("timestamp {v} ms is out of range"))?,
                    1_000_000 => *v,
                    _ => v.div_euclid(1_000),
                };
                timestamp(buf, micros, utc)
            })),
            Kind::UInt64 => each!(r, |v| out.text(|buf| write!(buf, "{}", *v as u64).map_err(|e| e.to_string()))),
            Kind::Decimal { scale } => each!(r, |v| {
                out.float(*v as f64 / 10f64.powi(scale));
                Ok(())
            }),
            _ => each!(r, |v| {
                out.int(*v);
                Ok(())
            }),
        },
        ColumnReader::Int96ColumnReader(r) => each!(r, |v| out.text(|buf| timestamp(buf, v.to_micros(), true))),
        ColumnReader::FloatColumnReader(r) => each!(r, |v| {
                out.float(f64::from(*v));
                Ok(())
            }),
        ColumnReader::DoubleColumnReader(r) => each!(r, |v| {
                out.float(*v);
                Ok(())
            }),
        ColumnReader::ByteArrayColumnReader(r) => each!(r, |v| out.text(|buf| {
            let text = std::str::from_utf8(v.data()).map_err(|_| "the value is not valid UTF-8 text".to_string())?;
            buf.extend_from_slice(text.as_bytes());
            Ok(())
        })),
        ColumnReader::FixedLenByteArrayColumnReader(r) => each!(r, |v| out.text(|buf| uuid(buf, v.data()))),
    }
    Ok(out.finish(&c.name))
}

/// `YYYY-MM-DD` of `days` since 1970-01-01.
fn date(buf: &mut Vec<u8>, days: i64) -> Result<(), String> {
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return Err(format!("date {days} (days since 1970-01-01) is outside the years 0000-9999"));
    }
    write!(buf, "{y:04}-{m:02}-{d:02}").map_err(|e| e.to_string())
}

/// RFC 3339 of `micros` since the epoch, with microseconds.
fn timestamp(buf: &mut Vec<u8>, micros: i64, utc: bool) -> Result<(), String> {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return Err(format!("timestamp {micros} us is outside the years 0000-9999"));
    }
    let (h, mi, s) = (sod / 3600, sod % 3600 / 60, sod % 60);
    write!(buf, "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:06}{}", if utc { "Z" } else { "" })
        .map_err(|e| e.to_string())
}

/// Lowercase hyphenated hex of a 16-byte UUID.
fn uuid(buf: &mut Vec<u8>, b: &[u8]) -> Result<(), String> {
    if b.len() != 16 {
        return Err(format!("a UUID has 16 bytes, this value has {}", b.len()));
    }
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            buf.push(b'-');
        }
        write!(buf, "{x:02x}").map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// (year, month, day) of `days` since 1970-01-01 (H. Hinnant's
/// `civil_from_days`, proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
