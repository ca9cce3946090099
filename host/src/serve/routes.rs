//! Routing, validation and the endpoint handlers of the `/v1` API.
//!
//! Routing is by hand (one axum fallback handler) so that every answer —
//! unknown paths, wrong methods, bad hosts included — carries the error
//! envelope and `X-Request-ID`, and so that `{name}:verb` paths (also with
//! a percent-encoded colon) resolve as the reference service does.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::auth::ApiKeys;
use super::errors::{ApiError, field_error, json_response};
use super::metrics::{self, RecipeView};
use super::registry::{Entry, Registry, Served};
use crate::events::Event;
use crate::model::Scratch;

/// Largest request body read (bytes).
pub const MAX_BODY_BYTES: usize = 16 << 20;
/// Longest `user_id`, seed or excluded item id.
const MAX_ID_CHARS: usize = 256;
/// Most `exclude_items`.
const MAX_EXCLUDE: usize = 1000;
/// Most `seed_items`.
const MAX_SEEDS: usize = 100;
/// Largest `limit`.
const MAX_LIMIT: i64 = 1000;
/// Most elements of a batch.
const MAX_BATCH: usize = 256;
/// Largest sum of `limit` over the accepted elements of a batch.
const MAX_BATCH_LIMIT_SUM: usize = 5000;

const VERBS: [&str; 4] = metrics::VERBS;
const EXPOSED: &str = "X-Request-ID, X-Recotem-Model-Version, X-Recotem-Items-Degraded";

/// Shared state of the request handlers.
pub struct App {
    /// The models.
    pub registry: Arc<Registry>,
    /// API keys; `None` when authentication is off.
    pub auth: Option<ApiKeys>,
    /// Accepted `Host` names (lower-case; `*` and `*.domain` patterns).
    pub allowed_hosts: Vec<String>,
    /// CORS origins (empty: no CORS).
    pub allowed_origins: Vec<String>,
    /// Serve `/v1/metrics`.
    pub metrics_enabled: bool,
    /// Serve `/openapi.json`.
    pub openapi: bool,
}

thread_local! {
    static SCRATCH: RefCell<(Scratch, Vec<(u32, f32)>)> = RefCell::new((Scratch::default(), Vec::new()));
    static RNG: RefCell<crate::util::Rng> = RefCell::new(crate::util::Rng::new(seed()));
}

fn seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    }
    u64::from_le_bytes(b)
}

fn valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn new_request_id() -> String {
    let n = RNG.with(|r| r.borrow_mut().next_u64());
    format!("{:012x}", n & 0xffff_ffff_ffff)
}

/// `^[A-Za-z0-9_-]{1,64}$`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn percent_decode(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains('%') {
        return path.into();
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned().into()
}

fn host_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    if allowed.iter().any(|h| h == "*") {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let host = host.trim().to_ascii_lowercase();
    let name = if host.starts_with('[') {
        host.split(']').next().map(|h| format!("{h}]")).unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default().to_string()
    };
    allowed.iter().any(|pattern| match pattern.strip_prefix("*.") {
        Some(domain) => name.ends_with(&format!(".{domain}")),
        None => *pattern == name,
    })
}

fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    allowed.iter().any(|o| o == "*" || o == origin)
}

