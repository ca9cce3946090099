//! The `echo` data source: seeded synthetic interactions, with no input at
//! all. Users are drawn uniformly from `u0 … u<n_users-1>`; items follow a
//! Zipf-like popularity (probability ∝ 1/(rank+1), `i0` the most popular),
//! drawn by inverting the continuous 1/x law: `⌊(n_items+1)^r⌋ - 1` for a
//! uniform `r`. Row `k`'s timestamp is `1 600 000 000 + k + jitter` seconds
//! (jitter < 1 h), so later rows are mostly later in time. The generator
//! is the portable seeded one of `recotem-numerics`: the same settings give
//! the same rows everywhere.

use std::fmt::Write as _;

use recotem_guest_sdk::prelude::*;
use recotem_guest_sdk::numerics::Rng;
use recotem_guest_sdk::{Column, ColumnData, Utf8Column};
use serde::Deserialize;

const SCHEMA: &str = include_str!("schema.json");

/// The columns this source has.
const COLUMNS: [&str; 3] = ["user_id", "item_id", "timestamp"];
/// Timestamp of row 0, epoch seconds.
const BASE_TIME: i64 = 1_600_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default = "thousand")]
    n_users: u32,
    #[serde(default = "thousand")]
    n_items: u32,
    #[serde(default = "hundred_thousand")]
    n_rows: u32,
    #[serde(default)]
    seed: u64,
}

fn thousand() -> u32 {
    1000
}

fn hundred_thousand() -> u32 {
    100_000
}

impl Config {
    fn parse(config: &str) -> Result<Self, PluginError> {
        let c: Config =
            serde_json::from_str(config).map_err(|e| PluginError::invalid_config(format!("source: {e}")))?;
        if c.n_users == 0 || c.n_items == 0 || c.n_rows == 0 {
            return Err(PluginError::invalid_config("source: n_users, n_items and n_rows must be at least 1"));
        }
        Ok(c)
    }
}

struct Echo;

impl Source for Echo {
    type Reader = EchoReader;

    fn describe() -> SourceInfo {
        SourceInfo::new(
            "echo",
            env!("CARGO_PKG_VERSION"),
            "Seeded synthetic interactions (Zipf-like item popularity); needs no input.",
        )
        .with_config_schema(SCHEMA)
    }

    fn probe(config: &str, _data: Option<Input>) -> Result<ProbeOutcome, PluginError> {
        let c = Config::parse(config)?;
        Ok(ProbeOutcome::Checked(format!("{} rows over {} users and {} items, seed {}", c.n_rows, c.n_users, c.n_items, c.seed)))
    }

    fn open(config: &str, _data: Option<Input>, columns: Vec<String>) -> Result<EchoReader, PluginError> {
        EchoReader::new(Config::parse(config)?, columns)
    }
}

/// Generates the rows, batch by batch.
pub struct EchoReader {
    config: Config,
    rng: Rng,
    row: u32,
    /// Requested columns: (name, index in [`COLUMNS`]).
    wanted: Vec<(String, usize)>,
    ln_items: f64,
    text: String,
}

impl EchoReader {
    fn new(config: Config, columns: Vec<String>) -> Result<Self, PluginError> {
        let mut wanted = Vec::new();
        let mut missing = Vec::new();
        for name in columns {
            match COLUMNS.iter().position(|c| *c == name) {
                Some(i) => wanted.push((name, i)),
                None => missing.push(format!("{name:?}")),
            }
        }
        if !missing.is_empty() {
            return Err(PluginError::invalid_input(format!(
                "no column {} in the echo source; it has: {}",
                missing.join(", "),
                COLUMNS.join(", ")
            )));
        }
        let ln_items = (f64::from(config.n_items) + 1.0).ln();
        Ok(EchoReader { rng: Rng::new(config.seed), config, row: 0, wanted, ln_items, text: String::new() })
    }

