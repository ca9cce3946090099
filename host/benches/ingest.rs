//! Ingest at the speed of the file: read (csv component) + intern + clean +
//! split of a large CSV, against `pandas.read_csv` of the same file alone
//! (ids as strings), measured in the same run.
//!
//! - The data set is generated once by the built-in `echo` component
//!   (seeded; `RECOTEM_BENCH_ROWS` rows, default 10 000 000; users = rows/50,
//!   items = rows/200, Zipf-like item popularity) and written as CSV under
//!   `target/bench-ingest/`.
//! - Each of our cases runs in a child process of its own (this binary
//!   again, `--child <kind> <file> <split>`), and so does pandas. A child's
//!   peak memory is its own `VmHWM` from `/proc/self/status`, read by the
//!   child after the pipeline: the high-water mark of the address space it
//!   got at exec. (`ru_maxrss` from wait4 is not: a child started through
//!   posix_spawn/vfork inherits the parent's peak at exec.) Figures per
//!   case: wall time (and per stage), peak RSS per interaction, also net of
//!   the resident size before the read (runtime and components loaded),
//!   the heap peak of each stage (a counting global allocator), and the
//!   ratios against pandas. Baselines printed beside them: the input file's
//!   bytes per interaction and the least a matrix can hold (8 B for two u32
//!   ids, 12 with a value, 20 with a time).
//! - pandas runs in a venv created under `target/bench-ingest/venv` with
//!   pandas from pip; when that fails the pandas side is skipped, saying why.
//!
//! - The same rows are also written as Parquet (snappy, dictionary pages,
//!   1 M-row row groups, `timestamp` a plain INT64) and read through the
//!   `parquet` component, timed beside the CSV read (parquet / csv ratio).
//!
//! Run: `cargo bench -p recotem --bench ingest`.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use recotem::plugin::Registry;
use recotem::plugin::bindings::source::recotem::plugin::types::ColumnData;
use recotem::plugin::engine::Runtime;
use recotem::recipe::model::Recipe;

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-ingest")
}

fn rows_wanted() -> u64 {
    std::env::var("RECOTEM_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000)
}

fn recipe(source: serde_json::Value, split: &str) -> Recipe {
    serde_json::from_value(serde_json::json!({
        "name": "bench",
        "source": source,
        "schema": {"user_column": "user_id", "item_column": "item_id"},
        "training": {"algorithms": ["TopPop"], "split": {"scheme": split}},
        "output": {"path": "unused.recotem"},
    }))
    .expect("bench recipe")
}

/// Write the echo component's rows as CSV.
fn generate(path: &Path, rows: u64) {
    let runtime = Runtime::new().expect("runtime");
    let registry = Registry::load(&runtime, None).expect("built-ins");
    let echo = registry.source("echo").expect("echo source");
    let config = serde_json::json!({
        "type": "echo", "n_rows": rows, "n_users": (rows / 50).max(1), "n_items": (rows / 200).max(1), "seed": 42,
    });
    let columns = ["user_id".to_string(), "item_id".to_string(), "timestamp".to_string()];
    let mut session = echo.open(&runtime, &config.to_string(), None, &columns).expect("open echo");
    let tmp = path.with_extension("tmp");
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).expect("create data file"));
    out.write_all(b"user_id,item_id,timestamp\n").expect("write");
    while let Some(batch) = session.next_batch().expect("echo batch") {
        let (ColumnData::Utf8(u), ColumnData::Utf8(i), ColumnData::Int64(t)) =
            (&batch.columns[0].data, &batch.columns[1].data, &batch.columns[2].data)
        else {
            panic!("unexpected echo column types");
        };
        for r in 0..batch.num_rows as usize {
            out.write_all(&u.data[u.offsets[r] as usize..u.offsets[r + 1] as usize]).expect("write");
            out.write_all(b",").expect("write");
            out.write_all(&i.data[i.offsets[r] as usize..i.offsets[r + 1] as usize]).expect("write");
            writeln!(out, ",{}", t[r]).expect("write");
        }
    }
    out.flush().expect("flush");
    drop(out);
    std::fs::rename(&tmp, path).expect("rename data file");
}

