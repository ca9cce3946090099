#!/usr/bin/env python3
"""Benchmark: the Python `pyjsonl` source (examples/plugin-source-python)
against the built-in Rust `csv` source, on the same 1 M-row data.

Prints, side by side, for each source: rows/s read through the component
(`fetching_data` → `data_fetched` events of one `train`), the component's
cold load (empty compiled-code cache) and warm load (cache filled).

    scripts/bench-python-plugin.py [--rows N] [--recotem PATH]

Builds `recotem` in release mode unless --recotem is given, and the Python
component with the componentize-py pinned in the example's requirements.txt
(venv under target/, shared with the test). A command, not a test: run it by
hand on a quiet machine.
"""
import argparse
import datetime
import json
import os
import pathlib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples/plugin-source-python"
WORK = ROOT / "target/tmp/python-plugin"


def sh(*args, **kw):
    return subprocess.run([str(a) for a in args], check=True, **kw)


def componentize_py():
    venv = WORK / "venv"
    tool = venv / "bin/componentize-py"
    if not tool.is_file():
        WORK.mkdir(parents=True, exist_ok=True)
        sh(sys.executable, "-m", "venv", venv)
        sh(venv / "bin/pip", "install", "--quiet", "-r", EXAMPLE / "requirements.txt")
    return tool


def build_component(out):
    start = time.monotonic()
    sh(componentize_py(), "-d", "../../wit", "-w", "source", "componentize", "source_plugin", "-o", out, cwd=EXAMPLE,
       stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def events(stderr):
    out = []
    for line in stderr.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def ts(event):
    return datetime.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def run(recotem, args, env, cwd):
    return subprocess.run([str(recotem), *args], env=env, cwd=cwd, capture_output=True, text=True)


def load_seconds(recotem, env, cwd, plugin_dir, repeat):
    """Wall time of `plugins list` (loads, links and describes every
    component), median of `repeat` runs."""
    args = ["plugins", "list"] + (["--plugin-dir", str(plugin_dir)] if plugin_dir else [])
    times = []
    for _ in range(repeat):
        start = time.monotonic()
        r = run(recotem, args, env, cwd)
        times.append(time.monotonic() - start)
        if r.returncode != 0:
            sys.exit(f"plugins list failed: {r.stderr[-2000:]}")
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--recotem")
    a = ap.parse_args()

    if a.recotem:
        recotem = pathlib.Path(a.recotem)
    else:
        sh("cargo", "build", "--quiet", "--release", "-p", "recotem", cwd=ROOT)
        recotem = ROOT / "target/release/recotem"

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        plugins = tmp / "plugins"
        plugins.mkdir()
        build_s = build_component(plugins / "pyjsonl.wasm")
        size = (plugins / "pyjsonl.wasm").stat().st_size

        rng = random.Random(7)
        with open(tmp / "data.csv", "w") as c, open(tmp / "data.jsonl", "w") as j:
            c.write("user_id,item_id\n")
            for _ in range(a.rows):
                u, i = f"u{rng.randrange(50_000)}", rng.randrange(20_000)
                c.write(f"{u},{i}\n")
                j.write(f'{{"user_id": "{u}", "item_id": {i}}}\n')

        cache = tmp / "cache"
        env = {"PATH": os.environ.get("PATH", ""), "RECOTEM_CACHE_DIR": str(cache), "RECOTEM_LOG_FORMAT": "json",
               # A throwaway signing key: `train` signs the artifact it writes.
               "RECOTEM_SIGNING_KEYS": "bench:" + os.urandom(32).hex()}
        # Built-ins alone: cold (empty cache) then warm.
        csv_cold = load_seconds(recotem, env, tmp, None, 1)
        csv_warm = load_seconds(recotem, env, tmp, None, 5)
        # The Python component, built-ins already cached.
        py_cold = load_seconds(recotem, env, tmp, plugins, 1)
        py_warm = load_seconds(recotem, env, tmp, plugins, 5)

        rates = {}
        for name, typ, data in [("csv", "csv", "data.csv"), ("pyjsonl", "pyjsonl", "data.jsonl")]:
            (tmp / f"{name}.yaml").write_text(
                f"name: bench_{name}\nsource: {{type: {typ}, path: {data}}}\n"
                "schema: {user_column: user_id, item_column: item_id}\n"
                "training: {algorithms: [TopPop], n_trials: 1}\n"
                f"output: {{path: out/{name}.recotem, versioning: always_overwrite}}\n")
            r = run(recotem, ["train", "--quiet", "--plugin-dir", str(plugins), f"{name}.yaml"], env, tmp)
            if r.returncode != 0:
                sys.exit(f"train with {name} failed: {r.stderr[-2000:]}")
            ev = events(r.stderr)
            start = next(e for e in ev if e.get("event") == "fetching_data")
            done = next(e for e in ev if e.get("event") == "data_fetched")
            secs = ts(done) - ts(start)
            rates[name] = (done["n_rows"], secs)

    (n_csv, s_csv), (n_py, s_py) = rates["csv"], rates["pyjsonl"]
    print(f"recotem {recotem}; {a.rows} rows; Python component {size / 1e6:.1f} MB, built in {build_s:.1f} s")
    print(f"{'':24}{'csv (Rust, built-in)':>22}{'pyjsonl (Python)':>20}{'ratio':>10}")
    print(f"{'rows read':24}{n_csv:>22}{n_py:>20}")
    print(f"{'read time, s':24}{s_csv:>22.2f}{s_py:>20.2f}{s_py / s_csv:>9.1f}x")
    print(f"{'rows/s':24}{n_csv / s_csv:>22,.0f}{n_py / s_py:>20,.0f}{(n_csv / s_csv) / (n_py / s_py):>9.1f}x")
    print(f"{'load, cold (compile), s':24}{csv_cold:>22.3f}{py_cold:>20.3f}")
    print(f"{'load, warm (cache), s':24}{csv_warm:>22.3f}{py_warm:>20.3f}")
    print("(loads: wall time of `recotem plugins list`; csv column = the built-ins alone,")
    print(" pyjsonl column = built-ins (cached) + the Python component)")


if __name__ == "__main__":
    main()
