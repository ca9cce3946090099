//! The sandbox one plugin call runs in: a fresh [`Store`] whose WASI context
//! grants nothing, with a memory cap, an epoch deadline and the host
//! functions of the `recotem:plugin` contract.
//!
//! What a plugin gets, exhaustively:
//! - the WASI interfaces Rust's standard library links against, each with
//!   nothing behind it: no preopened directories (every path fails), no
//!   environment variables, no arguments, stdin closed, stdout discarded,
//!   stderr captured (a bounded buffer, quoted when the plugin traps);
//!   clocks and random numbers work;
//! - `recotem:plugin/host` (log, progress, cancellation) and, for sources,
//!   the `input` streams the host opened for it;
//! - for trainers (0.2.1), `recotem:plugin/early-stop` (see
//!   [`super::early_stop`]) and `recotem:plugin/linalg`, data-only linear
//!   algebra run natively (see [`super::linalg`]); since 0.2.2 also
//!   `recotem:plugin/call-input`, the call's matrix on request.
//!
//! What it does not get: `wasi:http` and UDP are never linked, so a
//! component importing them fails to load, naming the import (see
//! [`super::surface`]). `wasi:sockets` TCP and name lookup are linked only
//! for a source the operator policy grants endpoints to ([`add_network_to_linker`]);
//! its store then allows exactly the granted `host:port` endpoints, checked
//! again against the resolved address at every connect, with loopback,
//! private and link-local addresses refused unless the grant allows them.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::source::recotem::plugin::{host, io, types};
use super::limits::{self, Limits};
use super::policy::NetworkGrant;
use crate::events::Event;

/// Bytes of plugin stderr kept for error reports.
const STDERR_CAPTURE_BYTES: usize = 16 * 1024;

/// A read-only byte stream handed to a source plugin.
pub struct InputStream {
    reader: Box<dyn Read + Send>,
    size: Option<u64>,
    random: Option<RandomAccess>,
}

/// Positional reads of a file the host opened (`read-at`): `pread`, so the
/// sequential position is not moved.
struct RandomAccess {
    file: std::fs::File,
    /// Bytes readable (the size cap applies here as to `read`).
    len: u64,
}

impl InputStream {
    /// Wrap a forward-only reader; `size` is reported to the plugin as a
    /// hint. `read-at` answers that this input can only be streamed.
    pub fn new(reader: Box<dyn Read + Send>, size: Option<u64>) -> Self {
        InputStream { reader, size, random: None }
    }

    /// A stream over a regular file of `len` bytes (already capped) that
    /// also allows `read-at`.
    pub fn file(file: std::fs::File, len: u64) -> std::io::Result<Self> {
        let positional = file.try_clone()?;
        Ok(InputStream {
            reader: Box::new(file.take(len)),
            size: Some(len),
            random: Some(RandomAccess { file: positional, len }),
        })
    }

