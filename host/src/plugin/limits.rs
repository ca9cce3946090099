//! Limits applied to every plugin call. They are always on; the environment
//! can move some of them within fixed bounds (out-of-range values are
//! clamped and logged as `env_var_clamped`, unparseable ones ignored).
//!
//! | limit | sources | trainers | `describe` | override (clamp range) |
//! |---|---|---|---|---|
//! | linear memory per instance | 1 GiB | 4 GiB | 64 MiB | `RECOTEM_SOURCE_MEMORY_MIB`, `RECOTEM_TRAINER_MEMORY_MIB` (16–65536) |
//! | deadline per call | 120 s | `per_trial_timeout_seconds` (refit: ×2) | 5 s | `RECOTEM_SOURCE_CALL_TIMEOUT_SECONDS` (1–86400) |
//! | wasm stack | 2 MiB | 2 MiB | 2 MiB | — |
//! | rows per batch | 65 536 | — | — | — |
//! | bytes per batch (all columns) | 256 MiB | — | — | — |
//! | bytes per id string | 4 096 | — | — | — |
//! | bytes per `input.read` | 1 MiB | — | — | — |
//! | plugin message / log line | 4 KiB / 1 KiB | same | same | — |
//! | log lines per call | 1 000 | 1 000 | 100 | — |
//! | instances / memories / tables per store | 32 / 16 / 64 | same | same | — |
//! | table elements | 100 000 | same | same | — |
//! | host resources (input streams) per store | 16 | same | same | — |

use std::sync::OnceLock;
use std::time::Duration;

/// Resource limits of one plugin instance.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest linear memory, bytes.
    pub memory_bytes: usize,
    /// Wall-clock deadline of one call into the plugin.
    pub call_timeout: Duration,
    /// Largest number of rows the host asks for per batch (a batch with
    /// more rows is refused).
    pub batch_rows: u32,
    /// Largest total size of one batch's column data, bytes.
    pub batch_bytes: usize,
    /// Largest id string (one user or item id), bytes.
    pub id_bytes: usize,
    /// Largest number of bytes one `input.read` returns.
    pub read_chunk_bytes: u32,
    /// Largest plugin error message kept (longer ones are truncated).
    pub message_bytes: usize,
    /// Largest plugin log message kept (longer ones are truncated).
    pub log_message_bytes: usize,
    /// Largest number of plugin log lines per call, after which lines are
    /// dropped (with one warning).
    pub log_lines_per_store: u32,
    /// Most bytes one call may copy from the component to the host (its
    /// results, or the arguments of one host call): wasmtime's hostcall
    /// fuel. Set above the documented caps (batch bytes, payload bytes), so
    /// that those caps, not the runtime, decide what is refused.
    pub copy_bytes: usize,
}

/// Core wasm instances one store may create. A componentize-py (CPython)
/// component instantiates 14 core modules (libc, libpython, the WASI
/// adapter, shims; 17 when built with `--stub-wasi`); a Rust component 2 to
/// 5. 32 leaves room for other language runtimes without letting a
/// component multiply its memory cap.
pub const MAX_INSTANCES: usize = 32;
/// Linear memories per store.
pub const MAX_MEMORIES: usize = 16;
/// Tables per store.
pub const MAX_TABLES: usize = 64;
/// Elements of one table.
pub const MAX_TABLE_ELEMENTS: usize = 100_000;
/// Host resources (input streams, sockets) one store may hold.
pub const MAX_HOST_RESOURCES: usize = 16;
/// Largest wasm stack of a plugin call.
pub const MAX_WASM_STACK: usize = 2 << 20;

const MIB: usize = 1 << 20;

impl Limits {
    /// Defaults for data sources.
    pub const SOURCE: Limits = Limits {
        memory_bytes: 1 << 30,
        call_timeout: Duration::from_secs(120),
        batch_rows: 65_536,
        batch_bytes: 256 * MIB,
        id_bytes: 4096,
        read_chunk_bytes: 1 << 20,
        message_bytes: 4096,
        log_message_bytes: 1024,
        log_lines_per_store: 1000,
        copy_bytes: 256 * MIB + 16 * MIB,
    };

    /// Defaults for trainers (memory sized for 1 M items × 128 f32 factors
    /// plus working space).
    pub const TRAINER: Limits = Limits {
        memory_bytes: 4 << 30,
        call_timeout: Duration::from_secs(3600),
        batch_rows: 0,
        batch_bytes: 0,
        id_bytes: 0,
        read_chunk_bytes: 0,
        message_bytes: 4096,
        log_message_bytes: 1024,
        log_lines_per_store: 1000,
        copy_bytes: 512 * MIB + 64 * MIB,
    };

    /// Limits for `describe` calls at start-up.
    pub const DESCRIBE: Limits = Limits {
        memory_bytes: 64 * MIB,
        call_timeout: Duration::from_secs(5),
        batch_rows: 0,
        batch_bytes: 0,
        id_bytes: 0,
        read_chunk_bytes: 0,
        message_bytes: 4096,
        log_message_bytes: 1024,
        log_lines_per_store: 100,
        copy_bytes: 16 * MIB,
    };

    /// Source limits with the environment's overrides applied.
    pub fn source() -> Limits {
        static CELL: OnceLock<Limits> = OnceLock::new();
        *CELL.get_or_init(|| {
            let mut l = Limits::SOURCE;
            let settings = crate::settings::get();
            l.memory_bytes = settings.source_memory_bytes;
            l.call_timeout = settings.source_call_timeout;
            l
        })
    }

    /// Trainer limits with the environment's overrides applied.
    pub fn trainer() -> Limits {
        static CELL: OnceLock<Limits> = OnceLock::new();
        *CELL.get_or_init(|| {
            let mut l = Limits::TRAINER;
            let settings = crate::settings::get();
            l.memory_bytes = settings.trainer_memory_bytes;
            // A model may be as large as the payload cap allows; the cap,
            // checked when the artifact is sealed, decides.
            l.copy_bytes = usize::try_from(settings.max_payload_bytes).unwrap_or(usize::MAX).saturating_add(64 * MIB);
            l
        })
    }

    /// The same limits with another call deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The limits as JSON, for `recotem plugins`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "memory_bytes": self.memory_bytes,
            "call_timeout_seconds": self.call_timeout.as_secs_f64(),
            "wasm_stack_bytes": MAX_WASM_STACK,
            "max_instances": MAX_INSTANCES,
            "max_table_elements": MAX_TABLE_ELEMENTS,
            "max_host_resources": MAX_HOST_RESOURCES,
            "message_bytes": self.message_bytes,
        });
        if self.batch_rows > 0 {
            v["batch_rows"] = self.batch_rows.into();
            v["batch_bytes"] = self.batch_bytes.into();
            v["id_bytes"] = self.id_bytes.into();
            v["read_chunk_bytes"] = self.read_chunk_bytes.into();
        }
        v
    }
}


/// Cut `message` to at most `max` bytes (on a character boundary), marking
/// the cut with `…`.
pub fn truncate(mut message: String, max: usize) -> String {
    if message.len() > max {
        let mut cut = max;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("abc".into(), 5), "abc");
        assert_eq!(truncate("abcdef".into(), 3), "abc…");
        assert_eq!(truncate("ééé".into(), 3), "é…");
    }
}
