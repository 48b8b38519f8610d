#!/usr/bin/env bash
# The benchmark: builds optimised binaries and prints the table of docs/benchmarks.md.
# Arguments go to the benchmark: --seconds N --clients N --postgres-url URL --skip-postgres
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench --bench tms -- "$@"
