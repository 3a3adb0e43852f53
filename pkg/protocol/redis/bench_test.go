package redis

import (
	"context"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

// loopReader serves data over and over, so that a parser can be measured
// without the cost of I/O.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

func BenchmarkParseRequest(b *testing.B) {
	for name, req := range map[string]string{
		"get":    command("GET", "key:000001"),
		"set1k":  command("SET", "key:000001", strings.Repeat("v", 1024)),
		"inline": "GET key:000001\r\n",
		"set1m":  command("SET", "key:000001", strings.Repeat("v", 1<<20)),
	} {
		b.Run(name, func(b *testing.B) {
			r := newFixedReader(&loopReader{data: []byte(req)}, bufSize, DefaultMaxBulkLen)
			w := kit.NewWriter(io.Discard, bufSize)
			var sc scan
			b.SetBytes(int64(len(req)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.scanRequest(&sc); err != nil {
					b.Fatal(err)
				}
				buf, _ := r.Peek(sc.pos)
				request(sc.arg(buf, 0))
				if err := r.copyRequest(w, &sc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseResponse(b *testing.B) {
	for name, reply := range map[string]string{
		"ok":     "+OK\r\n",
		"bulk1k": "$1024\r\n" + strings.Repeat("v", 1024) + "\r\n",
		"array":  "*10\r\n" + strings.Repeat("$5\r\nvalue\r\n", 10),
		"map3":   "%2\r\n$1\r\na\r\n*2\r\n:1\r\n,2.5\r\n$1\r\nb\r\n~1\r\n#t\r\n",
		"bulk1m": "$1048576\r\n" + strings.Repeat("v", 1<<20) + "\r\n",
	} {
		b.Run(name, func(b *testing.B) {
			r := newFixedReader(&loopReader{data: []byte(reply)}, bufSize, DefaultMaxBulkLen)
			w := kit.NewWriter(io.Discard, bufSize)
			b.SetBytes(int64(len(reply)))
			b.ReportAllocs()
			for b.Loop() {
				if err := r.walk(w, 1, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// targets starts redis, the redis protocol proxy and two plain copying
// proxies in front of it.
func targets(b *testing.B) map[string]string {
	srv := testenv.Redis(b)
	return map[string]string{
		"direct":  srv.Addr,
		"iocopy":  copyProxy(b, srv.Addr),
		"bufcopy": bufCopyProxy(b, srv.Addr),
		"vaurien": startProxy(b, srv.Addr, proxyConfig{}).Addr,
	}
}

// BenchmarkPassThrough compares the requests per second that go through
// Serve with a dummy mix against a plain io.Copy proxy (and redis itself),
// pipelined 16 deep on one connection and one request at a time.
func BenchmarkPassThrough(b *testing.B) {
	addrs := targets(b)
	const depth = 16
	batch := []byte(strings.Repeat(command("GET", "bench:key"), depth))
	for _, name := range []string{"direct", "iocopy", "bufcopy", "vaurien"} {
		addr := addrs[name]
		b.Run("pipelined/"+name, func(b *testing.B) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, command("SET", "bench:key", "0123456789abcdef"))
			r := newFixedReader(c, 4096, DefaultMaxBulkLen)
			if err := r.walk(io.Discard, 1, nil); err != nil {
				b.Fatal(err)
			}
			n := 0
			cpu := cpuTime()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(batch); err != nil {
					b.Fatal(err)
				}
				if err := r.walk(io.Discard, depth, nil); err != nil {
					b.Fatal(err)
				}
				n += depth
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "req/s")
			// On a shared machine the rate swings with the load; the CPU
			// this process spends per request (client and proxy) does not.
			b.ReportMetric(float64(cpuTime()-cpu)/float64(n), "cpu-ns/req")
		})
		b.Run("goredis/"+name, func(b *testing.B) {
			rdb := goredis.NewClient(&goredis.Options{Addr: addr, DisableIdentity: true, PoolSize: 8})
			defer rdb.Close()
			ctx := context.Background()
			rdb.Set(ctx, "bench:key", "0123456789abcdef", 0)
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := rdb.Get(ctx, "bench:key").Err(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var benchLine = regexp.MustCompile(`^(SET|GET): ([0-9.]+) requests per second`)

// runBenchmark runs redis-benchmark against addr and returns its requests
// per second for SET and GET.
func runBenchmark(t *testing.T, bin, addr string) map[string]float64 {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-P", "16", "-t", "set,get", "-n", "100000", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	rates := map[string]float64{}
	for _, line := range strings.FieldsFunc(string(out), func(r rune) bool { return r == '\r' || r == '\n' }) {
		if strings.Contains(strings.ToLower(line), "error") {
			t.Fatalf("redis-benchmark reported an error: %q", line)
		}
		if m := benchLine.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			rates[m[1]], _ = strconv.ParseFloat(m[2], 64)
		}
	}
	if rates["SET"] == 0 || rates["GET"] == 0 {
		t.Fatalf("redis-benchmark printed no SET and GET rates:\n%s", out)
	}
	return rates
}

// redis-benchmark, pipelining 16 deep over 50 connections, completes
// through a pass-through route with no error, every request framed.
func TestRedisBenchmark(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 400,000 requests")
	}
	bin := testenv.LookPath(t, "redis-benchmark")
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	proxied := runBenchmark(t, bin, p.Addr)
	protocoltest.WaitFor(t, 10*time.Second, "every request to be counted", func() bool {
		return p.Count("SET") == 100000 && p.Count("GET") == 100000
	})
	baseline := runBenchmark(t, bin, copyProxy(t, srv.Addr))
	for _, cmd := range []string{"SET", "GET"} {
		t.Logf("%s: %.0f req/s through the redis protocol, %.0f through io.Copy (%.2fx)",
			cmd, proxied[cmd], baseline[cmd], proxied[cmd]/baseline[cmd])
	}
	if errs := p.Errors(); len(errs) > 0 {
		t.Fatalf("Serve returned %v", errs)
	}
}
