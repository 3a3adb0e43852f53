package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// streamWorkload moves BENCH_STREAM_BYTES over streams connections at once
// into a sink.
func streamWorkload(b *testing.B, cfg config, rep *report, streams int) {
	start := time.Now()
	load := loadAvg()
	backend := sink(b)
	targets := proxies(b, backend, cfg.others(b), vaurienRoute{"vaurien", "tcp", ""})
	per := cfg.streamBytes / int64(streams)
	mb := float64(per*int64(streams)) / 1e6
	rows := summarize(interleave(b, cfg, targets, func(b *testing.B, t *target) outcome {
		return outcome{units: mb, took: send(b, t.addr, per, streams)}
	}))
	reportMetrics(b, rows, "MB/s", "MB")
	title := fmt.Sprintf("One stream of %s", sizeName(cfg.streamBytes))
	anchor := "direct 2,330 MB/s; yardstick 1,104 MB/s at 456 µs/MB; Toxiproxy 398 MB/s at 2,529 µs/MB"
	if streams > 1 {
		title = fmt.Sprintf("%d parallel streams, %s in all", streams, sizeName(cfg.streamBytes))
		anchor = "direct 3,881 MB/s; yardstick 1,779 MB/s at 345 µs/MB; Toxiproxy 533 MB/s at 2,412 µs/MB"
	}
	if streams != 1 && streams != 8 {
		anchor = ""
	}
	rep.add(&table{
		title: title, anchor: anchor, rateUnit: "MB/s", unit: "MB", rows: rows, load: [2]string{load, loadAvg()}, took: time.Since(start),
		command: fmt.Sprintf("Go client: %s writing %s in 1 MiB writes, then half-closing and waiting for the close, into an in-process sink reading 1 MiB at a time", conns(streams), sizeName(per)),
	})
}

func conns(n int) string {
	if n == 1 {
		return "one connection"
	}
	return fmt.Sprintf("%d connections each", n)
}

func sizeName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// redisWorkload runs redis-benchmark's SET test with 50 clients, with or
// without pipelining, against redis-server.
func redisWorkload(b *testing.B, cfg config, rep *report, pipeline int) {
	start := time.Now()
	load := loadAvg()
	tool := testenv.LookPath(b, "redis-benchmark")
	srv := testenv.Redis(b)
	targets := proxies(b, srv.Addr, cfg.others(b),
		vaurienRoute{"vaurien", "tcp", ""},
		vaurienRoute{"vaurien-redis", "redis", ""},
		vaurienRoute{"vaurien-redis-mix", "redis", cfg.faultMix})
	// Pipelined requests cost the proxy a microsecond or two: they need
	// more of them for its CPU time, counted in 10 ms ticks, to be precise.
	requests := cfg.redisRequests
	if pipeline > 1 {
		requests = cfg.redisPipelined
	}
	args := []string{"-c", "50", "-n", strconv.Itoa(requests), "-t", "set", "-q"}
	if pipeline > 1 {
		args = append(args, "-P", strconv.Itoa(pipeline))
	}
	rows := summarize(interleave(b, cfg, targets, func(b *testing.B, t *target) outcome {
		host, port := hostPort(t.addr)
		out, err := exec.Command(tool, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			b.Fatalf("redis-benchmark through %s: %v\n%s", t.name, err, out)
		}
		rate, err := parseRedisBenchmark(string(out), "SET")
		if err != nil {
			b.Fatalf("redis-benchmark through %s: %v", t.name, err)
		}
		return outcome{units: float64(requests), rate: rate}
	}))
	reportMetrics(b, rows, "req/s", "req")
	title := "redis-benchmark SET, 50 clients"
	anchor := "direct 48,900 req/s; yardstick 24,646 req/s at 32.6 µs/req; Toxiproxy 24,904 req/s at 35.0 µs/req"
	if pipeline > 1 {
		title += fmt.Sprintf(", pipelines of %d", pipeline)
		anchor = "direct 781,250 req/s; yardstick 373,134 req/s at 2.01 µs/req; Toxiproxy 341,297 req/s at 2.52 µs/req"
	}
	if pipeline != 1 && pipeline != 16 {
		anchor = ""
	}
	rep.add(&table{
		title: title, anchor: anchor, rateUnit: "req/s", unit: "req", rows: rows, load: [2]string{load, loadAvg()}, took: time.Since(start),
		command: "redis-benchmark -h 127.0.0.1 -p PORT " + strings.Join(args, " ") + " (" + toolVersion(tool, "--version") + ")",
	})
}