    fn read_at(&self, offset: u64, max: usize) -> Result<Vec<u8>, String> {
        let Some(random) = &self.random else {
            return Err("this input can only be read forward (read-at is not available for it); use read".into());
        };
        let end = offset.saturating_add(max as u64).min(random.len);
        let mut buf = vec![0u8; end.saturating_sub(offset) as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match std::os::unix::fs::FileExt::read_at(&random.file, &mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading the input failed: {e}")),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }
}

/// Memory cap enforced through wasmtime's resource limiter. A growth past
/// the cap fails the way wasm specifies (`memory.grow` returns -1), so a
/// plugin can refuse work it cannot fit (`Vec::try_reserve`); the refusal is
/// remembered and named if the call then traps.
struct MemoryCap {
    max_bytes: usize,
    refused: Option<String>,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.refused = Some(format!(
                "memory limit exceeded: the plugin asked for {} MiB, the limit is {} MiB",
                desired >> 20,
                self.max_bytes >> 20
            ));
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= limits::MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        limits::MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        limits::MAX_TABLES
    }

    fn memories(&self) -> usize {
        limits::MAX_MEMORIES
    }
}

/// Per-store state: the WASI context (granting nothing), the resource table,
/// the limits and the attribution of log lines.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
    stderr: MemoryOutputPipe,
    plugin: String,
    limits: Limits,
    log_lines: u32,
    host_resources: usize,
    /// Host names the plugin may resolve (the granted endpoints' names).
    lookup_names: Vec<String>,
    /// When the current call must end (set by `engine::arm_deadline`).
    deadline: Instant,
    /// How long before the deadline `cancelled` turns true.
    warning: Duration,
    /// When the last `plugin_progress` event was written.
    last_progress: Option<Instant>,
    /// The `train` call in progress (trainer stores only): what the
    /// trainer-only host functions work on.
    pub(super) call: Option<TrainCall>,
}

/// The interaction matrix of a `train` call, as the trainer-only host
/// functions read it: the caller's own arrays, not a copy.
pub enum CallMatrix {
    /// Held here (tests, and callers that hand over an `Arc`).
    Shared(Arc<recotem_numerics::Csr>),
    /// Borrowed from the caller of `TrainerComponent::train_with` for the
    /// length of that call (see [`CallMatrix::borrowed`]).
    Borrowed(std::ptr::NonNull<recotem_numerics::Csr>),
}

// SAFETY: `Borrowed` only ever reads a `Csr` through a shared reference
// (`Csr` is `Sync`), exactly what sending `&Csr` to another thread allows.
unsafe impl Send for CallMatrix {}

impl CallMatrix {
    /// A view of `m` that the store can hold although `m` is not `'static`.
    ///
    /// # Safety
    /// The caller must end every use of the returned value (take it out of
    /// the store, or drop the store) before the borrow of `m` ends. Holding
    /// the matrix this way saves the 80 MB copy of a 10 M-entry matrix that
    /// an owned `'static` value would need (the store's data must be
    /// `'static`).
    pub unsafe fn borrowed(m: &recotem_numerics::Csr) -> Self {
        CallMatrix::Borrowed(std::ptr::NonNull::from(m))
    }

    /// The matrix.
    pub fn get(&self) -> &recotem_numerics::Csr {
        match self {
            CallMatrix::Shared(m) => m,
            // SAFETY: see `borrowed`: the referent outlives this value.
            CallMatrix::Borrowed(p) => unsafe { p.as_ref() },
        }
    }
}

/// What a `train` call hands the trainer-only host functions.
pub struct TrainCall {
    /// The interaction matrix passed to `train` (`linalg` and
    /// `call-input` read it instead of receiving a copy from the guest).
    pub matrix: CallMatrix,
    /// Its transpose, built by the host the first time `linalg` asks for
    /// the item side.
    pub transpose: Option<recotem_numerics::Csr>,
    /// Bytes of host memory held for the guest by live `ials-factors`
    /// handles (counted against the memory cap with the transpose).
    pub held_bytes: usize,
    /// The model kind the trainer declares (reports must match it).
    pub declared: types::ModelKind,
    /// Scores intermediate models (during a search); `None` answers
    /// "go on" without scoring (the final refit).
    pub early_stop: Option<Box<dyn super::early_stop::EarlyStop>>,
    /// The epoch of the last report (reports must move forward).
    pub last_epoch: u32,
}

impl TrainCall {
    /// A call on `matrix` with nothing held yet.
    pub fn new(matrix: CallMatrix, declared: types::ModelKind, early_stop: Option<Box<dyn super::early_stop::EarlyStop>>) -> Self {
        TrainCall { matrix, transpose: None, held_bytes: 0, declared, early_stop, last_epoch: 0 }
    }
}

/// A trainer store in a `train` call on `matrix` (unit tests of the
/// trainer-only host functions).
#[cfg(test)]
pub(crate) fn test_train_store(
    matrix: recotem_numerics::Csr,
    cap: Option<usize>,
    hook: Option<Box<dyn super::early_stop::EarlyStop>>,
) -> Store<HostState> {
    let engine = Engine::default();
    let mut limits = Limits::trainer();
    if let Some(cap) = cap {
        limits.memory_bytes = cap;
    }
    let mut store = new_store(&engine, "test", limits);
    store.data_mut().call =
        Some(TrainCall::new(CallMatrix::Shared(Arc::new(matrix)), types::ModelKind::Factors, hook));
    store
}

/// The error a call traps with when a cancellation stopped it.
#[derive(Debug, Clone, Copy)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped: the run was cancelled (SIGINT/SIGTERM)")
    }
}

