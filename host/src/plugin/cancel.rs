//! Cancellation of a run: SIGINT/SIGTERM ask every plugin call to stop.
//!
//! The first signal sets a process-wide flag: plugins polling
//! `recotem:plugin/host.cancelled` see `true` and can return early; the
//! pipeline starts no new stage or trial. A call that keeps running is
//! stopped [`GRACE`] later by the epoch check every store has (see
//! [`super::sandbox`]). A second signal exits at once (status 130).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a plugin may take to notice a cancellation before it is stopped.
pub const GRACE: Duration = Duration::from_secs(2);

static REQUESTED: AtomicBool = AtomicBool::new(false);
static AT: OnceLock<Instant> = OnceLock::new();

/// Ask every running call to stop (idempotent).
pub fn request() {
    AT.get_or_init(Instant::now);
    REQUESTED.store(true, Ordering::SeqCst);
}

/// True once a cancellation was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// True once the grace period after a request has passed: running calls
/// are then stopped.
pub fn hard_stop() -> bool {
    requested() && AT.get().is_some_and(|at| at.elapsed() >= GRACE)
}

/// Handle SIGINT and SIGTERM for a long-running command: the first one
/// requests cancellation (and logs `cancel_requested`), a second one exits
/// at once with status 130.
pub fn install_signal_handlers() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("recotem-signals".into()).spawn(move || {
        for signal in signals.forever() {
            if requested() {
                std::process::exit(130);
            }
            request();
            crate::events::Event::warn("cancel_requested")
                .field("signal", if signal == SIGINT { "SIGINT" } else { "SIGTERM" })
                .field("grace_seconds", GRACE.as_secs())
                .emit();
        }
    })?;
    Ok(())
}
