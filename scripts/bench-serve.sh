#!/usr/bin/env bash
# Load-test `recotem serve` (a command, not a test).
#
# Trains an IALS model on MovieLens 100k (read from the shared datasets folder,
# converted under target/, never copied into the repository), starts the
# release server and drives POST :recommend (random known users, limit 10)
# with wrk: 32 connections, 2 threads, 30 s, the generator and the server
# sharing the machine. Prints requests/s, p50/p99, errors, server CPU
# seconds and RSS. A second run replaces the artifact every second and
# counts non-2xx answers.
#
#   bash scripts/bench-serve.sh            # ML100K=/path/to/u.data to override
#   DURATION=10 bash scripts/bench-serve.sh
#
# Targets (issue 12): ≥ 20,000 requests/s at p99 < 5 ms, zero errors, zero
# non-2xx during the swaps. The Python service reached 212 requests/s
# (≈204 per server CPU-second, p99 380 ms, 230 MB) on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

data="${ML100K:-$(cd .. && pwd)/shared/datasets/ml-100k/u.data}"
if [[ ! -f $data ]]; then
  echo "bench-serve: skipped: MovieLens 100k not found at $data (set ML100K=/path/to/u.data)"
  exit 0
fi
if ! command -v wrk >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; }
  fi
  command -v wrk >/dev/null 2>&1 || { echo "bench-serve: skipped: wrk is not installed (apt-get install wrk)"; exit 0; }
fi
duration="${DURATION:-30}"
connections="${CONNECTIONS:-32}"

rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build --release --locked -p recotem
bin=target/release/recotem
work=target/bench-serve
rm -rf "$work"
mkdir -p "$work/recipes" "$work/out"

# u.data: user \t item \t rating \t timestamp, no header → CSV with a header.
awk -F'\t' 'BEGIN { print "user_id,item_id,timestamp" } { print $1 "," $2 "," $4 }' "$data" > "$work/ml100k.csv"
# A second, different model for the swap run: the first 90 % of the rows.
head -n "$(( $(wc -l < "$work/ml100k.csv") * 9 / 10 ))" "$work/ml100k.csv" > "$work/ml100k-90.csv"

export RECOTEM_SIGNING_KEYS="bench:$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
export RECOTEM_LOG_FORMAT=json
recipe() { # name csv
  cat > "$work/$1.yaml" <<YAML
name: ml100k
source: {type: csv, path: $2}
schema: {user_column: user_id, item_column: item_id, time_column: timestamp, time_unit: s}
training: {algorithms: [IALS], metric: ndcg, cutoff: 10, n_trials: 2}
output: {path: $work/out/$1.recotem, versioning: always_overwrite}
YAML
}
recipe a "$work/ml100k.csv"
recipe b "$work/ml100k-90.csv"
"$bin" train -q "$work/a.yaml" 2>"$work/train-a.log" >/dev/null
"$bin" train -q "$work/b.yaml" 2>"$work/train-b.log" >/dev/null
# The served recipe reads out/ml100k.recotem; a and b are the two versions.
sed "s#$work/out/a.recotem#$work/out/ml100k.recotem#" "$work/a.yaml" > "$work/recipes/ml100k.yaml"
cp "$work/out/a.recotem" "$work/out/ml100k.recotem"

api="$("$bin" keygen --type api --kid bench)"
export BENCH_KEY="$(sed -n 's/^plaintext=//p' <<<"$api")"
export RECOTEM_API_KEYS="$(sed -n 's/^env_entry=RECOTEM_API_KEYS=//p' <<<"$api")"
export RECOTEM_WATCH_INTERVAL=1 RECOTEM_METRICS_ENABLED=1

