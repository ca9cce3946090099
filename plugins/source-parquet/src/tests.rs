//! Files written by the `parquet` crate's own writer, read back through the
//! component's reader (natively, over in-memory bytes).

use std::sync::{Arc, Mutex};

use parquet::basic::{BrotliLevel, Compression, GzipLevel};
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, FixedLenByteArray, FixedLenByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use super::*;

/// One column's values for one row group.
enum Col {
    I32(Vec<Option<i32>>),
    I64(Vec<Option<i64>>),
    F64(Vec<Option<f64>>),
    Str(Vec<Option<&'static str>>),
    Bytes(Vec<Option<Vec<u8>>>),
    Fixed(Vec<Option<[u8; 16]>>),
}

fn split<T: Clone>(values: &[Option<T>]) -> (Vec<T>, Vec<i16>) {
    (values.iter().flatten().cloned().collect(), values.iter().map(|v| i16::from(v.is_some())).collect())
}

/// A file with `schema`, one row group per entry of `groups`.
fn write(schema: &str, groups: &[Vec<Col>], props: WriterProperties) -> Vec<u8> {
    let schema = Arc::new(parse_message_type(schema).unwrap());
    let descr = parquet::schema::types::SchemaDescriptor::new(Arc::clone(&schema));
    let mut w = SerializedFileWriter::new(Vec::new(), schema, Arc::new(props)).unwrap();
    for group in groups {
        let mut g = w.next_row_group().unwrap();
        for (index, col) in group.iter().enumerate() {
            let mut c = g.next_column().unwrap().unwrap();
            // Required columns take no levels (all values present).
            let levels = |defs: Vec<i16>, max: i16| (max > 0).then_some(defs);
            let max = descr.column(index).max_def_level();
            match col {
                Col::I32(v) => {
                    let (vals, defs) = split(v);
                    c.typed::<Int32Type>().write_batch(&vals, levels(defs, max).as_deref(), None).unwrap();
                }
                Col::I64(v) => {
                    let (vals, defs) = split(v);
                    c.typed::<Int64Type>().write_batch(&vals, levels(defs, max).as_deref(), None).unwrap();
                }
                Col::F64(v) => {
                    let (vals, defs) = split(v);
                    c.typed::<DoubleType>().write_batch(&vals, levels(defs, max).as_deref(), None).unwrap();
                }
                Col::Str(v) => {
                    let (vals, defs) = split(v);
                    let vals: Vec<ByteArray> = vals.into_iter().map(ByteArray::from).collect();
                    c.typed::<ByteArrayType>().write_batch(&vals, levels(defs, max).as_deref(), None).unwrap();
                }
                Col::Bytes(v) => {
                    let (vals, defs) = split(v);
                    let vals: Vec<ByteArray> = vals.into_iter().map(ByteArray::from).collect();
                    c.typed::<ByteArrayType>().write_batch(&vals, levels(defs, max).as_deref(), None).unwrap();
                }
                Col::Fixed(v) => {
                    let (vals, defs) = split(v);
                    let vals: Vec<FixedLenByteArray> =
                        vals.into_iter().map(|b| FixedLenByteArray::from(b.to_vec())).collect();
                    c.typed::<FixedLenByteArrayType>().write_batch(&vals, levels(defs, max).as_deref(), None).unwrap();
                }
            }
            c.close().unwrap();
        }
        g.close().unwrap();
    }
    w.into_inner().unwrap()
}

/// Every value as text: `-` for null, `i:`, `f:`, `b:`, `s:` by kind.
fn read_all<A: At + 'static>(src: A, columns: &[&str], max_rows: u32) -> Result<(Vec<Vec<String>>, Vec<u32>), PluginError> {
    let mut r = ParquetBatches::new(src, columns.iter().map(|c| c.to_string()).collect())?;
    let mut rows = Vec::new();
    let mut sizes = Vec::new();
    while let Some(b) = r.next_batch(max_rows)? {
        sizes.push(b.num_rows);
        assert_eq!(b.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), columns);
        for row in 0..b.num_rows as usize {
            rows.push(
                b.columns
                    .iter()
                    .map(|c| {
                        if c.valid.as_ref().is_some_and(|v| !v[row]) {
                            return "-".to_string();
                        }
                        match &c.data {
                            ColumnData::Int64(v) => format!("i:{}", v[row]),
                            ColumnData::Float64(v) => format!("f:{}", v[row]),
                            ColumnData::Boolean(v) => format!("b:{}", v[row]),
                            ColumnData::Utf8(u) => {
                                let (a, z) = (u.offsets[row] as usize, u.offsets[row + 1] as usize);
                                format!("s:{}", std::str::from_utf8(&u.data[a..z]).unwrap())
                            }
                        }
                    })
                    .collect(),
            );
        }
    }
    Ok((rows, sizes))
}

