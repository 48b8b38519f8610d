#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine: installs what
# the suite needs, checks formatting and lints, then runs every test, the
# integration suite once on SQLite and once on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

if ! command -v cargo >/dev/null; then
    echo "cargo is required (install Rust with rustup)" >&2
    exit 2
fi

apt_install() {
    if [ "$(id -u)" != 0 ]; then
        echo "missing $*; install them (as root: apt-get install $*)" >&2
        exit 2
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL: the server on 127.0.0.1:5432 when it answers, otherwise a
# throw-away server in a temporary folder, from Debian's packages.
PG_TEMP=""
cleanup() {
    if [ -n "$PG_TEMP" ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_TEMP/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_TEMP"
    fi
}
trap cleanup EXIT

pg_answers() {
    command -v psql >/dev/null && psql "$1" -Atqc 'SELECT 1' >/dev/null 2>&1
}

if [ -z "${TMS_TEST_POSTGRES_URL:-}" ]; then
    if pg_answers "postgres://postgres@127.0.0.1:5432/postgres"; then
        export TMS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:5432/postgres"
    else
        log "no PostgreSQL on 127.0.0.1:5432: starting a throw-away server"
        if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
            apt_install postgresql
        fi
        PG_BIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
        PG_TEMP=$(mktemp -d /tmp/tms-pg.XXXXXX)
        chown postgres "$PG_TEMP"
        runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_TEMP/data" -A trust -U postgres >/dev/null
        port=55432
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_TEMP/data" -l "$PG_TEMP/log" -w \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_TEMP -c max_connections=300 -c fsync=off" start >/dev/null
        export TMS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    fi
fi
if ! command -v pg_dump >/dev/null; then
    apt_install postgresql-client
fi
log "PostgreSQL for the tests: $TMS_TEST_POSTGRES_URL"

log "browser for the console's end-to-end tests"
# Debian's Chromium and its WebDriver; the browser tests fail without them.
if ! { command -v chromium && command -v chromedriver; } >/dev/null; then
    apt_install chromium chromium-driver
fi

log "OpenID provider for the single sign-on tests"
# The certified oidc-provider package under Node.js, at its lock file's versions.
if ! { command -v node && command -v npm; } >/dev/null; then
    apt_install nodejs npm
fi
npm ci --prefix tests/oidc-provider --no-audit --no-fund --loglevel=error
npm ci --prefix tests/axe --no-audit --no-fund --loglevel=error

log "the network fault harness: iproute2, iptables, nginx"
# Network namespaces and veth pairs (ip), partitions and loss (iptables),
# Debian's nginx as the load balancer; the harness needs root for them.
if ! { command -v ip && command -v iptables && command -v nginx; } >/dev/null; then
    apt_install iproute2 iptables nginx
fi

log "peers of the event sinks: rsyslog, and Standard Webhooks for the webhook receiver"
# Debian's rsyslog (the tests start their own rsyslogd, never the system's),
# and the official standardwebhooks package in a venv of its own, kept
# between runs like the provider's node_modules.
if ! [ -x /usr/sbin/rsyslogd ]; then
    apt_install rsyslog
fi
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    apt_install python3-venv
fi
WEBHOOK_VENV=tests/webhook-receiver/.venv
if ! "$WEBHOOK_VENV/bin/python" -c 'import standardwebhooks' >/dev/null 2>&1; then
    python3 -m venv "$WEBHOOK_VENV"
    "$WEBHOOK_VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/webhook-receiver/requirements.txt
fi

log "formatting"
cargo fmt --all -- --check
cargo fmt --all --manifest-path fuzz/Cargo.toml -- --check

log "lints"
cargo clippy --all-targets --locked -- -D warnings

if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

log "building the tests, then the previous release's binary for the rolling-upgrade test"
cargo nextest run --locked --no-run
# Built from its commit on this build's dependencies (a minute or two).
TMS_PREVIOUS_BINARY=$(./scripts/previous-release.sh)
export TMS_PREVIOUS_BINARY

log "tests on SQLite (unit, property and integration)"
TMS_TEST_STORE=sqlite cargo nextest run --locked --no-fail-fast --failure-output final

log "integration tests on PostgreSQL"
# Every test of the store's behaviour again on PostgreSQL. The browser tests
# (the nextest group `browser`, .config/nextest.toml) drive the pages, which call the same
# application layer as the API: they ran on SQLite above, and repeating them
# here would only add minutes of Chromium. The network fault harness and the
# rolling upgrade always run their instances on PostgreSQL: once is enough.
TMS_TEST_STORE=postgres cargo nextest run --locked --no-fail-fast --failure-output final \
    -E 'binary(api) - group(browser) - test(/^network::/) - test(=upgrade::the_previous_release_and_this_one_serve_one_postgresql_side_by_side)'

if [ "${TMS_FAULTS_PROFILE:-short}" = long ]; then
    log "long profile: the network faults three times as long, three rounds"
    TMS_FAULTS_PROFILE=long cargo nextest run --locked --no-fail-fast \
        --failure-output final -E 'test(/^network::/)' --no-capture
fi

log "API conformance: Schemathesis against the running server"
# The machine's python3 with its venv module (Debian ships it apart).
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    apt_install python3-venv
fi
./scripts/schemathesis.sh

# About 4 minutes to build from cold (the whole library again, instrumented),
# then this many seconds per target; TMS_FUZZ_SECONDS=0 leaves it out.
if [ "${TMS_FUZZ_SECONDS:-10}" != 0 ]; then
    log "fuzzing the parsers, ${TMS_FUZZ_SECONDS:-10} s per target"
    ./scripts/fuzz.sh "${TMS_FUZZ_SECONDS:-10}"
fi

# Databases of tests that were killed before their clean-up.
psql "$TMS_TEST_POSTGRES_URL" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'tms_test_%'" 2>/dev/null |
    while read -r db; do psql "$TMS_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done