impl std::error::Error for Cancelled {}

/// Least warning `cancelled` gives before a deadline.
const MIN_WARNING: Duration = Duration::from_millis(100);
/// Most warning `cancelled` gives before a deadline.
const MAX_WARNING: Duration = Duration::from_secs(5);
/// Least time between two `plugin_progress` events of one store.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl HostState {
    /// Start the deadline of a call: `timeout` from now. `cancelled` turns
    /// true a tenth of the way before it (between 0.1 s and 5 s).
    pub fn set_deadline(&mut self, timeout: Duration) {
        self.deadline = Instant::now() + timeout;
        self.warning = (timeout / 10).clamp(MIN_WARNING, MAX_WARNING);
    }

    /// Register an input stream for the plugin and return its handle.
    pub fn push_input(&mut self, input: InputStream) -> wasmtime::Result<Resource<InputStream>> {
        self.push_resource(input)
    }

    /// The tail of what the plugin wrote to stderr (panic messages end up
    /// here), as one line.
    pub fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        let tail: String = text.chars().rev().take(600).collect::<Vec<_>>().into_iter().rev().collect();
        tail.replace('\n', " | ")
    }

    /// When the current call must end.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The memory cap of this plugin, bytes (host functions that allocate
    /// on a plugin's behalf bound themselves by it too).
    pub fn memory_cap(&self) -> usize {
        self.limits.memory_bytes
    }

    /// The plugin's name, for events.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    /// Register a host-held resource for the plugin (counted against the
    /// per-call resource limit) and return its handle.
    pub fn push_resource<T: Send + 'static>(&mut self, value: T) -> wasmtime::Result<Resource<T>> {
        self.host_resources += 1;
        if self.host_resources > limits::MAX_HOST_RESOURCES {
            return Err(wasmtime::Error::msg(format!(
                "resource limit exceeded: more than {} host resources in one call",
                limits::MAX_HOST_RESOURCES
            )));
        }
        Ok(self.table.push(value)?)
    }

    /// The resource table and the current `train` call, borrowed together.
    pub(super) fn table_and_call(&mut self) -> (&mut ResourceTable, Option<&mut TrainCall>) {
        (&mut self.table, self.call.as_mut())
    }

    /// The last memory growth the cap refused during this store's life.
    pub fn memory_refusal(&self) -> Option<&str> {
        self.memory.refused.as_deref()
    }
}

/// Build a store for one use of a plugin.
pub fn new_store(engine: &Engine, plugin: &str, limits: Limits) -> Store<HostState> {
    new_store_with(engine, plugin, limits, None)
}

