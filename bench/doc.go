// Package bench measures vaurien against a direct connection and against a
// minimal io.Copy proxy (the yardstick of what a Go data path can reach),
// each proxy running in a process of its own so that its CPU time (user +
// system, from /proc) can be charged to it alone. Run:
//
//	go test ./bench -run '^$' -bench . -benchtime 1x
//
// The figures are reported as custom benchmark metrics: MB/s and the
// proxy's CPU microseconds per MB moved. BenchmarkStreamMetrics compares
// vaurien with and without its Prometheus observer in the same way.
package bench
