//! `recotem serve`, black-box: the real binary on an ephemeral 127.0.0.1
//! port, spoken to over plain HTTP/1.1 sockets. Every loop is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Scratch, quickstart_csv};

/// A plaintext API key and its `RECOTEM_API_KEYS` entry.
const API_KEY: &str = "recotem-quickstart-demo-key-0000";

pub(crate) fn api_keys_entry() -> String {
    format!("demo:sha256:{}", recotem::artifact::keys::api_key_hash(API_KEY))
}

/// One HTTP answer.
#[derive(Debug)]
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A running server and its stderr, collected line by line.
pub(crate) struct Server {
    child: Child,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub(crate) fn start(s: &Scratch, args: &[&str]) -> Server {
        Self::try_start(s, args).unwrap_or_else(|log| panic!("server did not start:\n{log}"))
    }

    fn try_start(s: &Scratch, args: &[&str]) -> Result<Server, String> {
        let mut all = vec!["serve", "--recipes", "recipes", "--port", "0"];
        all.extend_from_slice(args);
        let mut child = s.command(&all).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().expect("spawn serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let port = log.lock().unwrap().iter().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["event"] == "serve_listening").then(|| v["address"].as_str()?.rsplit(':').next()?.parse::<u16>().ok())?
            });
            if let Some(port) = port {
                return Ok(Server { child, port, log });
            }
            if let Ok(Some(_)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return Err(log.lock().unwrap().join("\n"));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        Err(format!("no serve_listening event in 60 s:\n{}", log.lock().unwrap().join("\n")))
    }

    fn events(&self, name: &str) -> Vec<Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == name)
            .collect()
    }

    /// Send a raw request (headers given in full except Host/Content-Length).
    fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: 127.0.0.1:{}\r\n", self.port));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
        }
        req.push_str("\r\n");
        if let Some(b) = body {
            req.push_str(b);
        }
        stream.write_all(req.as_bytes()).expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
        let headers = lines.filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Reply { status, headers, body: body.to_string() }
    }

    fn get(&self, path: &str) -> Reply {
        self.raw("GET", path, &[("X-API-Key", API_KEY)], None)
    }

    pub(crate) fn post(&self, path: &str, body: Value) -> Reply {
        self.raw("POST", path, &[("X-API-Key", API_KEY)], Some(&body.to_string()))
    }

    fn stop(mut self) -> (i32, Vec<String>) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let code = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("server did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(25));
        };
        std::thread::sleep(Duration::from_millis(100));
        let log = self.log.lock().unwrap().clone();
        (code, log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A recipe named `name` over `csv`, written to recipes/<name>.yaml.
fn write_recipe(s: &Scratch, name: &str, csv: &str, versioning: &str, extra: &str) {
    s.write(
        &format!("recipes/{name}.yaml"),
        format!(
            "name: {name}\n\
             source: {{type: csv, path: {csv}}}\n\
             schema: {{user_column: user_id, item_column: item_id}}\n\
             {extra}\
             training: {{algorithms: [TopPop], cutoff: 10, n_trials: 2}}\n\
             output: {{path: out/{name}.recotem, versioning: {versioning}}}\n"
        ),
    );
}

fn train(s: &Scratch, name: &str) {
    s.run(&["train", &format!("recipes/{name}.yaml")]).expect_code(0);
}

/// A scratch dir with API keys and one trained recipe `demo`.
fn trained(versioning: &str) -> Scratch {
    let mut s = Scratch::new();
    s.env("RECOTEM_API_KEYS", &api_keys_entry());
    write_recipe(&s, "demo", &quickstart_csv().display().to_string(), versioning, "");
    train(&s, "demo");
    s
}

/// The items user `u` interacted with in the quickstart data.
fn history_of(u: &str) -> Vec<String> {
    std::fs::read_to_string(quickstart_csv())
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split(',');
            (f.next() == Some(u)).then(|| f.next().unwrap_or_default().to_string())
        })
        .collect()
}

fn sha256_file(path: &std::path::Path) -> String {
    format!("sha256:{}", recotem::util::sha256_hex(&std::fs::read(path).unwrap()))
}

