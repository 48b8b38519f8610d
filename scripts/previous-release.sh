#!/usr/bin/env bash
# Builds the previous release's binary (the newest release-* tag that is an
# ancestor of HEAD) in a folder of its own under target/, and prints its path.
# The rolling-upgrade test runs it beside this build on one PostgreSQL:
#   TMS_PREVIOUS_BINARY=$(./scripts/previous-release.sh) \
#     cargo nextest run --test api -E 'test(/^upgrade::/)'
# (TMS_TEST_STORE=postgres for the store; `TMS_FAULTS_PROFILE=long ./scripts/test.sh` does it all).
set -euo pipefail
cd "$(dirname "$0")/.."
tag=$(git describe --tags --abbrev=0 --match 'release-*' HEAD)
root="$PWD/target/previous-release/$tag"
if [ ! -x "$root/build/debug/tms-dashboard" ]; then
    rm -rf "$root/src"
    mkdir -p "$root"
    git archive --format=tar "$tag" | (mkdir -p "$root/src" && tar -x -C "$root/src")
    # Its own target folder: sharing this build's would replace this build's binary.
    CARGO_TARGET_DIR="$root/build" cargo build --locked --quiet --bin tms-dashboard \
        --manifest-path "$root/src/Cargo.toml" >&2
fi
echo "$root/build/debug/tms-dashboard"
