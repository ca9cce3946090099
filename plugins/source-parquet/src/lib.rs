//! The `parquet` data source: an Apache Parquet file read from the input the
//! host opens for the recipe's `source.path`, with the pure-Rust reader of
//! the `parquet` crate compiled into the component.
//!
//! It reads the footer first (through the input's `read-at`), then, row
//! group by row group, only the chunks of the columns the host asks for
//! (the recipe's mapped columns), and hands each row group to the host in
//! batches. Type mapping and codecs: see [`read`].

mod chunks;
mod read;

use chunks::At;
use read::{ParquetBatches, describe_columns, open_file};
use recotem_guest_sdk::prelude::*;
use serde::Deserialize;

const SCHEMA: &str = include_str!("schema.json");

/// The recipe's `source` block for `type: parquet` (RCP-13: only these).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(rename = "type")]
    _type: String,
    /// Opened by the host; present here only because it is part of the block.
    #[serde(rename = "path")]
    _path: String,
    /// Verified by the host.
    #[serde(default, rename = "sha256")]
    _sha256: Option<String>,
}

fn parse_config(config: &str) -> Result<Config, PluginError> {
    serde_json::from_str(config).map_err(|e| PluginError::invalid_config(format!("source: {e}")))
}

/// The host's input, read positionally.
struct Positional {
    input: InputReader,
    size: u64,
}

impl Positional {
    fn new(data: Option<Input>) -> Result<Self, PluginError> {
        let data = data.ok_or_else(|| {
            PluginError::invalid_config("the parquet source needs an input stream and the host gave none")
        })?;
        let input = InputReader::new(data);
        let size = input.size_hint().ok_or_else(|| {
            PluginError::invalid_input(
                "the parquet source needs random access to the file (its footer comes first), and this input \
                 can only be streamed; give an uncompressed local file",
            )
        })?;
        // Random access is checked up front, so a streamed input (an
        // http(s) body, a gzip-compressed file) gets a message that says so.
        if let Err(e) = input.read_at(size.saturating_sub(8), 8) {
            return Err(PluginError::invalid_input(format!(
                "the parquet source needs random access to the file (its footer comes first): {e}; \
                 give an uncompressed local file"
            )));
        }
        Ok(Positional { input, size })
    }
}

impl At for Positional {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, max: u32) -> std::io::Result<Vec<u8>> {
        self.input.read_at(offset, max)
    }
}

struct Parquet;

impl Source for Parquet {
    type Reader = ParquetBatches<Positional>;

    fn describe() -> SourceInfo {
        SourceInfo::new(
            "parquet",
            env!("CARGO_PKG_VERSION"),
            "Apache Parquet files: only the mapped columns are read, row group by row group (snappy, gzip, lz4, brotli).",
        )
        .with_config_schema(SCHEMA)
        .with_capability(Capability::InputStream)
    }

    fn probe(config: &str, data: Option<Input>) -> Result<ProbeOutcome, PluginError> {
        parse_config(config)?;
        if data.is_none() {
            return Ok(ProbeOutcome::Checked("configuration OK (input not checked)".to_string()));
        }
        let (file, _) = open_file(Positional::new(data)?)?;
        Ok(ProbeOutcome::Checked(summary(&file)))
    }

    fn open(config: &str, data: Option<Input>, columns: Vec<String>) -> Result<Self::Reader, PluginError> {
        parse_config(config)?;
        ParquetBatches::new(Positional::new(data)?, columns)
    }
}

/// One line about a file: rows, row groups, columns and their types.
fn summary<A: At + 'static>(file: &parquet::file::serialized_reader::SerializedFileReader<chunks::Chunks<A>>) -> String {
    use parquet::file::reader::FileReader;
    let meta = file.metadata();
    let columns = describe_columns(file).into_iter().map(|(n, t)| format!("{n} ({t})")).collect::<Vec<_>>();
    format!(
        "Parquet OK: {} rows in {} row groups; columns: {}",
        meta.file_metadata().num_rows(),
        meta.num_row_groups(),
        columns.join(", ")
    )
}

export_source!(Parquet);

#[cfg(test)]
mod tests;