/// Build a store for one use of a plugin, with a network grant when the
/// operator policy gave one.
pub fn new_store_with(engine: &Engine, plugin: &str, limits: Limits, network: Option<&NetworkGrant>) -> Store<HostState> {
    let stderr = MemoryOutputPipe::new(STDERR_CAPTURE_BYTES);
    // `WasiCtxBuilder::new()` starts with no preopens, no env, no args and
    // stdin closed; stdout/stderr go nowhere. Sockets are denied here too;
    // without a grant they are not even linked (see `add_network_to_linker`).
    let mut builder = WasiCtxBuilder::new();
    builder.stderr(stderr.clone()).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
    let mut lookup_names = Vec::new();
    if let Some(grant) = network {
        lookup_names = grant.host_names();
        // Resolved once, now: a connect must target one of these addresses
        // (so a name the plugin resolves later to another address is
        // refused), and never a private one unless the grant allows it.
        let (allowed, names) = grant.resolve();
        let grant = grant.clone();
        let allowed = Arc::new(allowed);
        builder.allow_tcp(true).allow_ip_name_lookup(names).socket_addr_check(move |addr, usage| {
            use wasmtime_wasi::sockets::SocketAddrUse;
            let ok = match usage {
                SocketAddrUse::TcpConnect => grant.permits(&allowed, addr),
                // The implicit bind of a connect uses the wildcard address.
                SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                _ => false,
            };
            Box::pin(async move { ok })
        });
    }
    let state = HostState {
        wasi: builder.build(),
        table: ResourceTable::new(),
        memory: MemoryCap { max_bytes: limits.memory_bytes, refused: None },
        stderr,
        plugin: plugin.to_string(),
        limits,
        log_lines: 0,
        host_resources: 0,
        lookup_names,
        deadline: Instant::now() + limits.call_timeout,
        warning: Duration::ZERO,
        last_progress: None,
        call: None,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.memory);
    store.set_hostcall_fuel(limits.copy_bytes);
    // Checked every epoch tick while wasm runs: past the call's deadline the
    // call traps as timed out; after a cancellation's grace period it traps
    // as cancelled.
    store.epoch_deadline_callback(|ctx| {
        if Instant::now() >= ctx.data().deadline {
            return Ok(wasmtime::UpdateDeadline::Interrupt);
        }
        if super::cancel::hard_stop() {
            return Err(wasmtime::Error::new(Cancelled));
        }
        Ok(wasmtime::UpdateDeadline::Continue(1))
    });
    super::engine::arm_deadline(&mut store, limits.call_timeout);
    store
}

struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// Add the WASI interfaces a plugin may import, each backed by the
/// deny-by-default context of [`new_store`]. Sockets and HTTP are left out on
/// purpose: a component importing them fails at instantiation.
pub fn add_wasi_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random, sync};
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView};

    let l = linker;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<HostState, HasIo>(l, |t| &mut t.table)?;
    sync::io::poll::add_to_linker::<HostState, HasIo>(l, |t| &mut t.table)?;
    sync::io::streams::add_to_linker::<HostState, HasIo>(l, |t| &mut t.table)?;
    clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(l, HostState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<HostState, WasiClocks>(l, HostState::clocks)?;
    random::random::add_to_linker::<HostState, WasiRandom>(l, HostState::random)?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(l, HostState::random)?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(l, HostState::random)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::environment::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    filesystem::preopens::add_to_linker::<HostState, WasiFilesystem>(l, HostState::filesystem)?;
    sync::filesystem::types::add_to_linker::<HostState, WasiFilesystem>(l, HostState::filesystem)?;
    Ok(())
}

/// Add `wasi:sockets` TCP and name lookup, for sources the operator policy
/// grants network endpoints to. The store's context decides what a connect
/// may reach ([`new_store_with`]). UDP is linked (Rust's std imports it)
/// but never allowed.
pub fn add_network_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime_wasi::p2::bindings::{sockets, sync};
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsCtxView, WasiSocketsView};

    let l = linker;
    sockets::tcp_create_socket::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sockets::instance_network::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sockets::network::add_to_linker::<HostState, WasiSockets>(l, &Default::default(), HostState::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<HostState, GuardedLookup>(l, |s| GuardedLookup {
        view: WasiSocketsCtxView { ctx: s.wasi.sockets(), table: &mut s.table },
        names: &s.lookup_names,
    })?;
    sync::sockets::tcp::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    // UDP: linked because Rust's std imports it with TCP; the context never
    // allows it (`allow_udp(false)`).
    sync::sockets::udp_create_socket::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    sync::sockets::udp::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    Ok(())
}

/// Name lookups limited to the granted endpoints' host names: an open
/// resolver would let a plugin leak data in the names it looks up.
struct GuardedLookup<'a> {
    view: wasmtime_wasi::sockets::WasiSocketsCtxView<'a>,
    names: &'a [String],
}

impl HasData for GuardedLookup<'static> {
    type Data<'a> = GuardedLookup<'a>;
}

