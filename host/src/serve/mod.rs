//! `recotem serve`: the `/v1` HTTP API over the models of a recipes
//! directory.
//!
//! - [`settings`]: every environment variable serve reads, resolved once;
//! - [`auth`]: `X-API-Key` against `RECOTEM_API_KEYS`;
//! - [`registry`]: models by recipe name, start-up load and the watcher
//!   (hot swap);
//! - [`routes`]: routing, validation, scoring and the JSON answers;
//! - [`errors`]: the error envelope;
//! - [`metrics`]: Prometheus counters;
//! - `openapi`: the OpenAPI document (development environments only).
//!
//! Start-up order: settings → unsafe-flag gates → `security.posture` (always
//! emitted, also when start-up then fails) → recipes and artifacts →
//! bind (failure: exit 8 naming the address) → serve until SIGTERM/SIGINT →
//! drain for up to `RECOTEM_DRAIN_SECONDS` → `serve_shutdown`, exit 0.

pub mod auth;
pub mod errors;
pub mod metrics;
mod openapi;
pub mod registry;
pub mod routes;
pub use crate::settings::serve as settings;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

pub use crate::settings::serve::ServeSettings;

use crate::artifact::KeyRing;
use crate::artifact::keys::SigningKey;
use crate::error::{Error, Result};
use crate::events::Event;