/// Rewrite the CSV written by [`generate`] as Parquet.
fn to_parquet(csv: &Path, path: &Path) {
    const GROUP: usize = 1 << 20;
    let schema = "message echo { required binary user_id (STRING); required binary item_id (STRING); required int64 timestamp; }";
    let schema = Arc::new(parquet::schema::parser::parse_message_type(schema).expect("schema"));
    let props = WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build();
    let tmp = path.with_extension("tmp");
    let file = std::fs::File::create(&tmp).expect("create parquet file");
    let mut w = SerializedFileWriter::new(BufWriter::new(file), schema, Arc::new(props)).expect("parquet writer");
    let text = std::fs::read_to_string(csv).expect("read the csv");
    let mut lines = text.lines().skip(1).peekable();
    while lines.peek().is_some() {
        let (mut users, mut items, mut times) = (Vec::with_capacity(GROUP), Vec::with_capacity(GROUP), Vec::with_capacity(GROUP));
        for line in lines.by_ref().take(GROUP) {
            let mut f = line.split(',');
            users.push(ByteArray::from(f.next().expect("user")));
            items.push(ByteArray::from(f.next().expect("item")));
            times.push(f.next().and_then(|t| t.parse::<i64>().ok()).expect("timestamp"));
        }
        let mut g = w.next_row_group().expect("row group");
        for strings in [&users, &items] {
            let mut c = g.next_column().expect("column").expect("a column");
            c.typed::<ByteArrayType>().write_batch(strings, None, None).expect("write");
            c.close().expect("close column");
        }
        let mut c = g.next_column().expect("column").expect("a column");
        c.typed::<Int64Type>().write_batch(&times, None, None).expect("write");
        c.close().expect("close column");
        g.close().expect("close row group");
    }
    w.close().expect("close parquet file");
    std::fs::rename(&tmp, path).expect("rename parquet file");
}

