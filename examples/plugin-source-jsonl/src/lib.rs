//! `jsonl`: a recotem data source reading one JSON object per line.
//!
//! It asks for one capability, `input-stream`: the host opens the recipe's
//! `source.path` (read-only) and hands the component the bytes. The
//! component has no filesystem, environment or network of its own.
//!
//! String and integer fields become ids; other values, missing fields and
//! blank lines are nulls (the host drops rows with null ids).

use std::io::BufRead;

use recotem_guest_sdk::prelude::*;
use serde_json::Value;

const SCHEMA: &str = include_str!("schema.json");

struct Jsonl;

impl Source for Jsonl {
    type Reader = Reader;

    fn describe() -> SourceInfo {
        SourceInfo::new("jsonl", env!("CARGO_PKG_VERSION"), "One JSON object per line (JSON Lines).")
            .with_config_schema(SCHEMA)
            .with_capability(Capability::InputStream)
    }

    fn probe(_config: &str, data: Option<Input>) -> Result<ProbeOutcome, PluginError> {
        let data = data.ok_or_else(|| PluginError::invalid_config("an input stream is required"))?;
        let mut first = String::new();
        std::io::BufReader::new(InputReader::new(data))
            .read_line(&mut first)
            .map_err(|e| PluginError::io(e.to_string()))?;
        let value: Value = serde_json::from_str(first.trim())
            .map_err(|e| PluginError::invalid_input(format!("line 1 is not JSON: {e}")))?;
        let keys = value.as_object().map(|o| o.len()).unwrap_or(0);
        Ok(ProbeOutcome::Checked(format!("first line has {keys} fields")))
    }

    fn open(_config: &str, data: Option<Input>, columns: Vec<String>) -> Result<Reader, PluginError> {
        let data = data.ok_or_else(|| PluginError::invalid_config("an input stream is required"))?;
        Ok(Reader { lines: std::io::BufReader::new(InputReader::new(data)), columns, line: 0 })
    }
}

/// Streams the input in batches of at most `max_rows` lines.
pub struct Reader {
    lines: std::io::BufReader<InputReader>,
    columns: Vec<String>,
    line: u64,
}

impl BatchReader for Reader {
    fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, PluginError> {
        let names: Vec<&str> = self.columns.iter().map(String::as_str).collect();
        let mut batch = BatchBuilder::new(&names);
        let mut text = String::new();
        while batch.rows() < max_rows as usize {
            text.clear();
            let n = self.lines.read_line(&mut text).map_err(|e| PluginError::io(e.to_string()))?;
            if n == 0 {
                break;
            }
            self.line += 1;
            if text.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(text.trim())
                .map_err(|e| PluginError::invalid_input(format!("line {}: not JSON: {e}", self.line)))?;
            for (i, name) in self.columns.iter().enumerate() {
                match value.get(name) {
                    Some(Value::String(s)) => batch.utf8(i).push(s),
                    Some(Value::Number(n)) if n.is_i64() || n.is_u64() => batch.utf8(i).push(&n.to_string()),
                    _ => batch.utf8(i).push_null(),
                }
            }
        }
        Ok(if batch.rows() == 0 { None } else { Some(batch.finish()) })
    }
}

export_source!(Jsonl);
