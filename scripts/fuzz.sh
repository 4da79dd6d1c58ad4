#!/usr/bin/env bash
# Runs the coverage-guided fuzz targets (conformance/fuzz, cargo-fuzz with
# libFuzzer) on the stable toolchain, each for a bounded time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Defaults: 15 seconds for each of the six targets (what CI runs). Set
# FUZZ_RELEASE=1 for an optimized build (long runs). New inputs the fuzzer finds
# go to target/fuzz-corpus/TARGET, seeded from the stored conformance/fuzz/corpus;
# an input that breaks a property is written to conformance/fuzz/artifacts/TARGET/
# and the script fails. Keep such an input in conformance/fuzz/regressions/TARGET/
# once it is fixed: the ordinary test run replays it (tests/fuzz_corpus.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-15}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(document evaluate stream_message sse_stream admin_body ofrep_body)
fi

# cargo-fuzz from crates.io, pinned; with `-s none` it needs no nightly.
if ! cargo fuzz --version 2>/dev/null | grep -q '0\.13\.2'; then
    echo "== installing cargo-fuzz 0.13.2 (about two minutes, once)"
    cargo install cargo-fuzz --version 0.13.2 --locked --quiet
fi

profile=(--dev)
if [ "${FUZZ_RELEASE:-0}" = 1 ]; then
    profile=(--release)
fi

cd conformance
echo "== building the fuzz targets (${profile[*]})"
cargo fuzz build --fuzz-dir fuzz -s none "${profile[@]}"
for target in "${targets[@]}"; do
    scratch="../target/fuzz-corpus/$target"
    mkdir -p "$scratch"
    echo "== fuzz $target for ${seconds}s"
    log="$scratch.log"
    status=0
    cargo fuzz run --fuzz-dir fuzz -s none "${profile[@]}" "$target" "$scratch" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 40 "$log" >&2
        if grep -q '^artifact_prefix=' "$log"; then
            echo "fuzz target $target failed: $(grep -o 'Test unit written to .*' "$log" | tail -n 1)" >&2
        else
            echo "fuzz target $target did not run (see the log above)" >&2
        fi
        exit 1
    fi
done