/// The one handler: host check, CORS, routing, then the endpoint.
pub async fn handle(State(app): State<Arc<App>>, request: Request) -> Response {
    let request_id = match request.headers().get("x-request-id").and_then(|v| v.to_str().ok()) {
        Some(id) if valid_request_id(id) => id.to_string(),
        _ => new_request_id(),
    };
    if !host_allowed(&app.allowed_hosts, request.headers()) {
        return ApiError::new(StatusCode::BAD_REQUEST, "INVALID_HOST", "Invalid host header").response(&request_id);
    }
    let origin = if app.allowed_origins.is_empty() {
        None
    } else {
        request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_string)
    };
    if let Some(origin) = &origin
        && request.method() == Method::OPTIONS
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return preflight(&app, origin, request.headers(), &request_id);
    }
    let mut response = route(&app, request, &request_id).await;
    if let Some(origin) = origin.filter(|o| origin_allowed(&app.allowed_origins, o)) {
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(if app.allowed_origins.iter().any(|o| o == "*") { "*" } else { &origin }) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

fn preflight(app: &App, origin: &str, headers: &HeaderMap, request_id: &str) -> Response {
    if !origin_allowed(&app.allowed_origins, origin) {
        return ApiError::new(StatusCode::BAD_REQUEST, "CORS_ORIGIN_DISALLOWED", "Disallowed CORS origin").response(request_id);
    }
    let method_ok = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|m| m.to_str().ok())
        .is_some_and(|m| matches!(m, "GET" | "POST" | "OPTIONS"));
    if !method_ok {
        return ApiError::new(StatusCode::BAD_REQUEST, "CORS_METHOD_DISALLOWED", "Disallowed CORS method").response(request_id);
    }
    let mut response = json_response(StatusCode::OK, request_id, b"{}".to_vec());
    let h = response.headers_mut();
    let allow_origin = if app.allowed_origins.iter().any(|o| o == "*") { "*" } else { origin };
    if let Ok(v) = HeaderValue::from_str(allow_origin) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    if let Some(req_headers) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, req_headers.clone());
    }
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    response
}

fn method_not_allowed(allow: &'static str, request_id: &str) -> Response {
    let mut r = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "Method Not Allowed").response(request_id);
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

fn not_found(request_id: &str) -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Not Found").response(request_id)
}

/// Check the API key; the refusal as a response.
fn authenticate(app: &App, headers: &HeaderMap, path: &str, request_id: &str) -> Result<(), Response> {
    let Some(keys) = &app.auth else { return Ok(()) };
    match keys.check(headers.get("x-api-key").map(HeaderValue::as_bytes)) {
        Ok(_) => Ok(()),
        Err(refusal) => {
            Event::warn(refusal.event()).field("path", path.to_string()).field("request_id", request_id.to_string()).emit();
            let e = match refusal {
                super::auth::Refusal::Missing => {
                    ApiError::new(StatusCode::UNAUTHORIZED, "MISSING_API_KEY", "X-API-Key header required")
                }
                _ => ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_API_KEY", "Invalid API key"),
            };
            Err(e.response(request_id))
        }
    }
}

async fn route(app: &App, request: Request, request_id: &str) -> Response {
    let (parts, body) = request.into_parts();
    let path = percent_decode(parts.uri.path());
    let method = &parts.method;
    let get = method == Method::GET;
    macro_rules! authed {
        () => {
            if let Err(r) = authenticate(app, &parts.headers, &path, request_id) {
                return r;
            }
        };
    }
    // Fixed paths: (needs the API key, endpoint).
    type Endpoint = fn(&App, &str) -> Response;
    let fixed: Option<(bool, Endpoint)> = match path.as_ref() {
        "/v1/health" => Some((false, health)),
        "/v1/health/details" => Some((true, health_details)),
        "/v1/metrics" if app.metrics_enabled => Some((true, metrics_text)),
        "/v1/recipes" => Some((true, list)),
        "/openapi.json" if app.openapi => Some((false, openapi)),
        _ => None,
    };
    if let Some((needs_key, endpoint)) = fixed {
        if !get {
            return method_not_allowed("GET", request_id);
        }
        if needs_key {
            authed!();
        }
        return endpoint(app, request_id);
    }
    let Some(rest) = path.strip_prefix("/v1/recipes/").filter(|r| !r.is_empty() && !r.contains('/')) else {
        return not_found(request_id);
    };
    if method == Method::POST {
        if let Some((name, verb)) = rest.rsplit_once(':')
            && let Some(v) = VERBS.iter().position(|x| *x == verb)
        {
            return verb_request(app, &parts, body, name, v, request_id).await;
        }
        return method_not_allowed("GET", request_id);
    }
    if !get {
        return method_not_allowed("GET", request_id);
    }
    authed!();
    if !valid_name(rest) {
        app.registry.global.validation_outside_verb.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return name_pattern_error().response(request_id);
    }
    detail(app, rest, request_id)
}

