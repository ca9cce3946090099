//! Search and run control through the real binary: budgets, the sampler,
//! deadlines and subcodes, resumable studies, the per-recipe lock between
//! real processes, and progress on and off a terminal.
//!
//! The tunable fixture trainer (tests/fixtures/tunable-trainer) has a real
//! search space (int, log int, float, categorical, and extreme ranges); every
//! user beyond the first 50 makes each of its trials about 1 ms slower.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Run, Scratch, with_plugins};

/// `users` users × `items` items, each user with a deterministic share of
/// the items (all of them with `full`).
fn data(s: &Scratch, users: usize, items: usize, full: bool) {
    let mut csv = String::from("user_id,item_id\n");
    for u in 0..users {
        for i in 0..items {
            if full || (u * 7 + i * 3) % 5 < 3 {
                csv.push_str(&format!("u{u},i{i}\n"));
            }
        }
    }
    s.write("data.csv", csv);
}

/// A recipe over data.csv with `training` as the YAML flow mapping body.
fn recipe(s: &Scratch, training: &str) -> PathBuf {
    s.recipe(
        "search",
        &format!(
            "name: search\nsource: {{type: csv, path: data.csv}}\n\
             schema: {{user_column: user_id, item_column: item_id}}\n\
             training: {{{training}}}\n\
             output: {{path: out/model.recotem, versioning: always_overwrite}}\n"
        ),
    )
}

fn train(s: &Scratch, plugins: &Path, recipe: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["train", "--plugin-dir", plugins.to_str().unwrap(), recipe.to_str().unwrap()];
    args.extend_from_slice(extra);
    s.run(&args)
}

fn tunable() -> (Scratch, PathBuf) {
    with_plugins(&["recotem-fixture-tunable-trainer", "recotem-fixture-hostile-trainer", "recotem-fixture-polite-trainer"])
}

