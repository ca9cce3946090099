//! Recipes and the CLI contract: the recipe schema, env expansion, path
//! rules, YAML safety, recipe directories, `validate`, `schema`, the
//! `train` flags, `train_error` and the log format. Table-driven: each case
//! runs the real binary and asserts the exit code and a message fragment.

use serde_json::Value;

use crate::common::{Run, Scratch, fixture_component, quickstart_csv, repo_root};

/// A block-style recipe over the quickstart data; cases edit it by
/// replacing exact fragments.
fn base(_: &Scratch) -> String {
    format!(
        "name: demo\n\
         source:\n  type: csv\n  path: {csv}\n\
         schema:\n  user_column: user_id\n  item_column: item_id\n  time_column: timestamp\n  time_unit: s\n\
         training:\n  algorithms: [TopPop]\n  cutoff: 10\n  n_trials: 2\n\
         output:\n  path: out/model.recotem\n  versioning: always_overwrite\n",
        csv = quickstart_csv().display()
    )
}

/// Apply `edits` (each must match) to the base recipe.
#[track_caller]
fn edited(s: &Scratch, edits: &[(&str, &str)]) -> String {
    let mut text = base(s);
    for (from, to) in edits {
        assert!(text.contains(from), "edit {from:?} does not apply to\n{text}");
        text = text.replacen(from, to, 1);
    }
    text
}

/// Every `error` field of the events, plus stdout: where messages land.
fn messages(run: &Run) -> String {
    let mut out: Vec<String> = run
        .events()
        .iter()
        .filter_map(|e| e.get("error").and_then(Value::as_str).map(str::to_string))
        .collect();
    out.push(run.stdout());
    out.join("\n")
}

#[track_caller]
fn expect(run: &Run, label: &str, code: i32, fragment: &str) {
    let text = messages(run);
    assert_eq!(run.code(), code, "[{label}] exit code; messages:\n{text}\nstderr:\n{}", run.stderr());
    assert!(text.contains(fragment), "[{label}] expected {fragment:?} in:\n{text}");
}

/// Write `body` and run `recotem validate` on it.
fn validate(s: &Scratch, body: &str) -> Run {
    let recipe = s.write("recipe.yaml", body);
    s.run(&["validate", recipe.to_str().unwrap()])
}

const CSV: &str = "{csv}";

struct Case {
    label: &'static str,
    edits: &'static [(&'static str, &'static str)],
    code: i32,
    fragment: &'static str,
}

const fn case(label: &'static str, edits: &'static [(&'static str, &'static str)], code: i32, fragment: &'static str) -> Case {
    Case { label, edits, code, fragment }
}

const PASSED: &str = "Validation passed.";