fn openapi(_: &App, request_id: &str) -> Response {
    json_response(StatusCode::OK, request_id, super::openapi::document().to_string().into_bytes())
}

fn name_pattern_error() -> ApiError {
    ApiError::validation(vec![field_error(
        "string_pattern_mismatch",
        vec!["path".into(), "name".into()],
        "String should match pattern '^[A-Za-z0-9_-]{1,64}$'",
    )])
}

// ------------------------------------------------------------ health & list

fn health(app: &App, request_id: &str) -> Response {
    let entries = app.registry.entries();
    let total = entries.len();
    let loaded = entries.values().filter(|e| e.model.load().is_some()).count();
    let ok = total == 0 || loaded == total;
    let body = json!({"status": if ok { "ok" } else { "degraded" }, "total": total, "loaded": loaded});
    json_response(if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, request_id, body.to_string().into_bytes())
}

fn health_details(app: &App, request_id: &str) -> Response {
    let entries = app.registry.entries();
    let mut recipes = Map::new();
    let mut ok = true;
    for (name, e) in entries.iter() {
        let model = e.model.load_full();
        let error = e.error();
        ok &= model.is_some() && error.is_none();
        let mut item = Map::new();
        item.insert("loaded".into(), model.is_some().into());
        if let Some(m) = &model {
            item.insert("trained_at".into(), m.header.get("trained_at").cloned().unwrap_or(Value::Null));
            item.insert("best_class".into(), m.header.get("best_class").cloned().unwrap_or(Value::Null));
            item.insert("kid".into(), m.kid.clone().into());
            item.insert("model_version".into(), m.version.clone().into());
        }
        if let Some(err) = error {
            item.insert("error".into(), err.into());
        }
        recipes.insert(name.clone(), Value::Object(item));
    }
    let body = json!({"status": if ok { "ok" } else { "degraded" }, "recipes": recipes});
    json_response(if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, request_id, body.to_string().into_bytes())
}

fn summary(name: &str, m: &Served) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("name".into(), name.into());
    out.insert("model_version".into(), m.version.clone().into());
    out.insert("loaded_at".into(), m.loaded_at.clone().into());
    out.insert("supported_verbs".into(), json!(VERBS));
    out.insert("kind".into(), "user-item".into());
    out
}

fn list(app: &App, request_id: &str) -> Response {
    let entries = app.registry.entries();
    let recipes: Vec<Value> = entries
        .iter()
        .filter_map(|(name, e)| e.model.load_full().map(|m| Value::Object(summary(name, &m))))
        .collect();
    json_response(StatusCode::OK, request_id, json!({"recipes": recipes}).to_string().into_bytes())
}

fn detail(app: &App, name: &str, request_id: &str) -> Response {
    let entries = app.registry.entries();
    let Some(entry) = entries.get(name) else { return ApiError::recipe_not_found(name).response(request_id) };
    let Some(m) = entry.model.load_full() else { return ApiError::recipe_unavailable(name).response(request_id) };
    let h = &m.header;
    let get = |k: &str| h.get(k).cloned().unwrap_or(Value::Null);
    let mut out = summary(name, &m);
    out.insert("config_digest".into(), get("config_digest"));
    let algorithms = h.get("algorithms").cloned().or_else(|| h.get("tuning").and_then(|t| t.get("tried_algorithms")).cloned());
    out.insert("algorithms".into(), algorithms.unwrap_or(Value::Null));
    out.insert("best_algorithm".into(), get("best_class"));
    for k in ["trained_at", "best_class", "best_params", "best_score", "metric", "cutoff", "tuning", "data_stats", "recotem_version"] {
        out.insert(k.into(), get(k));
    }
    out.insert("irspack_version".into(), Value::Null);
    out.insert("recipe_hash".into(), get("recipe_hash"));
    json_response(StatusCode::OK, request_id, Value::Object(out).to_string().into_bytes())
}

