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
/// A file of `../shared/datasets/ml-100k/` beside the checkout, or `None`
/// (the test is skipped, saying so) when the data set is absent.
fn movielens(file: &str) -> Option<std::path::PathBuf> {
    let data = crate::common::repo_root().join("../shared/datasets/ml-100k").join(file);
    let data = if data.is_file() { data } else { Path::new("/work/shared/datasets/ml-100k").join(file) };
    if data.is_file() {
        Some(data)
    } else {
        eprintln!("skipped: {} is absent", data.display());
        None
    }
}

#[test]
fn movielens_u_data_trains_headerless_with_a_time_user_split() {
    let Some(data) = movielens("u.data") else { return };
    let s = Scratch::new();
    let source = format!("{{type: csv, path: {:?}, delimiter: \"\\t\", header: null}}", data.display().to_string());
    let schema = "{user_column: column_0, item_column: column_1, time_column: column_3, time_unit: s}";
    let run = train(&s, &recipe(&s, &source, schema, "{scheme: time_user, heldout_ratio: 0.2, seed: 42}"));
    run.expect_code(0);
    let done = &run.events_named("train_done")[0];
    assert_eq!((done["n_rows"].as_u64(), done["n_users"].as_u64(), done["n_items"].as_u64()), (Some(100_000), Some(943), Some(1682)));
    assert!(done["best_score"].as_f64().unwrap() > 0.0);
}

/// `user,item,part` rows of 40 users over 15 items: each user's last row is
/// test for even users (val for odd ones), the one before it val, the rest
/// train. Returns the (train, val, test) row counts.
fn fixed_split_csv(s: &Scratch, labels: [&str; 3]) -> (usize, usize, usize) {
    let mut csv = String::from("user,item,part\n");
    let mut counts = (0, 0, 0);
    for u in 0..40 {
        let n = 4 + u % 4;
        for k in 0..n {
            let item = (u * 3 + k * 2) % 15;
            let part = if k + 2 < n {
                counts.0 += 1;
                labels[0]
            } else if k + 2 == n || u % 2 == 1 {
                counts.1 += 1;
                labels[1]
            } else {
                counts.2 += 1;
                labels[2]
            };
            csv.push_str(&format!("u{u},i{item},{part}\n"));
        }
    }
    s.write("parts.csv", csv);
    counts
}

#[test]
fn a_fixed_split_trains_on_train_scores_on_val_and_reports_the_test_score() {
    let s = Scratch::new();
    let (n_train, n_val, n_test) = fixed_split_csv(&s, ["train_inner", "val", "test"]);
    let split = "{scheme: fixed, column: part, labels: {train: train_inner, val: val, test: test}}";
    let r = recipe(&s, "{type: csv, path: parts.csv}", "{user_column: user, item_column: item}", split);
    let run = train(&s, &r);
    run.expect_code(0);
    let done = &run.events_named("split_done")[0];
    assert_eq!(done["n_train"].as_u64(), Some(n_train as u64));
    assert_eq!(done["n_heldout"].as_u64(), Some(n_val as u64));
    assert_eq!(done["n_test"].as_u64(), Some(n_test as u64));
    assert_eq!(done["n_test_users"].as_u64(), Some(20));
    let scored = &run.events_named("test_scored")[0];
    assert_eq!((scored["metric"].as_str(), scored["cutoff"].as_u64(), scored["n_users"].as_u64()), (Some("ndcg"), Some(5), Some(20)));
    let score = scored["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score));
    // The score is signed into the artifact header.
    let out = s.run(&["inspect", "out/model.recotem"]).stdout();
    let header: serde_json::Value = serde_json::from_str(out.split_once('\n').unwrap().1).unwrap();
    assert_eq!(header["test_score"].as_f64(), Some(score));

    // Without test rows there is no test score; default labels apply.
    fixed_split_csv(&s, ["train", "val", "val"]);
    let r = recipe(&s, "{type: csv, path: parts.csv}", "{user_column: user, item_column: item}", "{scheme: fixed, column: part}");
    let run = train(&s, &r);
    run.expect_code(0);
    assert!(run.events_named("test_scored").is_empty());
    assert!(run.events_named("split_done")[0].get("n_test").is_none());
}

#[test]
fn fixed_split_faults_have_their_exit_codes() {
    let s = Scratch::new();
    fixed_split_csv(&s, ["train", "validation", "test"]);
    let schema = "{user_column: user, item_column: item}";
    // A label the recipe does not name: exit 3, naming the row and value.
    let run = train(&s, &recipe(&s, "{type: csv, path: parts.csv}", schema, "{scheme: fixed, column: part}"));
    run.expect_code(3);
    let e = error_of(&run);
    assert!(e.contains("\"validation\"") && e.contains("row ") && e.contains("training.split.labels"), "{e}");
    // The column is missing from the data: exit 3.
    let run = train(&s, &recipe(&s, "{type: csv, path: parts.csv}", schema, "{scheme: fixed, column: fold}"));
    run.expect_code(3);
    assert!(error_of(&run).contains("\"fold\""));
    // No val rows: split_error.
    fixed_split_csv(&s, ["train", "test", "test"]);
    let run = train(&s, &recipe(&s, "{type: csv, path: parts.csv}", schema, "{scheme: fixed, column: part}"));
    run.expect_code(4);
    assert_eq!(run.train_error()["code"], "split_error");
    // Recipe errors (exit 2): fixed without a column, a column on another
    // scheme, labels that collide.
    for split in ["{scheme: fixed}", "{scheme: random, column: part}", "{scheme: fixed, column: part, labels: {train: a, val: a, test: b}}"] {
        let r = recipe(&s, "{type: csv, path: parts.csv}", schema, split);
        s.run(&["validate", &r]).expect_code(2);
        train(&s, &r).expect_code(2);
    }
}

#[test]
fn movielens_fixed_split_seed42_trains_and_reports_its_test_score() {
    let Some(data) = movielens("split-seed42.csv") else { return };
    let s = Scratch::new();
    let source = format!("{{type: csv, path: {:?}}}", data.display().to_string());
    let split = "{scheme: fixed, column: part, labels: {train: train_inner, val: val, test: test}}";
    let text = format!(
        "name: ml\nsource: {source}\nschema: {{user_column: user_id, item_column: item_id}}\n\
         training: {{algorithms: [TopPop], cutoff: 10, n_trials: 1, split: {split}}}\n\
         output: {{path: out/model.recotem, versioning: always_overwrite}}\n"
    );
    let run = train(&s, &s.recipe("ml", &text).display().to_string());
    run.expect_code(0);
    let done = &run.events_named("split_done")[0];
    assert_eq!((done["n_train"].as_u64(), done["n_heldout"].as_u64(), done["n_test"].as_u64()), (Some(64_660), Some(15_707), Some(19_633)));
    // irspack's TopPop scores 0.2114 on this split (../shared/datasets/README.md).
    let score = run.events_named("test_scored")[0]["score"].as_f64().unwrap();
    assert!((0.19..0.23).contains(&score), "TopPop test ndcg@10 = {score}");
}
