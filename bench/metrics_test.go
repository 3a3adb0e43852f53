package bench

import (
	"strconv"
	"testing"
)

// BenchmarkStreamMetrics measures what the Prometheus observer costs on the
// pass-through path: two vaurien children, one without and one with
// metrics (BENCH_METRICS=1), move the same streams (BENCH_STREAM_BYTES in
// total, over 1 and 8 connections) interleaved over 3 rounds. It reports
// the medians of each (MB/s, CPU µs per MB) and the with/without ratios;
// the goal is a throughput ratio of at least 0.95.
func BenchmarkStreamMetrics(b *testing.B) {
	total := envInt("BENCH_STREAM_BYTES", 2<<30)
	for _, streams := range []int{1, 8} {
		b.Run(strconv.Itoa(streams)+"streams", func(b *testing.B) {
			backend := sink(b)
			off := startChild(b, "vaurien", backend, metricsEnv+"=0")
			on := startChild(b, "vaurien", backend, metricsEnv+"=1")
			per := total / int64(streams)
			mb := float64(per*int64(streams)) / 1e6
			var offRate, onRate, offCPU, onCPU []float64
			for round := range 3 {
				// Alternate which child goes first so that neither always
				// meets a warmer (or busier) machine.
				order := []*child{off, on}
				if round%2 == 1 {
					order = []*child{on, off}
				}
				for _, c := range order {
					before := c.cpu(b)
					took := send(b, c.addr, per, streams)
					used := c.cpu(b) - before
					rate, cpu := mb/took.Seconds(), float64(used.Microseconds())/mb
					if c == off {
						offRate, offCPU = append(offRate, rate), append(offCPU, cpu)
					} else {
						onRate, onCPU = append(onRate, rate), append(onCPU, cpu)
					}
				}
			}
			b.ReportMetric(median(offRate), "plain-MB/s")
			b.ReportMetric(median(onRate), "metrics-MB/s")
			b.ReportMetric(median(offCPU), "plain-cpu-µs/MB")
			b.ReportMetric(median(onCPU), "metrics-cpu-µs/MB")
			b.ReportMetric(median(onRate)/median(offRate), "throughput-ratio")
			b.ReportMetric(median(onCPU)/median(offCPU), "cpu-ratio")
		})
	}
}
