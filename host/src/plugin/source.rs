//! Calling `source` components: describe, probe, and batched reads.

use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::component::{Component, Resource, ResourceAny};

use super::bindings::source::exports::recotem::plugin::source_plugin::{Capability, ProbeOutcome, SourceInfo};
use super::bindings::source::recotem::plugin::types::{Batch, PluginError};
use super::bindings::source::{Source, SourcePre};
use super::bindings::source::recotem::plugin::types::ColumnData;
use super::grants::{Block, Granted};
use super::engine::{CallFailure, Runtime, arm_deadline, classify};
use super::limits::{Limits, truncate};
use super::policy::Needs;
use super::registry::Profile;
use super::sandbox::{HostState, InputStream, new_store_with};
use crate::error::{Error, Result};
use crate::events::Event;

/// A loaded data-source component.
pub struct SourceComponent {
    /// Where it came from (`builtin:<crate>` or a file path).
    pub origin: String,
    /// SHA-256 of the component bytes.
    pub digest: String,
    /// What it says about itself.
    pub info: SourceInfo,
    /// Surface, needs and grants (filled by the registry).
    pub profile: Profile,
    pre: SourcePre<HostState>,
}

impl SourceComponent {
    /// Link `component` against the source world (with `wasi:sockets` when
    /// `network`: its imports need a grant, checked by the registry before
    /// anything but `describe` runs) and ask it to describe itself.
    pub fn load(runtime: &Runtime, origin: &str, digest: &str, component: &Component, network: bool) -> Result<Self> {
        let linker = if network { runtime.network_source_linker() } else { runtime.source_linker() };
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| Error::data_source(format!("component {origin}: cannot be linked: {e:#}")))?;
        let pre = SourcePre::new(pre)
            .map_err(|e| Error::data_source(format!("component {origin}: not a recotem source: {e:#}")))?;
        let limits = Limits::DESCRIBE;
        let mut store = new_store_with(runtime.engine(), origin, limits, None);
        let info = (|| {
            let bindings = pre.instantiate(&mut store)?;
            bindings.recotem_plugin_source_plugin().call_describe(&mut store)
        })()
        .map_err(|e| {
            let failure = classify(e, &store, limits.call_timeout);
            Error::data_source(format!("component {origin}: describe {failure}"))
        })?;
        check_info(origin, &info)?;
        let profile = Profile::bare(origin, digest, 0);
        Ok(SourceComponent { origin: origin.to_string(), digest: digest.to_string(), info, profile, pre })
    }

    /// Attach the registry's profile.
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// What the component declares it needs.
    pub fn needs(&self, imports_sockets: bool) -> Needs {
        let mut needs = Needs { imports_sockets, ..Needs::default() };
        for c in &self.info.capabilities {
            match c {
                Capability::InputStream => needs.input_stream = true,
                Capability::Network(field) => needs.network_fields.push(field.clone()),
            }
        }
        needs
    }

    /// The `type` name recipes use.
    pub fn type_name(&self) -> &str {
        &self.info.type_name
    }

    /// True when the source declares the `input-stream` capability (the
    /// grant broker, [`super::grants`], also asks the policy and the recipe).
    pub fn declares_input(&self) -> bool {
        self.info.capabilities.iter().any(|c| matches!(c, Capability::InputStream))
    }

    /// True when the source declares a `network(...)` capability.
    pub fn declares_network(&self) -> bool {
        self.info.capabilities.iter().any(|c| matches!(c, Capability::Network(_)))
    }

    /// A fresh store with this source's grants, each logged as it is
    /// applied.
    fn store(&self, runtime: &Runtime, limits: Limits, input: Option<Block>, call: &str) -> Store<HostState> {
        let grant = |what: String, by: &str| {
            Event::info("plugin_grant_applied")
                .field("plugin", self.info.type_name.clone())
                .field("sha256", self.digest.clone())
                .field("call", call.to_string())
                .field("grant", what)
                .field("granted_by", by.to_string())
                .emit();
        };
        if let Some(block) = input {
            grant("input-stream".into(), &format!("recipe {}.path (read-only stream opened by the host)", block.as_str()));
        }
        let network = self.profile.grants.network.as_ref();
        if let Some(n) = network {
            let by = self.profile.grants.entry.map(|i| format!("policy plugins[{i}]")).unwrap_or_default();
            for ep in &n.endpoints {
                grant(format!("network({ep})"), &by);
            }
        }
        new_store_with(runtime.engine(), &self.info.type_name, limits, network)
    }

    /// A fresh instance in `store`, with `input` (if any) in its table.
    fn instantiate(
        &self,
        store: &mut Store<HostState>,
        input: Option<InputStream>,
    ) -> wasmtime::Result<(Source, Option<Resource<InputStream>>)> {
        let bindings = self.pre.instantiate(&mut *store)?;
        let input = match input {
            Some(i) => Some(store.data_mut().push_input(i)?),
            None => None,
        };
        Ok((bindings, input))
    }

    /// Check `config_json` (and the beginning of `input`) without reading
    /// the data, in a fresh sandbox with the same grants as a read. Returns
    /// the component's one-line summary, or `None` when it has no probe.
    pub fn probe(&self, runtime: &Runtime, config_json: &str, input: Option<Granted>) -> Result<Option<String>> {
        let limits = Limits::source();
        let label = format!("source {:?}", self.info.type_name);
        let mut store = self.store(runtime, limits, input.as_ref().map(|g| g.block), "probe");
        let input = input.map(|g| g.stream);
        let result = (|| {
            let (bindings, input) = self.instantiate(&mut store, input)?;
            bindings.recotem_plugin_source_plugin().call_probe(&mut store, config_json, input)
        })();
        match result {
            Ok(Ok(ProbeOutcome::Checked(summary))) => Ok(Some(truncate(summary, limits.message_bytes))),
            Ok(Ok(ProbeOutcome::NoProbe)) => Ok(None),
            Ok(Err(plugin_error)) => Err(plugin_failed(&label, plugin_error, limits)),
            Err(e) => Err(call_failed(&label, "probe", classify(e, &store, limits.call_timeout))),
        }
    }

    /// Start a read.
    pub fn open(
        &self,
        runtime: &Runtime,
        config_json: &str,
        input: Option<Granted>,
        columns: &[String],
    ) -> Result<SourceSession> {
        let limits = Limits::source();
        let label = format!("source {:?}", self.info.type_name);
        let mut store = self.store(runtime, limits, input.as_ref().map(|g| g.block), "open");
        let input = input.map(|g| g.stream);
        let result = (|| {
            let (bindings, input) = self.instantiate(&mut store, input)?;
            let reader = bindings.recotem_plugin_source_plugin().reader().call_open(
                &mut store,
                config_json,
                input,
                columns,
            )?;
            Ok((bindings, reader))
        })();
        match result {
            Ok((bindings, Ok(reader))) => Ok(SourceSession {
                store,
                bindings,
                reader,
                label,
                limits,
                read: ReadBounds::from_settings(),
                rows: 0,
                bytes: 0,
                empty_in_a_row: 0,
            }),
            Ok((_, Err(plugin_error))) => Err(plugin_failed(&label, plugin_error, limits)),
            Err(e) => Err(call_failed(&label, "open", classify(e, &store, limits.call_timeout))),
        }
    }
}

