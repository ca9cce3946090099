//! The event log: a `tracing` subscriber that writes every event to stderr
//! (stdout carries only a command's result) in the documented format.
//!
//! Events are built with [`Event`] (re-exported from `recotem-core`) or
//! emitted with `tracing` macros directly; both arrive here. The format is
//! chosen once, from the validated settings (`RECOTEM_LOG_FORMAT`):
//!
//! - `json`: one object per line — `event`, `level`, `logger`, `timestamp`,
//!   then the event's fields in the order they were added;
//! - `console`: `timestamp level event key=value ...`;
//! - `auto` (default): console when stderr is a terminal, JSON otherwise.
//!
//! The verbosity decides the lowest level written: warnings only with `-q`
//! (for commands that have it), debug events with `-v`, info otherwise.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Level as TLevel, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt as _};

pub use recotem_core::event::{Event, Level};

/// Output format of the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// `timestamp level event key=value ...`.
    Console,
}

/// The `RECOTEM_LOG_FORMAT` choice, before the terminal is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FormatChoice {
    /// Console on a terminal, JSON otherwise.
    #[default]
    Auto,
    /// Always JSON.
    Json,
    /// Always console.
    Console,
}

impl FormatChoice {
    /// Parse a `RECOTEM_LOG_FORMAT` value; `None` when not recognised.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Some(FormatChoice::Auto),
            "json" => Some(FormatChoice::Json),
            "console" => Some(FormatChoice::Console),
            _ => None,
        }
    }

    /// The format for this process's stderr.
    pub fn resolve(self) -> Format {
        match self {
            FormatChoice::Json => Format::Json,
            FormatChoice::Console => Format::Console,
            FormatChoice::Auto if std::io::stderr().is_terminal() => Format::Console,
            FormatChoice::Auto => Format::Json,
        }
    }
}

/// How much to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// Warnings and errors only.
    Quiet,
    /// Info and above (the default).
    #[default]
    Normal,
    /// Debug events too.
    Verbose,
}

/// Install the event log as the process-wide `tracing` subscriber. The first
/// call wins; later calls change nothing.
pub fn init(format: Format, verbosity: Verbosity) {
    let max = match verbosity {
        Verbosity::Quiet => TLevel::WARN,
        Verbosity::Normal => TLevel::INFO,
        Verbosity::Verbose => TLevel::DEBUG,
    };
    let subscriber = tracing_subscriber::registry().with(EventLayer { format, max });
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// Writes each `tracing` event as one line on stderr.
struct EventLayer {
    format: Format,
    max: TLevel,
}

impl<S: Subscriber> Layer<S> for EventLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        // Our own events at every enabled level; other crates' (the HTTP
        // stack's) from warnings up, so their chatter stays out of the log.
        let floor = if metadata.target().starts_with("recotem") { self.max } else { self.max.min(TLevel::WARN) };
        *metadata.level() <= floor
    }

    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut visitor = Collect::default();
        event.record(&mut visitor);
        let meta = event.metadata();
        let name = visitor.event.take().or_else(|| visitor.fields.remove("message").and_then(|m| m.as_str().map(str::to_owned)));
        let record = Record {
            name: name.unwrap_or_else(|| meta.name().to_string()),
            level: level_name(*meta.level()),
            logger: visitor.logger.take().unwrap_or_else(|| meta.target().replace("::", ".")),
            fields: visitor.fields,
        };
        let line = match self.format {
            Format::Json => record.json_line(),
            Format::Console => record.console_line(),
        };
        let writer = LINE_WRITER.read().ok().and_then(|w| w.clone());
        match writer {
            Some(write) => write(&line),
            None => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "{line}");
            }
        }
    }
}

/// Writes one formatted event line instead of plain stderr.
pub type LineWriter = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

static LINE_WRITER: std::sync::RwLock<Option<LineWriter>> = std::sync::RwLock::new(None);

/// Route event lines through `writer` (or, with `None`, straight to stderr
/// again): a live progress bar prints them above itself so the two never
/// garble each other.
pub fn set_line_writer(writer: Option<LineWriter>) {
    if let Ok(mut w) = LINE_WRITER.write() {
        *w = writer;
    }
}

fn level_name(level: TLevel) -> &'static str {
    match level {
        TLevel::ERROR => Level::Error.as_str(),
        TLevel::WARN => Level::Warning.as_str(),
        TLevel::INFO => Level::Info.as_str(),
        _ => Level::Debug.as_str(),
    }
}

/// One event, ready to format.
struct Record {
    name: String,
    level: &'static str,
    logger: String,
    fields: Map<String, Value>,
}

impl Record {
    fn json_line(self) -> String {
        let mut record = Map::new();
        record.insert("event".into(), self.name.into());
        record.insert("level".into(), self.level.into());
        record.insert("logger".into(), self.logger.into());
        record.insert("timestamp".into(), recotem_core::util::now_rfc3339_micros().into());
        record.extend(self.fields);
        Value::Object(record).to_string()
    }

    fn console_line(self) -> String {
        let mut line = format!("{} {:<7} {}", recotem_core::util::now_rfc3339_micros(), self.level, self.name);
        for (k, v) in &self.fields {
            let _ = match v {
                Value::String(s) => write!(line, " {k}={}", escape_controls(s)),
                other => write!(line, " {k}={other}"),
            };
        }
        line
    }
}

/// Control characters of a value written to a terminal, escaped (`\n`,
/// `\u{1b}`), so no field can forge a line or move the cursor.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect::<String>().into()
}

/// Gathers an event's fields in the order they were recorded.
#[derive(Default)]
struct Collect {
    event: Option<String>,
    logger: Option<String>,
    fields: Map<String, Value>,
}

impl Collect {
    fn put(&mut self, field: &Field, value: Value) {
        match (field.name(), value) {
            ("event", Value::String(s)) => self.event = Some(s),
            ("logger", Value::String(s)) => self.logger = Some(s),
            // `Event::emit` carries the ordered fields as one JSON object.
            (recotem_core::event::FIELDS, Value::String(s)) => match serde_json::from_str::<Value>(&s) {
                Ok(Value::Object(map)) => self.fields.extend(map),
                _ => {
                    self.fields.insert(recotem_core::event::FIELDS.into(), Value::String(s));
                }
            },
            (name, value) => {
                self.fields.insert(name.to_string(), value);
            }
        }
    }
}

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_choices() {
        assert_eq!(FormatChoice::parse(" JSON "), Some(FormatChoice::Json));
        assert_eq!(FormatChoice::parse(""), Some(FormatChoice::Auto));
        assert_eq!(FormatChoice::parse("yaml"), None);
    }

    #[test]
    fn console_values_cannot_forge_lines() {
        assert_eq!(escape_controls("a\nb\u{1b}[2J"), "a\\nb\\u{1b}[2J");
        assert_eq!(escape_controls("plain"), "plain");
    }

    #[test]
    fn json_line_keeps_the_documented_order() {
        let mut fields = Map::new();
        fields.insert("z".into(), 1.into());
        fields.insert("a".into(), "x".into());
        let line = Record { name: "e".into(), level: "info", logger: "recotem".into(), fields }.json_line();
        let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(&line).unwrap().keys().cloned().collect();
        assert_eq!(keys, ["event", "level", "logger", "timestamp", "z", "a"]);
    }
}
