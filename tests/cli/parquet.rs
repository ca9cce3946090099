//! The built-in `parquet` source through the real binary: training with a
//! time split, item metadata from Parquet, faults (exit 3) and the audit.
//! Files are written here by the `parquet` crate's writer.

use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde_json::{Value, json};

use crate::common::{Run, Scratch};
use crate::serve::{Server, api_keys_entry};

/// Interactions: 40 users over 25 items, a timestamp per row (milliseconds,
/// UTC) and a column the recipe does not map, in two snappy row groups.
fn interactions() -> Vec<u8> {
    let schema = "message interactions {
        required binary user (STRING);
        required int64 item;
        required int64 ts (TIMESTAMP(MILLIS, true));
        optional binary note (STRING);
    }";
    let rows: Vec<(String, i64, i64)> = (0..40)
        .flat_map(|u| (0..(4 + u % 5)).map(move |k| (format!("u{u}"), (u * 7 + k * 3) % 25, 1_700_000_000_000 + (u * 10 + k) * 3_600_000)))
        .collect();
    let half = rows.len() / 2;
    let mut w = writer(schema);
    for group in [&rows[..half], &rows[half..]] {
        let mut g = w.next_row_group().unwrap();
        let users: Vec<ByteArray> = group.iter().map(|r| ByteArray::from(r.0.as_str())).collect();
        let mut c = g.next_column().unwrap().unwrap();
        c.typed::<ByteArrayType>().write_batch(&users, None, None).unwrap();
        c.close().unwrap();
        for values in [group.iter().map(|r| r.1).collect::<Vec<_>>(), group.iter().map(|r| r.2).collect()] {
            let mut c = g.next_column().unwrap().unwrap();
            c.typed::<Int64Type>().write_batch(&values, None, None).unwrap();
            c.close().unwrap();
        }
        let mut c = g.next_column().unwrap().unwrap();
        c.typed::<ByteArrayType>().write_batch(&[], Some(&vec![0; group.len()]), None).unwrap();
        c.close().unwrap();
        g.close().unwrap();
    }
    w.into_inner().unwrap()
}

fn writer(schema: &str) -> SerializedFileWriter<Vec<u8>> {
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    SerializedFileWriter::new(Vec::new(), Arc::new(parse_message_type(schema).unwrap()), Arc::new(props)).unwrap()
}

/// Item metadata: `item_id` (int64) and `title` for items 0..25.
fn items() -> Vec<u8> {
    let mut w = writer("message items { required int64 item_id; required binary title (STRING); }");
    let mut g = w.next_row_group().unwrap();
    let mut c = g.next_column().unwrap().unwrap();
    c.typed::<Int64Type>().write_batch(&(0..25).collect::<Vec<i64>>(), None, None).unwrap();
    c.close().unwrap();
    let titles: Vec<ByteArray> = (0..25).map(|i| ByteArray::from(format!("Title {i}").as_str())).collect();
    let mut c = g.next_column().unwrap().unwrap();
    c.typed::<ByteArrayType>().write_batch(&titles, None, None).unwrap();
    c.close().unwrap();
    g.close().unwrap();
    w.into_inner().unwrap()
}

fn recipe(s: &Scratch, name: &str, path: &str, schema: &str, extra: &str) -> String {
    let text = format!(
        "name: {name}\n\
         source: {{type: parquet, path: {path}}}\n\
         schema: {schema}\n\
         {extra}\
         training: {{algorithms: [TopPop], cutoff: 5, n_trials: 1, split: {{scheme: time_user, heldout_ratio: 0.25}}}}\n\
         output: {{path: out/{name}.recotem, versioning: always_overwrite}}\n"
    );
    s.write(&format!("recipes/{name}.yaml"), text).display().to_string()
}

const SCHEMA: &str = "{user_column: user, item_column: item, time_column: ts}";

fn error_of(run: &Run) -> String {
    run.train_error()["error"].as_str().unwrap().to_string()
}

#[test]
fn parquet_source_trains_with_a_time_split_from_a_timestamp_column() {
    let s = Scratch::new();
    s.write("interactions.parquet", interactions());
    let r = recipe(&s, "pq", "interactions.parquet", SCHEMA, "");

    let run = s.run(&["validate", &r]);
    run.expect_code(0);
    assert!(run.stdout().contains("DataSource: probe OK (parquet)"), "{}", run.stdout());
    let summary = run.events_named("source_probe_done")[0]["summary"].as_str().unwrap().to_string();
    assert!(summary.contains("Parquet OK: 240 rows in 2 row groups") && summary.contains("ts (INT64 TIMESTAMP(MILLIS, UTC))"), "{summary}");

    let run = s.run(&["train", &r]);
    run.expect_code(0);
    let start = &run.events_named("parquet_source_fetch_start")[0];
    assert_eq!((&start["path"], &start["scheme"]), (&json!("interactions.parquet"), &json!("file")));
    let done = &run.events_named("parquet_source_fetch_done")[0];
    let n_rows: u64 = (0..40).map(|u| 4 + u % 5).sum();
    assert_eq!(done["rows"], n_rows, "{done}");
    assert_eq!(done["columns"], json!(["user", "item", "ts"]));
    assert_eq!(run.events_named("splitting_data")[0]["scheme"], "time_user");
    let trained = &run.events_named("train_done")[0];
    assert_eq!((trained["n_users"].as_u64(), trained["n_items"].as_u64()), (Some(40), Some(25)), "{trained}");
}

