//! A data source written in Python (`examples/plugin-source-python`), built
//! with componentize-py as its author would, then installed, audited,
//! validated and trained with through the real binary.
//!
//! The build tool comes from the package registry (pinned in the example's
//! requirements.txt) into a venv under the target directory, kept between
//! runs; the built component is kept too, keyed by the hash of its inputs.
//! The test skips, saying why, only when pip cannot install the tool.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{Scratch, repo_root};

/// Everything the component is built from: the example's Python files and
/// requirements, and the WIT package.
fn inputs_digest(example: &Path) -> String {
    use sha2::Digest;
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in [example.to_path_buf(), repo_root().join("wit")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default();
            if matches!(ext, "py" | "wit" | "txt") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = sha2::Sha256::new();
    for f in files {
        hasher.update(f.file_name().unwrap().to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&f).unwrap());
    }
    hex::encode(hasher.finalize())[..16].to_string()
}

/// The venv with the pinned componentize-py, or why it cannot be had.
fn componentize_py(example: &Path, work: &Path) -> Result<PathBuf, String> {
    let venv = work.join("venv");
    let tool = venv.join("bin/componentize-py");
    let requirements = example.join("requirements.txt");
    let stamp = venv.join("requirements.installed");
    let wanted = std::fs::read(&requirements).unwrap();
    if tool.is_file() && std::fs::read(&stamp).ok().as_deref() == Some(&wanted[..]) {
        return Ok(tool);
    }
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let venv_made = Command::new(&python).args(["-m", "venv"]).arg(&venv).output();
    match venv_made {
        Ok(out) if out.status.success() => {}
        Ok(out) => return Err(format!("`{python} -m venv` failed: {}", String::from_utf8_lossy(&out.stderr).trim())),
        Err(e) => return Err(format!("cannot run {python}: {e}")),
    }
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements)
        .output()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !pip.status.success() || !tool.is_file() {
        let err = String::from_utf8_lossy(&pip.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(format!("pip cannot install {}: {}", requirements.display(), tail.join(" | ")));
    }
    std::fs::write(&stamp, &wanted).unwrap();
    Ok(tool)
}

/// Build the example (or reuse the component built from the same inputs).
fn build_python_example(tool: &Path, example: &Path, work: &Path) -> PathBuf {
    let wasm = work.join(format!("pyjsonl-{}.wasm", inputs_digest(example)));
    if wasm.is_file() {
        return wasm;
    }
    let partial = work.join("pyjsonl.wasm.partial");
    let out = Command::new(tool)
        .current_dir(example)
        .args(["-d", "../../wit", "-w", "source", "componentize", "source_plugin", "-o"])
        .arg(&partial)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run componentize-py");
    assert!(
        out.status.success(),
        "componentize-py failed:\n{}",
        String::from_utf8_lossy(&out.stderr).lines().take(40).collect::<Vec<_>>().join("\n")
    );
    std::fs::rename(&partial, &wasm).unwrap();
    wasm
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}"))
}

