//! The `csv` data source: delimited text read from the stream the host opens
//! for the recipe's `source.path`. It has no filesystem or network access of
//! its own; it only parses bytes (the host has already undone gzip).
//!
//! Every value is read as a string (ids are strings to recotem); an empty
//! field is null. Rows are streamed in batches, so memory stays flat however
//! large the file is. Files without a header row (`header: null`) name their
//! columns by position: `column_0`, `column_1`, … (or just `0`, `1`, …).

mod parse;

use std::collections::BTreeMap;

use parse::{Fault, Field, Parser, unescape};
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
    /// Index of the header row (rows before it are skipped), or `null` for
    /// a file without one.
    #[serde(default = "default_header")]
    header: Option<u32>,
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

fn default_header() -> Option<u32> {
    Some(0)
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
    header: Option<u32>,
}

impl Settings {
    fn parse(config: &str) -> Result<Self, PluginError> {
        let config: Config = serde_json::from_str(config)
            .map_err(|e| PluginError::invalid_config(format!("source: {e}")))?;
        let encoding = match config.encoding.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" | "utf-8-sig" => Encoding::Utf8,
            "latin-1" | "latin1" | "iso-8859-1" => Encoding::Latin1,
            other => {
                return Err(PluginError::invalid_config(format!(
                    "source.encoding: {other:?} is not supported; use utf-8 or latin-1"
                )));
            }
        };
        let mut chars = config.delimiter.chars();
        let delimiter = match (config.delimiter.as_str(), chars.next(), chars.next()) {
            ("\\t", _, _) => b'\t',
            (_, Some(c), None) if c.is_ascii() && !matches!(c, '"' | '\n' | '\r') => c as u8,
            // A byte above 0x7F is one character only in Latin-1.
            (_, Some(c), None) if encoding == Encoding::Latin1 && (0xA0..=0xFF).contains(&(c as u32)) => c as u8,
            (d, _, _) => {
                return Err(PluginError::invalid_config(format!(
                    "source.delimiter: must be one single-byte character other than a quote or a line end \
                     (\"\\t\" for tab; with encoding latin-1 also one of U+00A0..U+00FF), got {d:?}"
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
            "Delimited text (CSV, TSV, any single-byte delimiter), with or without a header row, streamed in batches.",
        )
        .with_config_schema(SCHEMA)
        .with_capability(Capability::InputStream)
    }

    fn probe(config: &str, data: Option<Input>) -> Result<ProbeOutcome, PluginError> {
        let settings = Settings::parse(config)?;
        let Some(data) = data else {
            return Ok(ProbeOutcome::Checked("configuration OK (input not checked)".to_string()));
        };
        let reader = CsvReader::new(settings, InputReader::new(data), Vec::new())?;
        Ok(ProbeOutcome::Checked(match reader.header_line {
            Some(_) => format!("header OK: {}", reader.names.join(", ")),
            None => format!("no header row; {} columns: {}", reader.names.len(), reader.names.join(", ")),
        }))
    }

    fn open(config: &str, data: Option<Input>, columns: Vec<String>) -> Result<CsvReader, PluginError> {
        let settings = Settings::parse(config)?;
        let data = data.ok_or_else(|| {
            PluginError::invalid_config("the csv source needs an input stream and the host gave none")
        })?;
        CsvReader::new(settings, InputReader::new(data), columns)
    }
}

/// Streams the rows of one file.
pub struct CsvReader<R = InputReader> {
    parser: Parser<R>,
    encoding: Encoding,
    /// Column names: the header's, or `column_<i>` without one.
    names: Vec<String>,
    /// Output columns: (name, index in the file).
    projection: Vec<(String, usize)>,
    /// Line of the header row, when there is one.
    header_line: Option<u64>,
    /// The first data record, already parsed (files without a header).
    pending: bool,
    /// Unescaped / transcoded field bytes.
    scratch: Vec<u8>,
    text: String,
}

impl<R: std::io::Read> CsvReader<R> {
    fn new(settings: Settings, data: R, columns: Vec<String>) -> Result<Self, PluginError> {
        let mut parser = Parser::new(data, settings.delimiter);
        let mut scratch = Vec::new();
        let mut text = String::new();
        // The header row (or, without one, the first record, which fixes
        // the number of columns).
        let skip = settings.header.unwrap_or(0);
        for _ in 0..=skip {
            if !parser.next_record().map_err(fault)? {
                return Err(PluginError::invalid_input(match settings.header {
                    Some(_) => "the file is empty: no header row",
                    None => "the file is empty: no rows",
                }));
            }
        }
        let mut width = parser.fields.len();
        // A delimiter at the end of the line leaves one empty last field.
        if width > 1 && parser.fields[width - 1].start == parser.fields[width - 1].end && !parser.fields[width - 1].escaped {
            width -= 1;
        }
        let (names, header_line, pending) = match settings.header {
            Some(_) => {
                let line = parser.record_line;
                let mut names = Vec::with_capacity(width);
                for (i, f) in parser.fields[..width].iter().enumerate() {
                    let name = decode(&parser, *f, settings.encoding, &mut scratch, &mut text)
                        .map_err(|what| at(line, i, &format!("header: {what}")))?;
                    names.push(name.to_string());
                }
                (names, Some(line), false)
            }
            None => ((0..width).map(|i| format!("column_{i}")).collect(), None, true),
        };
        let mut projection = Vec::new();
        let mut missing = Vec::new();
        for name in columns {
            let by_position = || {
                let digits = name.strip_prefix("column_").unwrap_or(&name);
                digits.parse::<usize>().ok().filter(|i| *i < width && digits.bytes().all(|b| b.is_ascii_digit()))
            };
            let found = match header_line {
                Some(_) => names.iter().position(|h| *h == name),
                None => by_position(),
            };
            match found {
                Some(index) => projection.push((name, index)),
                None => missing.push(name),
            }
        }
        if !missing.is_empty() {
            let list = missing.iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", ");
            let plural = if missing.len() == 1 { "" } else { "s" };
            return Err(PluginError::invalid_input(match header_line {
                Some(_) => format!("column{plural} {list} not found in the header; the file has: {}", names.join(", ")),
                None => format!(
                    "column{plural} {list} not found: the file has no header row (header: null), so its {width} \
                     columns are named by position, column_0 to column_{}",
                    width.saturating_sub(1)
                ),
            }));
        }
        Ok(CsvReader { parser, encoding: settings.encoding, names, projection, header_line, pending, scratch, text })
    }
}

impl<R: std::io::Read> BatchReader for CsvReader<R> {
    fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, PluginError> {
        if self.projection.is_empty() {
            return Err(PluginError::invalid_config("the host asked for no columns"));
        }
        let names: Vec<&str> = self.projection.iter().map(|(n, _)| n.as_str()).collect();
        let mut batch = BatchBuilder::new(&names);
        let width = self.names.len();
        let mut rows = 0usize;
        while rows < max_rows.max(1) as usize {
            if !std::mem::take(&mut self.pending) && !self.parser.next_record().map_err(fault)? {
                break;
            }
            let line = self.parser.record_line;
            let fields = &self.parser.fields;
            let trailing = fields.len() == width + 1 && fields[width].start == fields[width].end && !fields[width].escaped;
            if fields.len() != width && !trailing {
                return Err(PluginError::invalid_input(match self.header_line {
                    Some(h) => format!("line {line}: expected {width} fields (as in the header on line {h}), found {}", fields.len()),
                    None => format!("line {line}: expected {width} fields (as on the first line), found {}", fields.len()),
                }));
            }
            for (column, (_, index)) in self.projection.iter().enumerate() {
                let f = self.parser.fields[*index];
                let out = batch.utf8(column);
                if f.start == f.end {
                    out.push_null();
                    continue;
                }
                match decode(&self.parser, f, self.encoding, &mut self.scratch, &mut self.text) {
                    Ok(value) => out.push(value),
                    Err(what) => return Err(at(line, *index, &format!("({}) {what}", self.names[*index]))),
                }
            }
            rows += 1;
        }
        if rows == 0 { Ok(None) } else { Ok(Some(batch.finish())) }
    }
}

/// Field `f` as text: borrowed from the read buffer when it is UTF-8
/// without escapes, else built in `scratch` / `text`.
fn decode<'a, R>(
    parser: &'a Parser<R>,
    f: Field,
    encoding: Encoding,
    scratch: &'a mut Vec<u8>,
    text: &'a mut String,
) -> Result<&'a str, String> {
    let mut raw = parser.raw(f);
    if f.escaped {
        unescape(raw, scratch);
        raw = scratch;
    }
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(raw)
            .map_err(|_| "not valid UTF-8; set source.encoding (latin-1 reads any byte)".to_string()),
        Encoding::Latin1 => {
            if raw.is_ascii() {
                // ASCII is the same in both.
                return std::str::from_utf8(raw).map_err(|e| e.to_string());
            }
            text.clear();
            text.extend(raw.iter().map(|&b| b as char));
            Ok(text)
        }
    }
}

