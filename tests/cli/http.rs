//! HTTP(S) sources (FEATURES.md HTTP-01..09, LOG-11): a real HTTP server on
//! 127.0.0.1 in the test process, answering canned responses, and the real
//! binary downloading from it — allowed explicitly with
//! `RECOTEM_HTTP_ALLOW_PRIVATE=1`, except in the tests of the SSRF guard.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::common::{Run, Scratch, quickstart_csv};

/// What the server answers for a path.
enum Reply {
    /// Status, extra headers, body (sent with `Content-Length`).
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// 200 with the body and no `Content-Length`, ended by closing.
    Unsized(Vec<u8>),
    /// Read the request, then say nothing for this long.
    Stall(Duration),
}

fn redirect(status: u16, location: &str) -> Reply {
    Reply::Full(status, vec![("Location".into(), location.into())], Vec::new())
}

fn ok(body: &[u8]) -> Reply {
    Reply::Full(200, Vec::new(), body.to_vec())
}

/// A one-thread-per-connection HTTP/1.1 server on 127.0.0.1 (a free port),
/// recording the paths asked for.
struct Server {
    port: u16,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(routes: impl Fn(&str, u16) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("addr").port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let routes = Arc::new(routes);
        let seen = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let routes = routes.clone();
                let seen = seen.clone();
                std::thread::spawn(move || serve(conn, port, &*routes, &seen));
            }
        });
        Server { port, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().expect("hits").clone()
    }
}

