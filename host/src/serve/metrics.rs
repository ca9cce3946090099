//! Prometheus counters and histograms, kept as plain atomics per recipe so
//! the request path never takes a lock, rendered as text on
//! `GET /v1/metrics` (only with `RECOTEM_METRICS_ENABLED`, API key required).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The four verbs, in label order.
pub const VERBS: [&str; 4] = ["recommend", "recommend-related", "batch-recommend", "batch-recommend-related"];

/// `status` label values of `recotem_v1_requests_total`.
pub const STATUSES: [&str; 10] = [
    "ok",
    "unknown_user",
    "unknown_seed_items",
    "no_candidates",
    "recipe_not_found",
    "unavailable",
    "validation_error",
    "error",
    "unauthorized",
    "payload_too_large",
];

/// `code` label values of `recotem_v1_batch_element_errors_total`.
pub const ELEMENT_CODES: [&str; 5] = ["VALIDATION_ERROR", "UNKNOWN_USER", "UNKNOWN_SEED_ITEMS", "NO_CANDIDATES", "INTERNAL_ERROR"];

/// `reason` label values of `recotem_artifact_load_failures_total`.
pub const REASONS: [&str; 8] = ["read", "parse", "hmac", "header_json", "deserialize", "metadata", "yaml", "unexpected"];

const LATENCY_BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0];
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 256.0];

/// A cumulative histogram.
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram { buckets: std::array::from_fn(|_| AtomicU64::new(0)), count: AtomicU64::new(0), sum_micros: AtomicU64::new(0) }
    }
}