fn metrics_text(app: &App, request_id: &str) -> Response {
    let entries = app.registry.entries();
    let views: Vec<RecipeView<'_>> = entries
        .iter()
        .map(|(name, e)| RecipeView { name, loaded: e.model.load().is_some(), metrics: &e.metrics })
        .collect();
    let text = metrics::render(&app.registry.global, &views);
    let mut r = json_response(StatusCode::OK, request_id, text.into_bytes());
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r
}

// ------------------------------------------------------------ validation

/// A validated `:recommend` / `:recommend-related` body (ids borrowed from
/// the parsed JSON).
struct Query<'a> {
    /// `user_id` (recommend) — empty for related.
    user: &'a str,
    /// `seed_items` (related).
    seeds: Vec<&'a str>,
    limit: usize,
    exclude: Vec<&'a str>,
}

fn loc(prefix: &[Value], field: &str) -> Vec<Value> {
    let mut l = prefix.to_vec();
    l.push(field.into());
    l
}

fn check_id(v: &Value, at: Vec<Value>, errors: &mut Vec<Value>) -> Option<()> {
    match v.as_str() {
        None => errors.push(field_error("string_type", at, "Input should be a valid string")),
        Some("") => errors.push(field_error("string_too_short", at, "String should have at least 1 character")),
        Some(s) if s.chars().count() > MAX_ID_CHARS => {
            errors.push(field_error("string_too_long", at, format!("String should have at most {MAX_ID_CHARS} characters")))
        }
        Some(_) => return Some(()),
    }
    None
}

fn check_list<'a>(v: &'a Value, at: Vec<Value>, min: usize, max: usize, errors: &mut Vec<Value>) -> Option<Vec<&'a str>> {
    let Some(items) = v.as_array() else {
        errors.push(field_error("list_type", at, "Input should be a valid list"));
        return None;
    };
    if items.len() < min {
        let s = if min == 1 { "item" } else { "items" };
        errors.push(field_error("too_short", at, format!("List should have at least {min} {s} after validation, not {}", items.len())));
        return None;
    }
    if items.len() > max {
        errors.push(field_error("too_long", at, format!("List should have at most {max} items after validation, not {}", items.len())));
        return None;
    }
    let before = errors.len();
    for (i, item) in items.iter().enumerate() {
        let mut l = at.clone();
        l.push(i.into());
        check_id(item, l, errors);
    }
    (errors.len() == before).then(|| items.iter().filter_map(Value::as_str).collect())
}

