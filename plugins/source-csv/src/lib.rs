//! The `csv` data source: delimited text read from the stream the host opens
//! for the recipe's `source.path`. It has no filesystem or network access of
//! its own; it only parses bytes.
//!
//! Every value is read as a string (ids are strings to recotem); an empty
//! field is null. Rows are streamed in batches, so memory stays flat however
//! large the file is.

use std::collections::BTreeMap;

use recotem_guest_sdk::prelude::*;
use serde::Deserialize;

const SCHEMA: &str = include_str!("schema.json");

/// The recipe's `source` block for `type: csv`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(rename = "type")]
    _type: String,
    /// Opened by the host; present here only because it is part of the block.
    #[serde(rename = "path")]
    _path: String,
    #[serde(default = "default_delimiter")]
    delimiter: String,
    #[serde(default = "default_encoding")]
    encoding: String,
    /// Index of the header row; rows before it are skipped.
    #[serde(default)]
    header: u32,
    /// Accepted for recipes written for the Python implementation. Values are
    /// always read as strings, so the only effect is validation of the map.
    #[serde(default, rename = "dtype")]
    _dtype: BTreeMap<String, String>,
    /// Verified by the host.
    #[serde(default, rename = "sha256")]
    _sha256: Option<String>,
}

fn default_delimiter() -> String {
    ",".to_string()
}

fn default_encoding() -> String {
    "utf-8".to_string()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    Utf8,
    Latin1,
}

/// Validated settings.
#[derive(Debug)]
struct Settings {
    delimiter: u8,
    encoding: Encoding,
    header: u32,
}

impl Settings {
    fn parse(config: &str) -> Result<Self, PluginError> {
        let config: Config = serde_json::from_str(config)
            .map_err(|e| PluginError::invalid_config(format!("source: {e}")))?;
        let delimiter = match config.delimiter.as_str() {
            "\\t" | "\t" => b'\t',
            d if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
            d => {
                return Err(PluginError::invalid_config(format!(
                    "source.delimiter: must be one ASCII character (or \"\\t\"), got {d:?}"
                )));
            }
        };
        let encoding = match config.encoding.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" | "utf-8-sig" => Encoding::Utf8,
            "latin-1" | "latin1" | "iso-8859-1" => Encoding::Latin1,
            other => {
                return Err(PluginError::invalid_config(format!(
                    "source.encoding: {other:?} is not supported; use utf-8 or latin-1"
                )));
            }
        };
        Ok(Settings { delimiter, encoding, header: config.header })
    }
}

struct Csv;

impl Source for Csv {
    type Reader = CsvReader;

    fn describe() -> SourceInfo {
        SourceInfo::new(
            "csv",
            env!("CARGO_PKG_VERSION"),
            "Delimited text (CSV, TSV) with a header row, streamed in batches.",
        )
        .with_config_schema(SCHEMA)
        .with_capability(Capability::InputStream)
    }

    fn probe(config: &str, data: Option<Input>) -> Result<ProbeOutcome, PluginError> {
        let settings = Settings::parse(config)?;
        let Some(data) = data else {
            return Ok(ProbeOutcome::Checked("configuration OK (input not checked)".to_string()));
        };
        let reader = CsvReader::new(settings, data, Vec::new())?;
        Ok(ProbeOutcome::Checked(format!("header OK: {}", reader.header.join(", "))))
    }

    fn open(config: &str, data: Option<Input>, columns: Vec<String>) -> Result<CsvReader, PluginError> {
        let settings = Settings::parse(config)?;
        let data = data.ok_or_else(|| {
            PluginError::invalid_config("the csv source needs an input stream and the host gave none")
        })?;
        CsvReader::new(settings, data, columns)
    }
}

/// Streams the rows of one file.
pub struct CsvReader {
    rows: csv::ByteRecordsIntoIter<InputReader>,
    encoding: Encoding,
    header: Vec<String>,
    /// Output columns: (name, index in the file).
    projection: Vec<(String, usize)>,
    /// 1-based line number of the header, for messages.
    header_line: u64,
}

