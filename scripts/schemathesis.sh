#!/usr/bin/env bash
# OpenAPI conformance: starts the real server (temporary SQLite store, the
# built-in sandbox cluster) and lets Schemathesis generate requests from
# /api/v1/openapi.json, checking every answer against the document (status
# codes, media types, schemas, headers) and the server's robustness. It must
# find nothing.
#
#   scripts/schemathesis.sh [max-examples-per-operation]
#
# Schemathesis is installed, pinned, into a virtual environment under the
# target folder with the machine's python3.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
max_examples="${1:-150}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$target/venv"

if [ "$("$venv/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
    echo "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    python3 -m venv "$venv" || {
        echo "python3 -m venv failed; install python3-venv" >&2
        exit 2
    }
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --locked --quiet --bin tms-dashboard
binary="$target/debug/tms-dashboard"

work=$(mktemp -d /tmp/tms-schemathesis.XXXXXX)
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export TMS_DATABASE_URL="sqlite://$work/store.db"
export TMS_ADMIN_PASSWORD="schemathesis-admin-pw-1"
# Short, so a generated CID starting with SLOW or DELAY cannot outlast the
# client's request timeout: the server answers 504 first.
export TMS_UPSTREAM_TIMEOUT=2s
export RUST_LOG=warn
"$binary" serve --bind "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null || {
    cat "$work/server.log" >&2
    exit 1
}

# Scripts authenticate with a bearer token (no CSRF header needed); the
# admin's reaches every operation.
TMS_SCHEMATHESIS_TOKEN=$("$binary" tokens create --user admin --name schemathesis 2>/dev/null)
export TMS_SCHEMATHESIS_TOKEN

status=0
config="$PWD/scripts/schemathesis.toml"
# From the temporary folder, where Schemathesis keeps its cache. One worker:
# with two, Python 3.11's parser can fail inside Hypothesis ("AST constructor
# recursion depth mismatch"), an error of the tool, not of the server.
cd "$work"
"$venv/bin/st" --no-color --config-file "$config" run "$base/api/v1/openapi.json" \
    --url "$base" \
    --checks all \
    --max-examples "$max_examples" \
    --seed 7 \
    --workers 1 \
    --request-timeout 10 \
    >"$work/st.log" 2>&1 || status=$?
cat "$work/st.log"
cases=$(sed -n 's/^ *\([0-9][0-9]*\) generated.*/\1/p' "$work/st.log" | tail -n 1)
echo "schemathesis $SCHEMATHESIS_VERSION: ${cases:-?} cases, ${max_examples} examples per operation at most, exit $status"
if [ "$status" != 0 ]; then
    echo "--- server log ---" >&2
    tail -n 50 "$work/server.log" >&2
fi
exit "$status"