var redisRate = regexp.MustCompile(`([0-9.]+) requests per second`)

// parseRedisBenchmark finds test's final figure in redis-benchmark -q
// output, whose progress lines are separated by carriage returns.
func parseRedisBenchmark(out, test string) (float64, error) {
	lines := strings.FieldsFunc(out, func(r rune) bool { return r == '\r' || r == '\n' })
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, test+":") {
			continue
		}
		if m := redisRate.FindStringSubmatch(line); m != nil {
			return strconv.ParseFloat(m[1], 64)
		}
	}
	return 0, fmt.Errorf("no %s result in %q", test, out)
}

// httpWorkload runs wrk with 64 connections for 1 KiB responses.
func httpWorkload(b *testing.B, cfg config, rep *report) {
	start := time.Now()
	load := loadAvg()
	tool := testenv.LookPath(b, "wrk")
	backend, server := httpBackend(b)
	targets := proxies(b, backend, cfg.others(b),
		vaurienRoute{"vaurien", "tcp", ""},
		vaurienRoute{"vaurien-http", "http", ""},
		vaurienRoute{"vaurien-http-mix", "http", cfg.faultMix})
	args := []string{"-c", "64", "-t", "2", "-d", cfg.wrkDuration.String()}
	rows := summarize(interleave(b, cfg, targets, func(b *testing.B, t *target) outcome {
		out, err := exec.Command(tool, append(args, "http://"+t.addr+"/1k")...).CombinedOutput()
		if err != nil {
			b.Fatalf("wrk through %s: %v\n%s", t.name, err, out)
		}
		w, err := parseWrk(string(out))
		if err != nil {
			b.Fatalf("wrk through %s: %v", t.name, err)
		}
		return outcome{units: w.requests, rate: w.rate, note: w.errors}
	}))
	reportMetrics(b, rows, "req/s", "req")
	rep.add(&table{
		title: "wrk, 64 connections, 1 KiB responses", rateUnit: "req/s",
		anchor: "direct 45,656 req/s; yardstick 25,448 req/s at 30.1 µs/req; Toxiproxy 21,273 req/s at 41.2 µs/req", unit: "req", rows: rows,
		load: [2]string{load, loadAvg()}, took: time.Since(start),
		command: "wrk " + strings.Join(args, " ") + " http://127.0.0.1:PORT/1k (" + toolVersion(tool, "-v") + "; backend " + server + ")",
	})
}

type wrkResult struct {
	requests, rate float64
	errors         string
}

var (
	wrkTotal  = regexp.MustCompile(`(?m)^\s*(\d+) requests in`)
	wrkRate   = regexp.MustCompile(`(?m)^Requests/sec:\s*([0-9.]+)`)
	wrkErrors = regexp.MustCompile(`(?m)^\s*(Socket errors:.*|Non-2xx or 3xx responses:.*)$`)
)

func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	t, rate := wrkTotal.FindStringSubmatch(out), wrkRate.FindStringSubmatch(out)
	if t == nil || rate == nil {
		return r, fmt.Errorf("no result in %q", out)
	}
	r.requests, _ = strconv.ParseFloat(t[1], 64)
	r.rate, _ = strconv.ParseFloat(rate[1], 64)
	var errs []string
	for _, m := range wrkErrors.FindAllStringSubmatch(out, -1) {
		errs = append(errs, strings.TrimSpace(m[1]))
	}
	r.errors = strings.Join(errs, "; ")
	return r, nil
}

