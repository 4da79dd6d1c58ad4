#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy with -D warnings, and the whole
# test suite (including the flagd-testbed conformance cases).
#
# The conformance data is read from $FLAGYARD_CONFORMANCE_DATA, default
# ../shared/conformance-data beside this checkout; without it those tests skip
# with a message, except under CI=true where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust 1.95 (https://rustup.rs) first" >&2
    exit 1
fi
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
