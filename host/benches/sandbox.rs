//! What the sandbox costs, printed as absolute figures and as ratios against
//! baselines measured in the same run:
//!
//! - per trial: a fresh store + instance from the pre-instantiated component
//!   (no call), and a full `train` call of the TopPop component on a tiny
//!   matrix — both against a native TopPop on the same tiny matrix;
//! - per trial on real work: sandboxed vs native TopPop on a 2 000 × 5 000
//!   matrix with 100 000 entries (the copy across the boundary included);
//! - loading a third-party component (a test fixture): cold (Cranelift compile + describe,
//!   no cache) and warm (compiled code from the disk cache + describe),
//!   against reading its bytes.
//!
//! Run: `cargo bench -p recotem --bench sandbox` (release build).

use std::hint::black_box;
use std::time::{Duration, Instant};

use recotem::model::Csr;
use recotem::plugin::Registry;
use recotem::plugin::engine::Runtime;

/// Median wall time of `f` over `runs` runs (after one warm-up run).
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn matrix(rows: u32, cols: u32, nnz: usize) -> Csr {
    let mut entries: Vec<(u32, u32, f32)> = (0..nnz as u64)
        .map(|k| {
            let x = k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            ((x % u64::from(rows)) as u32, ((x >> 32) % u64::from(cols)) as u32, 1.0)
        })
        .collect();
    entries.sort_by_key(|e| (e.0, e.1));
    entries.dedup_by_key(|e| (e.0, e.1));
    recotem::data::interactions::csr_from_sorted(rows, cols, &entries)
}

fn native_toppop(m: &Csr) -> Vec<f32> {
    let mut scores = vec![0f32; m.cols as usize];
    for (&c, &v) in m.indices.iter().zip(&m.values) {
        scores[c as usize] += v;
    }
    scores
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn row(what: &str, d: Duration, baseline: Duration) {
    println!("{what:<58} {:>11.1} µs  {:>9.1}× baseline", us(d), d.as_secs_f64() / baseline.as_secs_f64().max(1e-12));
}

fn main() {
    let cache = std::env::temp_dir().join(format!("recotem-bench-cache-{}", std::process::id()));
    // SAFETY: single-threaded here; no other thread reads the environment yet.
    unsafe { std::env::set_var("RECOTEM_CACHE_DIR", &cache) };
    let runtime = Runtime::new().expect("runtime");
    let registry = Registry::load(&runtime, None).expect("built-ins");
    let toppop = registry.trainer("TopPop").expect("TopPop");
    let timeout = Duration::from_secs(60);

    println!("== per trial (pre-instantiated component, fresh store per trial) ==");
    let tiny = matrix(2, 2, 3);
    let base = median(2001, || {
        black_box(native_toppop(black_box(&tiny)));
    });
    row("baseline: native TopPop, 2×2 matrix", base, base);
    let inst = median(501, || toppop.instantiate(&runtime).expect("instantiate"));
    row("store + instance, no call", inst, base);
    let call = median(501, || {
        black_box(toppop.train(&runtime, &tiny, &[], 0, timeout).expect("train"));
    });
    row("store + instance + train call, 2×2 matrix", call, base);

    println!("\n== per trial on real work: 2 000 users × 5 000 items, 100 000 entries ==");
    let big = matrix(2000, 5000, 100_000);
    let base_big = median(101, || {
        black_box(native_toppop(black_box(&big)));
    });
    row("baseline: native TopPop", base_big, base_big);
    let sandboxed = median(101, || {
        black_box(toppop.train(&runtime, &big, &[], 0, timeout).expect("train"));
    });
    row("sandboxed TopPop (matrix copy + instance + call)", sandboxed, base_big);

    println!("\n== loading a third-party component (a source fixture, 140 KB) ==");
    let fixture = std::path::Path::new(env!("RECOTEM_TEST_COMPONENTS_DIR")).join("recotem_fixture_hostile_source.wasm");
    let bytes = &std::fs::read(&fixture).expect("fixture component (built by host/build.rs)")[..];
    let file = cache.join("third-party.wasm");
    std::fs::write(&file, bytes).expect("write component");
    let dir = cache.join("plugins");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::copy(&file, dir.join("third-party.wasm")).expect("copy");
    let read = median(21, || {
        black_box(std::fs::read(&file).expect("read"));
    });
    row("baseline: read the component's bytes", read, read);
    let digest = recotem::util::sha256_hex(bytes);
    // Cold: compile with Cranelift (remove the cached code before each run).
    let cold = median(5, || {
        for entry in std::fs::read_dir(&cache).expect("cache dir").flatten() {
            if entry.path().extension().is_some_and(|e| e == "cwasm") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        black_box(runtime.compile("bench", &digest, bytes).expect("compile"));
    });
    row("cold: compile (Cranelift) + write cache", cold, read);
    let warm = median(21, || {
        black_box(runtime.compile("bench", &digest, bytes).expect("from cache"));
    });
    row("warm: compiled code from the disk cache", warm, read);
    // Whole registry load with one third-party component (warm cache):
    // built-ins + plugin, compile/deserialize + link + describe each.
    let load = median(11, || {
        black_box(Registry::load(&runtime, Some(&dir)).expect("load"));
    });
    row("warm registry load: 2 built-ins + 1 plugin, with describe", load, read);
    println!("\ncold/warm load ratio: {:.0}×", cold.as_secs_f64() / warm.as_secs_f64().max(1e-12));
    let _ = std::fs::remove_dir_all(&cache);
}
