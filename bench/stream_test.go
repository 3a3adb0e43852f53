package bench

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// sink accepts connections and reads them to the end with large reads.
func sink(b testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 1<<20)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// send writes n bytes to addr over each of streams connections at once and
// returns the elapsed time once all have been written and closed.
func send(b testing.TB, addr string, n int64, streams int) time.Duration {
	buf := make([]byte, 1<<20)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < streams; i++ {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			for left := n; left > 0; {
				m, err := c.Write(buf[:min(int64(len(buf)), left)])
				if err != nil {
					b.Error(err)
					break
				}
				left -= int64(m)
			}
			// Wait for the far side to finish reading: half-close and read
			// its close, so the time covers delivery, not just buffering.
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
			c.Close()
		})
	}
	wg.Wait()
	return time.Since(start)
}

// BenchmarkStream moves one 2 GiB stream (BENCH_STREAM_BYTES) and 8
// parallel streams of the same total directly, through the yardstick and
// through a vaurien tcp route, interleaved over 3 rounds, and reports the
// medians: MB/s for each and each proxy's CPU µs per MB.
func BenchmarkStream(b *testing.B) {
	total := envInt("BENCH_STREAM_BYTES", 2<<30)
	for _, streams := range []int{1, 8} {
		b.Run(strconv.Itoa(streams)+"streams", func(b *testing.B) {
			backend := sink(b)
			yard := startChild(b, "yardstick", backend)
			vaur := startChild(b, "vaurien", backend)
			per := total / int64(streams)
			mb := float64(per*int64(streams)) / 1e6
			var direct, yRate, vRate, yCPU, vCPU []float64
			for round := 0; round < 3; round++ {
				direct = append(direct, mb/send(b, backend, per, streams).Seconds())
				for _, c := range []*child{yard, vaur} {
					before := c.cpu(b)
					took := send(b, c.addr, per, streams)
					used := c.cpu(b) - before
					rate, cpu := mb/took.Seconds(), float64(used.Microseconds())/mb
					if c == yard {
						yRate, yCPU = append(yRate, rate), append(yCPU, cpu)
					} else {
						vRate, vCPU = append(vRate, rate), append(vCPU, cpu)
					}
				}
			}
			b.ReportMetric(median(direct), "direct-MB/s")
			b.ReportMetric(median(yRate), "yardstick-MB/s")
			b.ReportMetric(median(vRate), "vaurien-MB/s")
			b.ReportMetric(median(yCPU), "yardstick-cpu-µs/MB")
			b.ReportMetric(median(vCPU), "vaurien-cpu-µs/MB")
			b.ReportMetric(median(vRate)/median(yRate), "throughput-ratio")
			b.ReportMetric(median(vCPU)/median(yCPU), "cpu-ratio")
		})
	}
}