/// Schema rules (RCP-01..11), stage 1 and stage 2.
const SCHEMA_CASES: &[Case] = &[
    case("valid base", &[], 0, PASSED),
    case("name with a space", &[("name: demo", "name: 'bad name'")], 2, "name: must match ^[A-Za-z0-9_-]{1,64}$"),
    case("name too long", &[("name: demo", "name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")], 2, "name: must match"),
    case("name is an int", &[("name: demo", "name: 123")], 2, "name: must be of type string"),
    case("name missing", &[("name: demo\n", "")], 2, "name: required field is missing"),
    case("name of 64 chars ok", &[("name: demo", "name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")], 0, PASSED),
    case("unknown top-level key", &[("name: demo\n", "name: demo\nextra: 1\n")], 2, "unknown field \"extra\""),
    case("source missing", &[("source:\n  type: csv\n  path: ", "x_path: ")], 2, "source: required field is missing"),
    case("source without type", &[("  type: csv\n", "")], 2, "source.type: required field is missing"),
    case("unknown source type lists types", &[("type: csv", "type: nosuch")], 2, "unknown data source \"nosuch\"; registered types: csv"),
    case("stage 2: unknown source field", &[("  type: csv\n", "  type: csv\n  bogus: 1\n")], 2, "source: unknown field \"bogus\""),
    case("stage 2: header below 0", &[("  type: csv\n", "  type: csv\n  header: -1\n")], 2, "source.header: must be >= 0"),
    case("stage 2: encoding enum", &[("  type: csv\n", "  type: csv\n  encoding: utf-16\n")], 2, "source.encoding: must be one of"),
    case("stage 2: sha256 pattern", &[("  type: csv\n", "  type: csv\n  sha256: ABC\n")], 2, "source.sha256: must match ^[0-9a-f]{64}$"),
    case("stage 2: path missing", &[("  path: ", "  x_path: ")], 2, "source.path: required field is missing"),
    case("stage 2: all errors at once", &[("  type: csv\n", "  type: csv\n  header: -1\n  encoding: x\n")], 2, "2 problems"),
    case("user_column missing", &[("  user_column: user_id\n", "")], 2, "schema.user_column: required field is missing"),
    case("item_column empty", &[("item_column: item_id", "item_column: ''")], 2, "schema.item_column: must not be empty"),
    case("time_unit enum", &[("  time_unit: s\n", "  time_unit: h\n")], 2, "schema.time_unit: must be one of"),
    case("time_unit ms ok", &[("  time_unit: s\n", "  time_unit: ms\n")], 0, PASSED),
    case("unknown schema key", &[("  time_column: timestamp\n", "  time_column: timestamp\n  rating_column: r\n")], 2, "schema: unknown field \"rating_column\""),
    case("dedup enum", &[("training:\n", "cleansing: {dedup: maybe}\ntraining:\n")], 2, "cleansing.dedup: must be one of"),
    case("min_rows below 0", &[("training:\n", "cleansing: {min_rows: -1}\ntraining:\n")], 2, "cleansing.min_rows: must be >= 0"),
    case("min_users null ok", &[("training:\n", "cleansing: {min_users: null, drop_null_ids: false, dedup: none}\ntraining:\n")], 0, PASSED),
    case("drop_null_ids type", &[("training:\n", "cleansing: {drop_null_ids: sometimes}\ntraining:\n")], 2, "cleansing.drop_null_ids: must be of type boolean"),
    case("item_metadata type: a registered source", &[("training:\n", "item_metadata: {type: json, path: m.csv, fields: [a]}\ntraining:\n")], 2, "item_metadata.type: unknown data source \"json\"; registered types: csv"),
    case("item_metadata config checked against its component's schema", &[("training:\n", "item_metadata: {type: csv, path: m.csv, fields: [a], delimiter: 7}\ntraining:\n")], 2, "item_metadata.delimiter"),
    case("item_metadata fields empty", &[("training:\n", "item_metadata: {type: csv, path: m.csv, fields: []}\ntraining:\n")], 2, "item_metadata.fields: must list at least 1 item"),
    case("item_metadata path missing", &[("training:\n", "item_metadata: {type: csv, fields: [a]}\ntraining:\n")], 2, "item_metadata.path: required field is missing"),
    case("item_metadata sha256 pattern", &[("training:\n", "item_metadata: {type: csv, path: m.csv, fields: [a], sha256: xyz}\ntraining:\n")], 2, "item_metadata.sha256: must match"),
    case("item_metadata blank id column", &[("training:\n", "item_metadata: {type: csv, path: m.csv, fields: [a], item_id_column: '  '}\ntraining:\n")], 2, "item_metadata.item_id_column: must match"),
    case("item_metadata on_field_missing enum", &[("training:\n", "item_metadata: {type: csv, path: m.csv, fields: [a], on_field_missing: skip}\ntraining:\n")], 2, "item_metadata.on_field_missing: must be one of"),
    case("item_metadata full ok", &[("training:\n", "item_metadata: {type: csv, path: m.csv, fields: [a, b], on_field_missing: null, item_id_column: id, delimiter: ';'}\ntraining:\n")], 0, PASSED),
    case("training missing", &[("training:\n  algorithms: [TopPop]\n  cutoff: 10\n  n_trials: 2\n", "")], 2, "training: required field is missing"),
    case("algorithms empty", &[("algorithms: [TopPop]", "algorithms: []")], 2, "training.algorithms: must list at least 1 item"),
    case("algorithms missing", &[("  algorithms: [TopPop]\n", "")], 2, "training.algorithms: required field is missing"),
    case("unknown algorithm", &[("algorithms: [TopPop]", "algorithms: [TopPop, NoSuch]")], 2, "training.algorithms[1]: unknown algorithm \"NoSuch\"; registered: TopPop"),
    case("algorithm case-insensitive", &[("algorithms: [TopPop]", "algorithms: [toppop]")], 0, PASSED),
    case("algorithm Recommender form", &[("algorithms: [TopPop]", "algorithms: [TOPPOPRECOMMENDER]")], 0, PASSED),
    case("metric enum", &[("  cutoff: 10\n", "  cutoff: 10\n  metric: auc\n")], 2, "training.metric: must be one of"),
    case("metric hit ok", &[("  cutoff: 10\n", "  cutoff: 10\n  metric: hit\n")], 0, PASSED),
    case("cutoff 0", &[("cutoff: 10", "cutoff: 0")], 2, "training.cutoff: must be >= 1"),
    case("cutoff string", &[("cutoff: 10", "cutoff: ten")], 2, "training.cutoff: must be of type integer"),
    case("n_trials 0", &[("n_trials: 2", "n_trials: 0")], 2, "training.n_trials: must be >= 1"),
    case("per_trial_timeout 0", &[("  cutoff: 10\n", "  cutoff: 10\n  per_trial_timeout_seconds: 0\n")], 2, "training.per_trial_timeout_seconds: must be >= 1"),
    case("timeout_seconds 0", &[("  cutoff: 10\n", "  cutoff: 10\n  timeout_seconds: 0\n")], 2, "training.timeout_seconds: must be >= 1"),
    case("timeouts null ok", &[("  cutoff: 10\n", "  cutoff: 10\n  timeout_seconds: null\n  per_trial_timeout_seconds: 5\n")], 0, PASSED),
    case("parallelism 0", &[("  cutoff: 10\n", "  cutoff: 10\n  parallelism: 0\n")], 2, "training.parallelism: must be >= 1"),
    case("storage_path type", &[("  cutoff: 10\n", "  cutoff: 10\n  storage_path: 5\n")], 2, "training.storage_path: must be of type string"),
    case("per_algorithm_trials unknown key", &[("  cutoff: 10\n", "  cutoff: 10\n  per_algorithm_trials: {NoSuch: 3}\n")], 2, "training.per_algorithm_trials.NoSuch: unknown algorithm"),
    case("per_algorithm_trials alias key ok", &[("  cutoff: 10\n", "  cutoff: 10\n  per_algorithm_trials: {toppoprecommender: 3}\n")], 0, PASSED),
    case("per_algorithm_trials negative ok", &[("  cutoff: 10\n", "  cutoff: 10\n  per_algorithm_trials: {TopPop: -2}\n")], 0, PASSED),
    case("per_algorithm_trials value type", &[("  cutoff: 10\n", "  cutoff: 10\n  per_algorithm_trials: {TopPop: many}\n")], 2, "training.per_algorithm_trials.TopPop: must be of type integer"),
    case("split scheme enum", &[("  cutoff: 10\n", "  cutoff: 10\n  split: {scheme: rolling}\n")], 2, "training.split.scheme: must be one of"),
    case("heldout_ratio 0", &[("  cutoff: 10\n", "  cutoff: 10\n  split: {heldout_ratio: 0}\n")], 2, "training.split.heldout_ratio: must be in (0, 1)"),
    case("heldout_ratio 1", &[("  cutoff: 10\n", "  cutoff: 10\n  split: {heldout_ratio: 1}\n")], 2, "training.split.heldout_ratio: must be in (0, 1)"),
    case("heldout_ratio 1.5", &[("  cutoff: 10\n", "  cutoff: 10\n  split: {heldout_ratio: 1.5}\n")], 2, "training.split.heldout_ratio: must be in (0, 1)"),
    case("test_user_ratio 0", &[("  cutoff: 10\n", "  cutoff: 10\n  split: {test_user_ratio: 0}\n")], 2, "training.split.test_user_ratio: must be in (0, 1]"),
    case("test_user_ratio 1 ok", &[("  cutoff: 10\n", "  cutoff: 10\n  split: {test_user_ratio: 1, heldout_ratio: 0.5, seed: 7}\n")], 0, PASSED),
    case("seed negative", &[("  cutoff: 10\n", "  cutoff: 10\n  split: {seed: -1}\n")], 2, "training.split.seed: must be >= 0"),
    case("unknown split key", &[("  cutoff: 10\n", "  cutoff: 10\n  split: {ratio: 0.1}\n")], 2, "training.split: unknown field \"ratio\""),
    case("time_user needs time_column", &[("  time_column: timestamp\n", ""), ("  cutoff: 10\n", "  cutoff: 10\n  split: {scheme: time_user}\n")], 2, "training.split.scheme: time_user needs schema.time_column"),
    case("time_global needs time_column", &[("  time_column: timestamp\n", ""), ("  cutoff: 10\n", "  cutoff: 10\n  split: {scheme: time_global}\n")], 2, "time_global needs schema.time_column"),
    case("time_user with time_column ok", &[("  cutoff: 10\n", "  cutoff: 10\n  split: {scheme: time_user}\n")], 0, PASSED),
    case("output missing", &[("output:\n  path: out/model.recotem\n  versioning: always_overwrite\n", "")], 2, "output: required field is missing"),
    case("output.path missing", &[("  path: out/model.recotem\n", "")], 2, "output.path: required field is missing"),
    case("versioning enum", &[("versioning: always_overwrite", "versioning: sometimes")], 2, "output.versioning: must be one of \"always_overwrite\", \"append_sha\""),
    case("errors of a stage all at once", &[("cutoff: 10", "cutoff: 0"), ("n_trials: 2", "n_trials: 0"), ("versioning: always_overwrite", "versioning: x")], 2, "3 problems"),
];

