package bench

import (
	"math"
	"testing"
)

func TestParseRedisBenchmark(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		want      float64
	}{
		{"quiet with progress", "SET: rps=21020.0 (overall: 21020.0) avg_msec=2.2\rSET: 24646.01 requests per second, p50=1.023 msec                    \n", 24646.01},
		{"old format", "SET: 48900.98 requests per second\n", 48900.98},
		{"other tests first", "PING_INLINE: 1000.00 requests per second\nSET: 2000.50 requests per second\n", 2000.50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRedisBenchmark(tc.out, "SET")
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if _, err := parseRedisBenchmark("Could not connect to Redis at 127.0.0.1:1: Connection refused\n", "SET"); err == nil {
		t.Fatal("no error for output without a result")
	}
}

func TestParseWrk(t *testing.T) {
	out := `Running 5s test @ http://127.0.0.1:8080/1k
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.40ms  451.20us  12.01ms   83.29%
    Req/Sec    22.95k     1.42k   25.94k    71.00%
  228281 requests in 5.00s, 281.44MB read
  Socket errors: connect 0, read 3, write 0, timeout 0
  Non-2xx or 3xx responses: 12
Requests/sec:  45656.20
Transfer/sec:     56.29MB
`
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 228281 || r.rate != 45656.20 {
		t.Fatalf("got %v requests at %v/s", r.requests, r.rate)
	}
	if r.errors != "Socket errors: connect 0, read 3, write 0, timeout 0; Non-2xx or 3xx responses: 12" {
		t.Fatalf("errors %q", r.errors)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Fatal("no error for output without a result")
	}
}

func TestProcParsers(t *testing.T) {
	stat := "1234 (vaurien (bench)) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 8 0 100 0 0"
	if u, s := statTimes(stat); u != 250 || s != 75 {
		t.Errorf("statTimes = %d, %d; want 250, 75", u, s)
	}
	if u, s := statTimes("garbage"); u != 0 || s != 0 {
		t.Errorf("statTimes of garbage = %d, %d", u, s)
	}
	io := "rchar: 10\nwchar: 20\nsyscr: 300\nsyscw: 400\nread_bytes: 0\n"
	if n := ioSyscalls(io); n != 700 {
		t.Errorf("ioSyscalls = %d, want 700", n)
	}
	if n := statusRSS("Name:\tx\nVmRSS:\t   12345 kB\nRssAnon: 1 kB\n"); n != 12345<<10 {
		t.Errorf("statusRSS = %d", n)
	}
}

func TestPerfCounts(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want map[string]int64
	}{
		{"352239,,raw_syscalls:sys_enter,1004230643,100.00,,\n", map[string]int64{allSyscalls: 352239}},
		{"<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n", map[string]int64{allSyscalls: 0}},
		{"\n12,,syscalls:sys_enter_read,5,100.00,,\n3,,syscalls:sys_enter_splice,5,100.00,,\n",
			map[string]int64{"syscalls:sys_enter_read": 12, "syscalls:sys_enter_splice": 3}},
	} {
		got, err := perfCounts(tc.out)
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("perfCounts(%q) = %v, %v; want %v", tc.out, got, err, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("perfCounts(%q)[%s] = %d, want %d", tc.out, k, got[k], v)
			}
		}
	}
	if _, err := perfCounts("Error: no permission\n"); err == nil {
		t.Error("no error for output without a count")
	}
}

func TestMedianAndFormat(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	for x, want := range map[float64]string{math.NaN(): "—", 781250: "781,250", 456.4: "456", 32.64: "32.6", 2.014: "2.01", -1234: "-1,234"} {
		if got := num(x); got != want {
			t.Errorf("num(%v) = %q, want %q", x, got, want)
		}
	}
}

func TestParseMix(t *testing.T) {
	m, err := parseMix(defaultFaultMix)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.Entries()); got != 1 {
		t.Fatalf("%d entries", got)
	}
	if _, err := parseMix("10:nosuchbehavior"); err == nil {
		t.Fatal("no error for an unknown behavior")
	}
}

func TestParsePgbench(t *testing.T) {
	out := `pgbench (15.14 (Debian 15.14-0+deb12u1))
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 10
query mode: prepared
number of clients: 8
number of threads: 2
maximum number of tries: 1
duration: 20 s
number of transactions actually processed: 41234
number of failed transactions: 0 (0.000%)
latency average = 3.880 ms
initial connection time = 12.345 ms
tps = 2061.7 (without initial connection time)
`
	r, err := parsePgbench(out)
	if err != nil || r.transactions != 41234 || r.failed != 0 || r.tps != 2061.7 {
		t.Fatalf("got %+v, %v", r, err)
	}
	if _, err := parsePgbench("pgbench: error: connection to server failed\n"); err == nil {
		t.Fatal("no error for output without a result")
	}
}

func TestParseMysqlslap(t *testing.T) {
	out := `Benchmark
	Average number of seconds to run all queries: 2.085 seconds
	Minimum number of seconds to run all queries: 2.085 seconds
	Maximum number of seconds to run all queries: 2.085 seconds
	Number of clients running queries: 8
	Average number of queries per client: 5000
`
	if secs, err := parseMysqlslap(out); err != nil || secs != 2.085 {
		t.Fatalf("got %v, %v", secs, err)
	}
	if _, err := parseMysqlslap("mysqlslap: Error when connecting to server: 2013\n"); err == nil {
		t.Fatal("no error for output without a result")
	}
}