const INTERACTIONS: &str = "message m { required binary user (STRING); optional int64 item; optional double rating; }";

/// Two row groups (3 and 4 rows), nulls in the optional columns.
fn interactions(props: WriterProperties) -> Vec<u8> {
    write(
        INTERACTIONS,
        &[
            vec![
                Col::Str(vec![Some("alice"), Some("bob"), Some("alice")]),
                Col::I64(vec![Some(10), None, Some(12)]),
                Col::F64(vec![Some(1.5), Some(2.0), None]),
            ],
            vec![
                Col::Str(vec![Some("carol"), Some("bob"), Some("dave"), Some("carol")]),
                Col::I64(vec![Some(10), Some(11), Some(-7), None]),
                Col::F64(vec![None, Some(4.25), Some(5.0), Some(0.5)]),
            ],
        ],
        props,
    )
}

fn expected() -> Vec<Vec<String>> {
    [
        ["s:alice", "i:10", "f:1.5"],
        ["s:bob", "-", "f:2"],
        ["s:alice", "i:12", "-"],
        ["s:carol", "i:10", "-"],
        ["s:bob", "i:11", "f:4.25"],
        ["s:dave", "i:-7", "f:5"],
        ["s:carol", "-", "f:0.5"],
    ]
    .iter()
    .map(|r| r.iter().map(|s| s.to_string()).collect())
    .collect()
}

#[test]
fn every_shipped_codec_plain_and_dictionary_with_nulls_over_row_groups() {
    let codecs = [
        Compression::UNCOMPRESSED,
        Compression::SNAPPY,
        Compression::GZIP(GzipLevel::default()),
        Compression::LZ4,
        Compression::LZ4_RAW,
        Compression::BROTLI(BrotliLevel::default()),
    ];
    for codec in codecs {
        for dictionary in [false, true] {
            let props = WriterProperties::builder().set_compression(codec).set_dictionary_enabled(dictionary).build();
            let file = interactions(props);
            let (rows, sizes) = read_all(file, &["user", "item", "rating"], 2).unwrap_or_else(|e| panic!("{codec} {dictionary}: {}", e.message));
            assert_eq!(rows, expected(), "{codec}, dictionary {dictionary}");
            // Batches never span row groups: 3 = 2 + 1, 4 = 2 + 2.
            assert_eq!(sizes, [2, 1, 2, 2], "{codec}");
        }
    }
}

#[test]
fn columns_come_in_the_order_asked_and_large_batches_take_a_row_group() {
    let file = interactions(WriterProperties::builder().build());
    let (rows, sizes) = read_all(file, &["rating", "user"], 65_536).unwrap();
    assert_eq!(sizes, [3, 4]);
    assert_eq!(rows[1], ["f:2", "s:bob"]);
}

/// An input that records every byte range read from it.
struct Counting {
    bytes: Vec<u8>,
    reads: Arc<Mutex<Vec<(u64, u64)>>>,
}

impl At for Counting {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_at(&self, offset: u64, max: u32) -> std::io::Result<Vec<u8>> {
        let got = self.bytes.read_at(offset, max)?;
        self.reads.lock().unwrap().push((offset, offset + got.len() as u64));
        Ok(got)
    }
}

