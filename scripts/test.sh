#!/usr/bin/env bash
# The whole test suite, from a fresh clone on a fresh machine: installs what
# the suite needs, checks formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }

if ! command -v cargo >/dev/null; then
    echo "cargo is required (install Rust with rustup)" >&2
    exit 2
fi

log "browser for the console's end-to-end tests"
# Debian's Chromium and its WebDriver; the browser tests fail without them.
if ! { command -v chromium && command -v chromedriver; } >/dev/null; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
    else
        echo "chromium and chromedriver are missing: run as root, or install Debian's chromium and chromium-driver" >&2
        exit 2
    fi
fi

log "formatting"
cargo fmt --all -- --check

log "lints"
cargo clippy --all-targets --locked -- -D warnings

log "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --no-fail-fast --failure-output final
else
    cargo test --locked --no-fail-fast
fi
