//! Log lines sent to the host, which writes them to its structured log
//! attributed to this plugin. Keep them few: the host truncates long lines.

use crate::LogLevel;
use crate::source::bindings::recotem::plugin::host;

/// Log at debug level.
pub fn debug(message: &str) {
    host::log(LogLevel::Debug, message);
}

/// Log at info level.
pub fn info(message: &str) {
    host::log(LogLevel::Info, message);
}

/// Log a warning.
pub fn warn(message: &str) {
    host::log(LogLevel::Warn, message);
}

/// Log an error (the host still decides what fails).
pub fn error(message: &str) {
    host::log(LogLevel::Error, message);
}

/// Report progress on long work (`total` = 0 when unknown).
pub fn progress(done: u64, total: u64) {
    host::progress(done, total);
}

/// True once the host wants the current call to stop early.
pub fn cancelled() -> bool {
    host::cancelled()
}