#[test]
fn projection_reads_the_footer_and_only_the_mapped_columns_chunks() {
    let file = interactions(WriterProperties::builder().build());
    // Where each column chunk lies.
    let (reader, _) = read::open_file(file.clone()).unwrap();
    use parquet::file::reader::FileReader;
    let chunk = |g: usize, c: usize| {
        let (start, len) = reader.metadata().row_group(g).column(c).byte_range();
        (start, start + len)
    };
    let reads = Arc::new(Mutex::new(Vec::new()));
    let (rows, _) = read_all(Counting { bytes: file.clone(), reads: Arc::clone(&reads) }, &["item"], 100).unwrap();
    assert_eq!(rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["i:10", "-", "i:12", "i:10", "i:11", "i:-7", "-"]);
    let reads = reads.lock().unwrap().clone();
    let overlaps = |(a, z): (u64, u64), (b, y): (u64, u64)| a < y && b < z;
    for g in 0..2 {
        for skipped in [0, 2] {
            assert!(!reads.iter().any(|r| overlaps(*r, chunk(g, skipped))), "read {reads:?} touches chunk {g}/{skipped}");
        }
        assert!(reads.contains(&chunk(g, 1)), "the item chunk of row group {g} is fetched whole: {reads:?}");
    }
    // The footer: the file's last bytes.
    assert!(reads.iter().any(|(_, z)| *z == file.len() as u64), "{reads:?}");
}

#[test]
fn timestamps_dates_uuids_and_unsigned_ints_reach_the_host_as_it_reads_them() {
    let schema = "message m {
        required int64 ms (TIMESTAMP(MILLIS, true));
        required int64 us (TIMESTAMP(MICROS, true));
        required int64 ns (TIMESTAMP(NANOS, false));
        required int64 legacy (TIMESTAMP_MILLIS);
        required int32 day (DATE);
        required int32 small (INTEGER(32, false));
        required int64 big (INTEGER(64, false));
        required int32 price (DECIMAL(9, 2));
        required fixed_len_byte_array(16) id (UUID);
    }";
    let t = 1_709_296_200i64; // 2024-03-01T12:30:00Z
    let uuid = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0, 1, 2, 3, 4, 5, 6, 7];
    let file = write(
        schema,
        &[vec![
            Col::I64(vec![Some(t * 1000 + 5)]),
            Col::I64(vec![Some(-1)]),
            Col::I64(vec![Some(t * 1_000_000_000 + 123_456_789)]),
            Col::I64(vec![Some(t * 1000)]),
            Col::I32(vec![Some(19_783)]),
            Col::I32(vec![Some(-1)]),
            Col::I64(vec![Some(-1)]),
            Col::I32(vec![Some(12_345)]),
            Col::Fixed(vec![Some(uuid)]),
        ]],
        WriterProperties::builder().build(),
    );
    let (rows, _) = read_all(file, &["ms", "us", "ns", "legacy", "day", "small", "big", "price", "id"], 10).unwrap();
    assert_eq!(
        rows[0],
        [
            "s:2024-03-01T12:30:00.005000Z",
            "s:1969-12-31T23:59:59.999999Z",
            "s:2024-03-01T12:30:00.123456",
            "s:2024-03-01T12:30:00.000000Z",
            "s:2024-03-01",
            "i:4294967295",
            "s:18446744073709551615",
            "f:123.45",
            "s:12345678-9abc-def0-0001-020304050607",
        ]
    );
}

#[test]
fn missing_columns_are_named_with_what_the_file_has() {
    let file = interactions(WriterProperties::builder().build());
    let e = read_all(file, &["user", "when", "score"], 10).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(e.message.contains("\"when\", \"score\" not found") && e.message.contains("it has: user, item, rating"), "{}", e.message);
}