fn serve(conn: TcpStream, port: u16, routes: &(dyn Fn(&str, u16) -> Reply + Send + Sync), seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
    seen.lock().expect("hits").push(path.clone());
    let mut out = conn;
    match routes(&path, port) {
        Reply::Full(status, headers, body) => {
            let mut head = format!("HTTP/1.1 {status} Canned\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = out.write_all(head.as_bytes());
            let _ = out.write_all(&body);
        }
        Reply::Unsized(body) => {
            let _ = out.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let _ = out.write_all(&body);
        }
        Reply::Stall(how_long) => std::thread::sleep(how_long),
    }
    let _ = out.flush();
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn data() -> Vec<u8> {
    std::fs::read(quickstart_csv()).expect("quickstart data")
}

/// A scratch dir whose recipe reads `url` pinned to `pin`; private
/// addresses allowed when `allow_private`.
fn setup(url: &str, pin: &str, allow_private: bool) -> (Scratch, String) {
    let mut s = Scratch::new();
    if allow_private {
        s.env("RECOTEM_HTTP_ALLOW_PRIVATE", "1");
    }
    let recipe = format!(
        "name: web\n\
         source: {{type: csv, path: \"{url}\", sha256: {pin}}}\n\
         schema: {{user_column: user_id, item_column: item_id}}\n\
         training: {{algorithms: [TopPop], cutoff: 10, n_trials: 1}}\n\
         output: {{path: out/model.recotem, versioning: always_overwrite}}\n"
    );
    let path = s.recipe("web", &recipe).display().to_string();
    (s, path)
}

fn error_message(run: &Run) -> String {
    run.train_error()["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn an_http_source_trains_end_to_end_with_its_pin_checked() {
    let body = data();
    let served = body.clone();
    let server = Server::start(move |path, _| if path == "/data.csv" { ok(&served) } else { Reply::Full(404, vec![], vec![]) });
    let (s, recipe) = setup(&server.url("/data.csv"), &sha256(&body), true);
    let run = s.run(&["train", &recipe]);
    run.expect_code(0);
    let start = &run.events_named("csv_source_fetch_start")[0];
    assert_eq!(start["scheme"], "http");
    assert_eq!(start["path"], server.url("/data.csv"));
    let done = &run.events_named("csv_source_fetch_done")[0];
    assert_eq!(done["sha256_verified"], true, "{done}");
    assert_eq!(done["bytes"], body.len() as u64);
    assert!(s.path("out/model.recotem").is_file());
    assert_eq!(server.hits(), vec!["/data.csv"], "one download");
}

#[test]
fn a_gzip_body_is_decompressed_after_its_pin_matched() {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&data()).unwrap();
    let gz = e.finish().unwrap();
    let served = gz.clone();
    let server = Server::start(move |_, _| ok(&served));
    // The pin is over the bytes as served (compressed).
    let (s, recipe) = setup(&server.url("/data"), &sha256(&gz), true);
    s.run(&["train", &recipe]).expect_code(0);
}

#[test]
fn a_sha256_mismatch_is_exit_7_naming_8_digits_of_each_digest() {
    let body = data();
    let served = body.clone();
    let server = Server::start(move |_, _| ok(&served));
    let wrong = sha256(b"some other file");
    let (s, recipe) = setup(&server.url("/data.csv"), &wrong, true);
    let run = s.run(&["train", &recipe]);
    run.expect_code(7);
    let msg = error_message(&run);
    let actual = sha256(&body);
    assert!(msg.contains("sha256 mismatch") && msg.contains(&wrong[..8]) && msg.contains(&actual[..8]), "{msg}");
    assert!(!run.stderr().contains(&wrong[..9]) && !run.stderr().contains(&actual[..9]), "more than 8 digits shown:\n{}", run.stderr());
    assert!(!s.path("out/model.recotem").exists());
}

#[test]
fn an_http_error_status_is_exit_7() {
    let server = Server::start(|_, _| Reply::Full(404, vec![], b"not here".to_vec()));
    let (s, recipe) = setup(&server.url("/gone.csv"), &sha256(b"x"), true);
    let run = s.run(&["train", &recipe]);
    run.expect_code(7);
    assert_eq!(run.train_error()["code"], "http_fetch_error");
    assert!(error_message(&run).contains("HTTP 404"), "{}", error_message(&run));
}

#[test]
fn a_redirect_is_followed_and_logged() {
    let body = data();
    let served = body.clone();
    let server = Server::start(move |path, _| match path {
        "/old.csv" => redirect(301, "/new.csv"),
        "/new.csv" => ok(&served),
        _ => Reply::Full(404, vec![], vec![]),
    });
    let (s, recipe) = setup(&server.url("/old.csv"), &sha256(&body), true);
    let run = s.run(&["train", &recipe]);
    run.expect_code(0);
    let hops = run.events_named("csv_source_redirect");
    assert_eq!(hops.len(), 1, "{}", run.stderr());
    assert_eq!(hops[0]["from_"], server.url("/old.csv"));
    assert_eq!(hops[0]["to"], server.url("/new.csv"));
    assert_eq!(hops[0]["status"], 301);
}

#[test]
fn a_redirect_to_another_scheme_is_refused() {
    let server = Server::start(|_, port| redirect(302, &format!("https://127.0.0.1:{port}/data.csv")));
    let (s, recipe) = setup(&server.url("/data.csv"), &sha256(b"x"), true);
    let run = s.run(&["train", &recipe]);
    run.expect_code(7);
    let msg = error_message(&run);
    assert!(msg.contains("redirect refused") && msg.contains("changes the scheme from http to https"), "{msg}");
    assert_eq!(server.hits().len(), 1, "the https target was never asked");
}

/// `/hop<n>` redirects to `/hop<n-1>`; `/hop0` is the data.
fn chain_server(body: Vec<u8>) -> Server {
    Server::start(move |path, _| match path.strip_prefix("/hop").and_then(|n| n.parse::<u32>().ok()) {
        Some(0) => ok(&body),
        Some(n) => redirect(if n % 2 == 0 { 307 } else { 302 }, &format!("/hop{}", n - 1)),
        None => Reply::Full(404, vec![], vec![]),
    })
}

#[test]
fn five_redirects_are_followed_and_a_sixth_is_refused() {
    let body = data();
    let server = chain_server(body.clone());
    let (s, recipe) = setup(&server.url("/hop5"), &sha256(&body), true);
    let run = s.run(&["train", &recipe]);
    run.expect_code(0);
    assert_eq!(run.events_named("csv_source_redirect").len(), 5);

    let (s, recipe) = setup(&server.url("/hop6"), &sha256(&body), true);
    let run = s.run(&["train", &recipe]);
    run.expect_code(7);
    let msg = error_message(&run);
    assert!(msg.contains("redirect refused") && msg.contains("at most 5"), "{msg}");
    assert_eq!(run.events_named("csv_source_redirect").len(), 5);
}

#[test]
fn a_redirect_loop_is_refused() {
    let server = Server::start(|path, _| match path {
        "/a" => redirect(302, "/b"),
        _ => redirect(302, "/a"),
    });
    let (s, recipe) = setup(&server.url("/a"), &sha256(b"x"), true);
    let run = s.run(&["train", &recipe]);
    run.expect_code(7);
    let msg = error_message(&run);
    assert!(msg.contains("redirect loop"), "{msg}");
    assert_eq!(server.hits(), vec!["/a", "/b"]);
}

#[test]
fn a_body_over_the_download_cap_is_abandoned_with_exit_7() {
    let cap: u64 = 1 << 20; // the smallest cap allowed
    let big = vec![b'x'; cap as usize + 64 * 1024];
    let served = big.clone();
    // Without Content-Length the cap is enforced while streaming; with one
    // that is already too big, before the first byte.
    let server = Server::start(move |path, _| if path == "/unsized" { Reply::Unsized(served.clone()) } else { ok(&served) });
    for path in ["/unsized", "/sized"] {
        let (mut s, recipe) = setup(&server.url(path), &sha256(&big), true);
        s.env("RECOTEM_MAX_DOWNLOAD_BYTES", &cap.to_string());
        let run = s.run(&["train", &recipe]);
        run.expect_code(7);
        assert!(error_message(&run).contains("RECOTEM_MAX_DOWNLOAD_BYTES"), "{}", error_message(&run));
        let exceeded = run.events_named("csv_source_size_exceeded");
        assert_eq!(exceeded.len(), 1, "{}", run.stderr());
        assert_eq!(exceeded[0]["cap"], cap);
        assert_eq!(exceeded[0]["path"], server.url(path));
        let read = exceeded[0]["bytes_read"].as_u64().unwrap();
        if path == "/unsized" {
            assert!(read > cap && read <= cap + (1 << 20), "stopped within a chunk past the cap: {read}");
        } else {
            assert_eq!(read, 0, "refused on its Content-Length");
        }
    }
}

#[test]
fn a_stalled_server_times_out_with_exit_7() {
    let server = Server::start(|_, _| Reply::Stall(Duration::from_secs(8)));
    let (mut s, recipe) = setup(&server.url("/slow.csv"), &sha256(b"x"), true);
    s.env("RECOTEM_HTTP_TIMEOUT_SECONDS", "1");
    let started = Instant::now();
    let run = s.run(&["train", &recipe]);
    let took = started.elapsed();
    run.expect_code(7);
    let msg = error_message(&run);
    assert!(msg.contains("timed out") && msg.contains("RECOTEM_HTTP_TIMEOUT_SECONDS"), "{msg}");
    assert!(took < Duration::from_secs(6), "gave up after {took:?}, not about 1 s");
}

#[test]
fn the_ssrf_guard_refuses_loopback_unless_allowed() {
    let server = Server::start(|_, _| ok(b"user_id,item_id\nu,i\n"));
    let (s, recipe) = setup(&server.url("/data.csv"), &sha256(b"x"), false);
    let run = s.run(&["train", &recipe]);
    run.expect_code(7);
    let msg = error_message(&run);
    assert!(msg.contains("refused by the SSRF guard") && msg.contains("127.0.0.1") && msg.contains("loopback"), "{msg}");
    assert!(msg.contains("RECOTEM_HTTP_ALLOW_PRIVATE"), "says how to allow it: {msg}");
    assert!(server.hits().is_empty(), "no request was sent: {:?}", server.hits());
    // No secret in what was written: not the signing key.
    let key_hex = crate::common::KEYS.split(':').nth(1).unwrap();
    assert!(!run.stderr().contains(key_hex));

    // `validate` runs the guard only (HTTP-09): refused the same way, and
    // when allowed it passes without a request.
    let run = s.run(&["validate", &recipe]);
    run.expect_code(7);
    let (s, recipe) = setup(&server.url("/data.csv"), &sha256(b"x"), true);
    let run = s.run(&["validate", &recipe]);
    run.expect_code(0);
    assert!(run.stdout().contains("Validation passed."));
    assert!(server.hits().is_empty(), "validate never downloads: {:?}", server.hits());
}

#[test]
fn item_metadata_over_http_goes_through_the_same_fetch() {
    let body = data();
    let meta = b"item_id,title\ni0000,Zero\ni0104,One hundred four\n".to_vec();
    let (served, served_meta) = (body.clone(), meta.clone());
    let server = Server::start(move |path, _| match path {
        "/data.csv" => ok(&served),
        "/meta-old.csv" => redirect(308, "/meta.csv"),
        "/meta.csv" => ok(&served_meta),
        _ => Reply::Full(404, vec![], vec![]),
    });
    let (s, recipe) = setup(&server.url("/data.csv"), &sha256(&body), true);
    let text = std::fs::read_to_string(&recipe).unwrap().replace(
        "training:",
        &format!(
            "item_metadata: {{type: csv, path: \"{}\", sha256: {}, fields: [title]}}\ntraining:",
            server.url("/meta-old.csv"),
            sha256(&meta)
        ),
    );
    std::fs::write(&recipe, &text).unwrap();
    let run = s.run(&["train", &recipe]);
    run.expect_code(0);
    let hops = run.events_named("metadata_source_redirect");
    assert_eq!(hops.len(), 1, "{}", run.stderr());
    assert_eq!(hops[0]["status"], 308);

    // A field missing with `on_field_missing: null` makes the host open the
    // metadata several times, one column at a time: still one download.
    let asked = |server: &Server| server.hits().iter().filter(|p| *p == "/meta-old.csv").count();
    let before = asked(&server);
    std::fs::write(&recipe, text.replace("fields: [title]}", "fields: [title, genre], on_field_missing: null}")).unwrap();
    let run = s.run(&["train", &recipe]);
    run.expect_code(0);
    assert_eq!(run.events_named("metadata_field_missing_filled_null").len(), 1, "{}", run.stderr());
    assert_eq!(asked(&server) - before, 1, "downloaded once: {:?}", server.hits());

    // A wrong pin on the metadata is exit 7 too.
    std::fs::write(&recipe, text.replace(&sha256(&meta), &sha256(b"not it"))).unwrap();
    let run = s.run(&["train", &recipe]);
    run.expect_code(7);
    assert!(error_message(&run).contains("item_metadata.path"), "{}", error_message(&run));
}