/// Path rules (PATH-01..08).
const PATH_CASES: &[Case] = &[
    case("memory scheme", &[(CSV, "memory://x.csv")], 2, "source.path: the scheme \"memory\" is not allowed"),
    case("ftp input", &[(CSV, "ftp://host/x.csv")], 2, "the scheme \"ftp\" is not allowed"),
    case("hf input", &[(CSV, "hf://datasets/x")], 2, "the scheme \"hf\" is not allowed"),
    case("data: input", &[(CSV, "'data:text/plain,a'")], 2, "the scheme \"data\" is not allowed"),
    case("fsspec chain", &[(CSV, "simplecache::s3://b/x.csv")], 2, "source.path: `::` (chained protocols) is not allowed"),
    case("ipv6 literal has ::", &[(CSV, "http://[::1]/x.csv"), ("  type: csv\n", "  type: csv\n  sha256: '0000000000000000000000000000000000000000000000000000000000000000'\n")], 2, "`::`"),
    case("http credentials", &[(CSV, "https://alice:hunter2@example.com/x.csv"), ("  type: csv\n", "  type: csv\n  sha256: '0000000000000000000000000000000000000000000000000000000000000000'\n")], 2, "source.path: embedded credentials"),
    case("s3 credentials", &[(CSV, "s3://AKIAX:secret@bucket/x.csv")], 2, "embedded credentials (user:password@) are not allowed in s3://"),
    case("abfss container@account rejected", &[(CSV, "abfss://c@acct.dfs.core.windows.net/x.csv")], 2, "embedded credentials"),
    case("https needs sha256", &[(CSV, "https://example.com/x.csv")], 2, "source.sha256: required when source.path is an http(s) URL"),
    case("https pin must be a hex string", &[(CSV, "https://example.com/x.csv"), ("  type: csv\n", "  type: csv\n  sha256: 0\n")], 2, "source.sha256: must be 64 lower-case hex digits"),
    // `validate` only runs the SSRF guard on an http(s) source (HTTP-09): IP
    // literals, so no name lookup and no request (tests/cli/http.rs has the rest).
    case("https pinned passes the rules, validate downloads nothing", &[(CSV, "https://93.184.215.14/x.csv"), ("  type: csv\n", "  type: csv\n  sha256: '0000000000000000000000000000000000000000000000000000000000000000'\n")], 0, PASSED),
    case("https to the metadata address refused by the SSRF guard", &[(CSV, "https://169.254.169.254/x.csv"), ("  type: csv\n", "  type: csv\n  sha256: '0000000000000000000000000000000000000000000000000000000000000000'\n")], 7, "refused by the SSRF guard"),
    case("s3 is recipe-valid, not supported yet", &[(CSV, "s3://bucket/x.csv")], 3, "s3:// sources are not supported"),
    case("gs project@bucket allowed", &[(CSV, "gs://project@bucket/x.csv")], 3, "gs:// sources are not supported"),
    case("file URL ok", &[(CSV, "file://{csv}")], 0, PASSED),
    case("file URL with a host", &[(CSV, "file://otherhost/x.csv")], 2, "file:// URLs may not name a host"),
    case("output https", &[("path: out/model.recotem", "path: https://example.com/m.recotem")], 2, "output.path: the scheme \"https\" is not allowed"),
    case("output ftp", &[("path: out/model.recotem", "path: ftp://example.com/m.recotem")], 2, "output.path: the scheme \"ftp\" is not allowed"),
    case("output memory", &[("path: out/model.recotem", "path: memory://m.recotem")], 2, "the scheme \"memory\" is not allowed"),
    case("output credentials", &[("path: out/model.recotem", "path: s3://k:s@bucket/m.recotem")], 2, "output.path: embedded credentials"),
    case("output s3 valid", &[("path: out/model.recotem", "path: s3://bucket/m.recotem")], 0, PASSED),
    case("output chain", &[("path: out/model.recotem", "path: simplecache::out/m.recotem")], 2, "output.path: `::`"),
    case("item_metadata http needs sha256", &[("training:\n", "item_metadata: {type: csv, path: 'https://h/m.csv', fields: [a]}\ntraining:\n")], 2, "item_metadata.sha256: required"),
    case("item_metadata scheme", &[("training:\n", "item_metadata: {type: csv, path: 'memory://m', fields: [a]}\ntraining:\n")], 2, "item_metadata.path: the scheme \"memory\""),
    case("local sha256 mismatch", &[("  type: csv\n", "  type: csv\n  sha256: abababababababababababababababababababababababababababababababab\n")], 3, "sha256 mismatch"),
    case("missing data file", &[(CSV, "nope.csv")], 3, "nope.csv: cannot open it"),
];