/// A `Vm…:` figure of this process's `/proc/self/status`, in bytes (Linux).
fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The global allocator of the bench, counting live heap bytes and their
/// peak, so the child can say which stage of the pipeline holds what.
/// (RSS also counts code, wasm linear memories and whatever the allocator
/// keeps after a free; this counts only live Rust heap data.)
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn counted(grown: usize) {
    let now = LIVE.fetch_add(grown, Ordering::Relaxed) + grown;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters are plain atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            counted(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            counted(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            counted(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The heap peak since the last call, and start a new stage at the live
/// bytes of now.
fn stage_peak() -> u64 {
    let peak = PEAK.swap(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    peak as u64
}

/// The measured side: read + intern + clean + split, once, in a process of
/// its own. Prints one line of `key=value` figures on stdout: wall time,
/// rows, RSS before the read, the process's peak RSS (`VmHWM`), and the
/// heap peak of each stage.
fn child(kind: &str, path: &str, split: &str) {
    // SAFETY: single-threaded here; nothing reads the environment concurrently.
    unsafe { std::env::set_var("RECOTEM_MAX_DOWNLOAD_BYTES", (16u64 << 30).to_string()) };
    let runtime = Runtime::new().expect("runtime");
    let registry = Registry::load(&runtime, None).expect("built-ins");
    let source = registry.source(kind).expect("the source component");
    let mut recipe = recipe(serde_json::json!({"type": kind, "path": path}), split);
    if split != "random" {
        recipe.schema.time_column = Some("timestamp".into());
        recipe.schema.time_unit = Some(recotem::recipe::model::TimeUnit::S);
    }
    let baseline = proc_status("VmRSS:");
    let heap_before = LIVE.load(Ordering::Relaxed);
    stage_peak();
    let started = Instant::now();
    let table = recotem::data::ingest::read_source(&runtime, source, &recipe, std::time::Instant::now()).expect("read");
    let rows = table.n_rows();
    let (read_s, read_heap) = (started.elapsed().as_secs_f64(), stage_peak());
    let cleaned = table.cleanse(&recipe.cleansing).expect("cleanse");
    let (clean_s, clean_heap) = (started.elapsed().as_secs_f64(), stage_peak());
    let split = recotem::data::split(&cleaned, &recipe.training.split).expect("split");
    let seconds = started.elapsed().as_secs_f64();
    let split_heap = stage_peak();
    std::hint::black_box((&cleaned, &split));
    let hwm = proc_status("VmHWM:");
    println!(
        "seconds={seconds} rows={rows} baseline={baseline} hwm={hwm} heap_before={heap_before} read_heap={read_heap} \
         read_s={read_s} clean_heap={clean_heap} clean_s={clean_s} split_heap={split_heap}"
    );
}

/// Run `cmd`: its stdout, or why it failed.
fn run_child(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.stderr(std::process::Stdio::inherit()).output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("the child failed ({})", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `key=value` figures of a child's output.
fn figures(out: &str) -> std::collections::HashMap<String, f64> {
    out.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
        .collect()
}

const PANDAS: &str = r#"
import sys, time
import pandas as pd
def status(field):
    line = next(l for l in open("/proc/self/status") if l.startswith(field))
    return int(line.split()[1]) * 1024
baseline = status("VmRSS:")
t = time.perf_counter()
df = pd.read_csv(sys.argv[1], dtype=str)
s = time.perf_counter() - t
print(f"seconds={s} rows={len(df)} baseline={baseline} hwm={status('VmHWM:')}")
"#;

/// A python with pandas, in a venv under the bench directory.
fn pandas_python(dir: &Path) -> Result<PathBuf, String> {
    let venv = dir.join("venv");
    let python = venv.join("bin/python");
    let has_pandas = |p: &Path| Command::new(p).args(["-c", "import pandas"]).output().is_ok_and(|o| o.status.success());
    if python.exists() && has_pandas(&python) {
        return Ok(python);
    }
    let ok = |c: &mut Command| c.output().map_err(|e| e.to_string()).and_then(|o| {
        if o.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("").to_string()) }
    });
    ok(Command::new("python3").args(["-m", "venv"]).arg(&venv)).map_err(|e| format!("python3 -m venv: {e}"))?;
    ok(Command::new(venv.join("bin/pip")).args(["install", "--quiet", "pandas"])).map_err(|e| format!("pip install pandas: {e}"))?;
    Ok(python)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], &args[i + 2], &args[i + 3]);
        return;
    }
    let rows = rows_wanted();
    let dir = bench_dir();
    std::fs::create_dir_all(&dir).expect("bench dir");
    let data = dir.join(format!("echo-{rows}.csv"));
    if !data.exists() {
        let t = Instant::now();
        generate(&data, rows);
        println!("generated {} with the echo component in {:.1} s", data.display(), t.elapsed().as_secs_f64());
    }
    let bytes = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
    println!("data: {} ({rows} rows, {:.0} MB)", data.display(), bytes as f64 / 1e6);

    let parquet = data.with_extension("parquet");
    if !parquet.exists() {
        let t = Instant::now();
        to_parquet(&data, &parquet);
        println!("wrote {} in {:.1} s", parquet.display(), t.elapsed().as_secs_f64());
    }
    let parquet_bytes = std::fs::metadata(&parquet).map(|m| m.len()).unwrap_or(0);
    println!("data: {} ({rows} rows, {:.0} MB)", parquet.display(), parquet_bytes as f64 / 1e6);

    let n = rows as f64;
    println!(
        "baselines per interaction: the csv file {:.1} B, the parquet file {:.1} B; the least a matrix can hold: \
         8 B (two u32 ids), 12 B with an f32 value, 20 B with an i64 time",
        bytes as f64 / n,
        parquet_bytes as f64 / n
    );

    // Each case runs in a child process of its own (this binary again).
    // Its peak is the child's own `VmHWM` (the high-water mark of its
    // address space since exec), reported by the child itself: the
    // `ru_maxrss` that wait4/getrusage return is not usable here, because
    // a child started by posix_spawn (vfork) inherits the parent's peak
    // at exec, so every case showed the bench process's largest figure.
    let exe = std::env::current_exe().expect("current exe");
    let mut ours = Vec::new();
    for (kind, split) in [("csv", "random"), ("csv", "time_user"), ("parquet", "random")] {
        let (file, file_bytes) = if kind == "csv" { (&data, bytes) } else { (&parquet, parquet_bytes) };
        let mut cmd = Command::new(&exe);
        cmd.arg("--child").arg(kind).arg(file).arg(split);
        match run_child(&mut cmd) {
            Ok(out) => {
                let f = figures(&out);
                let get = |k: &str| f.get(k).copied().unwrap_or(f64::NAN);
                let per_row = |k: &str| get(k) / get("rows");
                println!(
                    "recotem {kind:<7} ({split:<9}): {:.2} s ({:.1} MB/s; read {:.2} s, clean {:.2} s, split {:.2} s), \
                     peak RSS {:.0} MB = {:.1} B/row ({:.1} B/row over the {:.0} MB before the read); \
                     heap peaks per row: read {:.1}, clean {:.1}, split {:.1} (live heap before the read {:.0} MB)",
                    get("seconds"),
                    file_bytes as f64 / get("seconds") / 1e6,
                    get("read_s"),
                    get("clean_s") - get("read_s"),
                    get("seconds") - get("clean_s"),
                    get("hwm") / 1e6,
                    per_row("hwm"),
                    (get("hwm") - get("baseline")) / get("rows"),
                    get("baseline") / 1e6,
                    per_row("read_heap"),
                    per_row("clean_heap"),
                    per_row("split_heap"),
                    get("heap_before") / 1e6,
                );
                ours.push((kind, split, get("seconds"), per_row("hwm")));
            }
            Err(e) => println!("recotem {kind} ({split}): failed: {e}"),
        }
    }

    let pandas = match pandas_python(&dir) {
        Err(e) => {
            println!("pandas.read_csv: skipped ({e})");
            None
        }
        Ok(python) => match run_child(Command::new(python).args(["-c", PANDAS]).arg(&data)) {
            Err(e) => {
                println!("pandas.read_csv: failed: {e}");
                None
            }
            Ok(out) => {
                let f = figures(&out);
                let get = |k: &str| f.get(k).copied().unwrap_or(f64::NAN);
                println!(
                    "pandas.read_csv(dtype=str) alone: {:.2} s ({:.1} MB/s), peak RSS {:.0} MB = {:.1} B/row \
                     ({:.1} B/row over the {:.0} MB before the read)",
                    get("seconds"),
                    bytes as f64 / get("seconds") / 1e6,
                    get("hwm") / 1e6,
                    get("hwm") / get("rows"),
                    (get("hwm") - get("baseline")) / get("rows"),
                    get("baseline") / 1e6,
                );
                Some((get("seconds"), get("hwm") / get("rows")))
            }
        },
    };

    println!();
    println!("| run | time | peak RSS per interaction | time / pandas | memory / pandas | target (< 1.00 time, < 40 B) |");
    println!("|---|---|---|---|---|---|");
    for (kind, split, seconds, bpr) in &ours {
        let (tr, mr) = pandas.map_or((f64::NAN, f64::NAN), |(ps, pb)| (seconds / ps, bpr / pb));
        let met = |ok: bool| if ok { "met" } else { "NOT met" };
        println!(
            "| recotem {kind} ({split}) | {seconds:.2} s | {bpr:.1} B | {tr:.2} | {mr:.2} | time {}, memory {} |",
            if tr.is_nan() { "n/a" } else { met(tr < 1.0) },
            met(*bpr < 40.0)
        );
    }
    if let Some((ps, pb)) = pandas {
        println!("| pandas.read_csv(dtype=str) alone | {ps:.2} s | {pb:.1} B | 1.00 | 1.00 | |");
    }
    let time_of = |kind: &str| ours.iter().find(|o| o.0 == kind && o.1 == "random").map(|o| o.2);
    if let (Some(p), Some(c)) = (time_of("parquet"), time_of("csv")) {
        println!("ratio recotem parquet / csv (random split): {:.2} (below 1 = parquet is faster)", p / c);
    }
}