#[test]
fn item_metadata_from_parquet_is_served() {
    let mut s = Scratch::new();
    s.env("RECOTEM_API_KEYS", &api_keys_entry());
    s.write("interactions.parquet", interactions());
    s.write("items.parquet", items());
    recipe(&s, "meta", "interactions.parquet", SCHEMA, "item_metadata: {type: parquet, path: items.parquet, fields: [title]}\n");
    let run = s.run(&["train", "recipes/meta.yaml"]);
    run.expect_code(0);
    let loaded = &run.events_named("metadata_loaded")[0];
    assert_eq!((loaded["rows"].as_u64(), loaded["n_items_with_metadata"].as_u64()), (Some(25), Some(25)), "{loaded}");

    let srv = Server::start(&s, &[]);
    let v = srv.post("/v1/recipes/meta:recommend", json!({"user_id": "u3", "limit": 3})).json();
    let items = v["items"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert!(!items.is_empty(), "{v}");
    for item in items {
        let id = item["item_id"].as_str().unwrap();
        assert_eq!(item["title"], format!("Title {id}"), "{v}");
    }
}

#[test]
fn a_corrupt_truncated_or_gzipped_parquet_file_is_exit_3() {
    let s = Scratch::new();
    let file = interactions();
    let mut bad = file.clone();
    // Noise over the first row group's data, footer intact.
    for b in &mut bad[4..file.len() / 3] {
        *b = 0xA5;
    }
    s.write("bad.parquet", &bad);
    let run = s.run(&["train", &recipe(&s, "bad", "bad.parquet", SCHEMA, "")]);
    run.expect_code(3);
    let e = error_of(&run);
    assert!(e.contains("row group 0, column \"user\""), "{e}");

    s.write("half.parquet", &file[..file.len() / 2]);
    let run = s.run(&["train", &recipe(&s, "half", "half.parquet", SCHEMA, "")]);
    run.expect_code(3);
    assert!(error_of(&run).contains("not a readable Parquet file"), "{}", error_of(&run));

    // gzip is undone by the host as a stream: no random access, said so.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &file).unwrap();
    s.write("gz.parquet", gz.finish().unwrap());
    let run = s.run(&["train", &recipe(&s, "gz", "gz.parquet", SCHEMA, "")]);
    run.expect_code(3);
    assert!(error_of(&run).contains("needs random access"), "{}", error_of(&run));
}

#[test]
fn a_mapped_column_missing_from_the_file_is_exit_3() {
    let s = Scratch::new();
    s.write("interactions.parquet", interactions());
    let r = recipe(&s, "missing", "interactions.parquet", "{user_column: user, item_column: item_id, time_column: ts}", "");
    let run = s.run(&["train", &r]);
    run.expect_code(3);
    let e = error_of(&run);
    assert!(e.contains("\"item_id\" not found in the Parquet file; it has: user, item, ts, note"), "{e}");
}

#[test]
fn audit_and_schema_show_the_parquet_builtin() {
    let s = Scratch::new();
    let run = s.run(&["plugins", "audit", "--json"]);
    run.expect_code(0);
    let doc: Value = serde_json::from_str(&run.stdout()).unwrap();
    let pq = doc["components"].as_array().unwrap().iter().find(|c| c["name"] == "parquet").expect("parquet audited");
    assert_eq!(pq["kind"], "source");
    assert_eq!(pq["builtin"], true);
    assert_eq!(pq["status"], "ok");
    assert_eq!(pq["needs"], json!(["input-stream"]));
    assert_eq!(pq["grants"]["granted"], json!(["input-stream"]));
    let mut keys: Vec<&String> = pq["config_schema"]["properties"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["path", "sha256", "type"], "RCP-13: only type, path and sha256");
    for i in pq["imports"].as_array().unwrap() {
        assert!(i["class"] == "contract" || i["class"] == "inert", "{i}");
    }

    let run = s.run(&["schema"]);
    run.expect_code(0);
    assert!(run.stdout().contains("\"const\": \"parquet\""), "schema lacks the parquet source");
}