#[test]
fn schema_rules() {
    run_cases(SCHEMA_CASES);
}

#[test]
fn path_rules() {
    run_cases(PATH_CASES);
}

fn run_cases(cases: &[Case]) {
    let s = Scratch::new();
    let csv = quickstart_csv().display().to_string();
    for c in cases {
        let edits: Vec<(&str, String)> = c.edits.iter().map(|(f, t)| {
            let f = if *f == CSV { csv.as_str() } else { f };
            (f, t.replace("{csv}", &csv))
        }).collect();
        let refs: Vec<(&str, &str)> = edits.iter().map(|(f, t)| (*f, t.as_str())).collect();
        let run = validate(&s, &edited(&s, &refs));
        expect(&run, c.label, c.code, c.fragment);
    }
}

#[test]
fn failures_never_echo_credentials() {
    let s = Scratch::new();
    let csv = quickstart_csv().display().to_string();
    let run = validate(&s, &edited(&s, &[(&csv, "https://alice:hunter2@example.com/x.csv")]));
    run.expect_code(2);
    assert!(!run.stderr().contains("hunter2"), "{}", run.stderr());
}

#[test]
fn relative_paths_resolve_against_the_working_directory() {
    let s = Scratch::new();
    std::fs::copy(quickstart_csv(), s.path("data.csv")).unwrap();
    let csv = quickstart_csv().display().to_string();
    // The recipe lives in a sub-directory; `data.csv` is the scratch dir's.
    let recipe = s.write("recipes/r.yaml", edited(&s, &[(&csv, "data.csv")]));
    expect(&s.run(&["validate", recipe.to_str().unwrap()]), "relative to cwd", 0, PASSED);
    std::fs::copy(quickstart_csv(), s.path("recipes/only-here.csv")).unwrap();
    let recipe = s.write("recipes/r.yaml", edited(&s, &[(&csv, "only-here.csv")]));
    expect(&s.run(&["validate", recipe.to_str().unwrap()]), "not relative to the recipe", 3, "only-here.csv");
}

#[test]
fn symlinked_inputs_are_followed() {
    let s = Scratch::new();
    #[cfg(unix)]
    std::os::unix::fs::symlink(quickstart_csv(), s.path("link.csv")).unwrap();
    #[cfg(unix)]
    {
        let csv = quickstart_csv().display().to_string();
        expect(&validate(&s, &edited(&s, &[(&csv, "link.csv")])), "symlinked input", 0, PASSED);
    }
}

