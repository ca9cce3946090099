//! The `source` world: components that read interactions.
//!
//! Implement [`Source`] (and a [`BatchReader`] for its reader), then call
//! [`export_source!`](crate::export_source) once in the crate.

use std::cell::RefCell;
use std::marker::PhantomData;

/// Generated bindings for the `source` world.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "source",
        pub_export_macro: true,
        export_macro_name: "__export_source_world",
        default_bindings_module: "recotem_guest_sdk::source::bindings",
    });
}

use bindings::exports::recotem::plugin::source_plugin as wit;

pub use bindings::recotem::plugin::io::Input;
pub use wit::{Capability, ProbeOutcome, SourceInfo};

use crate::{Batch, PluginError};

/// A data source: describes itself, optionally probes a configuration, and
/// opens readers.
pub trait Source: 'static {
    /// The reader [`Source::open`] returns.
    type Reader: BatchReader + 'static;

    /// Name, version, config schema and needs of this source. Called at host
    /// start-up: keep it cheap and free of side effects.
    fn describe() -> SourceInfo;

    /// Check `config` (the recipe's `source` block as JSON) and, when given,
    /// the beginning of the input, without reading all the data. Return
    /// `ProbeOutcome::Checked(summary)` with a one-line summary for
    /// `recotem validate`. The default, `ProbeOutcome::NoProbe`, tells the
    /// host that nothing was checked.
    fn probe(config: &str, data: Option<Input>) -> Result<ProbeOutcome, PluginError> {
        let _ = (config, data);
        Ok(ProbeOutcome::NoProbe)
    }

    /// Start reading. `columns` names the columns the host needs.
    fn open(config: &str, data: Option<Input>, columns: Vec<String>)
    -> Result<Self::Reader, PluginError>;
}

/// Produces the batches of one read.
pub trait BatchReader {
    /// The next batch of at most `max_rows` rows, `None` at the end.
    fn next_batch(&mut self, max_rows: u32) -> Result<Option<Batch>, PluginError>;
}

impl SourceInfo {
    /// A description with an empty schema (`{"type":"object"}`), no
    /// never-expand fields and no capabilities.
    pub fn new(type_name: &str, version: &str, description: &str) -> Self {
        SourceInfo {
            type_name: type_name.to_string(),
            version: version.to_string(),
            description: description.to_string(),
            config_schema: r#"{"type":"object"}"#.to_string(),
            never_expand: Vec::new(),
            capabilities: Vec::new(),
        }
    }

    /// Set the JSON Schema of the recipe's `source` block.
    pub fn with_config_schema(mut self, schema: &str) -> Self {
        self.config_schema = schema.to_string();
        self
    }

    /// Ask for a capability (the operator decides whether it is granted).
    pub fn with_capability(mut self, capability: Capability) -> Self {
        self.capabilities.push(capability);
        self
    }

    /// Mark a config field as never subject to `${RECOTEM_RECIPE_*}`
    /// expansion.
    pub fn with_never_expand(mut self, field: &str) -> Self {
        self.never_expand.push(field.to_string());
        self
    }
}

/// Adapts a [`Source`] to the generated bindings. Used by
/// [`export_source!`](crate::export_source); not meant to be named directly.
#[doc(hidden)]
pub struct SourceExport<T>(PhantomData<T>);

/// The `reader` resource as the bindings see it.
#[doc(hidden)]
pub struct ReaderCell<T: Source>(RefCell<T::Reader>);

impl<T: Source> wit::Guest for SourceExport<T> {
    type Reader = ReaderCell<T>;

    fn describe() -> SourceInfo {
        T::describe()
    }

    fn probe(config: String, data: Option<Input>) -> Result<ProbeOutcome, PluginError> {
        T::probe(&config, data)
    }
}

impl<T: Source> wit::GuestReader for ReaderCell<T> {
    fn open(
        config: String,
        data: Option<Input>,
        columns: Vec<String>,
    ) -> Result<wit::Reader, PluginError> {
        let reader = T::open(&config, data, columns)?;
        Ok(wit::Reader::new(ReaderCell::<T>(RefCell::new(reader))))
    }

    fn next_batch(&self, max_rows: u32) -> Result<Option<Batch>, PluginError> {
        self.0.borrow_mut().next_batch(max_rows)
    }
}

/// Export a [`Source`] implementation as this component's `source-plugin`.
///
/// ```text
/// recotem_guest_sdk::export_source!(MySource);
/// ```
#[macro_export]
macro_rules! export_source {
    ($t:ty) => {
        #[doc(hidden)]
        type __RecotemSourceExport = $crate::source::SourceExport<$t>;
        $crate::__private::__export_source_world!(
            __RecotemSourceExport with_types_in $crate::source::bindings
        );
    };
}
