//! Structured log events, written to stderr (stdout carries only a command's
//! result).
//!
//! `RECOTEM_LOG_FORMAT` selects the format: `json` (one object per line:
//! `event`, `level`, `logger`, `timestamp` and the event's fields), `console`
//! (a human line), or `auto` (the default: console when stderr is a
//! terminal, JSON otherwise). An unknown value falls back to `auto`.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use serde_json::{Map, Value};

/// Output format of the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// `timestamp level event key=value ...`.
    Console,
}

/// Severity of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail for debugging; not emitted unless verbose.
    Debug,
    /// Normal progress.
    Info,
    /// Something an operator should look at.
    Warning,
    /// A failure.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

static FORMAT: OnceLock<Format> = OnceLock::new();

/// Choose the format from a `RECOTEM_LOG_FORMAT` value (`None` = unset).
/// Returns false when the value was not recognised (then `auto` applies).
pub fn parse_format(value: Option<&str>) -> (Format, bool) {
    let auto = if std::io::stderr().is_terminal() { Format::Console } else { Format::Json };
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("auto") => (auto, true),
        Some("json") => (Format::Json, true),
        Some("console") => (Format::Console, true),
        Some(_) => (auto, false),
    }
}

/// Set the process-wide format. The first call wins.
pub fn init(format: Format) {
    let _ = FORMAT.set(format);
}

fn format() -> Format {
    *FORMAT.get_or_init(|| parse_format(std::env::var("RECOTEM_LOG_FORMAT").ok().as_deref()).0)
}

/// An event under construction: `Event::info("train_done").field("k", v).emit()`.
#[must_use = "an event does nothing until emitted"]
pub struct Event {
    level: Level,
    name: std::borrow::Cow<'static, str>,
    logger: &'static str,
    fields: Map<String, Value>,
}

impl Event {
    /// A new event at `level`.
    pub fn new(level: Level, name: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Event { level, name: name.into(), logger: "recotem", fields: Map::new() }
    }

    /// An info event.
    pub fn info(name: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self::new(Level::Info, name)
    }

    /// A warning event.
    pub fn warn(name: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self::new(Level::Warning, name)
    }

    /// An error event.
    pub fn error(name: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self::new(Level::Error, name)
    }

    /// Attribute the event to a logger (default `recotem`).
    pub fn logger(mut self, logger: &'static str) -> Self {
        self.logger = logger;
        self
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

    /// The JSON record as it is written in `json` format.
    pub fn to_json(&self) -> Value {
        let mut record = Map::new();
        record.insert("event".into(), self.name.as_ref().into());
        record.insert("level".into(), self.level.as_str().into());
        record.insert("logger".into(), self.logger.into());
        record.insert("timestamp".into(), crate::util::now_rfc3339_micros().into());
        for (k, v) in &self.fields {
            record.insert(k.clone(), v.clone());
        }
        Value::Object(record)
    }

    /// Write the event to stderr.
    pub fn emit(self) {
        let line = match format() {
            Format::Json => self.to_json().to_string(),
            Format::Console => {
                let mut line = format!(
                    "{} {:<7} {}",
                    crate::util::now_rfc3339_micros(),
                    self.level.as_str(),
                    self.name
                );
                for (k, v) in &self.fields {
                    match v {
                        Value::String(s) => line.push_str(&format!(" {k}={s}")),
                        other => line.push_str(&format!(" {k}={other}")),
                    }
                }
                line
            }
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}