#[test]
fn corrupt_and_truncated_files_fail_as_invalid_input() {
    let e = read_all(b"user,item\n1,2\n".to_vec(), &["user"], 10).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(e.message.contains("not a readable Parquet file"), "{}", e.message);

    let file = interactions(WriterProperties::builder().build());
    // The footer intact, a column chunk overwritten with noise.
    let (reader, _) = read::open_file(file.clone()).unwrap();
    use parquet::file::reader::FileReader;
    let (start, len) = reader.metadata().row_group(1).column(0).byte_range();
    let mut bad = file.clone();
    for b in &mut bad[start as usize..(start + len) as usize] {
        *b = 0xFF;
    }
    let e = read_all(bad, &["user"], 10).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidInput);
    assert!(e.message.starts_with("row group 1, column \"user\""), "{}", e.message);

    let e = read_all(file[..file.len() / 2].to_vec(), &["user"], 10).unwrap_err();
    assert!(e.message.contains("not a readable Parquet file"), "{}", e.message);
}

#[test]
fn text_that_is_not_utf8_names_row_group_column_and_row() {
    let file = write(
        "message m { optional binary blob; }",
        &[vec![Col::Bytes(vec![Some(b"ok".to_vec())])], vec![Col::Bytes(vec![None, Some(vec![0xC3, 0x28])])]],
        WriterProperties::builder().build(),
    );
    let e = read_all(file, &["blob"], 10).unwrap_err();
    assert!(e.message.contains("row group 1, column \"blob\", row 3: the value is not valid UTF-8"), "{}", e.message);
}

#[test]
fn unsupported_columns_are_refused_at_open() {
    let file = write(
        "message m { required binary d (DECIMAL(10, 2)); }",
        &[vec![Col::Str(vec![Some("x")])]],
        WriterProperties::builder().build(),
    );
    let e = read_all(file, &["d"], 10).unwrap_err();
    assert!(e.message.contains("column \"d\"") && e.message.contains("not supported"), "{}", e.message);
}

#[test]
fn config_is_only_type_path_and_sha256() {
    assert!(parse_config(r#"{"type":"parquet","path":"x.parquet"}"#).is_ok());
    assert!(parse_config(&format!(r#"{{"type":"parquet","path":"x","sha256":"{}"}}"#, "0".repeat(64))).is_ok());
    let e = parse_config(r#"{"type":"parquet","path":"x","delimiter":","}"#).unwrap_err();
    assert!(e.message.contains("delimiter"), "{}", e.message);
    let schema: serde_json::Value = serde_json::from_str(SCHEMA).unwrap();
    let mut keys: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["path", "sha256", "type"]);
}

#[test]
fn batches_cross_page_boundaries_with_nulls() {
    let users: Vec<Option<&'static str>> = (0..1000).map(|i| if i % 7 == 3 { None } else { Some(["a", "b", "c"][i % 3]) }).collect();
    let items: Vec<Option<i64>> = (0..1000).map(|i| (i % 11 != 5).then_some(i as i64 * 3)).collect();
    for dictionary in [false, true] {
        let props = WriterProperties::builder()
            .set_dictionary_enabled(dictionary)
            .set_data_page_row_count_limit(50)
            .set_write_batch_size(25)
            .set_compression(Compression::SNAPPY)
            .build();
        let file = write(
            "message m { optional binary user (STRING); optional int64 item; }",
            &[vec![Col::Str(users.clone()), Col::I64(items.clone())]],
            props,
        );
        let (reader, _) = read::open_file(file.clone()).unwrap();
        use parquet::file::reader::FileReader;
        let pages = reader.get_row_group(0).unwrap().get_column_page_reader(1).unwrap().count();
        assert!(pages > 10, "{pages} pages: the test needs many");
        let (rows, sizes) = read_all(file, &["user", "item"], 333).unwrap();
        assert_eq!(sizes, [333, 333, 333, 1]);
        for (i, row) in rows.iter().enumerate() {
            let user = users[i].map_or("-".to_string(), |u| format!("s:{u}"));
            let item = items[i].map_or("-".to_string(), |v| format!("i:{v}"));
            assert_eq!(row, &[user, item], "row {i}, dictionary {dictionary}");
        }
    }
}