/// What the command line decided.
#[derive(Debug, Clone)]
pub struct Options {
    /// The recipes directory.
    pub recipes: PathBuf,
    /// `--host` (overrides `RECOTEM_HOST`).
    pub host: Option<String>,
    /// `--port` (overrides `RECOTEM_PORT`; 0 = any free port).
    pub port: Option<u16>,
    /// `--insecure-no-auth`.
    pub insecure_no_auth: bool,
    /// `--dev-allow-unsigned` passed its gate.
    pub dev_allow_unsigned: bool,
    /// Plugin directory (third-party source types named by recipes).
    pub plugin_dir: Option<PathBuf>,
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The `security.posture` event.
fn posture(settings: Option<&ServeSettings>, auth_enabled: bool, host: &str, ring: Option<&KeyRing>, key_status: &str, unsafe_mode: Vec<&str>) {
    let keys: Vec<Value> =
        ring.map(|r| r.keys().iter().map(|k| json!({"kid": k.kid, "fingerprint": k.fingerprint()})).collect()).unwrap_or_default();
    let kids: Vec<Value> = ring.map(|r| r.keys().iter().map(|k| Value::from(k.kid.clone())).collect()).unwrap_or_default();
    Event::info("security.posture")
        .field("auth_enabled", auth_enabled)
        .field("bind_host", host)
        .field("signing_keys", keys)
        .field("signing_kids", kids)
        .field("signing_key_status", key_status)
        .field("env", settings.map(|s| s.env.clone()).unwrap_or_default())
        .field("allowed_hosts", settings.map(|s| json!(s.allowed_hosts)).unwrap_or(Value::Null))
        .field("allowed_origins", settings.map(|s| json!(s.allowed_origins)).unwrap_or(Value::Null))
        .field("unsafe_mode", json!(unsafe_mode))
        .emit();
}

/// Run the server until a signal; `Ok` after a clean shutdown.
pub fn run(options: Options, catalog: impl FnOnce() -> Result<crate::recipe::Catalog>) -> Result<()> {
    let settings = match ServeSettings::from_env() {
        Ok(s) => s,
        Err(e) => {
            posture(None, false, "", None, "construction_failed", vec![]);
            return Err(e);
        }
    };
    let mut unsafe_mode = Vec::new();
    if options.insecure_no_auth {
        unsafe_mode.push("insecure_no_auth");
    }
    if options.dev_allow_unsigned {
        unsafe_mode.push("dev_allow_unsigned");
    }
    let auth_enabled = !settings.api_keys.is_empty() && !options.insecure_no_auth;
    let mut host = options.host.clone().map(|h| h.trim().to_string()).unwrap_or_else(|| settings.host.clone());
    if !auth_enabled && !options.insecure_no_auth && !is_loopback(&host) {
        Event::warn("host_forced_to_loopback")
            .field("requested", host.clone())
            .field("bind_host", settings::DEFAULT_HOST)
            .field("reason", "RECOTEM_API_KEYS is empty: without API keys serve binds loopback only")
            .emit();
        host = settings::DEFAULT_HOST.to_string();
    }
    let (ring, key_status) = match (&settings.signing_keys, options.dev_allow_unsigned) {
        (_, true) => (Some(KeyRing::single(SigningKey::dev())), "dev_allow_unsigned"),
        (Some(r), false) => (Some(r.clone()), "configured"),
        (None, false) => (None, "missing"),
    };
    posture(Some(&settings), auth_enabled, &host, ring.as_ref(), key_status, unsafe_mode.clone());
    if options.insecure_no_auth && !settings.is_dev_env() {
        return Err(Error::config(
            "--insecure-no-auth is only allowed with RECOTEM_ENV=development, dev or test",
        ));
    }
    if !auth_enabled && !options.insecure_no_auth {
        Event::warn("auth_disabled_no_api_keys")
            .field("bind_host", host.clone())
            .field("hint", "set RECOTEM_API_KEYS (see `recotem keygen --type api`) to require X-API-Key and bind other hosts")
            .emit();
    }
    let port = match options.port {
        Some(p) => p,
        None => settings.port.clone().map_err(Error::config)?,
    };
    let Some(ring) = ring else {
        return Err(Error::config(
            "RECOTEM_SIGNING_KEYS is not set: serve needs the key ring to verify artifacts (see `recotem keygen`)",
        ));
    };
    ring.log_built();

    let catalog = catalog()?;
    let ctx = registry::LoadContext { caps: settings.caps, ring, deny: settings.metadata_field_deny.clone() };
    let registry = Arc::new(registry::Registry::start(&options.recipes, catalog, ctx, settings.startup_parallelism)?);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("recotem-http")
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
    let address = if host.contains(':') && !host.starts_with('[') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let listener = {
        let _enter = runtime.enter();
        std::net::TcpListener::bind((host.trim_matches(|c| c == '[' || c == ']'), port))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .and_then(tokio::net::TcpListener::from_std)
            .map_err(|e| {
                Event::error("serve_bind_failed").field("address", address.clone()).field("error", e.to_string()).emit();
                Error::config(format!(
                    "cannot listen on {address}: {e}; choose another --port/RECOTEM_PORT or stop what uses it"
                ))
            })?
    };
    let local: SocketAddr = listener.local_addr().map_err(|e| Error::internal(e.to_string()))?;

    let app = Arc::new(routes::App {
        registry: registry.clone(),
        auth: auth_enabled.then(|| auth::ApiKeys::new(settings.api_keys.clone())),
        allowed_hosts: settings.allowed_hosts.clone(),
        allowed_origins: settings.allowed_origins.clone(),
        metrics_enabled: settings.metrics_enabled,
        openapi: settings.is_dev_env(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = registry::spawn_watcher(registry.clone(), settings.watch_interval, stop.clone())
        .map_err(|e| Error::internal(format!("cannot start the artifact watcher: {e}")))?;
    let drain = Duration::from_secs(settings.drain_seconds);
    let banner_every = Duration::from_secs(if settings.env == "test" { 60 } else { 300 });

    runtime.block_on(async move {
        let router = axum::Router::new().fallback(routes::handle).with_state(app);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, router).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        let server = tokio::spawn(async move { server.await });
        Event::info("serve_listening")
            .field("address", local.to_string())
            .field("recipes", options.recipes.display().to_string())
            .field("auth_enabled", auth_enabled)
            .emit();
        let banners = tokio::spawn(async move {
            if unsafe_mode.is_empty() {
                return;
            }
            loop {
                for mode in &unsafe_mode {
                    let name = if *mode == "insecure_no_auth" { "INSECURE_NO_AUTH_ACTIVE" } else { "DEV_ALLOW_UNSIGNED_ACTIVE" };
                    Event::warn(name).field("hint", "development only: never expose this server").emit();
                }
                tokio::time::sleep(banner_every).await;
            }
        });
        let signal = shutdown_signal().await;
        Event::info("serve_shutdown").field("drain_seconds", drain.as_secs()).field("signal", signal).emit();
        banners.abort();
        let _ = tx.send(());
        stop.store(true, Ordering::Relaxed);
        match tokio::time::timeout(drain, server).await {
            Ok(_) => Event::info("serve_drained").emit(),
            Err(_) => Event::warn("serve_drain_timeout").field("drain_seconds", drain.as_secs()).emit(),
        }
    });
    let _ = watcher.join();
    runtime.shutdown_timeout(Duration::from_secs(1));
    Event::info("serve_terminated").emit();
    Ok(())
}

/// Wait for SIGTERM or SIGINT; the signal's name.
async fn shutdown_signal() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}