fn items(v: &Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|i| i["item_id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn serve_recommend_verbs_headers_and_errors() {
    let mut s = trained("always_overwrite");
    s.env("RECOTEM_METRICS_ENABLED", "true");
    let srv = Server::start(&s, &[]);
    let version = sha256_file(&s.path("out/demo.recotem"));

    // Health needs no key; request ids are generated (12 hex) or echoed.
    let r = srv.raw("GET", "/v1/health", &[], None);
    assert_eq!((r.status, r.body.as_str()), (200, r#"{"status":"ok","total":1,"loaded":1}"#));
    let rid = r.header("x-request-id").unwrap();
    assert!(rid.len() == 12 && rid.bytes().all(|b| b.is_ascii_hexdigit()), "{rid}");
    assert_eq!(r.header("content-type"), Some("application/json"));

    // :recommend — shape, header, known items excluded, limit respected.
    let r = srv.raw(
        "POST",
        "/v1/recipes/demo:recommend",
        &[("X-API-Key", API_KEY), ("X-Request-ID", "client-req-0001")],
        Some(r#"{"user_id": "u0000", "limit": 5}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-request-id"), Some("client-req-0001"));
    assert_eq!(r.header("x-recotem-model-version"), Some(version.as_str()));
    let v = r.json();
    assert_eq!(v["request_id"], "client-req-0001");
    assert_eq!((v["recipe"].as_str(), v["model_version"].as_str()), (Some("demo"), Some(version.as_str())));
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["request_id", "recipe", "model_version", "items"]);
    let got = items(&v);
    assert_eq!(got.len(), 5);
    let seen = history_of("u0000");
    assert!(got.iter().all(|i| !seen.contains(i)), "known items must be excluded: {got:?}");
    let scores: Vec<f64> = v["items"].as_array().unwrap().iter().map(|i| i["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "best first: {scores:?}");
    // An invalid client id is replaced.
    let r = srv.raw("POST", "/v1/recipes/demo:recommend", &[("X-API-Key", API_KEY), ("X-Request-ID", "bad id!")], Some(r#"{"user_id":"u0000"}"#));
    assert_eq!(r.header("x-request-id").unwrap().len(), 12);
    assert_eq!(items(&r.json()).len(), 10, "limit defaults to 10");

    // exclude_items are excluded; the percent-encoded colon is accepted.
    let r = srv.post("/v1/recipes/demo%3Arecommend", json!({"user_id": "u0000", "limit": 5, "exclude_items": [got[0], got[2]]}));
    assert_eq!(r.status, 200, "{}", r.body);
    let again = items(&r.json());
    assert!(!again.contains(&got[0]) && !again.contains(&got[2]) && again.contains(&got[1]), "{again:?}");

    // :recommend-related.
    let r = srv.post("/v1/recipes/demo:recommend-related", json!({"seed_items": ["i0000", "nope"], "limit": 3}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-recotem-model-version"), Some(version.as_str()));
    let rel = items(&r.json());
    assert_eq!(rel.len(), 3);
    assert!(!rel.contains(&"i0000".to_string()), "seeds are not recommended");

    // Error envelopes, exactly as the reference service.
    let r = srv.post("/v1/recipes/demo:recommend", json!({"user_id": "no-such-user", "limit": 5}));
    assert_eq!((r.status, r.body.as_str()), (404, r#"{"detail":"user not seen during training","code":"UNKNOWN_USER"}"#));
    assert!(r.header("x-request-id").is_some());
    let r = srv.post("/v1/recipes/demo:recommend-related", json!({"seed_items": ["no-such-item"], "limit": 5}));
    assert_eq!((r.status, r.body.as_str()), (404, r#"{"detail":"no known seed_items","code":"UNKNOWN_SEED_ITEMS"}"#));
    let r = srv.post("/v1/recipes/nope:recommend", json!({"user_id": "196"}));
    assert_eq!((r.status, r.body.as_str()), (404, r#"{"detail":"Recipe 'nope' not found","code":"RECIPE_NOT_FOUND"}"#));

    // 422s: request_id equals the header, per-field errors.
    let r = srv.post("/v1/recipes/demo:recommend", json!({"user_id": "u0000", "limit": 0}));
    assert_eq!(r.status, 422);
    let rid = r.header("x-request-id").unwrap().to_string();
    assert_eq!(
        r.body,
        format!(r#"{{"request_id":"{rid}","detail":"Request validation failed","code":"VALIDATION_ERROR","errors":[{{"type":"greater_than_equal","loc":["body","limit"],"msg":"Input should be greater than or equal to 1"}}]}}"#)
    );
    let cases: Vec<(Value, &str, Value)> = vec![
        (json!({"limit": 5}), "missing", json!(["body", "user_id"])),
        (json!({"user_id": 196}), "string_type", json!(["body", "user_id"])),
        (json!({"user_id": "u0000", "limit": 1001}), "less_than_equal", json!(["body", "limit"])),
        (json!({"user_id": "x".repeat(257)}), "string_too_long", json!(["body", "user_id"])),
        (json!({"user_id": ""}), "string_too_short", json!(["body", "user_id"])),
        (json!({"user_id": "u0000", "extra": 1}), "extra_forbidden", json!(["body", "extra"])),
        (json!({"user_id": "u0000", "exclude_items": vec!["i"; 1001]}), "too_long", json!(["body", "exclude_items"])),
        (json!({"user_id": "u0000", "exclude_items": [""]}), "string_too_short", json!(["body", "exclude_items", 0])),
    ];
    for (body, kind, loc) in cases {
        let r = srv.post("/v1/recipes/demo:recommend", body.clone());
        assert_eq!(r.status, 422, "{body}: {}", r.body);
        let v = r.json();
        assert_eq!((&v["errors"][0]["type"], &v["errors"][0]["loc"]), (&json!(kind), &loc), "{body}: {v}");
        assert_eq!(v["request_id"].as_str(), r.header("x-request-id"));
    }
    for (verb, body, kind) in [
        ("recommend-related", json!({"seed_items": []}), "too_short"),
        ("recommend-related", json!({"seed_items": vec!["i"; 101]}), "too_long"),
        ("recommend-related", json!({"user_id": "u0000"}), "missing"),
    ] {
        let r = srv.post(&format!("/v1/recipes/demo:{verb}"), body.clone());
        assert_eq!((r.status, r.json()["errors"][0]["type"].as_str()), (422, Some(kind)), "{body}");
    }
    let r = srv.raw("POST", "/v1/recipes/demo:recommend", &[("X-API-Key", API_KEY)], Some("{not json"));
    assert_eq!((r.status, &r.json()["errors"][0]), (422, &json!({"type": "json_invalid", "loc": ["body", 0], "msg": "JSON decode error"})));

    // A wrong method on a verb path falls through to GET /v1/recipes/{name}.
    let r = srv.get("/v1/recipes/demo:recommend");
    assert_eq!((r.status, r.json()["errors"][0]["type"].as_str()), (422, Some("string_pattern_mismatch")));
    // Unknown paths and wrong methods keep the envelope.
    let r = srv.get("/v1/nope");
    assert_eq!((r.status, r.body.as_str()), (404, r#"{"detail":"Not Found","code":"NOT_FOUND"}"#));
    assert!(r.header("x-request-id").is_some());
    let r = srv.raw("DELETE", "/v1/health", &[], None);
    assert_eq!((r.status, r.json()["code"].as_str(), r.header("allow")), (405, Some("METHOD_NOT_ALLOWED"), Some("GET")));
    let r = srv.post("/v1/recipes", json!({}));
    assert_eq!(r.status, 405);

    // Hosts outside RECOTEM_ALLOWED_HOSTS are refused.
    let r = srv.raw("GET", "/v1/health", &[("Host", "evil.example")], None);
    assert_eq!((r.status, r.json()["code"].as_str()), (400, Some("INVALID_HOST")));
    let r = srv.raw("GET", "/v1/health", &[("Host", "localhost:1")], None);
    assert_eq!(r.status, 200);
    // No CORS unless configured; no OpenAPI outside development.
    let r = srv.raw("GET", "/v1/health", &[("Origin", "https://app.example")], None);
    assert!(r.header("access-control-allow-origin").is_none());
    assert_eq!(srv.get("/openapi.json").status, 404);

    // Metrics: key required, counters move.
    assert_eq!(srv.raw("GET", "/v1/metrics", &[], None).status, 401);
    let r = srv.get("/v1/metrics");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert!(r.body.contains("recotem_v1_requests_total{recipe=\"demo\",verb=\"recommend\",status=\"ok\"} 3\n"), "{}", r.body);
    assert!(r.body.contains("recotem_v1_requests_total{recipe=\"demo\",verb=\"recommend\",status=\"unknown_user\"} 1\n"));
    assert!(r.body.contains("recotem_v1_requests_total{recipe=\"demo\",verb=\"recommend\",status=\"validation_error\"} "));
    assert!(r.body.contains("recotem_model_loaded{recipe=\"demo\"} 1\n") && r.body.contains("recotem_active_recipes 1\n"));
    assert!(r.body.contains("recotem_v1_request_latency_seconds_bucket{recipe=\"demo\",verb=\"recommend\",le=\"+Inf\"}"));
}

#[test]
fn serve_batches_listing_details_and_auth() {
    let s = trained("append_sha");
    let srv = Server::start(&s, &[]);
    let version = sha256_file(&s.path(&format!("out/{}", std::fs::read_to_string(s.path("out/demo.recotem")).unwrap().trim())));

    // Batch: per-element results and errors, HTTP 200.
    let r = srv.post(
        "/v1/recipes/demo:batch-recommend",
        json!({"requests": [{"user_id": "u0000", "limit": 3}, {"user_id": "u0001", "limit": 3, "exclude_items": ["i0000"]}, {"user_id": "no-such-user", "limit": 3}, {"user_id": "u0000", "limit": 0}]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-recotem-model-version"), Some(version.as_str()));
    assert!(r.header("x-recotem-items-degraded").is_none());
    let v = r.json();
    let res = v["results"].as_array().unwrap();
    assert_eq!((res[0]["index"].as_u64(), res[0]["status"].as_str(), res[0]["items"].as_array().map(Vec::len)), (Some(0), Some("ok"), Some(3)));
    assert_eq!(res[1]["status"], "ok");
    assert_eq!(res[2], json!({"index": 2, "status": "error", "error": {"code": "UNKNOWN_USER", "message": "user not seen during training"}}));
    assert_eq!((res[3]["status"].as_str(), res[3]["error"]["code"].as_str()), (Some("error"), Some("VALIDATION_ERROR")));
    // The aggregate limit: 4 × 1000 + 999 fit, the next 1000 is refused, a
    // later 1 still fits (5000 in all).
    let mut reqs = vec![json!({"user_id": "u0000", "limit": 1000}); 4];
    reqs.push(json!({"user_id": "u0000", "limit": 999}));
    reqs.push(json!({"user_id": "u0000", "limit": 1000}));
    reqs.push(json!({"user_id": "u0000", "limit": 1}));
    let v = srv.post("/v1/recipes/demo:batch-recommend", json!({"requests": reqs})).json();
    let res = v["results"].as_array().unwrap();
    assert!(res[..5].iter().all(|e| e["status"] == "ok"));
    assert_eq!(res[5]["error"], json!({"code": "VALIDATION_ERROR", "message": "aggregate limit cap exceeded: 5000"}));
    assert_eq!(res[6]["status"], "ok");
    // Whole-request 422s: bounds, non-object elements, extra keys.
    for (body, kind) in [
        (json!({"requests": []}), "too_short"),
        (json!({"requests": vec![json!({"user_id": "u"}); 257]}), "too_long"),
        (json!({"requests": [{"user_id": "u0000"}, 7]}), "dict_type"),
        (json!({"requests": [{"user_id": "u0000"}], "x": 1}), "extra_forbidden"),
        (json!({"requests": [{"user_id": "u0000"}], "include_metadata": "yes"}), "bool_type"),
    ] {
        let r = srv.post("/v1/recipes/demo:batch-recommend", body.clone());
        assert_eq!((r.status, r.json()["errors"][0]["type"].as_str()), (422, Some(kind)), "{body}: {}", r.body);
    }
    let r = srv.post("/v1/recipes/nope:batch-recommend", json!({"requests": [{"user_id": "u0000"}]}));
    assert_eq!((r.status, r.json()["code"].as_str()), (404, Some("RECIPE_NOT_FOUND")));
    let v = srv
        .post("/v1/recipes/demo:batch-recommend-related", json!({"requests": [{"seed_items": ["i0000"], "limit": 3}, {"seed_items": ["no-such-item"], "limit": 3}]}))
        .json();
    assert_eq!(v["results"][0]["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["results"][1]["error"], json!({"code": "UNKNOWN_SEED_ITEMS", "message": "no known seed_items"}));

    // Listing and details.
    let v = srv.get("/v1/recipes").json();
    assert_eq!(v["recipes"][0]["name"], "demo");
    assert_eq!(v["recipes"][0]["model_version"].as_str(), Some(version.as_str()));
    assert_eq!(v["recipes"][0]["supported_verbs"], json!(["recommend", "recommend-related", "batch-recommend", "batch-recommend-related"]));
    assert_eq!(v["recipes"][0]["kind"], "user-item");
    let v = srv.get("/v1/recipes/demo").json();
    for k in ["config_digest", "algorithms", "best_algorithm", "trained_at", "best_class", "best_params", "best_score", "metric", "cutoff", "tuning", "data_stats", "recotem_version", "irspack_version", "recipe_hash", "loaded_at"] {
        assert!(v.get(k).is_some(), "detail lacks {k}: {v}");
    }
    assert_eq!(v["best_class"], v["best_algorithm"]);
    assert_eq!(v["data_stats"]["n_users"].as_u64(), Some(history_users()));
    let r = srv.get("/v1/recipes/nope");
    assert_eq!((r.status, r.body.as_str()), (404, r#"{"detail":"Recipe 'nope' not found","code":"RECIPE_NOT_FOUND"}"#));
    let v = srv.get("/v1/health/details").json();
    assert_eq!(v["status"], "ok");
    assert_eq!((v["recipes"]["demo"]["loaded"].as_bool(), v["recipes"]["demo"]["kid"].as_str()), (Some(true), Some("test")));

    // Auth: 401 beats 422; a wrong key and a short key look the same.
    for path in ["/v1/recipes", "/v1/recipes/demo", "/v1/health/details"] {
        let r = srv.raw("GET", path, &[], None);
        assert_eq!((r.status, r.body.as_str()), (401, r#"{"detail":"X-API-Key header required","code":"MISSING_API_KEY"}"#), "{path}");
    }
    let r = srv.raw("POST", "/v1/recipes/demo:recommend", &[], Some("{not json"));
    assert_eq!((r.status, r.json()["code"].as_str()), (401, Some("MISSING_API_KEY")));
    for key in ["not-a-real-key-not-a-real-key-not-a-real-k", "short", &"k".repeat(300), "recotem-quickstart-demo-key-0001"] {
        let r = srv.raw("POST", "/v1/recipes/demo:recommend", &[("X-API-Key", key)], Some(r#"{"user_id":"u0000"}"#));
        assert_eq!((r.status, r.body.as_str()), (401, r#"{"detail":"Invalid API key","code":"INVALID_API_KEY"}"#), "{key}");
    }
    assert!(!srv.events("auth_invalid_key").is_empty() && !srv.events("auth_short_key_rejected").is_empty());
    // The posture event says auth is on and names the key fingerprint only.
    let posture = &srv.events("security.posture")[0];
    assert_eq!(posture["auth_enabled"], true);
    assert_eq!(posture["signing_key_status"], "configured");
    assert_eq!(posture["signing_keys"][0]["kid"], "test");
    let log = srv.log.lock().unwrap().join("\n");
    assert!(!log.contains(API_KEY) && !log.contains(&recotem::artifact::keys::api_key_hash(API_KEY)), "secrets in the log");
}

fn history_users() -> u64 {
    let csv = std::fs::read_to_string(quickstart_csv()).unwrap();
    let mut users: Vec<&str> = csv.lines().skip(1).filter_map(|l| l.split(',').next()).collect();
    users.sort_unstable();
    users.dedup();
    users.len() as u64
}

#[test]
fn serve_item_metadata_with_deny_list() {
    let mut s = Scratch::new();
    s.env("RECOTEM_API_KEYS", &api_keys_entry());
    s.env("RECOTEM_METADATA_FIELD_DENY", " GENRE ");
    let mut meta = String::from("item_id,title,genre\n");
    for i in 0..200 {
        meta.push_str(&format!("i{i:04},Title \"{i}\",g{}\n", i % 3));
    }
    s.write("items.csv", meta);
    write_recipe(
        &s,
        "meta",
        &quickstart_csv().display().to_string(),
        "always_overwrite",
        "item_metadata: {type: csv, path: items.csv, fields: [title, genre]}\n",
    );
    train(&s, "meta");
    let srv = Server::start(&s, &[]);
    let v = srv.post("/v1/recipes/meta:recommend", json!({"user_id": "u0000", "limit": 3})).json();
    let first = &v["items"][0];
    let id = first["item_id"].as_str().unwrap();
    let n: u32 = id[1..].parse().unwrap();
    assert_eq!(first["title"], format!("Title \"{n}\""), "{v}");
    assert!(first.get("genre").is_none(), "denied field served: {v}");
    // Batch verbs join metadata only when asked.
    let v = srv.post("/v1/recipes/meta:batch-recommend", json!({"requests": [{"user_id": "u0000", "limit": 1}]})).json();
    assert!(v["results"][0]["items"][0].get("title").is_none(), "{v}");
    let v = srv.post("/v1/recipes/meta:batch-recommend", json!({"requests": [{"user_id": "u0000", "limit": 1}], "include_metadata": true})).json();
    assert!(v["results"][0]["items"][0].get("title").is_some(), "{v}");
}

#[test]
fn serve_hot_swaps_refuses_corrupt_artifacts_and_follows_the_directory() {
    let mut s = trained("append_sha");
    s.env("RECOTEM_WATCH_INTERVAL", "1");
    s.env("RECOTEM_METRICS_ENABLED", "1");
    let srv = Server::start(&s, &[]);
    let version = |srv: &Server| srv.post("/v1/recipes/demo:recommend", json!({"user_id": "u0000"})).header("x-recotem-model-version").map(str::to_string);
    let wait_for = |what: &str, f: &dyn Fn() -> bool| {
        for _ in 0..200 {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting for {what}:\n{}", srv.log.lock().unwrap().join("\n"));
    };
    let v1 = version(&srv).expect("serving");

    // A new artifact (different data) is picked up through the pointer.
    let csv: String = std::fs::read_to_string(quickstart_csv()).unwrap().lines().take(3000).collect::<Vec<_>>().join("\n");
    s.write("less.csv", csv + "\n");
    write_recipe(&s, "demo", "less.csv", "append_sha", "");
    // The recipe file changed too (source path): the watcher reloads it.
    train(&s, "demo");
    let pointer = std::fs::read_to_string(s.path("out/demo.recotem")).unwrap();
    let v2 = sha256_file(&s.path(&format!("out/{}", pointer.trim())));
    assert_ne!(v1, v2);
    wait_for("the new model", &|| version(&srv).as_deref() == Some(v2.as_str()));
    assert!(!srv.events("artifact_hot_swapped").is_empty());

    // A corrupt artifact is refused; the old model keeps serving.
    s.write("out/demo.deadbeef.recotem", b"RECOTEM\0garbage that is not an artifact");
    s.write("out/demo.recotem.tmp", "demo.deadbeef.recotem\n");
    std::fs::rename(s.path("out/demo.recotem.tmp"), s.path("out/demo.recotem")).unwrap();
    wait_for("the refusal", &|| srv.get("/v1/health/details").status == 503);
    let d = srv.get("/v1/health/details").json();
    assert_eq!((d["status"].as_str(), d["recipes"]["demo"]["loaded"].as_bool()), (Some("degraded"), Some(true)), "{d}");
    assert!(d["recipes"]["demo"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{d}");
    assert_eq!(srv.raw("GET", "/v1/health", &[], None).status, 200, "counts loaded models only");
    assert_eq!(version(&srv).as_deref(), Some(v2.as_str()));
    // The event follows the state change; the log reader may lag behind it.
    wait_for("the failure event", &|| !srv.events("artifact_load_failed").is_empty());
    let failed = srv.events("artifact_load_failed");
    assert_eq!(failed[0]["reason"], "parse", "{failed:?}");
    let m = srv.get("/v1/metrics").body;
    assert!(m.contains("recotem_swap_total{recipe=\"demo\",result=\"error\"} 1\n"), "{m}");
    assert!(m.contains("recotem_artifact_load_failures_total{recipe=\"demo\",reason=\"parse\"} 1\n"));

    // A tampered artifact (valid structure, wrong HMAC) is refused as well.
    let mut bytes = std::fs::read(s.path(&format!("out/{}", pointer.trim()))).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    s.write("out/demo.cafebabe.recotem", bytes);
    s.write("out/demo.recotem.tmp", "demo.cafebabe.recotem\n");
    std::fs::rename(s.path("out/demo.recotem.tmp"), s.path("out/demo.recotem")).unwrap();
    wait_for("the HMAC refusal", &|| srv.events("artifact_load_failed").iter().any(|e| e["reason"] == "hmac"));
    assert_eq!(version(&srv).as_deref(), Some(v2.as_str()));

    // Back to a good artifact: the error clears.
    s.write("out/demo.recotem.tmp", pointer.clone());
    std::fs::rename(s.path("out/demo.recotem.tmp"), s.path("out/demo.recotem")).unwrap();
    wait_for("recovery", &|| srv.get("/v1/health/details").status == 200);

    // Recipes added and removed at run time.
    write_recipe(&s, "later", &quickstart_csv().display().to_string(), "always_overwrite", "");
    wait_for("discovery", &|| srv.raw("GET", "/v1/health", &[], None).body.contains("\"total\":2"));
    assert_eq!(srv.raw("GET", "/v1/health", &[], None).status, 503, "not trained yet");
    assert_eq!(srv.post("/v1/recipes/later:recommend", json!({"user_id": "u0000"})).json()["code"], "RECIPE_UNAVAILABLE");
    train(&s, "later");
    wait_for("the new recipe's model", &|| srv.post("/v1/recipes/later:recommend", json!({"user_id": "u0000"})).status == 200);
    std::fs::remove_file(s.path("recipes/later.yaml")).unwrap();
    wait_for("removal", &|| srv.get("/v1/recipes/later").status == 404);
    assert!(!srv.events("recipe_discovered").is_empty() && !srv.events("recipe_removed").is_empty());
}

#[test]
fn serve_drains_on_sigterm_and_exits_0() {
    let mut s = trained("always_overwrite");
    s.env("RECOTEM_DRAIN_SECONDS", "3");
    let srv = Server::start(&s, &[]);
    assert_eq!(srv.raw("GET", "/v1/health", &[], None).status, 200);
    // A keep-alive connection left open does not hold the exit past the drain.
    let mut idle = TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    idle.write_all(format!("GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", srv.port).as_bytes()).unwrap();
    let started = Instant::now();
    let (code, log) = srv.stop();
    assert_eq!(code, 0, "{}", log.join("\n"));
    assert!(started.elapsed() < Duration::from_secs(10));
    let shutdown: Vec<Value> = log.iter().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|v| v["event"] == "serve_shutdown").collect();
    assert_eq!(shutdown.len(), 1, "{}", log.join("\n"));
    assert_eq!((shutdown[0]["drain_seconds"].as_u64(), shutdown[0]["signal"].as_str()), (Some(3), Some("SIGTERM")));
}

#[test]
fn serve_bind_in_use_exits_8_naming_the_address() {
    let s = trained("always_overwrite");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let run = s.run(&["serve", "--recipes", "recipes", "--port", &port]);
    run.expect_code(8);
    let address = format!("127.0.0.1:{port}");
    assert_eq!(run.events_named("serve_bind_failed")[0]["address"], address.as_str());
    assert!(run.events_named("command_failed")[0]["error"].as_str().unwrap().contains(&address), "{}", run.stderr());
    assert_eq!(run.events_named("security.posture").len(), 1);
}

#[test]
fn serve_configuration_errors_and_no_key_modes() {
    let mut s = Scratch::new();
    s.write("recipes/.keep", "");
    // --help teaches the flags, the key variables and the exit codes.
    let help = s.run(&["serve", "--help"]);
    help.expect_code(0);
    for needle in ["--recipes", "--host", "--port", "--insecure-no-auth", "RECOTEM_API_KEYS", "RECOTEM_WATCH_INTERVAL", "RECOTEM_DRAIN_SECONDS", "/v1/health", "Exit codes:"] {
        assert!(help.stdout().contains(needle), "serve --help lacks {needle}");
    }
    s.run(&["serve"]).expect_code(2);
    // Start-up errors: exit codes, and the posture event comes first.
    let run = s.run(&["serve", "--recipes", "missing-dir"]);
    run.expect_code(2);
    s.env("RECOTEM_API_KEYS", "demo:sha256:1234");
    let run = s.run(&["serve", "--recipes", "recipes", "--port", "0"]);
    run.expect_code(8);
    assert!(!run.stderr().contains("1234"), "digest echoed: {}", run.stderr());
    assert_eq!(run.events_named("security.posture").len(), 1);
    s.unset("RECOTEM_API_KEYS");
    let run = s.run(&["serve", "--recipes", "recipes", "--port", "0", "--insecure-no-auth"]);
    run.expect_code(8);
    assert!(run.events_named("command_failed")[0]["error"].as_str().unwrap().contains("RECOTEM_ENV"));
    for (var, value) in [("RECOTEM_WATCH_INTERVAL", "soon"), ("RECOTEM_LOG_FORMAT", "xml"), ("RECOTEM_PORT", "99999")] {
        s.env(var, value);
        let run = s.run(&["serve", "--recipes", "recipes"]);
        run.expect_code(8);
        if var != "RECOTEM_LOG_FORMAT" {
            assert!(run.events_named("command_failed")[0]["error"].as_str().unwrap().contains(var), "{}", run.stderr());
        }
        s.unset(var);
    }
    s.unset("RECOTEM_SIGNING_KEYS");
    let run = s.run(&["serve", "--recipes", "recipes", "--port", "0"]);
    run.expect_code(8);
    assert_eq!(run.events_named("security.posture")[0]["signing_key_status"], "missing");

    // Without API keys: no key needed, bound to loopback whatever --host says.
    s.env("RECOTEM_SIGNING_KEYS", crate::common::KEYS);
    write_recipe(&s, "broken", "nowhere.csv", "always_overwrite", "unknown_field: 1\n");
    let srv = Server::start(&s, &["--host", "0.0.0.0"]);
    assert_eq!(srv.events("host_forced_to_loopback").len(), 1);
    assert_eq!(srv.events("security.posture")[0]["auth_enabled"], false);
    assert_eq!(srv.events("security.posture")[0]["bind_host"], "127.0.0.1");
    let r = srv.raw("GET", "/v1/health/details", &[], None);
    assert_eq!(r.status, 503, "a broken recipe is registered, not loaded: {}", r.body);
    assert_eq!(r.json()["recipes"]["broken"]["loaded"], false);
    assert_eq!(srv.raw("GET", "/v1/health", &[], None).body, r#"{"status":"degraded","total":1,"loaded":0}"#);
    let r = srv.raw("GET", "/v1/recipes/broken", &[], None);
    assert_eq!((r.status, r.json()["code"].as_str()), (503, Some("RECIPE_UNAVAILABLE")));
    drop(srv);

    // Development mode: --insecure-no-auth, CORS and OpenAPI.
    s.env("RECOTEM_ENV", "test");
    s.env("RECOTEM_API_KEYS", &api_keys_entry());
    s.env("RECOTEM_ALLOWED_ORIGINS", "https://app.example");
    let srv = Server::start(&s, &["--insecure-no-auth"]);
    assert!(!srv.events("INSECURE_NO_AUTH_ACTIVE").is_empty());
    assert_eq!(srv.raw("GET", "/v1/recipes", &[], None).status, 200, "no key needed");
    let r = srv.raw("GET", "/openapi.json", &[], None);
    assert_eq!((r.status, r.json()["openapi"].as_str()), (200, Some("3.1.0")));
    let r = srv.raw(
        "OPTIONS",
        "/v1/recipes/demo:recommend",
        &[("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "x-api-key,content-type")],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(r.header("access-control-allow-headers"), Some("x-api-key,content-type"));
    let r = srv.raw("GET", "/v1/health", &[("Origin", "https://app.example")], None);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    assert!(r.header("access-control-expose-headers").unwrap().contains("X-Recotem-Model-Version"));
    let r = srv.raw("OPTIONS", "/v1/health", &[("Origin", "https://evil.example"), ("Access-Control-Request-Method", "GET")], None);
    assert_eq!(r.status, 400);
    let r = srv.raw("GET", "/v1/health", &[("Origin", "https://evil.example")], None);
    assert!(r.header("access-control-allow-origin").is_none());
}