/// One read in progress. Besides each batch's own limits, the whole read is
/// bounded: total rows, total bytes, consecutive empty batches, and a
/// deadline for the read (the call deadline of each `next-batch` never runs
/// past it).
pub struct SourceSession {
    store: Store<HostState>,
    bindings: Source,
    reader: ResourceAny,
    label: String,
    limits: Limits,
    read: ReadBounds,
    rows: u64,
    bytes: u64,
    empty_in_a_row: u32,
}

/// Bounds of a whole read.
#[derive(Debug, Clone, Copy)]
struct ReadBounds {
    max_rows: u64,
    max_bytes: u64,
    deadline: Instant,
    /// What set the deadline, for the message.
    deadline_by: &'static str,
    timeout: Duration,
}

impl ReadBounds {
    fn from_settings() -> Self {
        let s = crate::settings::get();
        ReadBounds {
            max_rows: s.max_source_rows,
            max_bytes: s.max_source_bytes,
            deadline: Instant::now() + s.source_read_timeout,
            deadline_by: "RECOTEM_SOURCE_READ_TIMEOUT_SECONDS",
            timeout: s.source_read_timeout,
        }
    }
}

/// Most empty batches in a row before a read is refused as going nowhere.
pub const MAX_EMPTY_BATCHES_IN_A_ROW: u32 = 1000;

