#!/usr/bin/env bash
# Build everything (host + built-in wasm components) and run the quickstart:
# generate a signing key, train the example recipe, verify the artifact.
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
