#!/usr/bin/env bash
# Writes the upgrade fixtures: a SQLite store and a PostgreSQL dump written by
# one release's binary, with a bit of everything in them (users of each role,
# tokens, jobs of every outcome, a run, an approval decided and one still
# waiting, events), for tests/api/upgrade.rs to open with the binary under test.
#
#   git worktree add --detach ../tms-prev <release tag>
#   (cd ../tms-prev && cargo build --bin tms-dashboard)
#   ./scripts/make-upgrade-fixtures.sh ../tms-prev/target/debug/tms-dashboard tests/fixtures/<release tag>
#
# Needs curl, python3 (to checkpoint the SQLite file) and the PostgreSQL
# server of the tests (TMS_TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
BIN=$(realpath "${1:?usage: make-upgrade-fixtures.sh BINARY OUT_DIR}")
OUT=$(realpath "${2:?usage: make-upgrade-fixtures.sh BINARY OUT_DIR}")
CONFIG="$OUT/tms.toml"
ADMIN_PASSWORD=admin-pass-123        # the tests' admin password
PG_ADMIN=${TMS_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
WORK=$(mktemp -d)
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS tms_fixture_build WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

api() { # METHOD PATH TOKEN [BODY] [KEY]
    local args=(-s -X "$1" -H "Authorization: Bearer $3" -H 'Content-Type: application/json')
    [ -n "${5:-}" ] && args+=(-H "Idempotency-Key: $5")
    curl "${args[@]}" ${4:+-d "$4"} "http://127.0.0.1:$PORT$2"
}

fill() { # URL
    local url=$1
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    TMS_ADMIN_PASSWORD=$ADMIN_PASSWORD "$BIN" serve --config "$CONFIG" --bind "127.0.0.1:$PORT" \
        --database-url "$url" >"$WORK/serve.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
    local admin olga
    admin=$("$BIN" tokens create --user admin --name fixture --database-url "$url" 2>/dev/null)
    api POST /api/v1/users "$admin" '{"username":"olga","role":"operator","password":"olga-password-1"}' >/dev/null
    api POST /api/v1/users "$admin" '{"username":"audra","role":"auditor","password":"audra-password-1"}' >/dev/null
    olga=$("$BIN" tokens create --user olga --name fixture --database-url "$url" 2>/dev/null)
    api POST /api/v1/actions "$admin" '{"cluster":"sandbox","action":"Trans-Begin","cids":["C1001","C1002"]}' key-1 >/dev/null
    api POST /api/v1/actions "$admin" '{"cluster":"sandbox","action":"Suspend","cids":["C1003","NOPE-7","LOST-8"]}' key-2 >/dev/null
    api POST /api/v1/actions "$admin" '{"cluster":"sandbox","action":"Trans-Begin","cids":["FAIL-1"]}' key-3 >/dev/null
    api POST /api/v1/actions "$olga" '{"cluster":"sandbox","action":"Trans-Begin","cids":["C2001"]}' key-4 >/dev/null
    local cids run approval
    cids=$(python3 -c 'print(" ".join(f"R{i}" for i in range(250)))')
    run=$(api POST /api/v1/runs "$olga" "{\"cluster\":\"sandbox\",\"action\":\"Trans-Begin\",\"cids\":\"$cids\",\"batch_size\":100}" key-5 |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["run"]["run_id"])')
    for _ in $(seq 100); do
        api GET "/api/v1/runs/$run" "$admin" | grep -q '"status":"finished"' && break
        sleep 0.2
    done
    approval=$(api POST /api/v1/actions "$olga" '{"cluster":"sandbox","action":"Purge-Cache","cids":["P1"],"reason":"INC-1"}' key-6 |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["approval"]["approval_id"])')
    api POST "/api/v1/approvals/$approval/approve" "$admin" '{}' >/dev/null
    api POST /api/v1/actions "$olga" '{"cluster":"sandbox","action":"Purge-Cache","cids":["P2"],"reason":"INC-2"}' key-7 >/dev/null
    kill -TERM "$SERVER"; wait "$SERVER" || true; SERVER=""
}

fill "sqlite://$WORK/store.db"
python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_checkpoint(TRUNCATE)'); c.execute('PRAGMA journal_mode=DELETE'); c.close()" "$WORK/store.db"
cp "$WORK/store.db" "$OUT/store.db"

psql "$PG_ADMIN" -qc "CREATE DATABASE tms_fixture_build" >/dev/null
PG_URL=$(python3 -c 'import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path="/tms_fixture_build").geturl())' "$PG_ADMIN")
fill "$PG_URL"
pg_dump --no-owner --no-privileges --format=plain "$PG_URL" >"$OUT/postgres.sql"
echo "wrote $OUT/store.db and $OUT/postgres.sql with $("$BIN" --version 2>/dev/null || echo "$BIN")"