    /// The next row: (user, item, timestamp).
    fn next_row(&mut self) -> (u32, u32, i64) {
        let user = self.rng.below(u64::from(self.config.n_users)) as u32;
        let r = self.rng.next_f64();
        let item = ((r * self.ln_items).exp().floor() as u32).saturating_sub(1).min(self.config.n_items - 1);
        let time = BASE_TIME + i64::from(self.row) + self.rng.below(3600) as i64;
        self.row += 1;
        (user, item, time)
    }
}

impl BatchReader for EchoReader {
    fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, PluginError> {
        let n = max_rows.max(1).min(self.config.n_rows - self.row);
        if n == 0 {
            return Ok(None);
        }
        let mut users = Utf8Column { data: Vec::with_capacity(8 * n as usize), offsets: Vec::with_capacity(n as usize + 1) };
        let mut items = Utf8Column { data: Vec::with_capacity(8 * n as usize), offsets: Vec::with_capacity(n as usize + 1) };
        users.offsets.push(0);
        items.offsets.push(0);
        let mut times = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (u, i, t) = self.next_row();
            for (column, prefix, id) in [(&mut users, 'u', u), (&mut items, 'i', i)] {
                self.text.clear();
                let _ = write!(self.text, "{prefix}{id}");
                column.data.extend_from_slice(self.text.as_bytes());
                column.offsets.push(column.data.len() as u32);
            }
            times.push(t);
        }
        let mut built = [Some(ColumnData::Utf8(users)), Some(ColumnData::Utf8(items)), Some(ColumnData::Int64(times))];
        let mut columns = Vec::with_capacity(self.wanted.len());
        for (name, i) in &self.wanted {
            let data = built[*i]
                .take()
                .ok_or_else(|| PluginError::invalid_config(format!("column {name:?} was asked for twice")))?;
            columns.push(Column { name: name.clone(), data, valid: None });
        }
        Ok(Some(Batch { num_rows: n, columns }))
    }
}

export_source!(Echo);

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(config: &str, columns: &[&str]) -> Result<EchoReader, PluginError> {
        EchoReader::new(Config::parse(config)?, columns.iter().map(|c| c.to_string()).collect())
    }

    fn rows(r: &mut EchoReader) -> Vec<(u32, u32, i64)> {
        let n = r.config.n_rows;
        (0..n).map(|_| r.next_row()).collect()
    }

    #[test]
    fn same_seed_same_rows_and_popularity_is_skewed() {
        let cfg = r#"{"type":"echo","n_users":50,"n_items":100,"n_rows":20000,"seed":7}"#;
        let a = rows(&mut reader(cfg, &["user_id"]).unwrap());
        assert_eq!(a, rows(&mut reader(cfg, &["item_id"]).unwrap()));
        let mut count = vec![0u32; 100];
        for (u, i, _) in &a {
            assert!(*u < 50 && *i < 100);
            count[*i as usize] += 1;
        }
        // 1/(rank+1): item 0 about ln 2 / ln 101 = 15 % of rows, item 99 about 0.2 %.
        assert!(count[0] > 2500 && count[0] < 3500, "{}", count[0]);
        assert!(count[0] > 20 * count[99], "{count:?}");
        let other = rows(&mut reader(&cfg.replace("\"seed\":7", "\"seed\":8"), &["user_id"]).unwrap());
        assert_ne!(a, other);
    }

    #[test]
    fn batches_and_columns() {
        let mut r = reader(r#"{"type":"echo","n_rows":5}"#, &["timestamp", "user_id"]).unwrap();
        let b = r.next_batch(3).unwrap().unwrap();
        assert_eq!((b.num_rows, b.columns[0].name.as_str(), b.columns[1].name.as_str()), (3, "timestamp", "user_id"));
        assert!(matches!(&b.columns[0].data, ColumnData::Int64(v) if v.len() == 3));
        assert_eq!(r.next_batch(3).unwrap().unwrap().num_rows, 2);
        assert!(r.next_batch(3).unwrap().is_none());
        let e = reader(r#"{"type":"echo"}"#, &["user"]).err().unwrap();
        assert!(e.message.contains("\"user\""), "{}", e.message);
        assert!(Config::parse(r#"{"type":"echo","n_rows":0}"#).is_err());
    }
}
