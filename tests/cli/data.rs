//! Data as it comes: header-less and odd CSV, encodings, gzip (and gzip
//! bombs), the byte caps, the time column, the time-based splits and the
//! synthetic `echo` source — each through `recotem train`.

use std::io::Write;
use std::path::Path;

use crate::common::{Run, Scratch};

/// A recipe over `source` (a YAML flow mapping) with `schema` and `split`.
fn recipe(s: &Scratch, source: &str, schema: &str, split: &str) -> String {
    let text = format!(
        "name: data\n\
         source: {source}\n\
         schema: {schema}\n\
         training: {{algorithms: [TopPop], cutoff: 5, n_trials: 1, split: {split}}}\n\
         output: {{path: out/model.recotem, versioning: always_overwrite}}\n"
    );
    s.recipe("data", &text).display().to_string()
}

fn train(s: &Scratch, recipe: &str) -> Run {
    s.run(&["train", recipe])
}

/// Interactions of 30 users over 12 items, deterministic, with a time per
/// row (epoch seconds, increasing).
fn rows() -> Vec<(String, String, i64)> {
    (0..30)
        .flat_map(|u| (0..(3 + u % 5)).map(move |k| (format!("u{u}"), format!("i{}", (u * 7 + k * 5) % 12), 1_700_000_000 + (u * 10 + k) as i64 * 3600)))
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn error_of(run: &Run) -> String {
    run.train_error()["error"].as_str().unwrap().to_string()
}

#[test]
fn headerless_tab_separated_file_with_crlf_padding_and_trailing_tabs_trains() {
    let s = Scratch::new();
    let text: String = rows().iter().map(|(u, i, t)| format!(" {u} \t{i}\t{t}\t\r\n")).collect();
    s.write("u.tsv", text);
    let r = recipe(
        &s,
        "{type: csv, path: u.tsv, delimiter: \"\\t\", header: null}",
        "{user_column: column_0, item_column: \"1\", time_column: column_2, time_unit: s}",
        "{scheme: time_user, heldout_ratio: 0.3, seed: 3}",
    );
    let run = train(&s, &r);
    run.expect_code(0);
    let done = &run.events_named("train_done")[0];
    assert_eq!((done["n_users"].as_u64(), done["n_items"].as_u64()), (Some(30), Some(12)));
    assert_eq!(run.events_named("splitting_data")[0]["scheme"], "time_user");
    let fetched = &run.events_named("csv_source_fetch_done")[0];
    assert_eq!(fetched["columns"], serde_json::json!(["column_0", "1", "column_2"]));

    // A name the header-less file cannot have: exit 3 saying how columns are named.
    let r = recipe(&s, "{type: csv, path: u.tsv, delimiter: \"\\t\", header: null}", "{user_column: user_id, item_column: column_1}", "{}");
    let run = train(&s, &r);
    run.expect_code(3);
    assert!(error_of(&run).contains("named by position, column_0 to column_2"), "{}", run.stderr());
}

#[test]
fn quoted_fields_other_delimiters_and_encodings_train() {
    let s = Scratch::new();
    let mut latin = b"user;item\n".to_vec();
    let mut bom = b"\xEF\xBB\xBFuser|item\r\n".to_vec();
    let mut quoted = b"\"user\",\"item\"\n".to_vec();
    for (u, i, _) in rows() {
        latin.extend(u.bytes().chain([0xE9]).chain(format!(";{i}\n").bytes()));
        bom.extend(format!("{u}é|{i}\r\n").bytes());
        quoted.extend(format!("\"{u}, jr \"\"x\"\"\" , \"{i}\"\n").bytes());
    }
    s.write("latin.csv", latin);
    s.write("bom.csv", bom);
    s.write("quoted.csv", quoted);
    let schema = "{user_column: user, item_column: item}";
    for source in [
        "{type: csv, path: latin.csv, delimiter: \";\", encoding: latin-1}",
        "{type: csv, path: bom.csv, delimiter: \"|\"}",
        "{type: csv, path: quoted.csv}",
    ] {
        let run = train(&s, &recipe(&s, source, schema, "{}"));
        run.expect_code(0);
        assert_eq!(run.events_named("train_done")[0]["n_users"], 30, "{source}");
    }
    // Latin-1 bytes read as UTF-8: exit 3 naming line, column and the fix.
    let run = train(&s, &recipe(&s, "{type: csv, path: latin.csv, delimiter: \";\"}", schema, "{}"));
    run.expect_code(3);
    let e = error_of(&run);
    assert!(e.contains("line 2, column 1") && e.contains("source.encoding"), "{e}");
}

#[test]
fn malformed_rows_exit_3_naming_line_and_column() {
    let s = Scratch::new();
    s.write("open.csv", "user,item\na,x\nb,\"y\nc,z\n");
    s.write("junk.csv", "user,item\na,x\nb,\"y\"z\n");
    s.write("ragged.csv", "user,item\na,x\n\nb,y,z,w\n");
    let schema = "{user_column: user, item_column: item}";
    for (file, want) in [("open.csv", "line 3, column 2"), ("junk.csv", "line 3, column 2"), ("ragged.csv", "line 4: expected 2 fields")] {
        let run = train(&s, &recipe(&s, &format!("{{type: csv, path: {file}}}"), schema, "{}"));
        run.expect_code(3);
        let e = error_of(&run);
        assert!(e.contains(want), "{file}: {e}");
    }
}

#[test]
fn gzip_is_detected_by_its_bytes_not_its_name() {
    let s = Scratch::new();
    let text: String = std::iter::once("user,item\n".to_string()).chain(rows().iter().map(|(u, i, _)| format!("{u},{i}\n"))).collect();
    s.write("plain-name.csv", gzip(text.as_bytes()));
    let run = train(&s, &recipe(&s, "{type: csv, path: plain-name.csv}", "{user_column: user, item_column: item}", "{}"));
    run.expect_code(0);
    assert_eq!(run.events_named("train_done")[0]["n_users"], 30);
}

#[test]
fn a_gzip_bomb_is_a_clean_exit_3_at_the_decompressed_cap() {
    let mut s = Scratch::new();
    // 400 MiB of rows in well under 1 MiB of gzip: one 4 MiB member,
    // repeated (a gzip file may hold many members; all are read).
    let mut bomb = gzip(b"user,item\n");
    let member = gzip("u1,i1\n".repeat((4 << 20) / 6).as_bytes());
    for _ in 0..100 {
        bomb.extend_from_slice(&member);
    }
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    s.write("bomb.csv", &bomb);
    s.env("RECOTEM_MAX_DECOMPRESSED_BYTES", &(16u64 << 20).to_string());
    let started = std::time::Instant::now();
    let run = train(&s, &recipe(&s, "{type: csv, path: bomb.csv}", "{user_column: user, item_column: item}", "{}"));
    run.expect_code(3);
    let e = error_of(&run);
    assert!(e.contains("RECOTEM_MAX_DECOMPRESSED_BYTES") && e.contains("16777216"), "{e}");
    assert!(started.elapsed().as_secs() < 60);
}

#[test]
fn local_reads_honour_the_download_cap() {
    let mut s = Scratch::new();
    let mut text = String::from("user,item\n");
    while text.len() <= 1 << 20 {
        text.push_str("u1,i1\n");
    }
    s.write("big.csv", text);
    s.env("RECOTEM_MAX_DOWNLOAD_BYTES", &(1u64 << 20).to_string());
    let run = train(&s, &recipe(&s, "{type: csv, path: big.csv}", "{user_column: user, item_column: item}", "{}"));
    run.expect_code(3);
    assert!(error_of(&run).contains("RECOTEM_MAX_DOWNLOAD_BYTES"), "{}", run.stderr());
}

fn timed_csv(s: &Scratch, name: &str, time: impl Fn(usize, i64) -> String) {
    let mut text = String::from("user,item,ts\n");
    for (n, (u, i, t)) in rows().into_iter().enumerate() {
        text.push_str(&format!("{u},{i},{}\n", time(n, t)));
    }
    s.write(name, text);
}

#[test]
fn time_columns_parse_iso_and_epochs_and_fail_with_their_subcodes() {
    let s = Scratch::new();
    // Three spellings of ISO 8601 / RFC 3339.
    let iso = |n: usize, _: i64| match n % 3 {
        0 => format!("2024-03-{:02} {:02}:{:02}:00", 1 + n % 28, n % 24, n % 60),
        1 => format!("2024-03-{:02}T{:02}:{:02}:00+09:00", 1 + n % 28, n % 24, n % 60),
        _ => format!("2024-03-{:02}T{:02}:{:02}:00.25Z", 1 + n % 28, n % 24, n % 60),
    };
    timed_csv(&s, "iso.csv", iso);
    timed_csv(&s, "epoch.csv", |_, t| t.to_string());
    timed_csv(&s, "bad.csv", |n, t| if n == 6 { "next tuesday".into() } else { t.to_string() });
    let split = "{scheme: time_global, heldout_ratio: 0.2}";
    let run = train(&s, &recipe(&s, "{type: csv, path: iso.csv}", "{user_column: user, item_column: item, time_column: ts}", split));
    run.expect_code(0);
    assert_eq!(run.events_named("splitting_data")[0]["scheme"], "time_global");
    let run = train(&s, &recipe(&s, "{type: csv, path: epoch.csv}", "{user_column: user, item_column: item, time_column: ts, time_unit: s}", split));
    run.expect_code(0);

    let run = train(&s, &recipe(&s, "{type: csv, path: epoch.csv}", "{user_column: user, item_column: item, time_column: ts}", split));
    run.expect_code(4);
    assert_eq!(run.train_error()["code"], "time_unit_required");
    assert!(error_of(&run).contains("schema.time_unit"));

    let run = train(&s, &recipe(&s, "{type: csv, path: bad.csv}", "{user_column: user, item_column: item, time_column: ts, time_unit: s}", "{}"));
    run.expect_code(4);
    assert_eq!(run.train_error()["code"], "time_column_parse_error");
    let e = error_of(&run);
    assert!(e.contains("row 7") && e.contains("next tuesday"), "{e}");
}

#[test]
fn time_splits_are_deterministic_for_a_seed() {
    let s = Scratch::new();
    timed_csv(&s, "epoch.csv", |_, t| t.to_string());
    let schema = "{user_column: user, item_column: item, time_column: ts, time_unit: s}";
    for scheme in ["time_user", "time_global"] {
        let split = format!("{{scheme: {scheme}, heldout_ratio: 0.25, test_user_ratio: 0.5, seed: 9}}");
        let r = recipe(&s, "{type: csv, path: epoch.csv}", schema, &split);
        let done = |run: &Run| {
            let mut split = run.events_named("split_done")[0].clone();
            split.as_object_mut().unwrap().remove("timestamp");
            (split, run.events_named("train_done")[0]["best_score"].clone())
        };
        let (a, b) = (train(&s, &r), train(&s, &r));
        a.expect_code(0);
        b.expect_code(0);
        assert_eq!(done(&a), done(&b), "{scheme}");
        assert!(done(&a).0["n_heldout"].as_u64().unwrap() > 0);
    }
}

#[test]
fn the_echo_source_generates_seeded_interactions() {
    let s = Scratch::new();
    let source = "{type: echo, n_users: 200, n_items: 50, n_rows: 5000, seed: 4}";
    let schema = "{user_column: user_id, item_column: item_id, time_column: timestamp, time_unit: s}";
    let r = recipe(&s, source, schema, "{scheme: time_user}");
    let (a, b) = (train(&s, &r), train(&s, &r));
    a.expect_code(0);
    b.expect_code(0);
    let cleansed = |run: &Run| {
        let mut e = run.events_named("data_cleansed")[0].clone();
        e.as_object_mut().unwrap().remove("timestamp");
        e
    };
    assert_eq!(cleansed(&a), cleansed(&b));
    assert_eq!(cleansed(&a)["n_users"], 200);
    let r = recipe(&s, source, "{user_column: user, item_column: item_id}", "{}");
    let run = train(&s, &r);
    run.expect_code(3);
    assert!(error_of(&run).contains("user_id, item_id, timestamp"));
}

/// MovieLens 100k's `u.data` as shipped: tab-separated, no header, epoch
/// seconds. Skipped when the data set is not on this machine.
#[test]
fn movielens_u_data_trains_headerless_with_a_time_user_split() {
    let data = crate::common::repo_root().join("../shared/datasets/ml-100k/u.data");
    let data = if data.is_file() { data } else { Path::new("/work/shared/datasets/ml-100k/u.data").to_path_buf() };
    if !data.is_file() {
        eprintln!("skipped: {} is absent", data.display());
        return;
    }
    let s = Scratch::new();
    let source = format!("{{type: csv, path: {:?}, delimiter: \"\\t\", header: null}}", data.display().to_string());
    let schema = "{user_column: column_0, item_column: column_1, time_column: column_3, time_unit: s}";
    let run = train(&s, &recipe(&s, &source, schema, "{scheme: time_user, heldout_ratio: 0.2, seed: 42}"));
    run.expect_code(0);
    let done = &run.events_named("train_done")[0];
    assert_eq!((done["n_rows"].as_u64(), done["n_users"].as_u64(), done["n_items"].as_u64()), (Some(100_000), Some(943), Some(1682)));
    assert!(done["best_score"].as_f64().unwrap() > 0.0);
}
