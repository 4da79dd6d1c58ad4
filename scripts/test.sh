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

# System packages the tests use, from Debian: redis-server (the Redis tests start
# their own on a free port), chromium + chromium-driver (the admin web page is
# tested in headless Chromium), nodejs + npm (the JS flagd core of the
# differential test, the JS flagd provider, the OFREP web provider) and
# protobuf-compiler (`protoc`: the build script of flagd's own Rust provider,
# which the gRPC tests connect with, runs it; Flagyard's own `.proto` files
# compile without it). Installed here when running as root.
missing=()
if ! command -v protoc >/dev/null 2>&1 && [ -z "${PROTOC:-}" ]; then
    missing+=(protobuf-compiler)
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    missing+=(redis-server)
fi
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    missing+=(chromium chromium-driver)
fi
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing ${missing[*]}"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    elif [[ " ${missing[*]} " == *" redis-server "* ]]; then
        echo "redis-server not found: install it (Debian: sudo apt-get install redis-server)" >&2
        exit 1
    elif [[ " ${missing[*]} " == *" protobuf-compiler "* ]]; then
        echo "protoc not found: install it (Debian: sudo apt-get install protobuf-compiler) or set PROTOC" >&2
        exit 1
    elif [[ " ${missing[*]} " == *" nodejs "* ]]; then
        echo "node and npm not found: install them (Debian: sudo apt-get install nodejs npm)" >&2
        exit 1
    else
        echo "warning: ${missing[*]} not installed: the browser tests (admin page, OFREP web provider) will be skipped" >&2
    fi
fi

# Python peers from PyPI, in a virtual environment of their own: the OFREP client
# the server is tested against (openfeature-provider-ofrep), flask-pancake with
# Flask and flask-redis (the compatibility test), Selenium (drives Chromium
# through the admin web page), the Python flagd core (the differential test) and
# the Python flagd provider (in-process, against the gRPC sync service), and
# scipy with statsmodels (the reference the experiment results are checked
# against).
VENV=.venv-test
if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 not found: install Python 3.9+ (Debian: apt-get install python3 python3-venv)" >&2
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" || {
        echo "python3 -m venv failed: install the venv module (Debian: apt-get install python3-venv)" >&2
        exit 1
    }
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "openfeature-provider-ofrep==0.3.0" "flask-pancake==0.5.2" "flask-redis==0.4.0" \
    "Flask==3.1.3" "redis==8.1.0" "selenium==4.51.0" "openfeature-flagd-core==2.0.0" \
    "openfeature-provider-flagd==0.6.1" "scipy==1.17.1" "statsmodels==0.15.0"
export FLAGYARD_TEST_PYTHON="$PWD/$VENV/bin/python"

# The JS flagd core from npm, pinned by conformance/differential/package-lock.json.
npm ci --prefix conformance/differential --silent --no-audit --no-fund
# The JS flagd provider (in-process against the gRPC sync service), pinned likewise.
npm ci --prefix contrib/server/tests/flagd_js --silent --no-audit --no-fund
# The OFREP web provider and web SDK, loaded as ES modules by a page in headless Chromium.
npm ci --prefix contrib/server/tests/ofrep_web --silent --no-audit --no-fund

# A clean CI clone builds everything once: incremental state would only take
# disk (about 3 GB) and time there.
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
# The coverage-guided fuzz targets, 15 s each (installs cargo-fuzz once).
scripts/fuzz.sh 15
