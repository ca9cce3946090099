//! Structured events: the one way recotem reports what it does.
//!
//! An [`Event`] is a name, a level and ordered fields. [`Event::emit`]
//! hands it to [`tracing`] (target `recotem`, fields `event`, `logger` and
//! `fields`, the last a JSON object in insertion order), so any `tracing`
//! subscriber sees it; the `recotem` binary installs a layer that writes the
//! documented JSON line or console line (see `docs/cli.md`). Events from other
//! crates (the HTTP stack, for example) flow through the same subscriber.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// Severity of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail for debugging; shown with `-v`.
    Debug,
    /// Normal progress.
    Info,
    /// Something an operator should look at.
    Warning,
    /// A failure.
    Error,
}

impl Level {
    /// The level as written in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// The `tracing` field that carries an event's fields as one JSON object.
pub const FIELDS: &str = "fields";

/// An event under construction: `Event::info("train_done").field("k", v).emit()`.
#[must_use = "an event does nothing until emitted"]
#[derive(Debug, Clone)]
pub struct Event {
    level: Level,
    name: Cow<'static, str>,
    fields: Map<String, Value>,
}

impl Event {
    /// A new event at `level`.
    pub fn new(level: Level, name: impl Into<Cow<'static, str>>) -> Self {
        Event { level, name: name.into(), fields: Map::new() }
    }

    /// A debug event (shown with `-v`).
    pub fn debug(name: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Level::Debug, name)
    }

    /// An info event.
    pub fn info(name: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Level::Info, name)
    }

    /// A warning event.
    pub fn warn(name: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Level::Warning, name)
    }

    /// An error event.
    pub fn error(name: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Level::Error, name)
    }

    /// Add a field.
    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_string(), value.into());
        self
    }

    /// Add every field of a JSON object.
    pub fn fields(mut self, fields: Map<String, Value>) -> Self {
        self.fields.extend(fields);
        self
    }

    /// The event's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hand the event to the `tracing` dispatcher.
    pub fn emit(self) {
        let name: &str = &self.name;
        let fields = Value::Object(self.fields).to_string();
        let logger = "recotem";
        match self.level {
            Level::Debug => tracing::debug!(target: "recotem", event = name, logger, fields = fields.as_str()),
            Level::Info => tracing::info!(target: "recotem", event = name, logger, fields = fields.as_str()),
            Level::Warning => tracing::warn!(target: "recotem", event = name, logger, fields = fields.as_str()),
            Level::Error => tracing::error!(target: "recotem", event = name, logger, fields = fields.as_str()),
        }
    }
}
