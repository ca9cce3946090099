//! Limits applied to every plugin call. They are always on.

use std::time::Duration;

/// Resource limits of one plugin instance.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest linear memory, bytes.
    pub memory_bytes: usize,
    /// Wall-clock deadline of one call into the plugin.
    pub call_timeout: Duration,
    /// Largest number of rows the host asks for per batch.
    pub batch_rows: u32,
    /// Largest number of bytes one `input.read` returns.
    pub read_chunk_bytes: u32,
    /// Largest plugin log message kept (longer ones are truncated).
    pub log_message_bytes: usize,
    /// Largest number of plugin log lines per call, after which lines are
    /// dropped (with one warning).
    pub log_lines_per_store: u32,
}

impl Limits {
    /// Limits for data sources.
    pub const SOURCE: Limits = Limits {
        memory_bytes: 1 << 30,
        call_timeout: Duration::from_secs(120),
        batch_rows: 65_536,
        read_chunk_bytes: 1 << 20,
        log_message_bytes: 1024,
        log_lines_per_store: 1000,
    };

    /// Limits for trainers (memory sized for 1 M items × 128 f32 factors
    /// plus working space).
    pub const TRAINER: Limits = Limits {
        memory_bytes: 4 << 30,
        call_timeout: Duration::from_secs(3600),
        batch_rows: 0,
        read_chunk_bytes: 0,
        log_message_bytes: 1024,
        log_lines_per_store: 1000,
    };

    /// Limits for `describe` calls at start-up.
    pub const DESCRIBE: Limits = Limits {
        memory_bytes: 64 << 20,
        call_timeout: Duration::from_secs(5),
        batch_rows: 0,
        read_chunk_bytes: 0,
        log_message_bytes: 1024,
        log_lines_per_store: 100,
    };

    /// The same limits with another call deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }
}