/// Validate one query object; `related` selects the body shape. Errors are
/// located under `prefix`.
fn parse_query<'a>(body: &'a Value, related: bool, prefix: &[Value], errors: &mut Vec<Value>) -> Option<Query<'a>> {
    let Some(obj) = body.as_object() else {
        errors.push(field_error(
            "model_attributes_type",
            prefix.to_vec(),
            "Input should be a valid dictionary or object to extract fields from",
        ));
        return None;
    };
    let before = errors.len();
    let main = if related { "seed_items" } else { "user_id" };
    let mut query = Query { user: "", seeds: Vec::new(), limit: 10, exclude: Vec::new() };
    match obj.get(main) {
        None => errors.push(field_error("missing", loc(prefix, main), "Field required")),
        Some(v) if related => {
            if let Some(seeds) = check_list(v, loc(prefix, main), 1, MAX_SEEDS, errors) {
                query.seeds = seeds;
            }
        }
        Some(v) => {
            if check_id(v, loc(prefix, main), errors).is_some() {
                query.user = v.as_str().unwrap_or_default();
            }
        }
    }
    if let Some(v) = obj.get("limit") {
        let at = loc(prefix, "limit");
        let n = match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => n.as_i64().or(Some(i64::MAX)),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 1e18 => Some(f as i64),
                _ => {
                    errors.push(field_error("int_from_float", at.clone(), "Input should be a valid integer, got a number with a fractional part"));
                    None
                }
            },
            _ => {
                errors.push(field_error("int_type", at.clone(), "Input should be a valid integer"));
                None
            }
        };
        match n {
            Some(n) if n < 1 => errors.push(field_error("greater_than_equal", at, "Input should be greater than or equal to 1")),
            Some(n) if n > MAX_LIMIT => {
                errors.push(field_error("less_than_equal", at, format!("Input should be less than or equal to {MAX_LIMIT}")))
            }
            Some(n) => query.limit = n as usize,
            None => {}
        }
    }
    match obj.get("exclude_items") {
        None | Some(Value::Null) => {}
        Some(v) => {
            if let Some(list) = check_list(v, loc(prefix, "exclude_items"), 0, MAX_EXCLUDE, errors) {
                query.exclude = list;
            }
        }
    }
    for key in obj.keys() {
        if !matches!(key.as_str(), "limit" | "exclude_items") && key != main {
            errors.push(field_error("extra_forbidden", loc(prefix, key), "Extra inputs are not permitted"));
        }
    }
    (errors.len() == before).then_some(query)
}

/// The errors of a batch element as one message.
fn element_message(errors: &[Value]) -> String {
    errors
        .iter()
        .map(|e| {
            let at: Vec<String> = e["loc"].as_array().map(|l| l.iter().map(|p| p.to_string().trim_matches('"').to_string()).collect()).unwrap_or_default();
            let msg = e["msg"].as_str().unwrap_or_default();
            if at.is_empty() { msg.to_string() } else { format!("{}: {msg}", at.join(".")) }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

// ------------------------------------------------------------ scoring

/// Why a query produced no list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Miss {
    UnknownUser,
    UnknownSeeds,
    NoCandidates,
    Internal,
}

impl Miss {
    fn code(self) -> &'static str {
        match self {
            Miss::UnknownUser => "UNKNOWN_USER",
            Miss::UnknownSeeds => "UNKNOWN_SEED_ITEMS",
            Miss::NoCandidates => "NO_CANDIDATES",
            Miss::Internal => "INTERNAL_ERROR",
        }
    }
    fn message(self) -> &'static str {
        match self {
            Miss::UnknownUser => "user not seen during training",
            Miss::UnknownSeeds => "no known seed_items",
            Miss::NoCandidates => "no candidate items left after exclusions",
            Miss::Internal => "internal error",
        }
    }
    fn status_label(self) -> &'static str {
        match self {
            Miss::UnknownUser => "unknown_user",
            Miss::UnknownSeeds => "unknown_seed_items",
            Miss::NoCandidates => "no_candidates",
            Miss::Internal => "error",
        }
    }
    fn error(self) -> ApiError {
        let status = if self == Miss::Internal { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::NOT_FOUND };
        ApiError::new(status, self.code(), self.message())
    }
}