/// Trials per algorithm, counted from the per-trial events.
fn trials_by_algorithm(run: &Run) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for e in run.events() {
        if ["trial_done", "trial_learn_failed", "trial_timed_out"].contains(&e["event"].as_str().unwrap_or("")) {
            *out.entry(e["algorithm"].as_str().unwrap().to_string()).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn budgets_follow_the_spec() {
    let (s, plugins) = tunable();
    data(&s, 30, 12, false);
    // (training block, budgets announced, trials run per algorithm)
    type Case = (&'static str, (u64, u64), (usize, usize));
    let cases: &[Case] = &[
        // Even split, the leading algorithm absorbs the remainder; a trainer
        // without hyper-parameters runs once whatever its budget.
        ("algorithms: [Tunable, TopPop], n_trials: 5", (3, 2), (3, 1)),
        // Explicit 0 disables; the others share everything.
        ("algorithms: [Tunable, TopPop], n_trials: 4, per_algorithm_trials: {TopPop: 0}", (4, 0), (4, 0)),
        // Unspecified algorithms share n_trials − Σexplicit.
        ("algorithms: [TopPop, Tunable], n_trials: 6, per_algorithm_trials: {TopPop: 2}", (2, 4), (1, 4)),
        // Σexplicit > n_trials: scaled down proportionally, never above n_trials.
        ("algorithms: [Tunable, TopPop], n_trials: 4, per_algorithm_trials: {Tunable: 30, TopPop: 10}", (3, 1), (3, 1)),
        // Leftover with nothing unspecified goes to the last non-zero explicit.
        ("algorithms: [TopPop, Tunable], n_trials: 5, per_algorithm_trials: {TopPop: 1, Tunable: 1}", (1, 4), (1, 4)),
        // n_trials < number of positive explicit: the first ones get 1 each.
        ("algorithms: [Tunable, TopPop], n_trials: 1, per_algorithm_trials: {Tunable: 3, TopPop: 3}", (1, 0), (1, 0)),
        // All zero and nothing unspecified: even split; negatives count as 0.
        ("algorithms: [Tunable, TopPop], n_trials: 4, per_algorithm_trials: {Tunable: 0, TopPop: -2}", (2, 2), (2, 1)),
    ];
    for (training, (b0, b1), (n0, n1)) in cases {
        let r = recipe(&s, training);
        let run = train(&s, &plugins, &r, &[]);
        run.expect_code(0);
        let started = &run.events_named("search_started")[0];
        let algos: Vec<&str> = started["algorithms"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(started["budgets"][algos[0]], *b0, "{training}: {started}");
        assert_eq!(started["budgets"][algos[1]], *b1, "{training}: {started}");
        let by = trials_by_algorithm(&run);
        assert_eq!(by.get(algos[0]).copied().unwrap_or(0), *n0, "{training}: {by:?}");
        assert_eq!(by.get(algos[1]).copied().unwrap_or(0), *n1, "{training}: {by:?}");
        let total: u64 = started["budgets"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        let n_trials: u64 = training.split("n_trials: ").nth(1).unwrap().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap();
        assert!(total <= n_trials, "{training}: budgets {total} above n_trials {n_trials}");
    }
}

/// `trial → params` from `-v` trial_done events.
fn params_by_trial(run: &Run) -> Vec<(u64, Value)> {
    run.events_named("trial_done").into_iter().map(|e| (e["trial"].as_u64().unwrap(), e["params"].clone())).collect()
}

#[test]
fn first_trial_keeps_the_defaults_and_the_search_is_seeded() {
    let (s, plugins) = tunable();
    data(&s, 30, 12, false);
    let r = recipe(&s, "algorithms: [Tunable], n_trials: 16, split: {seed: 7}");
    let a = train(&s, &plugins, &r, &["-v"]);
    a.expect_code(0);
    let pa = params_by_trial(&a);
    assert_eq!(pa.len(), 16);
    assert_eq!(pa[0].1, serde_json::json!({"x": 0.1, "depth": 1, "mode": "a", "wide": 0, "huge": 1, "scale": 1.0}));
    // Every value in its domain, the extreme ranges included, and no two
    // trials alike.
    let mut distinct = std::collections::BTreeSet::new();
    for (_, p) in &pa {
        let x = p["x"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&x), "{p}");
        assert!((1..=1024).contains(&p["depth"].as_i64().unwrap()), "{p}");
        assert!(["a", "b", "c"].contains(&p["mode"].as_str().unwrap()), "{p}");
        assert!(p["wide"].is_i64(), "{p}");
        assert!(p["huge"].as_i64().unwrap() >= 1, "{p}");
        let scale = p["scale"].as_f64().unwrap();
        assert!((1e-300..=1e300).contains(&scale), "{p}");
        distinct.insert(p.to_string());
    }
    assert_eq!(distinct.len(), 16, "{pa:?}");
    let wides: std::collections::BTreeSet<i64> = pa.iter().skip(1).map(|(_, p)| p["wide"].as_i64().unwrap()).collect();
    assert!(wides.len() > 5 && wides.iter().any(|w| *w < 0) && wides.iter().any(|w| *w > 0), "{wides:?}");
    // Same seed, same trials; another seed, other trials.
    let b = train(&s, &plugins, &r, &["-v"]);
    assert_eq!(params_by_trial(&b), pa);
    let r = recipe(&s, "algorithms: [Tunable], n_trials: 16, split: {seed: 8}");
    let c = train(&s, &plugins, &r, &["-v"]);
    assert_ne!(params_by_trial(&c)[1..], pa[1..]);
    // -q: no per-trial events, summaries stay.
    let q = train(&s, &plugins, &r, &["-q"]);
    q.expect_code(0);
    assert!(q.events_named("trial_done").is_empty());
    assert_eq!(q.events_named("search_done").len(), 1);
    // Without -v, no params.
    let plain = train(&s, &plugins, &r, &[]);
    let done = plain.events_named("trial_done");
    assert_eq!(done.len(), 16);
    assert!(done.iter().all(|e| e.get("params").is_none() && e["score"].is_f64() && e["algorithm"] == "Tunable"));
}

#[test]
fn parallel_trials_all_run_each_once() {
    let (s, plugins) = tunable();
    data(&s, 150, 12, false);
    let r = recipe(&s, "algorithms: [Tunable], n_trials: 12, parallelism: 3");
    let run = train(&s, &plugins, &r, &["-v"]);
    run.expect_code(0);
    let mut numbers: Vec<u64> = params_by_trial(&run).iter().map(|(n, _)| *n).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..12).collect::<Vec<_>>());
    let distinct: std::collections::BTreeSet<String> = params_by_trial(&run).iter().map(|(_, p)| p.to_string()).collect();
    assert_eq!(distinct.len(), 12);
}

#[test]
fn timeout_seconds_ends_the_search_and_keeps_what_completed() {
    let (s, plugins) = tunable();
    // About 0.4 s per trial: 30 trials would take ~12 s.
    data(&s, 450, 12, false);
    let r = recipe(&s, "algorithms: [Tunable], n_trials: 30, timeout_seconds: 2");
    let started = Instant::now();
    let run = train(&s, &plugins, &r, &[]);
    run.expect_code(0);
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    let done = run.events_named("trial_done").len();
    let skipped = run.events_named("trial_skipped");
    assert!(done >= 1 && !skipped.is_empty() && done + skipped.len() == 30, "done {done}, skipped {}", skipped.len());
    assert!(skipped.iter().all(|e| e["reason"] == "training.timeout_seconds reached"), "{skipped:?}");
}

#[test]
fn subcodes_and_exit_codes() {
    let (s, plugins) = tunable();
    // zero_score: every user's items are their own, so held-out items have
    // no training popularity and never reach the top k.
    let mut csv = String::from("user_id,item_id\n");
    for u in 0..30 {
        for i in 0..6 {
            csv.push_str(&format!("u{u},i{u}_{i}\n"));
        }
    }
    s.write("data.csv", csv);
    let r = recipe(&s, "algorithms: [TopPop], n_trials: 1, cutoff: 5");
    let run = train(&s, &plugins, &r, &[]);
    run.expect_code(4);
    assert_eq!(run.train_error()["code"], "zero_score");
    // …except with metric hit: a warning, and the artifact is written.
    let r = recipe(&s, "algorithms: [TopPop], n_trials: 1, cutoff: 5, metric: hit");
    let run = train(&s, &plugins, &r, &[]);
    run.expect_code(0);
    assert_eq!(run.events_named("zero_score_hit_metric").len(), 1);

    // final_training_error: the trials train on the split (with holes),
    // the refit on all the data, where every user has every item.
    data(&s, 20, 12, true);
    std::fs::remove_file(s.path("out/model.recotem")).unwrap();
    let r = recipe(&s, "algorithms: [Tunable], n_trials: 2");
    let run = train(&s, &plugins, &r, &[]);
    run.expect_code(4);
    let e = run.train_error();
    assert_eq!(e["code"], "final_training_error", "{e}");
    assert!(e["error"].as_str().unwrap().contains("nothing is left to recommend"), "{e}");
    assert!(!s.path("out/model.recotem").exists());

    // no_completed_trials: every trial fails (the hostile trainer panics on
    // 16 items).
    data(&s, 20, 16, true);
    let r = recipe(&s, "algorithms: [Hostile], n_trials: 2");
    let run = train(&s, &plugins, &r, &[]);
    run.expect_code(4);
    assert_eq!(run.train_error()["code"], "no_completed_trials");

    // excessive_per_trial_timeouts: more timeouts than half the completed.
    data(&s, 20, 11, true);
    let r = recipe(&s, "algorithms: [Hostile], n_trials: 1, per_trial_timeout_seconds: 1");
    let run = train(&s, &plugins, &r, &[]);
    run.expect_code(4);
    assert_eq!(run.train_error()["code"], "excessive_per_trial_timeouts");
    assert_eq!(run.events_named("trial_timed_out").len(), 1);

    // Usage: a bad --lock-timeout is a configuration error (8); a bad
    // storage_path scheme a recipe error (2).
    let run = train(&s, &plugins, &r, &["--lock-timeout", "-2"]);
    run.expect_code(8);
    assert!(run.train_error()["error"].as_str().unwrap().contains("--lock-timeout"));
    let r = recipe(&s, "algorithms: [TopPop], storage_path: 'postgresql://db/studies'");
    let run = train(&s, &plugins, &r, &["--run-id", "x"]);
    run.expect_code(2);
    assert!(run.train_error()["error"].as_str().unwrap().contains("storage_path"));
}

/// Run to completion; return (exit code, stderr, user+system CPU seconds,
/// wall seconds).
fn run_cpu(s: &Scratch, args: &[&str]) -> (i32, String, f64, f64) {
    let started = Instant::now();
    let (code, text, usage) = crate::common::run_with_usage(s, args);
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (code, text, tv(usage.ru_utime) + tv(usage.ru_stime), started.elapsed().as_secs_f64())
}

#[test]
fn a_timed_out_trial_stops_for_real() {
    let (s, plugins) = tunable();
    // 11 items: the hostile trainer spins forever. Its one trial times out
    // after 1 s, then the tunable trials run for ~3 s more: had the
    // spinning trial kept a core busy, the process would use about twice
    // the CPU time of its wall time.
    data(&s, 1050, 11, true);
    let r = recipe(
        &s,
        "algorithms: [Hostile, Tunable], n_trials: 4, per_trial_timeout_seconds: 1, \
         per_algorithm_trials: {Hostile: 1, Tunable: 3}, split: {test_user_ratio: 0.05}",
    );
    let args = ["train", "--plugin-dir", plugins.to_str().unwrap(), r.to_str().unwrap()];
    let (code, stderr, cpu, wall) = run_cpu(&s, &args);
    assert!(stderr.contains("\"trial_timed_out\""), "{stderr}");
    // The tunable trials themselves time out or finish; either way the run
    // ends, and CPU stays near one core.
    assert!(code == 0 || code == 4, "{code}: {stderr}");
    assert!(cpu < wall * 1.4 + 1.0, "cpu {cpu:.2} s over wall {wall:.2} s: a stopped trial kept running\n{stderr}");
}

fn journal_trials(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == "trial")
        .collect()
}

#[test]
fn a_study_killed_with_sigkill_resumes_where_it_stopped() {
    let (s, plugins) = tunable();
    data(&s, 350, 12, false);
    let r = recipe(&s, "algorithms: [Tunable], n_trials: 10, storage_path: studies");
    let journal = s.path("studies/recotem_search_r1.jsonl");
    let args = ["train", "--plugin-dir", plugins.to_str().unwrap(), r.to_str().unwrap(), "--run-id", "r1"];
    let mut child = s.command(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(120);
    while journal_trials(&journal).len() < 3 {
        assert!(Instant::now() < deadline, "the journal never reached 3 trials");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it was killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let before = journal_trials(&journal);
    assert!(before.len() < 10, "killed too late: {}", before.len());

    let resumed = train(&s, &plugins, &r, &["--run-id", "r1", "-v"]);
    resumed.expect_code(0);
    let ev = &resumed.events_named("study_resumed")[0];
    assert_eq!(ev["n_done"], before.len(), "{ev}");
    assert_eq!(ev["n_remaining"], 10 - before.len(), "{ev}");
    // Only the remaining trials ran, and only numbers the journal lacked.
    let ran: Vec<u64> = params_by_trial(&resumed).iter().map(|(n, _)| *n).collect();
    assert_eq!(ran.len(), 10 - before.len(), "{ran:?}");
    let done: Vec<u64> = before.iter().map(|t| t["number"].as_u64().unwrap()).collect();
    assert!(ran.iter().all(|n| !done.contains(n)), "{ran:?} vs {done:?}");
    let after = journal_trials(&journal);
    assert_eq!(after.len(), 10);
    let header = resumed.events_named("train_done")[0].clone();
    assert_eq!(header["trials"], 10, "{header}");

    // The resumed study sampled what an uninterrupted one samples.
    let whole = train(&s, &plugins, &r, &["--run-id", "r2"]);
    whole.expect_code(0);
    let uninterrupted = journal_trials(&s.path("studies/recotem_search_r2.jsonl"));
    let key = |v: &Vec<Value>| {
        let mut k: Vec<String> = v.iter().map(|t| format!("{} {}", t["number"], t["params"])).collect();
        k.sort();
        k
    };
    assert_eq!(key(&after), key(&uninterrupted));

    // Same run id, finished study: nothing left to run.
    let again = train(&s, &plugins, &r, &["--run-id", "r1"]);
    again.expect_code(0);
    assert!(again.events_named("trial_done").is_empty());

    // Same run id, another recipe: refused (exit 2), journal untouched.
    let other = recipe(&s, "algorithms: [Tunable], n_trials: 10, cutoff: 5, storage_path: studies");
    let run = train(&s, &plugins, &other, &["--run-id", "r1"]);
    run.expect_code(2);
    let e = run.train_error();
    assert!(e["error"].as_str().unwrap().contains("another recipe"), "{e}");
    assert_eq!(journal_trials(&journal).len(), 10);
}

/// Start a run of the polite trainer (it works until its 30 s deadline)
/// that holds the lock of `out/model.recotem`; return once it holds it.
fn hold_lock(s: &Scratch, plugins: &Path) -> Child {
    let r = s.recipe(
        "holder",
        "name: holder\nsource: {type: csv, path: data.csv}\n\
         schema: {user_column: user_id, item_column: item_id}\n\
         training: {algorithms: [Polite], n_trials: 1, per_trial_timeout_seconds: 30}\n\
         output: {path: out/model.recotem}\n",
    );
    let args = ["train", "-v", "--plugin-dir", plugins.to_str().unwrap(), r.to_str().unwrap()];
    let mut child = s.command(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn holder");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("\"recipe_lock_acquired\"") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("the holder never took the lock");
    child
}

#[test]
fn lock_contention_between_two_processes() {
    let (s, plugins) = tunable();
    data(&s, 20, 12, false);
    let r = recipe(&s, "algorithms: [TopPop], n_trials: 1");
    let mut holder = hold_lock(&s, &plugins);

    // Default: skip with exit 0 and the event, no artifact.
    let run = train(&s, &plugins, &r, &["--run-id", "second"]);
    run.expect_code(0);
    let ev = run.events_named("recipe_lock_contended_skipping");
    assert_eq!(ev.len(), 1, "{}", run.stderr());
    assert_eq!(ev[0]["recipe"], "search");
    assert_eq!(ev[0]["run_id"], "second");
    assert!(run.events_named("train_done").is_empty() && run.events_named("train_error").is_empty());
    assert!(!s.path("out/model.recotem").exists());

    // --fail-on-busy: exit 6.
    let run = train(&s, &plugins, &r, &["--fail-on-busy"]);
    run.expect_code(6);
    assert_eq!(run.train_error()["code"], "lock_contested");

    // --lock-timeout 1 --fail-on-busy: waits about a second, then exit 6.
    let started = Instant::now();
    let run = train(&s, &plugins, &r, &["--fail-on-busy", "--lock-timeout", "1"]);
    run.expect_code(6);
    assert_eq!(run.train_error()["code"], "lock_timeout");
    assert!(started.elapsed() >= Duration::from_secs(1));
    let waited = run.events_named("recipe_lock_timeout");
    assert!(waited[0]["waited_seconds"].as_f64().unwrap() >= 1.0, "{waited:?}");

    // --lock-timeout 0.5 without --fail-on-busy: waits, then skips (exit 0).
    let run = train(&s, &plugins, &r, &["--lock-timeout", "0.5"]);
    run.expect_code(0);
    assert_eq!(run.events_named("recipe_lock_contended_skipping").len(), 1);

    // --no-lock: runs anyway.
    let run = train(&s, &plugins, &r, &["--no-lock"]);
    run.expect_code(0);
    assert_eq!(run.events_named("train_done").len(), 1);
    std::fs::remove_file(s.path("out/model.recotem")).unwrap();

    // --lock-timeout -1: waits for as long as the holder lives, then runs.
    let args = ["train", "--plugin-dir", plugins.to_str().unwrap(), r.to_str().unwrap(), "--lock-timeout", "-1"];
    let mut waiter = s.command(&args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn waiter");
    std::thread::sleep(Duration::from_secs(2));
    assert!(waiter.try_wait().unwrap().is_none(), "the waiter did not wait");
    holder.kill().expect("kill the holder");
    let _ = holder.wait();
    let out = waiter.wait_with_output().expect("waiter");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"train_done\""));
    assert!(s.path("out/model.recotem").exists());
    assert!(s.path("out/model.recotem.lock").exists(), "the lock file is never deleted");
}

#[test]
fn progress_is_events_off_a_terminal_and_a_bar_on_one() {
    let (s, plugins) = tunable();
    data(&s, 300, 12, false);
    let r = recipe(&s, "algorithms: [Tunable], n_trials: 4");
    // Off a terminal: no bar (every stderr line is JSON), one event a trial.
    let run = train(&s, &plugins, &r, &[]);
    run.expect_code(0);
    assert_eq!(run.events_named("trial_done").len(), 4);
    assert!(!run.stderr().contains("trials done"));

    // On a terminal (script(1) gives the process a pseudo-terminal).
    let cmd = format!(
        "{} train --plugin-dir {} {}",
        env!("CARGO_BIN_EXE_recotem"),
        plugins.display(),
        r.display()
    );
    let template = s.command(&[]);
    let mut script = std::process::Command::new("script");
    script.env_clear();
    for (k, v) in template.get_envs() {
        if let Some(v) = v {
            script.env(k, v);
        }
    }
    // A terminal has a TERM; without one (or with TERM=dumb) no bar is drawn.
    script.env("TERM", "xterm").env_remove("RECOTEM_LOG_FORMAT").current_dir(s.dir.path()).args(["-q", "-e", "-c", &cmd, "/dev/null"]);
    let out = script.output().expect("run script(1)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("0 of 4 trials done") && text.contains("3 of 4 trials done"), "no progress bar on the terminal:\n{text}");
    assert!(text.contains("Tunable · best"), "no algorithm/best on the bar:\n{text}");
    assert!(text.contains("ETA"), "{text}");
}