/// Env expansion (ENV-01..08).
#[test]
fn env_expansion() {
    let mut s = Scratch::new();
    let csv = quickstart_csv().display().to_string();
    s.env("RECOTEM_RECIPE_CSV", &csv);
    s.env("RECOTEM_RECIPE_APIKEY", "value-of-a-key");
    s.env("RECOTEM_RECIPE_EMPTY", "");
    s.env("RECOTEM_RECIPE_GCP_PROJECT", "demo");
    s.env("RECOTEM_RECIPE_TRIALS", "3");
    s.env("RECOTEM_RECIPE_RATIO", "0.25");
    s.env("RECOTEM_RECIPE_BADNAME", "bad name s3cr3t");
    s.env("recotem_recipe_lower", "demo");
    s.env("HOME", "/root");
    s.env("AWS_REGION", "eu-west-1");
    type EnvCase<'a> = (&'a str, &'a [(&'a str, &'a str)], i32, &'a str);
    let cases: &[EnvCase] = &[
        ("expands a value", &[(&csv, "'${RECOTEM_RECIPE_CSV}'")], 0, PASSED),
        ("expands inside text", &[("name: demo", "name: x-${RECOTEM_RECIPE_GCP_PROJECT}-y")], 0, PASSED),
        ("prefix rule is case-insensitive, lookup verbatim", &[("name: demo", "name: ${recotem_recipe_lower}")], 0, PASSED),
        ("missing variable", &[("name: demo", "name: ${RECOTEM_RECIPE_MISSING}")], 2, "name: ${RECOTEM_RECIPE_MISSING} is not set"),
        ("not prefixed", &[("name: demo", "name: ${HOME}")], 2, "${HOME}: only variables named RECOTEM_RECIPE_* may be expanded"),
        ("blacklist exact", &[("name: demo", "name: ${RECOTEM_SIGNING_KEYS}")], 2, "RECOTEM_SIGNING_KEYS may never be expanded"),
        ("blacklist exact, any case", &[("name: demo", "name: ${recotem_api_keys}")], 2, "RECOTEM_API_KEYS may never be expanded"),
        ("blacklist prefix", &[("name: demo", "name: ${AWS_REGION}")], 2, "starting with AWS_"),
        ("blacklist substring KEY", &[("name: demo", "name: ${RECOTEM_RECIPE_APIKEY}")], 2, "names containing KEY"),
        ("blacklist substring, lower case", &[("name: demo", "name: ${recotem_recipe_token}")], 2, "names containing TOKEN"),
        ("cloud prefix inside the name is fine", &[("name: demo", "name: ${RECOTEM_RECIPE_GCP_PROJECT}")], 0, PASSED),
        ("no defaults syntax", &[("name: demo", "name: ${RECOTEM_RECIPE_X:-demo}")], 2, "${RECOTEM_RECIPE_X:-demo} is not set"),
        ("empty braces stay literal", &[("  cutoff: 10\n", "  cutoff: 10\n  storage_path: '${}'\n")], 0, PASSED),
        ("unterminated stays literal", &[("  cutoff: 10\n", "  cutoff: 10\n  storage_path: '${RECOTEM_RECIPE_X'\n")], 0, PASSED),
        ("all errors at once", &[("name: demo", "name: ${HOME}"), ("item_column: item_id", "item_column: ${RECOTEM_RECIPE_NOPE}")], 2, "2 problems"),
        ("keys are never expanded", &[("  type: csv\n", "  type: csv\n  dtype: {'${HOME}': str}\n")], 0, PASSED),
        ("query keys are never expanded, any depth", &[("  type: csv\n", "  type: csv\n  dtype: {query: '${HOME}', Query_Parameters: '${HOME}'}\n")], 0, PASSED),
        ("other nested values are", &[("  type: csv\n", "  type: csv\n  dtype: {col: '${HOME}'}\n")], 2, "source.dtype.col: ${HOME}"),
        ("a whole reference fills a typed field", &[("n_trials: 2", "n_trials: ${RECOTEM_RECIPE_TRIALS}"), ("  cutoff: 10\n", "  cutoff: 10\n  split: {heldout_ratio: '${RECOTEM_RECIPE_RATIO}'}\n")], 0, PASSED),
        ("a typed field checks the expanded value", &[("n_trials: 2", "n_trials: ${RECOTEM_RECIPE_GCP_PROJECT}")], 2, "training.n_trials: must be of type integer"),
        ("a partial reference stays text", &[("n_trials: 2", "n_trials: 1${RECOTEM_RECIPE_TRIALS}")], 2, "training.n_trials: must be of type integer"),
        ("a string field keeps digits as text", &[("name: demo", "name: ${RECOTEM_RECIPE_TRIALS}")], 0, PASSED),
        ("list elements are expanded", &[("algorithms: [TopPop]", "algorithms: ['${RECOTEM_RECIPE_NOPE}']")], 2, "training.algorithms[0]: ${RECOTEM_RECIPE_NOPE} is not set"),
    ];
    for (label, edits, code, fragment) in cases {
        let run = validate(&s, &edited(&s, edits));
        expect(&run, label, *code, fragment);
        assert!(!run.stderr().contains("value-of-a-key"), "[{label}] a value leaked: {}", run.stderr());
    }
    // Values are never echoed, even when the expanded value is what is wrong.
    let run = validate(&s, &edited(&s, &[("name: demo", "name: ${RECOTEM_RECIPE_BADNAME}")]));
    expect(&run, "bad expanded value", 2, "name: must match");
    assert!(!run.stderr().contains("s3cr3t"), "{}", run.stderr());
    // An empty value expands to "" and is reported by name.
    let run = validate(&s, &edited(&s, &[("  cutoff: 10\n", "  cutoff: 10\n  storage_path: '${RECOTEM_RECIPE_EMPTY}'\n")]));
    run.expect_code(0);
    let empty = run.events_named("recipe_env_var_empty");
    assert_eq!(empty.len(), 1, "{}", run.stderr());
    assert_eq!(empty[0]["name"], "RECOTEM_RECIPE_EMPTY");
    assert_eq!(empty[0]["level"], "warning");
}

/// `train --env-var` (CLI-09, ENV-08).
#[test]
fn train_env_var_flag() {
    let mut s = Scratch::new();
    let csv = quickstart_csv().display().to_string();
    let recipe = s.write("r.yaml", edited(&s, &[(&csv, "'${RECOTEM_RECIPE_CSV}'")]));
    let r = recipe.to_str().unwrap();
    let flag = format!("RECOTEM_RECIPE_CSV={csv}");

    let run = s.run(&["train", r]);
    expect(&run, "unset without the flag", 2, "${RECOTEM_RECIPE_CSV} is not set");
    assert_eq!(run.train_error()["code"], "recipe_error");

    s.env("RECOTEM_RECIPE_CSV", "nope.csv");
    let run = s.run(&["train", "--env-var", &flag, "--env-var", "AWS_SECRET_ACCESS_KEY=unused", r]);
    expect(&run, "flag overrides the env; unreferenced keys are not checked", 0, "model.recotem");

    let run = s.run(&["train", "--env-var", "RECOTEM_RECIPE_CSV", r]);
    expect(&run, "no = in --env-var", 2, "--env-var: expected KEY=VALUE");
    run.train_error();

    let recipe = s.write("k.yaml", edited(&s, &[("name: demo", "name: ${RECOTEM_RECIPE_TOKEN}")]));
    let run = s.run(&["train", "--env-var", "RECOTEM_RECIPE_TOKEN=abc-secret", recipe.to_str().unwrap()]);
    expect(&run, "flag keys follow the same rules", 2, "names containing TOKEN");
    assert!(!run.stderr().contains("abc-secret"));
    assert_eq!(run.train_error()["code"], "recipe_security_violation");
}

