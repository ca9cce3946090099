//! The search's live progress bar, shown only when stderr is a terminal
//! (and not with `-q`): trials finished of planned, the algorithm of the
//! trial that started last, the best score so far, the running trainer's
//! own `progress(done, total)` calls, and the ETA.
//!
//! Off a terminal there is no bar: each trial is one JSON event
//! (`trial_done`, `trial_learn_failed`, …). While the bar is up, event lines
//! are printed above it (through [`crate::events::set_line_writer`]) so the
//! two never garble each other.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar, or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
    line: Arc<Mutex<Line>>,
}

#[derive(Default)]
struct Line {
    algorithm: String,
    best: Option<f64>,
    plugin: Option<(u64, u64)>,
}

impl Line {
    fn text(&self) -> String {
        let best = self.best.map_or_else(|| "—".to_string(), |b| format!("{b:.4}"));
        let mut s = format!("{} · best {best}", self.algorithm);
        match self.plugin {
            Some((done, total)) if total > 0 => s.push_str(&format!(" · step {done}/{total}")),
            Some((done, _)) => s.push_str(&format!(" · step {done}")),
            None => {}
        }
        s
    }
}

impl Progress {
    /// A bar over `total` trials of which `done` already finished (a resumed
    /// study), when stderr is a terminal and `quiet` is off.
    pub fn new(total: usize, done: usize, quiet: bool) -> Self {
        Self::with_target(total, done, !quiet && std::io::stderr().is_terminal())
    }

    /// No bar (benchmarks, tests).
    pub fn hidden() -> Self {
        Self::with_target(0, 0, false)
    }

    fn with_target(total: usize, done: usize, show: bool) -> Self {
        let line = Arc::new(Mutex::new(Line::default()));
        if !show {
            return Progress { bar: None, line };
        }
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr_with_hz(4));
        let style = ProgressStyle::with_template("{pos} of {len} trials done [{bar:24}] {msg} · ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_position(done as u64);
        bar.reset_eta();
        bar.enable_steady_tick(Duration::from_millis(250));
        {
            let bar = bar.clone();
            crate::events::set_line_writer(Some(Arc::new(move |l: &str| bar.println(l))));
        }
        {
            let (bar, line) = (bar.clone(), line.clone());
            crate::plugin::progress::set_sink(Some(Arc::new(move |_plugin: &str, d: u64, t: u64| {
                if let Ok(mut l) = line.lock() {
                    l.plugin = Some((d, t));
                    bar.set_message(l.text());
                }
            })));
        }
        Progress { bar: Some(bar), line }
    }

    /// A trial of `algorithm` started.
    pub fn trial_started(&self, _number: usize, algorithm: &str) {
        if let (Some(bar), Ok(mut l)) = (&self.bar, self.line.lock()) {
            l.algorithm = algorithm.to_string();
            l.plugin = None;
            bar.set_message(l.text());
        }
    }

    /// A trial finished; `best` is the best score so far.
    pub fn trial_finished(&self, best: Option<f64>) {
        if let (Some(bar), Ok(mut l)) = (&self.bar, self.line.lock()) {
            l.best = best;
            bar.set_message(l.text());
            bar.inc(1);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            crate::plugin::progress::set_sink(None);
            crate::events::set_line_writer(None);
            bar.finish_and_clear();
        }
    }
}