impl<const N: usize> Histogram<N> {
    fn observe(&self, bounds: &[f64; N], value: f64) {
        if let Some(i) = bounds.iter().position(|b| value <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add((value * 1e6) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64; N]) {
        let mut cumulative = 0;
        for (b, n) in bounds.iter().zip(&self.buckets) {
            cumulative += n.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum_micros.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Counters of one recipe.
#[derive(Debug, Default)]
pub struct RecipeMetrics {
    requests: [[AtomicU64; STATUSES.len()]; VERBS.len()],
    latency: [Histogram<12>; VERBS.len()],
    batch_size: [Histogram<8>; 2],
    element_errors: [[AtomicU64; ELEMENT_CODES.len()]; 2],
    load_failures: [AtomicU64; REASONS.len()],
    swaps_ok: AtomicU64,
    swaps_error: AtomicU64,
}

fn index(list: &[&str], value: &str) -> usize {
    list.iter().position(|v| *v == value).unwrap_or(list.len() - 1)
}

impl RecipeMetrics {
    /// Count one request of `verb` (index into [`VERBS`]) ending in `status`.
    pub fn request(&self, verb: usize, status: &str, seconds: f64) {
        self.requests[verb][index(&STATUSES, status)].fetch_add(1, Relaxed);
        self.latency[verb].observe(&LATENCY_BUCKETS, seconds);
    }

    /// Size of a batch request (`verb` 2 or 3).
    pub fn batch(&self, verb: usize, size: usize) {
        self.batch_size[verb - 2].observe(&BATCH_BUCKETS, size as f64);
    }

    /// One failed batch element.
    pub fn element_error(&self, verb: usize, code: &str) {
        self.element_errors[verb - 2][index(&ELEMENT_CODES, code)].fetch_add(1, Relaxed);
    }

    /// A load failure of `reason`.
    pub fn load_failure(&self, reason: &str) {
        self.load_failures[index(&REASONS, reason)].fetch_add(1, Relaxed);
    }

    /// A hot swap attempt.
    pub fn swap(&self, ok: bool) {
        if ok { &self.swaps_ok } else { &self.swaps_error }.fetch_add(1, Relaxed);
    }
}

/// Counters not tied to a loaded recipe.
#[derive(Debug, Default)]
pub struct GlobalMetrics {
    /// Verb requests for recipes that do not exist, per verb.
    pub not_found: [AtomicU64; VERBS.len()],
    /// 422s outside the verb routes.
    pub validation_outside_verb: AtomicU64,
    /// Failed scans of the recipes directory.
    pub dir_scan_failures: AtomicU64,
    /// Watcher ticks that failed unexpectedly.
    pub watcher_errors: AtomicU64,
}

/// Quote a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// One recipe as the renderer sees it.
pub struct RecipeView<'a> {
    /// Name.
    pub name: &'a str,
    /// A model is serving.
    pub loaded: bool,
    /// Its counters.
    pub metrics: &'a RecipeMetrics,
}

/// The Prometheus text exposition of everything.
pub fn render(global: &GlobalMetrics, recipes: &[RecipeView<'_>]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    out.push_str("# HELP recotem_v1_requests_total Verb requests by recipe, verb and outcome.\n# TYPE recotem_v1_requests_total counter\n");
    for r in recipes {
        for (v, verb) in VERBS.iter().enumerate() {
            for (s, status) in STATUSES.iter().enumerate() {
                let n = r.metrics.requests[v][s].load(Relaxed);
                if n > 0 {
                    let _ = writeln!(out, "recotem_v1_requests_total{{recipe=\"{}\",verb=\"{verb}\",status=\"{status}\"}} {n}", label(r.name));
                }
            }
        }
    }
    for (v, verb) in VERBS.iter().enumerate() {
        let n = global.not_found[v].load(Relaxed);
        if n > 0 {
            let _ = writeln!(out, "recotem_v1_requests_total{{recipe=\"<unknown>\",verb=\"{verb}\",status=\"recipe_not_found\"}} {n}");
        }
    }
    out.push_str("# HELP recotem_v1_request_latency_seconds Verb latency.\n# TYPE recotem_v1_request_latency_seconds histogram\n");
    for r in recipes {
        for (v, verb) in VERBS.iter().enumerate() {
            let labels = format!("recipe=\"{}\",verb=\"{verb}\"", label(r.name));
            r.metrics.latency[v].render(&mut out, "recotem_v1_request_latency_seconds", &labels, &LATENCY_BUCKETS);
        }
    }
    out.push_str("# HELP recotem_v1_batch_size Elements per batch request.\n# TYPE recotem_v1_batch_size histogram\n");
    for r in recipes {
        for b in 0..2 {
            let labels = format!("recipe=\"{}\",verb=\"{}\"", label(r.name), VERBS[b + 2]);
            r.metrics.batch_size[b].render(&mut out, "recotem_v1_batch_size", &labels, &BATCH_BUCKETS);
        }
    }
    out.push_str("# HELP recotem_v1_batch_element_errors_total Failed batch elements.\n# TYPE recotem_v1_batch_element_errors_total counter\n");
    for r in recipes {
        for b in 0..2 {
            for (c, code) in ELEMENT_CODES.iter().enumerate() {
                let n = r.metrics.element_errors[b][c].load(Relaxed);
                let _ = writeln!(out, "recotem_v1_batch_element_errors_total{{recipe=\"{}\",verb=\"{}\",code=\"{code}\"}} {n}", label(r.name), VERBS[b + 2]);
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP recotem_v1_validation_errors_outside_verb_total 422 answers outside the verb routes.\n# TYPE recotem_v1_validation_errors_outside_verb_total counter\nrecotem_v1_validation_errors_outside_verb_total {}",
        global.validation_outside_verb.load(Relaxed)
    );
    out.push_str("# HELP recotem_model_loaded 1 when the recipe has a model serving.\n# TYPE recotem_model_loaded gauge\n");
    for r in recipes {
        let _ = writeln!(out, "recotem_model_loaded{{recipe=\"{}\"}} {}", label(r.name), u8::from(r.loaded));
    }
    let _ = writeln!(
        out,
        "# HELP recotem_active_recipes Recipes with a model serving.\n# TYPE recotem_active_recipes gauge\nrecotem_active_recipes {}",
        recipes.iter().filter(|r| r.loaded).count()
    );
    out.push_str("# HELP recotem_artifact_load_failures_total Artifact loads that failed, by reason.\n# TYPE recotem_artifact_load_failures_total counter\n");
    for r in recipes {
        for (i, reason) in REASONS.iter().enumerate() {
            let _ = writeln!(out, "recotem_artifact_load_failures_total{{recipe=\"{}\",reason=\"{reason}\"}} {}", label(r.name), r.metrics.load_failures[i].load(Relaxed));
        }
    }
    out.push_str("# HELP recotem_swap_total Hot swaps by result.\n# TYPE recotem_swap_total counter\n");
    for r in recipes {
        let _ = writeln!(out, "recotem_swap_total{{recipe=\"{}\",result=\"ok\"}} {}", label(r.name), r.metrics.swaps_ok.load(Relaxed));
        let _ = writeln!(out, "recotem_swap_total{{recipe=\"{}\",result=\"error\"}} {}", label(r.name), r.metrics.swaps_error.load(Relaxed));
    }
    let _ = writeln!(
        out,
        "# HELP recotem_recipes_dir_scan_failures_total Failed scans of the recipes directory.\n# TYPE recotem_recipes_dir_scan_failures_total counter\nrecotem_recipes_dir_scan_failures_total {}",
        global.dir_scan_failures.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP recotem_watcher_unhandled_errors_total Watcher ticks that failed unexpectedly.\n# TYPE recotem_watcher_unhandled_errors_total counter\nrecotem_watcher_unhandled_errors_total {}",
        global.watcher_errors.load(Relaxed)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = RecipeMetrics::default();
        m.request(0, "ok", 0.0003);
        m.request(0, "ok", 0.002);
        m.request(0, "unknown_user", 0.0001);
        m.swap(false);
        m.load_failure("hmac");
        let text = render(&GlobalMetrics::default(), &[RecipeView { name: "a", loaded: true, metrics: &m }]);
        assert!(text.contains("recotem_v1_requests_total{recipe=\"a\",verb=\"recommend\",status=\"ok\"} 2\n"));
        assert!(text.contains("recotem_v1_request_latency_seconds_bucket{recipe=\"a\",verb=\"recommend\",le=\"0.0005\"} 2\n"));
        assert!(text.contains("recotem_v1_request_latency_seconds_count{recipe=\"a\",verb=\"recommend\"} 3\n"));
        assert!(text.contains("recotem_swap_total{recipe=\"a\",result=\"error\"} 1\n"));
        assert!(text.contains("recotem_artifact_load_failures_total{recipe=\"a\",reason=\"hmac\"} 1\n"));
        assert!(text.contains("recotem_active_recipes 1\n"));
    }
}
