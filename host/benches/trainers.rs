//! IALS speed: the built-in IALS component, inside the sandbox, called
//! through `trainer-by-shape` (WIT 0.2.2: the matrix and both factor arrays
//! stay in the host, `linalg.ials-factors` solves each half-epoch natively
//! on all cores, in place), against `implicit`'s CPU ALS (conjugate gradient, all cores) on the same
//! generated data: 200 000 users × 50 000 items, 10 000 000 interactions,
//! Zipf-like item popularity, seeded. Both fit 64 factors for 10 epochs with
//! 3 conjugate-gradient steps per row. Printed: wall time, CPU time and peak
//! memory (max RSS) of each, the ratios, and the anchors measured for the
//! issue on this machine.
//!
//! Each side runs in its own child process so its peak memory is its own:
//! the recotem child reads the data, builds the matrix and calls the
//! component through the real sandbox; the Python child reads the same files
//! into a SciPy matrix. The Python side needs `python3 -m venv` and pip
//! access to the registry (the venv is created once under `target/tmp`); if
//! that fails it is skipped with a message.
//!
//! Run: `cargo bench -p recotem --bench trainers`. Environment:
//! - `RECOTEM_BENCH_SCALE` (default 1): scales users, items and interactions
//!   (0.1 = 20 000 × 5 000, 1 M interactions) for a quick run;
//! - `RECOTEM_BENCH_SKIP_IMPLICIT=1`: recotem side only;
//! - `RECOTEM_BENCH_IALS_COMPONENT=<file.wasm>`: fit with that component
//!   instead of the built-in (e.g. one built without `simd128`, to measure
//!   what SIMD gains, one built against WIT 0.2.0, which has no `linalg`
//!   and so measures the pure-wasm, one-thread path, or
//!   `tests/fixtures/wit-0.2.1/ials-trainer.wasm`, the 0.2.1 IALS: matrix
//!   lowered into the component, factors through `linalg.solve-ials` as
//!   lists).
//!
//! The recotem child also prints (stderr) its resident memory after reading
//! the data and after loading the runtime, and its peak, so the fit's own
//! share can be read off.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use recotem::plugin::Registry;
use recotem::plugin::bindings::source::recotem::plugin::types::{Param, ParamValue};
use recotem::plugin::engine::Runtime;
use recotem::plugin::trainer::TrainerComponent;

mod support;
use support::{generate, read_matrix};

/// Anchors measured for issue 9 on this machine (implicit 0.7.3, CG,
/// 64 factors, 10 epochs, 2 cores).
const ANCHOR_WALL_S: f64 = 69.0;
const ANCHOR_CPU_S: f64 = 107.0;
const ANCHOR_PEAK_MB: f64 = 353.0;

const FACTORS: i64 = 64;
const EPOCHS: i64 = 10;

/// One side's figures.
#[derive(Debug, Clone, Copy)]
struct Figures {
    wall_s: f64,
    cpu_s: f64,
    peak_mb: f64,
}

fn main() {
    if let Ok(dir) = std::env::var("RECOTEM_BENCH_CHILD_DATA") {
        // As the CLI does: without it the settings are the defaults, there
        // is no compiled-component cache, and the child would compile every
        // built-in with Cranelift (about 65 MB of its peak at any scale).
        recotem::settings::init();
        child_recotem(Path::new(&dir));
        return;
    }
    let scale: f64 = std::env::var("RECOTEM_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-trainers");
    let data_dir = work.join(format!("data-{scale}"));
    let (users, items, nnz) = generate(scale, &data_dir);
    println!("== IALS, {FACTORS} factors, {EPOCHS} epochs, 3 CG steps: {users} users × {items} items, {nnz} interactions ==");

    // Compile the components once into a cache the child reuses, so the
    // child's peak memory is the fit's, not Cranelift's.
    let cache = work.join("component-cache");
    // SAFETY: single-threaded here; nothing else reads the environment yet.
    unsafe { std::env::set_var("RECOTEM_CACHE_DIR", &cache) };
    recotem::settings::init();
    let runtime = Runtime::new().expect("runtime");
    load_ials(&runtime);

    let recotem = run_child(
        Command::new(std::env::current_exe().expect("bench executable")).env("RECOTEM_BENCH_CHILD_DATA", &data_dir),
    );
    let implicit = if std::env::var("RECOTEM_BENCH_SKIP_IMPLICIT").is_ok_and(|v| v == "1") {
        println!("implicit: skipped (RECOTEM_BENCH_SKIP_IMPLICIT=1)");
        None
    } else {
        match support::python_venv("implicit", &["implicit>=0.7,<0.8"]) {
            Ok(python) => {
                let script = work.join("implicit_als.py");
                std::fs::write(&script, PYTHON_SIDE).expect("write the Python side");
                Some(run_child(
                    Command::new(python)
                        .arg(&script)
                        .arg(&data_dir)
                        .env("OPENBLAS_NUM_THREADS", "1")
                        .env("MKL_NUM_THREADS", "1"),
                ))
            }
            Err(why) => {
                println!("implicit: skipped, the Python side could not be set up: {why}");
                None
            }
        }
    };

    println!("\n{:<34} {:>10} {:>10} {:>10}", "", "wall s", "CPU s", "peak MB");
    let line = |what: &str, f: Figures| println!("{what:<34} {:>10.1} {:>10.1} {:>10.0}", f.wall_s, f.cpu_s, f.peak_mb);
    line("recotem IALS (sandbox + linalg)", recotem);
    if let Some(imp) = implicit {
        line("implicit ALS (CG, all cores)", imp);
        let r = |a: f64, b: f64| a / b.max(1e-9);
        println!(
            "{:<34} {:>9.2}× {:>9.2}× {:>9.2}×",
            "ratio recotem / implicit",
            r(recotem.wall_s, imp.wall_s),
            r(recotem.cpu_s, imp.cpu_s),
            r(recotem.peak_mb, imp.peak_mb)
        );
    }
    if (scale - 1.0).abs() < 1e-9 {
        let anchor = Figures { wall_s: ANCHOR_WALL_S, cpu_s: ANCHOR_CPU_S, peak_mb: ANCHOR_PEAK_MB };
        line("anchor: implicit, issue 9", anchor);
        println!(
            "{:<34} {:>9.2}× {:>9.2}× {:>9.2}×",
            "ratio recotem / anchor",
            recotem.wall_s / anchor.wall_s,
            recotem.cpu_s / anchor.cpu_s,
            recotem.peak_mb / anchor.peak_mb
        );
    } else {
        println!("(anchors apply to RECOTEM_BENCH_SCALE=1 only)");
    }
}

