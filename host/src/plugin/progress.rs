//! Where the trainers' `progress(done, total)` calls go besides the
//! throttled `plugin_progress` event: one process-wide sink, set by whoever
//! shows progress (the search's progress bar on a terminal). Every call
//! reaches the sink, unthrottled; the sink decides how often to draw.

use std::sync::{Arc, RwLock};

/// Receives `(plugin, done, total)`.
pub type Sink = Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Install (or with `None` remove) the sink.
pub fn set_sink(sink: Option<Sink>) {
    if let Ok(mut s) = SINK.write() {
        *s = sink;
    }
}

/// Report one `progress` call to the sink, if any.
pub fn report(plugin: &str, done: u64, total: u64) {
    let sink = SINK.read().ok().and_then(|s| s.clone());
    if let Some(sink) = sink {
        sink(plugin, done, total);
    }
}