impl CsvReader {
    fn new(settings: Settings, data: Input, columns: Vec<String>) -> Result<Self, PluginError> {
        let mut rows = csv::ReaderBuilder::new()
            .delimiter(settings.delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(InputReader::new(data))
            .into_byte_records();
        let mut header_record = None;
        for _ in 0..=settings.header {
            header_record = rows.next();
        }
        let header_record = match header_record {
            Some(record) => record.map_err(csv_error)?,
            None => return Err(PluginError::invalid_input("the file is empty: no header row")),
        };
        let header_line = header_record.position().map_or(1, |p| p.line());
        let mut header = Vec::with_capacity(header_record.len());
        for field in header_record.iter() {
            let name = decode(field, settings.encoding, header_line)?;
            header.push(name.trim_start_matches('\u{feff}').to_string());
        }
        let mut projection = Vec::new();
        let mut missing = Vec::new();
        for name in columns {
            match header.iter().position(|h| *h == name) {
                Some(index) => projection.push((name, index)),
                None => missing.push(name),
            }
        }
        if !missing.is_empty() {
            return Err(PluginError::invalid_input(format!(
                "column{} {} not found in the header; the file has: {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", "),
                header.join(", ")
            )));
        }
        Ok(CsvReader { rows, encoding: settings.encoding, header, projection, header_line })
    }
}

impl BatchReader for CsvReader {
    fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, PluginError> {
        if self.projection.is_empty() {
            return Err(PluginError::invalid_config("the host asked for no columns"));
        }
        let names: Vec<&str> = self.projection.iter().map(|(n, _)| n.as_str()).collect();
        let mut batch = BatchBuilder::new(&names);
        let width = self.header.len();
        while batch.rows() < max_rows.max(1) as usize {
            let Some(record) = self.rows.next() else { break };
            let record = record.map_err(csv_error)?;
            let line = record.position().map_or(0, |p| p.line());
            if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
                continue; // a blank line
            }
            if record.len() != width {
                return Err(PluginError::invalid_input(format!(
                    "line {line}: expected {width} fields (as in the header on line {}), found {}",
                    self.header_line,
                    record.len()
                )));
            }
            for (column, (_, index)) in self.projection.iter().enumerate() {
                let field = record.get(*index).unwrap_or_default();
                let out = batch.utf8(column);
                if field.is_empty() {
                    out.push_null();
                } else {
                    out.push(&decode(field, self.encoding, line)?);
                }
            }
        }
        if batch.rows() == 0 { Ok(None) } else { Ok(Some(batch.finish())) }
    }
}

fn decode(field: &[u8], encoding: Encoding, line: u64) -> Result<std::borrow::Cow<'_, str>, PluginError> {
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(field)
            .map(std::borrow::Cow::Borrowed)
            .map_err(|_| PluginError::invalid_input(format!("line {line}: not valid UTF-8 (set source.encoding)"))),
        Encoding::Latin1 => Ok(std::borrow::Cow::Owned(field.iter().map(|&b| b as char).collect())),
    }
}

fn csv_error(e: csv::Error) -> PluginError {
    match e.kind() {
        csv::ErrorKind::Io(io) => PluginError::io(format!("reading the input failed: {io}")),
        _ => PluginError::invalid_input(format!("malformed CSV: {e}")),
    }
}

export_source!(Csv);

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> Result<Settings, PluginError> {
        Settings::parse(json)
    }

    #[test]
    fn defaults_and_tab_delimiter() {
        let s = settings(r#"{"type":"csv","path":"x"}"#).unwrap();
        assert_eq!((s.delimiter, s.encoding, s.header), (b',', Encoding::Utf8, 0));
        let s = settings(r#"{"type":"csv","path":"x","delimiter":"\t"}"#).unwrap();
        assert_eq!(s.delimiter, b'\t');
        let s = settings(r#"{"type":"csv","path":"x","delimiter":"\\t"}"#).unwrap();
        assert_eq!(s.delimiter, b'\t');
    }

    #[test]
    fn rejects_bad_config() {
        assert!(settings(r#"{"type":"csv","path":"x","delimiter":";;"}"#).is_err());
        assert!(settings(r#"{"type":"csv","path":"x","encoding":"utf-16"}"#).is_err());
        let e = settings(r#"{"type":"csv","path":"x","bogus":1}"#).unwrap_err();
        assert!(e.message.contains("bogus"), "{}", e.message);
    }

    #[test]
    fn latin1_decodes_every_byte() {
        assert_eq!(decode(&[0x63, 0xe9], Encoding::Latin1, 1).unwrap(), "cé");
        assert!(decode(&[0xff], Encoding::Utf8, 3).unwrap_err().message.contains("line 3"));
    }
}
