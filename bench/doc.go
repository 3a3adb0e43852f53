// Package bench measures vaurien against a direct connection, against a
// minimal io.Copy proxy (the yardstick of what a Go data path can reach),
// against HAProxy when it is installed and, when a toxiproxy-server binary
// is given, against Toxiproxy. Each proxy runs in a process of its own
// (this test binary re-executed with VAURIEN_BENCH_ROLE, or the HAProxy or
// Toxiproxy server) so that its CPU time, system calls and allocations can
// be charged to it alone.
//
// The suite (BenchmarkSuite) runs every workload of issue 9 — streams,
// redis-benchmark, wrk, a memcached load, connection churn and thousands of
// idle connections — interleaved over the targets, prints medians and
// ratios and writes docs/performance.md:
//
//	bench/run.sh
//
// BenchmarkProfile profiles the vaurien child on the tcp, redis, http and
// memcache paths; BenchmarkStream and BenchmarkStreamMetrics are the
// stream comparisons alone (the latter with and without the Prometheus
// observer). See README.md for the settings. Plain `go test ./bench` runs
// only quick unit tests of the harness.
package bench
