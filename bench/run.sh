#!/bin/sh
# Runs the benchmark suite (see README.md) and writes docs/performance.md.
# Extra arguments go to `go test`, e.g. -bench 'Suite/redis' for one
# workload. Settings come from the environment (BENCH_*, TOXIPROXY_SERVER).
set -eu
cd "$(dirname "$0")/.."
# HAProxy is a target of every tcp workload: install it from Debian when it
# is missing (the suite leaves it out when that fails).
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
	sudo=""
	[ "$(id -u)" = 0 ] || sudo="sudo"
	echo "bench: installing haproxy" >&2
	$sudo apt-get install -y -qq --no-install-recommends haproxy >&2 ||
		{ $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq --no-install-recommends haproxy >&2; } ||
		echo "bench: could not install haproxy; the suite runs without it" >&2
fi
export BENCH_REPORT="${BENCH_REPORT:-docs/performance.md}"
export BENCH_ARGS="$*"
go test ./bench -run '^$' -bench '^BenchmarkSuite$' -benchtime 1x -timeout 60m "$@"
# TLS against HAProxy terminating it: bulk over TLS on both sides, and
# full handshakes. BENCH_TLS=0 leaves it out.
if [ "${BENCH_TLS:-1}" != 0 ]; then
	exec go test ./bench -run '^$' -bench '^BenchmarkTLS$' -benchtime 1x -timeout 30m
fi