/// A fault at `line`, 0-based column `index`.
fn at(line: u64, index: usize, what: &str) -> PluginError {
    PluginError::invalid_input(format!("line {line}, column {}: {what}", index + 1))
}

fn fault(f: Fault) -> PluginError {
    match f {
        Fault::Io(_) => PluginError::io(f.to_string()),
        _ => PluginError::invalid_input(f.to_string()),
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
    fn defaults_and_delimiters() {
        let s = settings(r#"{"type":"csv","path":"x"}"#).unwrap();
        assert_eq!((s.delimiter, s.encoding, s.header), (b',', Encoding::Utf8, Some(0)));
        let s = settings(r#"{"type":"csv","path":"x","delimiter":"\t","header":null}"#).unwrap();
        assert_eq!((s.delimiter, s.header), (b'\t', None));
        let s = settings(r#"{"type":"csv","path":"x","delimiter":"\\t"}"#).unwrap();
        assert_eq!(s.delimiter, b'\t');
        let s = settings(r#"{"type":"csv","path":"x","delimiter":"\u00a7","encoding":"latin-1"}"#).unwrap();
        assert_eq!(s.delimiter, 0xA7);
    }

    #[test]
    fn rejects_bad_config() {
        assert!(settings(r#"{"type":"csv","path":"x","delimiter":";;"}"#).is_err());
        assert!(settings(r#"{"type":"csv","path":"x","delimiter":"\""}"#).is_err());
        assert!(settings(r#"{"type":"csv","path":"x","delimiter":"\u00a7"}"#).is_err(), "not one byte in UTF-8");
        assert!(settings(r#"{"type":"csv","path":"x","encoding":"utf-16"}"#).is_err());
        let e = settings(r#"{"type":"csv","path":"x","bogus":1}"#).unwrap_err();
        assert!(e.message.contains("bogus"), "{}", e.message);
    }

    fn read(config: &str, data: &[u8], columns: &[&str]) -> Result<Vec<Vec<Option<String>>>, PluginError> {
        let settings = settings(config)?;
        let cols = columns.iter().map(|c| c.to_string()).collect();
        let mut r = CsvReader::new(settings, data, cols)?;
        let mut out = Vec::new();
        while let Some(b) = r.next_batch(2)? {
            for row in 0..b.num_rows as usize {
                out.push(
                    b.columns
                        .iter()
                        .map(|c| {
                            let valid = c.valid.as_ref().is_none_or(|v| v[row]);
                            match &c.data {
                                ColumnData::Utf8(u) => valid.then(|| {
                                    let (a, z) = (u.offsets[row] as usize, u.offsets[row + 1] as usize);
                                    String::from_utf8(u.data[a..z].to_vec()).unwrap()
                                }),
                                _ => None,
                            }
                        })
                        .collect(),
                );
            }
        }
        Ok(out)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn headerless_tab_file_by_position() {
        let cfg = r#"{"type":"csv","path":"x","delimiter":"\t","header":null}"#;
        let got = read(cfg, b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n", &["column_0", "1", "column_3"]).unwrap();
        assert_eq!(got, vec![vec![s("196"), s("242"), s("881250949")], vec![s("186"), s("302"), s("891717742")]]);
        let e = read(cfg, b"1\t2\n", &["column_2"]).unwrap_err();
        assert!(e.message.contains("column_0 to column_1"), "{}", e.message);
        let e = read(cfg, b"1\t2\n", &["user"]).unwrap_err();
        assert!(e.message.contains("no header row"), "{}", e.message);
    }

    #[test]
    fn trailing_delimiter_padding_nulls_and_crlf() {
        let cfg = r#"{"type":"csv","path":"x"}"#;
        let got = read(cfg, b"u, i ,\r\n a , \"b,c\" ,\r\nx,,\r\n", &["u", "i"]).unwrap();
        assert_eq!(got, vec![vec![s("a"), s("b,c")], vec![s("x"), None]]);
    }

    #[test]
    fn header_index_skips_rows() {
        let cfg = r#"{"type":"csv","path":"x","header":1}"#;
        let got = read(cfg, b"# exported\nu,i\n1,2\n", &["i"]).unwrap();
        assert_eq!(got, vec![vec![s("2")]]);
    }

    #[test]
    fn encodings() {
        let cfg = r#"{"type":"csv","path":"x","encoding":"latin-1"}"#;
        assert_eq!(read(cfg, b"u,i\nc\xe9,1\n", &["u"]).unwrap(), vec![vec![s("c\u{e9}")]]);
        let cfg = r#"{"type":"csv","path":"x"}"#;
        assert_eq!(read(cfg, b"\xEF\xBB\xBFu,i\nc\xc3\xa9,1\n", &["u"]).unwrap(), vec![vec![s("c\u{e9}")]]);
        let e = read(cfg, b"u,i\nok,1\nc\xe9,1\n", &["u", "i"]).unwrap_err();
        assert!(e.message.contains("line 3, column 1") && e.message.contains("UTF-8"), "{}", e.message);
    }

    #[test]
    fn ragged_rows_and_bad_quotes_name_the_line() {
        let cfg = r#"{"type":"csv","path":"x"}"#;
        let e = read(cfg, b"u,i\n1,2\n1,2,3,4\n", &["u"]).unwrap_err();
        assert!(e.message.contains("line 3: expected 2 fields"), "{}", e.message);
        let e = read(cfg, b"u,i\n1,\"2\" x\n", &["u"]).unwrap_err();
        assert!(e.message.contains("line 2, column 2"), "{}", e.message);
    }
}