#[test]
fn the_python_example_builds_installs_audits_validates_and_trains() {
    let example = repo_root().join("examples/plugin-source-python");
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-plugin");
    std::fs::create_dir_all(&work).unwrap();
    let tool = match componentize_py(&example, &work) {
        Ok(tool) => tool,
        Err(reason) => {
            eprintln!("SKIPPED the_python_example_builds_installs_audits_validates_and_trains: {reason}");
            return;
        }
    };
    let wasm = build_python_example(&tool, &example, &work);

    let mut s = Scratch::new();
    let plugins = s.path("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    s.env("RECOTEM_PLUGIN_DIR", plugins.to_str().unwrap());

    // Install: audited, precompiled, copied; prints the pin.
    let run = s.run(&["plugins", "install", wasm.to_str().unwrap()]);
    run.expect_code(0);
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(std::fs::read(&wasm).unwrap()))
    };
    let out = run.stdout();
    assert!(out.contains(&format!("sha256 {digest}")), "{out}");
    assert!(out.contains(&format!("  - name: pyjsonl\n    sha256: \"{digest}\"")), "{out}");
    let installed = plugins.join(wasm.file_name().unwrap());
    assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(&wasm).unwrap());
    // Installing the same build again is a no-op that audits it again.
    s.run(&["plugins", "install", wasm.to_str().unwrap()]).expect_code(0);

    // Pinned by sha256 in a policy that lists every component it allows.
    let policy = s.write(
        "policy.yaml",
        format!(
            "version: 1\nunlisted: deny\nplugins:\n{}  - name: pyjsonl\n    sha256: \"{digest}\"\n",
            ["csv", "echo", "parquet", "TopPop", "IALS", "CosineKNN", "RP3beta", "DenseSLIM", "TruncatedSVD", "BPRFM"]
                .iter()
                .map(|name| format!("  - name: {name}\n"))
                .collect::<String>()
        ),
    );
    s.env("RECOTEM_PLUGIN_POLICY", policy.to_str().unwrap());

    // Audit: CPython's sockets are linked with every use refused, shown as such.
    let run = s.run(&["plugins", "audit", "--json"]);
    run.expect_code(0);
    let doc = json(&run.stdout());
    let py = doc["components"].as_array().unwrap().iter().find(|c| c["name"] == "pyjsonl").expect("pyjsonl audited");
    assert_eq!(py["status"], "ok", "{py}");
    assert_eq!(py["sha256"], digest.as_str());
    assert_eq!(py["needs"], serde_json::json!(["input-stream"]));
    assert_eq!(py["grants"]["granted"], serde_json::json!(["input-stream"]));
    assert_eq!(py["grants"]["policy_entry"], "plugins[10]"); // after the ten built-ins
    let imports = py["imports"].as_array().unwrap();
    let sockets: Vec<&Value> = imports.iter().filter(|i| i["name"].as_str().unwrap().starts_with("wasi:sockets/")).collect();
    assert!(!sockets.is_empty(), "CPython imports wasi:sockets: {imports:?}");
    for i in &sockets {
        assert_eq!(i["class"], "linked-refused", "{i}");
    }
    assert!(imports.iter().all(|i| i["class"] != "refused" && i["class"] != "network-grant"), "{imports:?}");
    let text = s.run(&["plugins", "audit"]);
    text.expect_code(0);
    assert!(text.stdout().contains("linked, every use refused"), "{}", text.stdout());

    // The recipe is validated against the component's schema ...
    let mut lines = String::new();
    for u in 0..40 {
        for i in 0..8 {
            lines.push_str(&format!("{{\"user_id\": \"u{u}\", \"item_id\": {}}}\n", (u * 3 + i * 5) % 30));
        }
    }
    lines.push_str("\n{\"user_id\": null, \"item_id\": 3}\n");
    s.write("interactions.jsonl", lines);
    let body = "name: pyjsonl_demo\nsource: {type: pyjsonl, path: interactions.jsonl}\n\
                schema: {user_column: user_id, item_column: item_id}\n\
                training: {algorithms: [TopPop], n_trials: 2}\noutput: {path: out/model.recotem, versioning: always_overwrite}\n";
    let bad = s.recipe("bad", &body.replace("path: interactions.jsonl", "path: interactions.jsonl, delimiter: ','"));
    let run = s.run(&["validate", bad.to_str().unwrap()]);
    run.expect_code(2);
    assert!(run.stderr().contains("delimiter"), "{}", run.stderr());
    let recipe = s.recipe("pyjsonl", body);
    let run = s.run(&["validate", recipe.to_str().unwrap()]);
    run.expect_code(0);
    assert!(run.stdout().contains("DataSource: probe OK (pyjsonl)"), "{}", run.stdout());

    // ... and trains.
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(0);
    assert!(s.path("out/model.recotem").is_file());
    let done = &run.events_named("train_done")[0];
    assert_eq!(done["n_users"], 40, "{done}");

    // A malformed line is reported by the component, with its line number.
    s.write("interactions.jsonl", "{\"user_id\": \"u1\", \"item_id\": 1}\nnot json\n");
    let run = s.run(&["train", recipe.to_str().unwrap()]);
    run.expect_code(3);
    let error = run.train_error()["error"].as_str().unwrap().to_string();
    assert!(error.contains("line 2: not JSON"), "{error}");
}