mod lookup {
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::SocketError;
    use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{Host, HostResolveAddressStream, ResolveAddressStream};
    use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddress, Network};
    use wasmtime_wasi_io::poll::DynPollable;

    use super::GuardedLookup;

    impl network::Host for GuardedLookup<'_> {
        fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
            self.view.convert_error_code(error)
        }

        fn network_error_code(&mut self, err: Resource<wasmtime::Error>) -> wasmtime::Result<Option<ErrorCode>> {
            self.view.network_error_code(err)
        }
    }

    impl network::HostNetwork for GuardedLookup<'_> {
        fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
            network::HostNetwork::drop(&mut self.view, this)
        }
    }

    impl Host for GuardedLookup<'_> {
        fn resolve_addresses(
            &mut self,
            network: Resource<Network>,
            name: String,
        ) -> Result<Resource<ResolveAddressStream>, SocketError> {
            if !self.names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                return Err(ErrorCode::AccessDenied.into());
            }
            self.view.resolve_addresses(network, name)
        }
    }

    impl HostResolveAddressStream for GuardedLookup<'_> {
        fn resolve_next_address(&mut self, r: Resource<ResolveAddressStream>) -> Result<Option<IpAddress>, SocketError> {
            self.view.resolve_next_address(r)
        }

        fn subscribe(&mut self, r: Resource<ResolveAddressStream>) -> wasmtime::Result<Resource<DynPollable>> {
            HostResolveAddressStream::subscribe(&mut self.view, r)
        }

        fn drop(&mut self, r: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
            HostResolveAddressStream::drop(&mut self.view, r)
        }
    }
}

impl types::Host for HostState {}

impl host::Host for HostState {
    fn log(&mut self, level: types::LogLevel, message: String) -> wasmtime::Result<()> {
        self.log_lines += 1;
        let limit = self.limits.log_lines_per_store;
        if self.log_lines > limit {
            if self.log_lines == limit + 1 {
                Event::warn("plugin_log_suppressed")
                    .field("plugin", self.plugin.clone())
                    .field("limit", limit)
                    .emit();
            }
            return Ok(());
        }
        let message = limits::truncate(message, self.limits.log_message_bytes);
        let event = match level {
            types::LogLevel::Debug | types::LogLevel::Info => Event::info("plugin_log"),
            types::LogLevel::Warn => Event::warn("plugin_log"),
            types::LogLevel::Error => Event::error("plugin_log"),
        };
        event.field("plugin", self.plugin.clone()).field("message", message).emit();
        Ok(())
    }

    fn progress(&mut self, done: u64, total: u64) -> wasmtime::Result<()> {
        super::progress::report(&self.plugin, done, total);
        let now = Instant::now();
        let finished = total > 0 && done >= total;
        if finished || self.last_progress.is_none_or(|t| now.duration_since(t) >= PROGRESS_INTERVAL) {
            self.last_progress = Some(now);
            Event::info("plugin_progress")
                .field("plugin", self.plugin.clone())
                .field("done", done)
                .field("total", total)
                .emit();
        }
        Ok(())
    }

    fn cancelled(&mut self) -> wasmtime::Result<bool> {
        Ok(super::cancel::requested() || Instant::now() + self.warning >= self.deadline)
    }
}

impl io::Host for HostState {}

impl io::HostInput for HostState {
    fn read(&mut self, stream: Resource<InputStream>, max_bytes: u32) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let chunk = max_bytes.min(self.limits.read_chunk_bytes.max(4096)) as usize;
        let input = self.table.get_mut(&stream)?;
        let mut buf = vec![0u8; chunk];
        loop {
            match input.reader.read(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(Ok(buf));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Ok(Err(format!("reading the input failed: {e}"))),
            }
        }
    }

    fn size_hint(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<Option<u64>> {
        Ok(self.table.get(&stream)?.size)
    }

    fn read_at(&mut self, stream: Resource<InputStream>, offset: u64, max_bytes: u32) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let chunk = max_bytes.min(self.limits.read_chunk_bytes.max(4096)) as usize;
        Ok(self.table.get(&stream)?.read_at(offset, chunk))
    }

    fn drop(&mut self, stream: Resource<InputStream>) -> wasmtime::Result<()> {
        self.table.delete(stream)?;
        Ok(())
    }
}