# Known users, for the request generator.
users="$(cut -d, -f1 "$work/ml100k.csv" | tail -n +2 | sort -un | tr '\n' ',' | sed 's/,$//')"
cat > "$work/recommend.lua" <<LUA
local users = { $users }
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")
math.randomseed(42)
request = function()
  local u = users[math.random(#users)]
  return wrk.format(nil, nil, nil, '{"user_id":"' .. u .. '","limit":10}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f connect=%d read=%d write=%d timeout=%d non2xx=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.connect, e.read, e.write, e.timeout, e.status))
end
LUA

"$bin" serve --recipes "$work/recipes" --port 0 2>"$work/serve.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
port=
for _ in $(seq 1 600); do
  port="$(grep '"event":"serve_listening"' "$work/serve.log" | grep -o '"address":"[^"]*"' | sed 's/.*:\([0-9]*\)"$/\1/' || true)"
  [[ -n $port ]] && break
  sleep 0.1
done
[[ -n $port ]] || { cat "$work/serve.log"; exit 1; }
url="http://127.0.0.1:$port/v1/recipes/ml100k:recommend"
curl -sf -H "X-API-Key: $BENCH_KEY" -d '{"user_id":"196","limit":5}' "$url" >/dev/null

tck="$(getconf CLK_TCK)"
cpu() { awk -v t="$tck" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$pid/stat"; }
rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }
hwm() { awk '/^VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }

run() { # label
  local before after line
  before="$(cpu)"
  line="$(BENCH_KEY="$BENCH_KEY" wrk -t2 -c"$connections" -d"${duration}s" --latency -s "$work/recommend.lua" "$url" | tee "$work/wrk-$1.txt" | grep '^BENCH')"
  after="$(cpu)"
  eval "${line#BENCH }"
  local rps cpu_s per_cpu
  rps="$(awk -v r="$requests" -v s="$seconds" 'BEGIN { printf "%.0f", r / s }')"
  cpu_s="$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }')"
  per_cpu="$(awk -v r="$requests" -v c="$cpu_s" 'BEGIN { printf "%.0f", (c > 0 ? r / c : 0) }')"
  local errors=$((connect + read + write + timeout))
  printf '%-22s %9s req/s  p50 %6.3f ms  p99 %6.3f ms  errors %d  non-2xx %d  server CPU %6.2f s (%s req per CPU-s)  RSS %s MiB (peak %s)\n' \
    "$1" "$rps" "$p50_ms" "$p99_ms" "$errors" "$non2xx" "$cpu_s" "$per_cpu" "$(rss)" "$(hwm)"
  echo "$1 $rps $p99_ms $errors $non2xx" >> "$work/results.txt"
}

echo "recotem serve bench: MovieLens 100k ($(($(wc -l < "$work/ml100k.csv") - 1)) rows), IALS, :recommend limit 10, wrk $connections connections, ${duration} s, $(nproc) cores shared"
run steady

# Same load while the artifact is replaced every second (a, b, a, …).
swap() {
  local n=0
  while :; do
    n=$((n + 1))
    if (( n % 2 )); then src=b; else src=a; fi
    cp "$work/out/$src.recotem" "$work/out/.swap.tmp"
    mv -f "$work/out/.swap.tmp" "$work/out/ml100k.recotem"
    sleep 1
  done
}
swap &
swapper=$!
run hot-swap-every-1s
kill "$swapper" 2>/dev/null || true
wait "$swapper" 2>/dev/null || true
swaps="$(curl -sf -H "X-API-Key: $BENCH_KEY" "http://127.0.0.1:$port/v1/metrics" | sed -n 's/^recotem_swap_total{recipe="ml100k",result="ok"} //p')"
echo "hot swaps performed during the second run: ${swaps:-0} (artifact replaced every second, watch interval 1 s)"

kill -TERM "$pid"
wait "$pid" || true
trap - EXIT
echo
awk '
  $1 == "steady" { ok = ($2 >= 20000 && $3 < 5 && $4 == 0 && $5 == 0); printf "target steady: >= 20000 req/s, p99 < 5 ms, 0 errors -> %s\n", ok ? "met" : "NOT met" }
  $1 != "steady" { ok = ($5 == 0 && $4 == 0); printf "target hot swap: 0 non-2xx -> %s\n", ok ? "met" : "NOT met" }
' "$work/results.txt"
