#!/usr/bin/env bash
# flagd's Python and JS providers over RPC beside the same languages' OFREP
# providers, through one OpenFeature client each, against one Flagyard server
# (the one flagd_throughput measures: open reads, one flag with a targeting
# rule, in a process of its own). Installs its peers into target/peers-venv
# and node_modules here; not part of the test command.
#
#   contrib/server/examples/peers/run.sh [SECONDS] [TASKS ...]
#
# SECONDS per round (default 3); each TASKS (default 1 4 16) is one JS run with
# that many concurrent loops; Python runs one loop (one thread).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
seconds="${1:-3}"
shift || true
tasks=("${@:-1 4 16}")
read -r -a tasks <<< "${tasks[*]}"

bin="$root/target/release/examples/flagd_throughput"
[ -x "$bin" ] || cargo build --release -p flagyard-server --example flagd_throughput
venv="$root/target/peers-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
npm ci --prefix "$here" --silent --no-audit --no-fund

out="$(mktemp)"
"$bin" --server-child > "$out" &
server=$!
trap 'kill "$server" 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
read -r _ http grpc < "$out" || { echo "the server did not start" >&2; exit 1; }

echo "python: $("$venv/bin/python" "$here/flagd_rpc_vs_ofrep.py" "$http" "$grpc" "$seconds")"
for t in "${tasks[@]}"; do
    echo "js: $(node "$here/flagd_rpc_vs_ofrep.mjs" "$http" "$grpc" "$seconds" "$t")"
done
