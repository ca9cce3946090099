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

/// A per-epoch callback for long fits: reports `done` of `total` epochs as
/// progress and returns `false` once the host wants the call to stop.
pub fn epoch_progress(total: usize) -> impl FnMut(usize) -> bool {
    move |done| {
        progress(done as u64, total as u64);
        !cancelled()
    }
}
