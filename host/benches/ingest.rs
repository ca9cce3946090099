//! Ingest at the speed of the file: read (csv component) + intern + clean +
//! split of a large CSV, against `pandas.read_csv` of the same file alone
//! (ids as strings), measured in the same run.
//!
//! - The data set is generated once by the built-in `echo` component
//!   (seeded; `RECOTEM_BENCH_ROWS` rows, default 10 000 000; users = rows/50,
//!   items = rows/200, Zipf-like item popularity) and written as CSV under
//!   `target/bench-ingest/`.
//! - Our side runs in a child process (this binary again), so its peak
//!   memory (max RSS, from `wait4`) is its own: figures are the wall time of
//!   the pipeline and peak bytes per row, also net of the process's
//!   resident size before the read (runtime and components loaded).
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
use std::sync::Arc;
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

/// Resident set size of this process now, bytes (Linux).
fn rss_now() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The measured side: read + intern + clean + split, once. Prints
/// `seconds rows baseline_rss` on stdout.
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
    let baseline = rss_now();
    let started = Instant::now();
    let table = recotem::data::ingest::read_source(&runtime, source, &recipe, std::time::Instant::now()).expect("read");
    let rows = table.n_rows();
    let cleaned = table.cleanse(&recipe.cleansing).expect("cleanse");
    let split = recotem::data::split(&cleaned, &recipe.training.split).expect("split");
    let seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(&split);
    println!("{seconds} {rows} {baseline}");
}

/// Run `cmd`, returning its stdout and its peak RSS in bytes.
fn run_measured(cmd: &mut Command) -> Result<(String, u64), String> {
    let child = cmd.stdout(std::process::Stdio::piped()).spawn().map_err(|e| e.to_string())?;
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.ok_or("no stdout")?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut text).map_err(|e| e.to_string())?;
    let mut status = 0;
    // SAFETY: plain FFI call with valid out-pointers; the child is ours.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if r != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("the child failed (status {status})"));
    }
    Ok((text, usage.ru_maxrss as u64 * 1024))
}

const PANDAS: &str = r#"
import sys, time, resource
import pandas as pd
t = time.perf_counter()
df = pd.read_csv(sys.argv[1], dtype=str)
s = time.perf_counter() - t
print(s, len(df), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
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

    let exe = std::env::current_exe().expect("current exe");
    let mut ours = Vec::new();
    for (kind, split) in [("csv", "random"), ("csv", "time_user"), ("parquet", "random")] {
        let (file, bytes) = if kind == "csv" { (&data, bytes) } else { (&parquet, parquet_bytes) };
        let mut cmd = Command::new(&exe);
        cmd.arg("--child").arg(kind).arg(file).arg(split);
        match run_measured(&mut cmd) {
            Ok((out, peak)) => {
                let f: Vec<f64> = out.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                let (seconds, n, baseline) = (f[0], f[1], f[2]);
                println!(
                    "recotem {kind:<7} read+intern+clean+split ({split:<9}) {seconds:>7.2} s  {:>6.1} MB/s  peak {:>6.0} MB = {:>5.1} B/row ({:>5.1} B/row over the {:.0} MB before the read)",
                    bytes as f64 / seconds / 1e6,
                    peak as f64 / 1e6,
                    peak as f64 / n,
                    (peak as f64 - baseline) / n,
                    baseline / 1e6
                );
                ours.push((kind, split, seconds));
            }
            Err(e) => println!("recotem {kind} ({split}): failed: {e}"),
        }
    }
    let time_of = |kind: &str| ours.iter().find(|o| o.0 == kind && o.1 == "random").map(|o| o.2);
    if let (Some(p), Some(c)) = (time_of("parquet"), time_of("csv")) {
        println!("ratio recotem parquet / csv (random split): {:.2} (below 1 = parquet is faster)", p / c);
    }

    match pandas_python(&dir) {
        Err(e) => println!("pandas.read_csv: skipped ({e})"),
        Ok(python) => match run_measured(Command::new(python).args(["-c", PANDAS]).arg(&data)) {
            Err(e) => println!("pandas.read_csv: failed: {e}"),
            Ok((out, peak)) => {
                let f: Vec<f64> = out.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                let (seconds, n) = (f[0], f[1]);
                println!(
                    "pandas.read_csv(dtype=str) alone                     {seconds:>7.2} s  {:>6.1} MB/s  peak {:>6.0} MB = {:>5.1} B/row",
                    bytes as f64 / seconds / 1e6,
                    peak as f64 / 1e6,
                    peak as f64 / n
                );
                for (kind, split, s) in &ours {
                    println!("ratio recotem {kind} ({split}) / pandas.read_csv: {:.2} (below 1 = faster than pandas)", s / seconds);
                }
            }
        },
    }
}