impl SourceSession {
    /// End the whole read at `deadline` at the latest (for example when
    /// `training.timeout_seconds` runs out first); `by` names the setting.
    pub fn read_deadline(&mut self, deadline: Instant, by: &'static str, timeout: Duration) {
        if deadline < self.read.deadline {
            self.read.deadline = deadline;
            self.read.deadline_by = by;
            self.read.timeout = timeout;
        }
    }

    /// The next batch, `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        let left = self.read.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.read_timed_out());
        }
        let timeout = self.limits.call_timeout.min(left);
        arm_deadline(&mut self.store, timeout);
        let result = self.bindings.recotem_plugin_source_plugin().reader().call_next_batch(
            &mut self.store,
            self.reader,
            self.limits.batch_rows,
        );
        match result {
            Ok(Ok(Some(batch))) => {
                let bytes = check_batch(&batch, &self.limits).map_err(|m| {
                    Error::data_source(format!("{}: next-batch returned a batch the host refuses: {m}", self.label))
                })?;
                self.account(&batch, bytes)?;
                Ok(Some(batch))
            }
            Ok(Ok(None)) => Ok(None),
            Ok(Err(plugin_error)) => Err(plugin_failed(&self.label, plugin_error, self.limits)),
            Err(e) => match classify(e, &self.store, timeout) {
                CallFailure::Timeout(_) if timeout < self.limits.call_timeout => Err(self.read_timed_out()),
                failure => Err(call_failed(&self.label, "next-batch", failure)),
            },
        }
    }

    /// Add a batch to the read's totals; refuse a read past its bounds.
    fn account(&mut self, batch: &Batch, bytes: usize) -> Result<()> {
        self.rows += u64::from(batch.num_rows);
        self.bytes += bytes as u64;
        if self.rows > self.read.max_rows {
            return Err(Error::data_source(format!(
                "{}: the source returned more than {} rows in total (RECOTEM_MAX_SOURCE_ROWS); raise the cap if the data really is that large",
                self.label, self.read.max_rows
            )));
        }
        if self.bytes > self.read.max_bytes {
            return Err(Error::data_source(format!(
                "{}: the source returned more than {} bytes of column data in total (RECOTEM_MAX_SOURCE_BYTES); raise the cap if the data really is that large",
                self.label, self.read.max_bytes
            )));
        }
        if batch.num_rows == 0 {
            self.empty_in_a_row += 1;
            if self.empty_in_a_row >= MAX_EMPTY_BATCHES_IN_A_ROW {
                return Err(Error::data_source(format!(
                    "{}: the source returned {MAX_EMPTY_BATCHES_IN_A_ROW} empty batches in a row without ending the read",
                    self.label
                )));
            }
        } else {
            self.empty_in_a_row = 0;
        }
        Ok(())
    }

    fn read_timed_out(&self) -> Error {
        Error::data_source(format!(
            "{}: the read did not finish within {} s ({}); it was stopped",
            self.label,
            self.read.timeout.as_secs(),
            self.read.deadline_by
        ))
    }

    /// The configured per-call deadline.
    pub fn call_timeout(&self) -> Duration {
        self.limits.call_timeout
    }
}

impl Drop for SourceSession {
    fn drop(&mut self) {
        let _ = self.reader.resource_drop(&mut self.store);
    }
}

fn plugin_failed(label: &str, e: PluginError, limits: Limits) -> Error {
    Error::data_source(format!(
        "{label}: {} (plugin error kind: {})",
        truncate(e.message, limits.message_bytes),
        super::error_kind_name(e.kind)
    ))
}

