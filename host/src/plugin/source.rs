//! Calling `source` components: describe, probe, and batched reads.

use std::time::Duration;

use wasmtime::Store;
use wasmtime::component::{Component, Resource, ResourceAny};

use super::bindings::source::exports::recotem::plugin::source_plugin::{Capability, SourceInfo};
use super::bindings::source::recotem::plugin::types::{Batch, PluginError};
use super::bindings::source::{Source, SourcePre};
use super::engine::{CallFailure, Runtime, arm_deadline, classify};
use super::limits::Limits;
use super::sandbox::{HostState, InputStream, new_store};
use crate::error::{Error, Result};

/// A loaded data-source component.
pub struct SourceComponent {
    /// Where it came from (`builtin:<crate>` or a file path).
    pub origin: String,
    /// SHA-256 of the component bytes.
    pub digest: String,
    /// What it says about itself.
    pub info: SourceInfo,
    pre: SourcePre<HostState>,
}

impl SourceComponent {
    /// Link `component` against the source world and ask it to describe
    /// itself.
    pub fn load(runtime: &Runtime, origin: &str, digest: &str, component: &Component) -> Result<Self> {
        let pre = runtime
            .source_linker()
            .instantiate_pre(component)
            .map_err(|e| Error::DataSource(format!("component {origin}: cannot be linked: {e:#}")))?;
        let pre = SourcePre::new(pre)
            .map_err(|e| Error::DataSource(format!("component {origin}: not a recotem source: {e:#}")))?;
        let limits = Limits::DESCRIBE;
        let mut store = new_store(runtime.engine(), origin, limits);
        let info = (|| {
            let bindings = pre.instantiate(&mut store)?;
            bindings.recotem_plugin_source_plugin().call_describe(&mut store)
        })()
        .map_err(|e| {
            let failure = classify(e, &store, limits.call_timeout);
            Error::DataSource(format!("component {origin}: describe {failure}"))
        })?;
        Ok(SourceComponent { origin: origin.to_string(), digest: digest.to_string(), info, pre })
    }

    /// The `type` name recipes use.
    pub fn type_name(&self) -> &str {
        &self.info.type_name
    }

    /// True when the source wants the host to open `source.path`.
    pub fn wants_input(&self) -> bool {
        self.info.capabilities.iter().any(|c| matches!(c, Capability::InputStream))
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
    /// the component's one-line summary.
    pub fn probe(&self, runtime: &Runtime, config_json: &str, input: Option<InputStream>) -> Result<String> {
        let limits = Limits::SOURCE;
        let label = format!("source {:?}", self.info.type_name);
        let mut store = new_store(runtime.engine(), &self.info.type_name, limits);
        let result = (|| {
            let (bindings, input) = self.instantiate(&mut store, input)?;
            bindings.recotem_plugin_source_plugin().call_probe(&mut store, config_json, input)
        })();
        match result {
            Ok(Ok(summary)) => Ok(summary),
            Ok(Err(plugin_error)) => Err(plugin_failed(&label, plugin_error)),
            Err(e) => Err(call_failed(&label, "probe", classify(e, &store, limits.call_timeout))),
        }
    }

    /// Start a read.
    pub fn open(
        &self,
        runtime: &Runtime,
        config_json: &str,
        input: Option<InputStream>,
        columns: &[String],
    ) -> Result<SourceSession> {
        let limits = Limits::SOURCE;
        let label = format!("source {:?}", self.info.type_name);
        let mut store = new_store(runtime.engine(), &self.info.type_name, limits);
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
            Ok((bindings, Ok(reader))) => Ok(SourceSession { store, bindings, reader, label, limits }),
            Ok((_, Err(plugin_error))) => Err(plugin_failed(&label, plugin_error)),
            Err(e) => Err(call_failed(&label, "open", classify(e, &store, limits.call_timeout))),
        }
    }
}

/// One read in progress.
pub struct SourceSession {
    store: Store<HostState>,
    bindings: Source,
    reader: ResourceAny,
    label: String,
    limits: Limits,
}

impl SourceSession {
    /// The next batch, `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        arm_deadline(&mut self.store, self.limits.call_timeout);
        let result = self.bindings.recotem_plugin_source_plugin().reader().call_next_batch(
            &mut self.store,
            self.reader,
            self.limits.batch_rows,
        );
        match result {
            Ok(Ok(batch)) => Ok(batch),
            Ok(Err(plugin_error)) => Err(plugin_failed(&self.label, plugin_error)),
            Err(e) => Err(call_failed(&self.label, "next-batch", classify(e, &self.store, self.limits.call_timeout))),
        }
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

fn plugin_failed(label: &str, e: PluginError) -> Error {
    Error::DataSource(format!("{label}: {}", e.message))
}

fn call_failed(label: &str, call: &str, failure: CallFailure) -> Error {
    Error::DataSource(format!("{label}: {call} {failure}"))
}
