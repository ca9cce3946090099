#!/usr/bin/env bash
# Run every test: unit tests of all crates and the black-box tests that drive
# the real binary and real components.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2
cargo test --workspace --locked