/// Apply the contract's rules to what `describe` published.
fn check_info(origin: &str, info: &SourceInfo) -> Result<()> {
    super::describe::check_source(info)
        .map_err(|rule| Error::data_source(format!("component {origin}: describe: {rule}")))
}

/// Longest column name in a batch, bytes.
pub const MAX_COLUMN_NAME: usize = 256;
/// Most columns in a batch.
pub const MAX_COLUMNS: usize = 256;

/// The rules a batch must respect at the boundary, beyond the column checks
/// of the interaction table: row count, column names (bounded, printable,
/// unique), string offsets (from 0, never decreasing, within the data), id
/// length and total bytes. Returns the batch's size in bytes.
fn check_batch(batch: &Batch, limits: &Limits) -> std::result::Result<usize, String> {
    use super::describe::quote;
    if batch.num_rows > limits.batch_rows {
        return Err(format!("{} rows, more than the {} asked for", batch.num_rows, limits.batch_rows));
    }
    if batch.columns.len() > MAX_COLUMNS {
        return Err(format!("{} columns, more than the {MAX_COLUMNS} allowed", batch.columns.len()));
    }
    let mut bytes = 0usize;
    for (i, c) in batch.columns.iter().enumerate() {
        if c.name.len() > MAX_COLUMN_NAME || c.name.chars().any(char::is_control) {
            return Err(format!(
                "the column name {} is longer than {MAX_COLUMN_NAME} bytes or holds control characters",
                quote(&c.name)
            ));
        }
        if batch.columns[..i].iter().any(|o| o.name == c.name) {
            return Err(format!("two columns are called {}", quote(&c.name)));
        }
        bytes = bytes.saturating_add(c.name.len());
        bytes = bytes.saturating_add(match &c.data {
            ColumnData::Int64(v) => v.len() * 8,
            ColumnData::Float64(v) => v.len() * 8,
            ColumnData::Boolean(v) => v.len(),
            ColumnData::Utf8(u) => {
                if u.offsets.first().is_some_and(|&o| o != 0)
                    || u.offsets.windows(2).any(|w| w[1] < w[0])
                    || u.offsets.last().is_some_and(|&o| o as usize > u.data.len())
                {
                    return Err(format!(
                        "column {}: string offsets must start at 0, never decrease and stay within its {} data bytes",
                        quote(&c.name),
                        u.data.len()
                    ));
                }
                let longest = u.offsets.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0) as usize;
                if longest > limits.id_bytes {
                    return Err(format!(
                        "column {} holds a {longest}-byte value; ids are limited to {} bytes",
                        quote(&c.name),
                        limits.id_bytes
                    ));
                }
                u.data.len() + u.offsets.len() * 4
            }
        });
    }
    if bytes > limits.batch_bytes {
        return Err(format!("{bytes} bytes of column data, more than the {} byte limit", limits.batch_bytes));
    }
    Ok(bytes)
}

fn call_failed(label: &str, call: &str, failure: CallFailure) -> Error {
    Error::data_source(format!("{label}: {call} {failure}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::source::recotem::plugin::types::{Column, Utf8Column};

    fn batch(rows: u32, value: &str) -> Batch {
        let mut data = Vec::new();
        let mut offsets = vec![0u32];
        for _ in 0..rows {
            data.extend_from_slice(value.as_bytes());
            offsets.push(data.len() as u32);
        }
        Batch { num_rows: rows, columns: vec![Column { name: "u".into(), data: ColumnData::Utf8(Utf8Column { data, offsets }), valid: None }] }
    }

    #[test]
    fn batches_are_held_to_their_limits() {
        let limits = Limits { batch_rows: 4, batch_bytes: 48, id_bytes: 8, ..Limits::SOURCE };
        assert!(check_batch(&batch(4, "abc"), &limits).is_ok());
        assert!(check_batch(&batch(5, "a"), &limits).unwrap_err().contains("more than the 4 asked for"));
        assert!(check_batch(&batch(1, "123456789"), &limits).unwrap_err().contains("limited to 8 bytes"));
        assert!(check_batch(&batch(4, "12345678"), &limits).unwrap_err().contains("byte limit"));
    }
}