/// Score `q` against `m` and append the `[{item_id, score, …}]` array to
/// `out`. Uses this thread's scratch buffers: no allocation once warm.
fn score_into(m: &Served, q: &Query<'_>, related: bool, metadata: bool, out: &mut Vec<u8>) -> Result<(), Miss> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let (scratch, top) = &mut *guard;
            let n = m.payload.items.len();
            if related {
                let mut idx = [0u32; MAX_SEEDS];
                let mut known = 0usize;
                for s in q.seeds.iter().take(MAX_SEEDS) {
                    if let Some(i) = m.payload.items.get(s) {
                        idx[known] = i;
                        known += 1;
                    }
                }
                if known == 0 {
                    return Err(Miss::UnknownSeeds);
                }
                m.payload.model.score_items(&idx[..known], scratch);
                let scores = scratch.scores(n);
                for &i in &idx[..known] {
                    if let Some(s) = scores.get_mut(i as usize) {
                        *s = f32::NEG_INFINITY;
                    }
                }
            } else {
                let Some(u) = m.payload.users.get(q.user) else { return Err(Miss::UnknownUser) };
                let history = m.payload.history.row(u);
                let scores = scratch.scores(n);
                m.payload.model.score_user(u, history, scores);
                for &i in history.0 {
                    if let Some(s) = scores.get_mut(i as usize) {
                        *s = f32::NEG_INFINITY;
                    }
                }
            }
            let scores = scratch.scores(n);
            for id in &q.exclude {
                if let Some(i) = m.payload.items.get(id) {
                    scores[i as usize] = f32::NEG_INFINITY;
                }
            }
            scratch.top_k_into(q.limit, top);
            if related && top.is_empty() {
                return Err(Miss::NoCandidates);
            }
            out.push(b'[');
            for (k, &(i, s)) in top.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"item_id\":");
                // Escaped as serde_json escapes any string; cannot fail on a Vec.
                let _ = serde_json::to_writer(&mut *out, m.payload.items.id(i as usize));
                out.extend_from_slice(b",\"score\":");
                write_score(out, s);
                if metadata {
                    let meta = m.metadata_json.get(i as usize).map_or("", |m| &**m);
                    if !meta.is_empty() {
                        out.push(b',');
                        out.extend_from_slice(meta.as_bytes());
                    }
                }
                out.push(b'}');
            }
            out.push(b']');
            Ok(())
        })
    }));
    outcome.unwrap_or(Err(Miss::Internal))
}

fn write_score(out: &mut Vec<u8>, s: f32) {
    let v = s as f64;
    if v.is_finite() {
        let _ = serde_json::to_writer(&mut *out, &v);
    } else {
        out.extend_from_slice(b"null");
    }
}

// ------------------------------------------------------------ verbs

fn verb_response(status: StatusCode, request_id: &str, m: &Served, body: Vec<u8>) -> Response {
    let mut r = json_response(status, request_id, body);
    if let Ok(v) = HeaderValue::from_str(&m.version) {
        r.headers_mut().insert("x-recotem-model-version", v);
    }
    r
}

fn envelope_start(out: &mut Vec<u8>, request_id: &str, name: &str, m: &Served, list: &str) {
    out.extend_from_slice(b"{\"request_id\":\"");
    out.extend_from_slice(request_id.as_bytes());
    out.extend_from_slice(b"\",\"recipe\":\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\",\"model_version\":\"");
    out.extend_from_slice(m.version.as_bytes());
    out.extend_from_slice(b"\",\"");
    out.extend_from_slice(list.as_bytes());
    out.extend_from_slice(b"\":");
}

/// The entry's serving model, or the 404/503 answer with its metric status.
fn serving(entry: Option<&Entry>, name: &str) -> Result<Arc<Served>, (&'static str, ApiError)> {
    let Some(entry) = entry else { return Err(("recipe_not_found", ApiError::recipe_not_found(name))) };
    entry.model.load_full().ok_or_else(|| ("unavailable", ApiError::recipe_unavailable(name)))
}