/// `train_error` carries exactly the documented fields (LOG-08).
#[test]
fn train_error_has_exactly_the_documented_fields() {
    let s = Scratch::new();
    let recipe = s.write("r.yaml", edited(&s, &[("cutoff: 10", "cutoff: 0")]));
    let run = s.run(&["train", "--run-id", "fields-1", recipe.to_str().unwrap()]);
    run.expect_code(2);
    let e = run.train_error();
    let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["code", "error", "event", "exit_code", "level", "logger", "name", "run_id", "timestamp", "trained_at"]);
    assert_eq!(e["name"], "r", "before the recipe loads, the name is the file stem");
    assert_eq!(e["code"], "recipe_error");
    assert!(run.stdout().is_empty());
}

/// YAML safety (parsing untrusted text).
#[test]
fn yaml_is_parsed_safely() {
    let s = Scratch::new();
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1u8..9 {
        let (me, prev) = ((b'a' + i) as char, (b'a' + i - 1) as char);
        bomb.push_str(&format!("{me}: &{me} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    let deep = format!("name: {}x{}\n", "[".repeat(200), "]".repeat(200));
    let big = format!("name: demo\n#{}\n", "x".repeat(1_100_000));
    let cases: Vec<(&str, String, &str)> = vec![
        ("syntax error keeps line and column", "name: demo\nsource: {type: csv\nschema: x\n".to_string(), "line"),
        ("duplicate keys", "name: demo\nname: other\n".to_string(), "duplicate"),
        ("billion laughs", bomb, "invalid YAML"),
        ("deep nesting", deep, "invalid YAML"),
        ("over the size limit", big, "limit for recipes"),
        ("top level must be a mapping", "- a\n- b\n".to_string(), "top level must be a mapping"),
        ("one document only", format!("{}---\nname: x\n", base(&s)), "invalid YAML"),
    ];
    for (label, body, fragment) in cases {
        let started = std::time::Instant::now();
        let run = validate(&s, &body);
        expect(&run, label, 2, fragment);
        assert!(started.elapsed().as_secs() < 5, "[{label}] took {:?}", started.elapsed());
    }
    let not_utf8 = s.write("latin1.yaml", b"name: caf\xe9\n");
    expect(&s.run(&["validate", not_utf8.to_str().unwrap()]), "not UTF-8", 2, "cannot read it as UTF-8 text");
    let run = validate(&s, "name: demo\nsource: {type: csv\nschema: x\n");
    let m = messages(&run);
    assert!(m.contains("line 3") || m.contains("line 2"), "{m}");
    assert!(m.contains("column"), "{m}");
}

/// `RECOTEM_ARTIFACT_ROOT` containment at load (PATH-07).
#[test]
fn artifact_root_containment() {
    let mut s = Scratch::new();
    std::fs::create_dir_all(s.path("root/models")).unwrap();
    std::fs::create_dir_all(s.path("elsewhere")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(s.path("elsewhere"), s.path("root/escape")).unwrap();
    s.env("RECOTEM_ARTIFACT_ROOT", s.path("root").to_str().unwrap());
    let recipe = |out: &str| s.write("r.yaml", edited(&s, &[("path: out/model.recotem", &format!("path: {out}"))]));
    let cases: &[(&str, &str, i32, &str)] = &[
        ("inside", "root/models/m.recotem", 0, "model"),
        ("outside", "elsewhere/m.recotem", 2, "resolves outside RECOTEM_ARTIFACT_ROOT"),
        ("dot-dot escape", "root/models/../../elsewhere/m.recotem", 2, "resolves outside RECOTEM_ARTIFACT_ROOT"),
        ("missing parent", "root/nope/m.recotem", 2, "with RECOTEM_ARTIFACT_ROOT set it must exist"),
        #[cfg(unix)]
        ("symlinked parent escapes", "root/escape/m.recotem", 2, "resolves outside RECOTEM_ARTIFACT_ROOT"),
        // Remote outputs are not confined; they pass the load and fail
        // before training because writing them is not supported yet.
        ("remote outputs are not confined", "s3://bucket/m.recotem", 5, "output.path: s3:// outputs are not supported"),
    ];
    for (label, out, code, fragment) in cases {
        let r = recipe(out);
        let run = s.run(&["train", r.to_str().unwrap()]);
        expect(&run, label, *code, fragment);
    }
}

/// Recipe directories via `validate DIR` (strict).
#[test]
fn validate_directories() {
    let s = Scratch::new();
    let recipe = |name: &str| edited(&s, &[("name: demo", &format!("name: {name}"))]);
    s.write("good/a.yaml", recipe("a"));
    s.write("good/b.yaml", recipe("b"));
    s.write("good/ignored.yml", "not: [a recipe");
    s.write("good/sub/c.yaml", "not: [a recipe");
    let run = s.run(&["validate", "good"]);
    expect(&run, "two recipes", 0, "Recipe 'a': schema OK\nDataSource: probe OK (csv)\nRecipe 'b': schema OK");
    assert_eq!(run.stdout().matches("schema OK").count(), 2);

    s.write("dup/a.yaml", recipe("same"));
    s.write("dup/b.yaml", recipe("same"));
    expect(&s.run(&["validate", "dup"]), "duplicate names", 2, "both use the name \"same\"");

    s.write("bad/a.yaml", recipe("a"));
    s.write("bad/b.yaml", edited(&s, &[("cutoff: 10", "cutoff: 0")]));
    expect(&s.run(&["validate", "bad"]), "one bad file", 2, "b.yaml: training.cutoff: must be >= 1");

    std::fs::create_dir_all(s.path("empty")).unwrap();
    expect(&s.run(&["validate", "empty"]), "empty dir", 2, "holds no *.yaml recipe");

    #[cfg(unix)]
    {
        s.write("outside/evil.yaml", recipe("evil"));
        std::fs::create_dir_all(s.path("linked")).unwrap();
        std::os::unix::fs::symlink(s.path("outside/evil.yaml"), s.path("linked/evil.yaml")).unwrap();
        let run = s.run(&["validate", "linked"]);
        expect(&run, "symlink out of the dir", 2, "leading outside the recipe directory");
        assert_eq!(run.events_named("command_failed")[0]["code"], "recipe_security_violation");
    }
}

/// `recotem validate` output and exit codes (CLI-20).
#[test]
fn validate_prints_what_it_checked() {
    let s = Scratch::new();
    let run = validate(&s, &base(&s));
    run.expect_code(0);
    assert_eq!(run.stdout(), "Recipe 'demo': schema OK\nDataSource: probe OK (csv)\nValidation passed.\n");
    assert!(!s.path("out").exists(), "validate never writes the output");
    let probe = run.events_named("source_probe_done");
    assert!(probe[0]["summary"].as_str().unwrap().contains("user_id"), "{probe:?}");

    // Failures: nothing on stdout, one command_failed event, exit by taxonomy.
    let run = validate(&s, &edited(&s, &[("cutoff: 10", "cutoff: 0")]));
    run.expect_code(2);
    assert!(run.stdout().is_empty(), "{}", run.stdout());
    assert_eq!(run.events_named("command_failed")[0]["exit_code"], 2);

    s.write("empty.csv", "");
    let csv = quickstart_csv().display().to_string();
    expect(&validate(&s, &edited(&s, &[(&csv, "empty.csv")])), "probe failure", 3, "empty");
    expect(&s.run(&["validate", "no-such.yaml"]), "missing target", 2, "no such file or directory");
    s.run(&["validate"]).expect_code(2);
}

/// `recotem schema` (CLI-21): a draft 2020-12 schema whose `source` is the
/// union of the registered components; checked with a real validator.
#[test]
fn schema_command_validates_examples_and_rejects_bad_recipes() {
    let s = Scratch::new();
    let run = s.run(&["schema"]);
    run.expect_code(0);
    let schema: Value = serde_json::from_str(&run.stdout()).expect("schema is JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert!(run.stdout().contains("\n  \"$id\""), "indented by 2");
    let variants = schema["properties"]["source"]["oneOf"].as_array().unwrap();
    assert!(variants.iter().any(|v| v["properties"]["type"]["const"] == "csv"));
    let validator = jsonschema::draft202012::new(&schema).expect("the schema compiles");

    let yaml = |text: &str| -> Value { serde_saphyr::from_str(text).expect("test YAML parses") };
    let example = std::fs::read_to_string(repo_root().join("examples/quickstart/recipe.yaml")).unwrap();
    let errors: Vec<String> = validator.iter_errors(&yaml(&example)).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "quickstart: {errors:?}");
    assert!(validator.is_valid(&yaml(&base(&s))));
    for doc in recipe_md_examples() {
        assert!(validator.is_valid(&yaml(&doc)), "docs/recipe.md example is invalid:\n{doc}");
        // ... and runs as written (its data path is relative to the repo root).
        let doc = doc.replace("examples/quickstart/interactions.csv", &quickstart_csv().display().to_string());
        expect(&validate(&s, &doc), "docs/recipe.md example", 0, PASSED);
    }
    let invalid: &[(&str, &[(&str, &str)])] = &[
        ("unknown source type", &[("type: csv", "type: nosuch")]),
        ("unknown source field", &[("  type: csv\n", "  type: csv\n  bogus: 1\n")]),
        ("bad name", &[("name: demo", "name: 'a b'")]),
        ("bad ratio", &[("  cutoff: 10\n", "  cutoff: 10\n  split: {heldout_ratio: 2}\n")]),
        ("unknown key", &[("name: demo\n", "name: demo\nextra: 1\n")]),
        ("missing output", &[("output:\n  path: out/model.recotem\n  versioning: always_overwrite\n", "")]),
    ];
    for (label, edits) in invalid {
        assert!(!validator.is_valid(&yaml(&edited(&s, edits))), "{label} passed the schema");
    }
}

#[test]
fn schema_includes_plugin_directory_sources() {
    let s = Scratch::new();
    let plugins = s.path("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(fixture_component("recotem-fixture-hostile-source"), plugins.join("hostile_source.wasm")).unwrap();
    let run = s.run(&["schema", "--plugin-dir", plugins.to_str().unwrap()]);
    run.expect_code(0);
    let schema: Value = serde_json::from_str(&run.stdout()).unwrap();
    let types: Vec<&Value> = schema["properties"]["source"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["properties"]["type"]["const"])
        .collect();
    assert!(types.contains(&&Value::from("csv")) && types.contains(&&Value::from("hostile")), "{types:?}");
    let run = s.run(&["schema", "--plugin-dir", "no-such-dir"]);
    expect(&run, "unreadable plugin dir", 8, "plugin directory");

    // validate with the same plugin directory: unknown types list it, and
    // the plugin's own probe runs.
    let p = plugins.to_str().unwrap();
    let run = s.run(&["validate", "--plugin-dir", p, s.write("r.yaml", edited(&s, &[("type: csv", "type: nosuch")])).to_str().unwrap()]);
    expect(&run, "unknown type lists plugins", 2, "registered types: csv, echo, parquet, hostile");
    let run = s.run(&["validate", "--plugin-dir", p, s.write("r.yaml", edited(&s, &[("type: csv", "type: hostile")])).to_str().unwrap()]);
    expect(&run, "plugin probe", 0, "Recipe 'demo': schema OK\nDataSource: probe OK (hostile)\nValidation passed.");
}

/// A `file://` URL works wherever a path does: the recipe given to
/// `validate` and `train`, a recipe directory, `--plugin-dir` and
/// `RECOTEM_PLUGIN_DIR`, and the recipe's own path fields.
#[test]
fn file_urls_work_where_paths_do() {
    let mut s = Scratch::new();
    let url = |p: &std::path::Path| format!("file://{}", p.display());
    s.write("items.csv", "item_id,title\ni0000,first\n");
    let csv = quickstart_csv().display().to_string();
    let output = format!("path: {}", url(&s.path("out/model.recotem")));
    let metadata = format!("item_metadata: {{type: csv, path: '{}', fields: [title]}}\ntraining:\n", url(&s.path("items.csv")));
    let body = edited(&s, &[
        (csv.as_str(), url(&quickstart_csv()).as_str()),
        ("path: out/model.recotem", output.as_str()),
        ("training:\n", metadata.as_str()),
    ]);
    let recipe = s.write("recipes/r.yaml", &body);
    expect(&s.run(&["validate", &url(&recipe)]), "validate file://", 0, PASSED);
    expect(&s.run(&["validate", &url(&s.path("recipes"))]), "validate a directory by file://", 0, PASSED);
    let run = s.run(&["train", "-q", &url(&recipe)]);
    run.expect_code(0);
    assert_eq!(run.stdout().trim(), s.path("out/model.recotem").display().to_string());
    assert_eq!(run.events_named("metadata_loaded").len(), 1, "{}", run.stderr());

    let plugins = s.path("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(fixture_component("recotem-fixture-hostile-source"), plugins.join("hostile_source.wasm")).unwrap();
    let has_hostile = |run: &Run| {
        run.expect_code(0);
        let schema: Value = serde_json::from_str(&run.stdout()).unwrap();
        schema["properties"]["source"]["oneOf"].as_array().unwrap().iter().any(|v| v["properties"]["type"]["const"] == "hostile")
    };
    assert!(has_hostile(&s.run(&["schema", "--plugin-dir", &url(&plugins)])), "--plugin-dir file://");
    s.env("RECOTEM_PLUGIN_DIR", &url(&plugins));
    assert!(has_hostile(&s.run(&["schema"])), "RECOTEM_PLUGIN_DIR=file://");
}

/// The YAML examples of docs/recipe.md (```yaml blocks starting with
/// `name:`), so the reference cannot drift from the schema.
fn recipe_md_examples() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("docs/recipe.md")).expect("docs/recipe.md exists");
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("```yaml\n") {
        let body = &rest[start + 8..];
        let Some(end) = body.find("```") else { break };
        if body.starts_with("name:") {
            out.push(body[..end].to_string());
        }
        rest = &body[end..];
    }
    assert!(!out.is_empty(), "docs/recipe.md has no full recipe example");
    out
}

/// `--help` explains every command's flags and the exit codes.
#[test]
fn help_explains_flags_and_exit_codes() {
    let s = Scratch::new();
    for (cmd, flags) in [
        ("train", &["--run-id", "--env-var", "--quiet", "--verbose", "--plugin-dir", "--dev-allow-unsigned", "--i-understand-this-loads-arbitrary-code"][..]),
        ("validate", &["--plugin-dir"][..]),
        ("schema", &["--plugin-dir"][..]),
        ("inspect", &["--dev-allow-unsigned"][..]),
        ("keygen", &["--type", "--kid"][..]),
    ] {
        let run = s.run(&[cmd, "--help"]);
        run.expect_code(0);
        let out = run.stdout();
        for flag in flags {
            assert!(out.contains(flag), "{cmd} --help lacks {flag}");
        }
        assert!(out.contains("Exit codes:") && out.contains("2  recipe error"), "{cmd} --help lacks exit codes");
    }
    let top = s.run(&["--help"]).stdout();
    for cmd in ["train", "inspect", "validate", "schema", "keygen"] {
        assert!(top.contains(cmd), "--help lacks {cmd}");
    }
}

/// `RECOTEM_LOG_FORMAT` (LOG-01, CLI-25): json, console, and an unknown
/// value falling back to auto (JSON when stderr is not a terminal).
#[test]
fn log_format() {
    let mut s = Scratch::new();
    let bad = edited(&s, &[("cutoff: 10", "cutoff: 0")]);
    for (format, json) in [("json", true), ("bogus", true), ("auto", true), ("console", false)] {
        s.env("RECOTEM_LOG_FORMAT", format);
        let run = validate(&s, &bad);
        run.expect_code(2);
        let lines: Vec<String> = run.stderr().lines().map(str::to_string).collect();
        assert!(!lines.is_empty());
        let parsed = lines.iter().all(|l| serde_json::from_str::<Value>(l).is_ok());
        assert_eq!(parsed, json, "{format}: {}", run.stderr());
        assert!(run.stderr().contains("command_failed"));
        assert!(run.stdout().is_empty());
    }
}

