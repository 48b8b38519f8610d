#!/usr/bin/env bash
# Builds the previous release's binary in a folder of its own under the
# target folder, and prints its path. The previous release is the newest
# folder of tests/fixtures/ (release-<date>, tagged so in git); its `commit`
# file names the commit, so a clone without tags builds it too.
# The rolling-upgrade test runs it beside this build on one PostgreSQL:
#   TMS_PREVIOUS_BINARY=$(./scripts/previous-release.sh) \
#     cargo nextest run --test api -E 'test(/^upgrade::/)'
set -euo pipefail
cd "$(dirname "$0")/.."
release=$(ls -d tests/fixtures/release-* | sort | tail -n 1)
commit=$(cat "$release/commit")
target=${CARGO_TARGET_DIR:-$PWD/target}
root="$target/previous-release/$(basename "$release")"
if [ ! -x "$root/build/debug/tms-dashboard" ]; then
    rm -rf "$root"
    mkdir -p "$root/src" "$root/build"
    git archive --format=tar "$commit" | tar -x -C "$root/src"
    # Start from this build's compiled dependencies, as hard links: the same
    # versions need no second build, and nothing of this build is written to
    # (the previous release's own crate lands under new names, and its binary
    # is removed first). A folder of its own all the same: building it in
    # this build's folder would replace this build's binary.
    if [ -d "$target/debug/deps" ]; then
        cp -al "$target/debug" "$root/build/debug"
        rm -f "$root/build/debug/tms-dashboard"
    fi
    CARGO_TARGET_DIR="$root/build" cargo build --locked --quiet --bin tms-dashboard \
        --manifest-path "$root/src/Cargo.toml" >&2
fi
echo "$root/build/debug/tms-dashboard"
