#!/usr/bin/env bash
# Build everything (host + built-in wasm components) and run the quickstart:
# generate a signing key, train the example recipe, verify the artifact, then
# serve it, print one :recommend answer and stop the server.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2
cargo build --release --locked
bin=target/release/recotem

# A signing key for the quickstart, kept (mode 0600) so re-runs can verify
# earlier artifacts. Real deployments keep keys in a secret store.
mkdir -p target/quickstart
keyfile=target/quickstart/signing.env
if [[ ! -s $keyfile ]]; then
  (umask 077 && "$bin" keygen --kid quickstart | sed -n 's/^env_entry=//p' > "$keyfile")
fi
export "$(cat "$keyfile")"

"$bin" train examples/quickstart/recipe.yaml
"$bin" inspect target/quickstart/quickstart.recotem

# Serve the model and ask it for one recommendation. An API key for the demo
# client (the server keeps only its digest), the recipe in a recipes
# directory, the server on a free port (named by its serve_listening event).
api="$("$bin" keygen --type api --kid quickstart)"
key="$(sed -n 's/^plaintext=//p' <<<"$api")"
export RECOTEM_API_KEYS="$(sed -n 's/^env_entry=RECOTEM_API_KEYS=//p' <<<"$api")"
mkdir -p target/quickstart/recipes
cp examples/quickstart/recipe.yaml target/quickstart/recipes/
log=target/quickstart/serve.log
RECOTEM_LOG_FORMAT=json "$bin" serve --recipes target/quickstart/recipes --port 0 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT

port=
for _ in $(seq 1 600); do
  port="$(grep '"event":"serve_listening"' "$log" | grep -o '"address":"[^"]*"' | sed 's/.*:\([0-9]*\)"$/\1/' || true)"
  [[ -n $port ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "recotem serve exited early" >&2; exit 1; }
  sleep 0.1
done
[[ -n $port ]] || { cat "$log" >&2; echo "recotem serve did not start in 60 s" >&2; exit 1; }

# http METHOD PATH [JSON]: curl when installed, else bash's /dev/tcp.
http() {
  if command -v curl >/dev/null 2>&1; then
    curl -sS -X "$1" -H "X-API-Key: $key" -H 'Content-Type: application/json' ${3:+--data "$3"} "http://127.0.0.1:$port$2"
  else
    local body="${3:-}"
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
      "$1" "$2" "$port" "$key" "${#body}" "$body" >&3
    sed '1,/^\r$/d' <&3
    exec 3<&-
  fi
}

for _ in $(seq 1 300); do
  http GET /v1/health 2>/dev/null | grep -q '"status":"ok"' && break
  sleep 0.1
done
echo "recotem serve on 127.0.0.1:$port; POST /v1/recipes/quickstart:recommend {\"user_id\": \"u0000\", \"limit\": 5}:"
http POST /v1/recipes/quickstart:recommend '{"user_id": "u0000", "limit": 5}'
echo
kill -TERM "$pid"
wait "$pid"
trap - EXIT