// memcacheWorkload runs 50 Go clients doing set and get of a 100-byte
// value in turn, one request in flight each, against memcached.
func memcacheWorkload(b *testing.B, cfg config, rep *report) {
	start := time.Now()
	load := loadAvg()
	srv := testenv.Memcached(b)
	targets := proxies(b, srv.Addr, cfg.others(b),
		vaurienRoute{"vaurien", "tcp", ""},
		vaurienRoute{"vaurien-memcache", "memcache", ""},
		vaurienRoute{"vaurien-memcache-mix", "memcache", cfg.faultMix})
	rows := summarize(interleave(b, cfg, targets, func(b *testing.B, t *target) outcome {
		n, took, err := memcacheLoad(t.addr, 50, 100, cfg.duration)
		if err != nil {
			b.Fatalf("memcache load through %s: %v", t.name, err)
		}
		return outcome{units: float64(n), took: took}
	}))
	reportMetrics(b, rows, "req/s", "req")
	rep.add(&table{
		title: "memcached set/get, 50 clients", rateUnit: "req/s", unit: "req", rows: rows,
		load: [2]string{load, loadAvg()}, took: time.Since(start),
		command: fmt.Sprintf("Go client: 50 connections, each alternating `set` and `get` of a 100-byte value (text protocol, one request in flight) for %v (%s)", cfg.duration, toolVersion(testenv.LookPath(b, "memcached"), "-V")),
	})
}

// memcacheLoad runs clients connections doing set/get for d and returns
// the number of requests answered.
func memcacheLoad(addr string, clients, size int, d time.Duration) (int64, time.Duration, error) {
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	deadline := start.Add(d)
	value := body(size)
	for i := range clients {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			key := "bench" + strconv.Itoa(i)
			set := []byte(fmt.Sprintf("set %s 0 0 %d\r\n%s\r\n", key, size, value))
			get := []byte("get " + key + "\r\n")
			wantGet := fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", key, size, value)
			r := bufio.NewReader(c)
			got := make([]byte, len(wantGet))
			var n int64
			defer func() { total.Add(n) }()
			for time.Now().Before(deadline) {
				if _, err := c.Write(set); err != nil {
					errs <- err
					return
				}
				line, err := r.ReadSlice('\n')
				if err != nil || string(line) != "STORED\r\n" {
					errs <- fmt.Errorf("set: %q, %v", line, err)
					return
				}
				if _, err := c.Write(get); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, []byte(wantGet)) {
					errs <- fmt.Errorf("get: %q, %v", got, err)
					return
				}
				n += 2
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	return total.Load(), took, <-errs
}

// churnWorkload opens a new connection per request: dial, write a byte,
// read its echo, close; four clients for BENCH_DURATION.
func churnWorkload(b *testing.B, cfg config, rep *report) {
	start := time.Now()
	load := loadAvg()
	// Each target gets an echo backend of its own: a proxy's connections
	// to its backend wait in TIME_WAIT on its side once closed, and on a
	// shared backend port the next target's connects would search past
	// tens of thousands of them, charging whoever comes later.
	targets := proxiesEach(b, func() string { return startEcho(b).addr }, cfg.others(b),
		vaurienRoute{"vaurien", "tcp", ""},
		vaurienRoute{"vaurien-mix", "tcp", cfg.faultMix})
	const clients = 4
	rows := summarize(interleave(b, cfg, targets, func(b *testing.B, t *target) outcome {
		n, took, err := churn(t.addr, clients, cfg.duration)
		if err != nil {
			b.Fatalf("connection churn through %s: %v", t.name, err)
		}
		return outcome{units: float64(n), took: took}
	}))
	reportMetrics(b, rows, "conn/s", "conn")
	rep.add(&table{
		title: "New connection per request", rateUnit: "conn/s",
		anchor: "direct 6,379 conn/s; yardstick 3,319 conn/s at 229 µs/conn; Toxiproxy 1,789 conn/s at 539 µs/conn", unit: "conn", rows: rows,
		load: [2]string{load, loadAvg()}, took: time.Since(start),
		command: fmt.Sprintf("Go client: %d goroutines, each looping dial, write 1 byte, read its echo, close, for %v; an in-process echo backend for each target", clients, cfg.duration),
	})
}

func churn(addr string, clients int, d time.Duration) (int64, time.Duration, error) {
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	deadline := start.Add(d)
	for range clients {
		wg.Go(func() {
			var n int64
			defer func() { total.Add(n) }()
			buf := []byte{'x'}
			for time.Now().Before(deadline) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					errs <- err
					return
				}
				_, err = c.Write(buf)
				if err == nil {
					_, err = io.ReadFull(c, buf)
				}
				c.Close()
				if err != nil {
					errs <- err
					return
				}
				n++
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	return total.Load(), took, <-errs
}
