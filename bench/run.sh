#!/bin/sh
# Runs the benchmark suite (see README.md) and writes docs/performance.md.
# Extra arguments go to `go test`, e.g. -bench 'Suite/redis' for one
# workload. Settings come from the environment (BENCH_*, TOXIPROXY_SERVER).
set -eu
cd "$(dirname "$0")/.."
export BENCH_REPORT="${BENCH_REPORT:-docs/performance.md}"
export BENCH_ARGS="$*"
exec go test ./bench -run '^$' -bench '^BenchmarkSuite$' -benchtime 1x -timeout 60m "$@"
