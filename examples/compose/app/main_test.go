package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

func TestMain(m *testing.M) {
	// go-redis probes a dead server from a goroutine that notices the
	// client's Close only after its current one-second pause.
	goleak.VerifyTestMain(testenv.WithSkipSummary(m), goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    int
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(3, 1, 2), 50, 2 * time.Millisecond},
		{"median of even takes the lower", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of five is the max", ms(1, 2, 3, 4, 500), 99, 500 * time.Millisecond},
		{"p99 of 200", append(ms(make([]int, 197)...), ms(100, 200, 300)...), 99, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tt.in...)
			if got := percentile(tt.in, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %d) = %v, want %v", tt.in, tt.p, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.in[i] {
					t.Fatal("percentile reordered its input")
				}
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    config
		wantErr string
	}{
		{"defaults", nil, config{"vaurien:6379", "vaurien:11211", "http://vaurien:8000/", 200 * time.Millisecond, time.Second, time.Second, ""}, ""},
		{"overrides", map[string]string{"REDIS_ADDR": "r:1", "MEMCACHED_ADDR": "m:2", "HTTP_URL": "http://h/", "INTERVAL": "1s", "TIMEOUT": "3s", "LISTEN": ":9000"},
			config{"r:1", "m:2", "http://h/", time.Second, 3 * time.Second, time.Second, ":9000"}, ""},
		{"bad interval", map[string]string{"INTERVAL": "fast"}, config{}, `INTERVAL="fast"`},
		{"zero timeout", map[string]string{"TIMEOUT": "0s"}, config{}, `TIMEOUT="0s"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := configFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("configFromEnv = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// syncBuffer is written by the app's reporter while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(t *testing.T) []Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Line
	sc := bufio.NewScanner(bytes.NewReader(s.b.Bytes()))
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("report line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// runFor runs the app against the given backends until every backend has
// reported at least three windows, and returns the lines.
func runFor(t *testing.T, cfg config) []Line {
	t.Helper()
	cfg.Interval, cfg.Timeout, cfg.Report = 20*time.Millisecond, time.Second, 200*time.Millisecond
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(ctx, cfg, &out)
	}()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for len(out.lines(t)) < 9 {
		select {
		case <-deadline.C:
			t.Fatalf("the app reported %d lines in 10s", len(out.lines(t)))
		case <-tick.C:
		}
	}
	cancel()
	<-done
	return out.lines(t)
}

func TestRunReportsEachBackend(t *testing.T) {
	rd := testenv.Redis(t)
	mc := testenv.Memcached(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	t.Cleanup(web.Close)

	// memcached by name: the client dials the name, as it dials "vaurien"
	// in compose.
	_, port, _ := net.SplitHostPort(mc.Addr)
	lines := runFor(t, config{RedisAddr: rd.Addr, MemcachedAddr: net.JoinHostPort("localhost", port), HTTPURL: web.URL})
	seen := map[string]int64{}
	for _, l := range lines {
		if l.Errors != 0 || l.LastError != "" {
			t.Errorf("%s reported errors: %+v", l.Backend, l)
		}
		if l.OK > 0 && (l.P50ms <= 0 || l.P99ms < l.P50ms) {
			t.Errorf("%s: latencies p50 %v p99 %v", l.Backend, l.P50ms, l.P99ms)
		}
		seen[l.Backend] = max(seen[l.Backend], l.TotalOK)
	}
	for _, b := range []string{"redis", "memcached", "web"} {
		if seen[b] == 0 {
			t.Errorf("%s: no successful call reported (lines: %+v)", b, lines)
		}
	}
}

func TestRunReportsErrors(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unavailable", http.StatusServiceUnavailable)
	}))
	t.Cleanup(web.Close)
	// Nothing listens on port 1 of the loopback: connections are refused.
	lines := runFor(t, config{RedisAddr: "127.0.0.1:1", MemcachedAddr: "127.0.0.1:1", HTTPURL: web.URL})
	last := map[string]Line{}
	for _, l := range lines {
		if l.OK != 0 {
			t.Errorf("%s reported successes against a dead backend: %+v", l.Backend, l)
		}
		if l.Errors > 0 {
			last[l.Backend] = l
		}
	}
	for backend, want := range map[string]string{"redis": "redis set", "memcached": "memcached set", "web": "503"} {
		l, ok := last[backend]
		if !ok || l.TotalErrors == 0 || !strings.Contains(l.LastError, want) {
			t.Errorf("%s: want errors mentioning %q, got %+v", backend, want, l)
		}
	}
}

// GET / makes a Redis and a memcached round trip: 200 when both work,
// 503 naming the one that failed.
func TestCheckEndpoint(t *testing.T) {
	rd := testenv.Redis(t)
	mc := testenv.Memcached(t)
	for _, c := range []struct {
		name, memcached string
		status          int
		body            string
	}{
		{"both up", mc.Addr, http.StatusOK, "ok\n"},
		{"memcached down", "127.0.0.1:1", http.StatusServiceUnavailable, "memcached set:"},
	} {
		t.Run(c.name, func(t *testing.T) {
			listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
			cfg := config{RedisAddr: rd.Addr, MemcachedAddr: c.memcached, HTTPURL: "http://127.0.0.1:1/",
				Interval: time.Second, Timeout: time.Second, Report: time.Second, Listen: listen}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); run(ctx, cfg, io.Discard) }()
			defer func() { cancel(); <-done }()
			if err := testenv.WaitListening(listen, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			resp, err := http.Get("http://" + listen + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.body) {
				t.Errorf("GET /: %d %q, want %d with %q", resp.StatusCode, body, c.status, c.body)
			}
		})
	}
}