/// The IALS trainer: the built-in, or the component named by
/// `RECOTEM_BENCH_IALS_COMPONENT`.
fn load_ials(runtime: &Runtime) -> TrainerComponent {
    if let Ok(file) = std::env::var("RECOTEM_BENCH_IALS_COMPONENT") {
        let bytes = std::fs::read(&file).expect("read RECOTEM_BENCH_IALS_COMPONENT");
        let digest = recotem::util::sha256_hex(&bytes);
        let component = runtime.compile("bench-ials", &digest, &bytes).expect("compile the component");
        return TrainerComponent::load(runtime, &file, &digest, &component).expect("a trainer component");
    }
    let registry = Registry::load(runtime, None).expect("built-ins");
    let pos = registry.trainers.iter().position(|t| t.info.name == "IALS").expect("IALS is built in");
    registry.trainers.into_iter().nth(pos).expect("present")
}

/// The child: read the data, fit IALS in the sandbox, print
/// `wall_s cpu_s` of the fit.
fn child_recotem(dir: &Path) {
    let matrix = read_matrix(dir);
    let after_data = status_mb("VmRSS");
    let runtime = Runtime::new().expect("runtime");
    let ials = load_ials(&runtime);
    let after_runtime = status_mb("VmRSS");
    let param = |name: &str, value| Param { name: name.into(), value };
    let params = [
        param("n_components", ParamValue::Int(FACTORS)),
        param("alpha0", ParamValue::Float(1.0)),
        param("reg", ParamValue::Float(1e-3)),
        param("epochs", ParamValue::Int(EPOCHS)),
    ];
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let model = ials.train(&runtime, &matrix, &params, 42, Duration::from_secs(4 * 3600));
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    if let Err(e) = model {
        panic!("IALS failed in the sandbox: {e}");
    }
    // Where the peak comes from: the data, the runtime (engine, compiled
    // components), then the fit.
    eprintln!(
        "recotem child ({}): RSS {after_data:.0} MB after reading the data, {after_runtime:.0} MB with the runtime \
         loaded; peak {:.0} MB",
        if ials.trains_by_shape() { "trainer-by-shape, host-held factors" } else { "train, matrix lowered" },
        status_mb("VmHWM")
    );
    println!("{wall} {cpu}");
}

/// A `Vm…` line of /proc/self/status, MB (0 where there is none).
fn status_mb(field: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Run a child to completion; its stdout's last line is `wall_s cpu_s`, its
/// peak RSS comes from wait4.
fn run_child(cmd: &mut Command) -> Figures {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn the child");
    let mut out = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut out).expect("read the child's output");
    let mut status = 0;
    // SAFETY: plain wait4 on our own child; rusage is a valid out-pointer.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child failed: {out}");
    let last = out.lines().last().unwrap_or_default();
    let nums: Vec<f64> = last.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    assert!(nums.len() == 2, "unexpected child output: {out}");
    Figures { wall_s: nums[0], cpu_s: nums[1], peak_mb: usage.ru_maxrss as f64 / 1024.0 }
}

/// CPU seconds (user + system, all threads) of this process.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage with a valid out-pointer.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// The Python side: same files, `implicit`'s CPU ALS with conjugate
/// gradient (its default), all cores; prints `wall_s cpu_s` of the fit.
const PYTHON_SIDE: &str = r#"
import resource, sys, time
import numpy as np
import scipy.sparse as sp
import implicit
from implicit.cpu.als import AlternatingLeastSquares

d = sys.argv[1]
users, items, nnz = (int(v) for v in open(d + "/meta.txt").read().split())
indptr = np.fromfile(d + "/indptr.bin", dtype="<u4").astype(np.int32)
indices = np.fromfile(d + "/indices.bin", dtype="<u4").astype(np.int32)
X = sp.csr_matrix((np.ones(nnz, dtype=np.float32), indices, indptr), shape=(users, items))
model = AlternatingLeastSquares(factors=64, iterations=10, regularization=0.01, use_cg=True,
                                calculate_training_loss=False, num_threads=0, random_state=42)
print("implicit", implicit.__version__, file=sys.stderr)
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
model.fit(X, show_progress=False)
wall = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
"#;