async fn verb_request(app: &App, parts: &axum::http::request::Parts, body: Body, name: &str, verb: usize, request_id: &str) -> Response {
    let started = Instant::now();
    let entries = app.registry.entries();
    let entry = entries.get(name).cloned();
    drop(entries);
    let count = |status: &str| match &entry {
        Some(e) => e.metrics.request(verb, status, started.elapsed().as_secs_f64()),
        None => {
            if status == "recipe_not_found" {
                app.registry.global.not_found[verb].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    };
    if let Err(r) = authenticate(app, &parts.headers, parts.uri.path(), request_id) {
        count("unauthorized");
        return r;
    }
    if !valid_name(name) {
        count("validation_error");
        return name_pattern_error().response(request_id);
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            count("payload_too_large");
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", format!("request body over {MAX_BODY_BYTES} bytes"))
                .response(request_id);
        }
    };
    let body: Value = if bytes.is_empty() {
        count("validation_error");
        return ApiError::validation(vec![field_error("missing", vec!["body".into()], "Field required")]).response(request_id);
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(_) => {
                count("validation_error");
                return ApiError::validation(vec![field_error("json_invalid", vec!["body".into(), 0.into()], "JSON decode error")])
                    .response(request_id);
            }
        }
    };
    let related = verb % 2 == 1;
    let batch = verb >= 2;
    let prefix = [Value::from("body")];
    if !batch {
        let mut errors = Vec::new();
        let Some(query) = parse_query(&body, related, &prefix, &mut errors) else {
            count("validation_error");
            Event::info("validation_failed").field("recipe", name.to_string()).field("verb", VERBS[verb]).field("request_id", request_id.to_string()).emit();
            return ApiError::validation(errors).response(request_id);
        };
        let m = match serving(entry.as_deref(), name) {
            Ok(m) => m,
            Err((status, e)) => {
                count(status);
                return e.response(request_id);
            }
        };
        let mut out = Vec::with_capacity(160 + 64 * query.limit);
        envelope_start(&mut out, request_id, name, &m, "items");
        return match score_into(&m, &query, related, true, &mut out) {
            Ok(()) => {
                out.push(b'}');
                count("ok");
                verb_response(StatusCode::OK, request_id, &m, out)
            }
            Err(miss) => {
                count(miss.status_label());
                let r = miss.error();
                r.response(request_id)
            }
        };
    }
    // Batch.
    let mut errors = Vec::new();
    let mut include_metadata = false;
    let mut elements: &[Value] = &[];
    match body.as_object() {
        None => errors.push(field_error(
            "model_attributes_type",
            prefix.to_vec(),
            "Input should be a valid dictionary or object to extract fields from",
        )),
        Some(obj) => {
            match obj.get("requests") {
                None => errors.push(field_error("missing", loc(&prefix, "requests"), "Field required")),
                Some(Value::Array(list)) => {
                    if list.is_empty() {
                        errors.push(field_error("too_short", loc(&prefix, "requests"), "List should have at least 1 item after validation, not 0"));
                    } else if list.len() > MAX_BATCH {
                        errors.push(field_error(
                            "too_long",
                            loc(&prefix, "requests"),
                            format!("List should have at most {MAX_BATCH} items after validation, not {}", list.len()),
                        ));
                    } else {
                        for (i, el) in list.iter().enumerate() {
                            if !el.is_object() {
                                let mut at = loc(&prefix, "requests");
                                at.push(i.into());
                                errors.push(field_error("dict_type", at, "Input should be a valid dictionary"));
                            }
                        }
                        elements = list;
                    }
                }
                Some(_) => errors.push(field_error("list_type", loc(&prefix, "requests"), "Input should be a valid list")),
            }
            match obj.get("include_metadata") {
                None => {}
                Some(Value::Bool(b)) => include_metadata = *b,
                Some(_) => errors.push(field_error("bool_type", loc(&prefix, "include_metadata"), "Input should be a valid boolean")),
            }
            for key in obj.keys().filter(|k| !matches!(k.as_str(), "requests" | "include_metadata")) {
                errors.push(field_error("extra_forbidden", loc(&prefix, key), "Extra inputs are not permitted"));
            }
        }
    }
    if !errors.is_empty() {
        count("validation_error");
        return ApiError::validation(errors).response(request_id);
    }
    let (entry, m) = match (&entry, serving(entry.as_deref(), name)) {
        (Some(e), Ok(m)) => (e, m),
        (_, Err((status, e))) => {
            count(status);
            return e.response(request_id);
        }
        (None, Ok(_)) => return ApiError::internal().response(request_id),
    };
    entry.metrics.batch(verb, elements.len());
    let mut out = Vec::with_capacity(160 + 256 * elements.len());
    envelope_start(&mut out, request_id, name, &m, "results");
    out.push(b'[');
    let mut budget = 0usize;
    for (i, el) in elements.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let mut el_errors = Vec::new();
        let outcome = match parse_query(el, related, &[], &mut el_errors) {
            None => Err(("VALIDATION_ERROR", element_message(&el_errors))),
            Some(q) if budget + q.limit > MAX_BATCH_LIMIT_SUM => {
                Err(("VALIDATION_ERROR", format!("aggregate limit cap exceeded: {MAX_BATCH_LIMIT_SUM}")))
            }
            Some(q) => {
                budget += q.limit;
                let mark = out.len();
                let _ = std::io::Write::write_fmt(&mut out, format_args!("{{\"index\":{i},\"status\":\"ok\",\"items\":"));
                match score_into(&m, &q, related, include_metadata, &mut out) {
                    Ok(()) => {
                        out.push(b'}');
                        Ok(())
                    }
                    Err(miss) => {
                        out.truncate(mark);
                        Err((miss.code(), miss.message().to_string()))
                    }
                }
            }
        };
        if let Err((code, message)) = outcome {
            entry.metrics.element_error(verb, code);
            Event::info("batch_element_error")
                .field("recipe", name.to_string())
                .field("index", i)
                .field("code", code)
                .field("request_id", request_id.to_string())
                .emit();
            let el = json!({"index": i, "status": "error", "error": {"code": code, "message": message}});
            let _ = serde_json::to_writer(&mut out, &el);
        }
    }
    out.extend_from_slice(b"]}");
    count("ok");
    verb_response(StatusCode::OK, request_id, &m, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_and_names() {
        assert!(valid_request_id("client-req-0001"));
        assert!(!valid_request_id("bad id"));
        assert!(!valid_request_id(&"a".repeat(129)));
        assert_eq!(new_request_id().len(), 12);
        assert!(valid_name("ml100k") && !valid_name("ml100k:recommend") && !valid_name(""));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/v1/recipes/a%3Arecommend"), "/v1/recipes/a:recommend");
        assert_eq!(percent_decode("/x%"), "/x%");
        assert_eq!(percent_decode("/x%4"), "/x%4");
    }

    #[test]
    fn queries_validate_like_the_reference() {
        let mut errors = Vec::new();
        let body = json!({"user_id": 5, "limit": 0, "extra": 1, "exclude_items": ["", "x"]});
        assert!(parse_query(&body, false, &[Value::from("body")], &mut errors).is_none());
        let types: Vec<&str> = errors.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["string_type", "greater_than_equal", "string_too_short", "extra_forbidden"]);
        assert_eq!(errors[2]["loc"], json!(["body", "exclude_items", 0]));
        let mut errors = Vec::new();
        let body = json!({"seed_items": ["a"], "limit": 3.0});
        let q = parse_query(&body, true, &[], &mut errors).unwrap();
        assert_eq!((q.seeds, q.limit), (vec!["a"], 3));
        let mut errors = Vec::new();
        assert!(parse_query(&json!({"seed_items": []}), true, &[], &mut errors).is_none());
        assert_eq!(element_message(&errors), "seed_items: List should have at least 1 item after validation, not 0");
    }

    #[test]
    fn hosts() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("LocalHost:8080"));
        assert!(host_allowed(&["localhost".into()], &h));
        assert!(!host_allowed(&["127.0.0.1".into()], &h));
        h.insert(header::HOST, HeaderValue::from_static("api.example.com"));
        assert!(host_allowed(&["*.example.com".into()], &h));
        h.insert(header::HOST, HeaderValue::from_static("[::1]:9"));
        assert!(host_allowed(&["[::1]".into()], &h));
    }
}
