package probe

import (
	"bufio"
	"bytes"
	"context"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

func TestMeasures(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ok := func(at, lat int) Sample {
		return Sample{At: t0.Add(time.Duration(at) * time.Millisecond), Latency: time.Duration(lat) * time.Millisecond}
	}
	bad := func(at, lat int) Sample { s := ok(at, lat); s.Err = "refused"; return s }
	hundred := make([]Sample, 100)
	for i := range hundred {
		hundred[i] = ok(i*10, i+1) // latencies 1ms..100ms
	}
	cases := []struct {
		measure string
		samples []Sample
		want    float64
		has     bool
	}{
		{"error_rate", nil, 0, false},
		{"error_rate", []Sample{ok(0, 1), bad(10, 1), ok(20, 1), ok(30, 1)}, 0.25, true},
		{"availability", []Sample{ok(0, 1), bad(10, 1), ok(20, 1), ok(30, 1)}, 0.75, true},
		{"p50", hundred, 0.050, true},
		{"p95", hundred, 0.095, true},
		{"p99", hundred, 0.099, true},
		{"p99", []Sample{ok(0, 7)}, 0.007, true},
		{"recovered_within", []Sample{ok(0, 1), ok(100, 1)}, 0, true},
		// The last failure ends 1.5s after the phase starts.
		{"recovered_within", []Sample{bad(0, 500), bad(1000, 500), ok(2000, 1)}, 1.5, true},
		{"recovered_within", []Sample{ok(0, 1), bad(1000, 5)}, math.Inf(1), true},
	}
	for _, c := range cases {
		m, found := LookupMeasure(c.measure)
		if !found {
			t.Fatalf("no measure %q", c.measure)
		}
		got, has := m.Of(c.samples, t0)
		if has != c.has || math.Abs(got-c.want) > 1e-9 && !(math.IsInf(got, 1) && math.IsInf(c.want, 1)) {
			t.Errorf("%s of %d samples = %v, %v; want %v, %v", c.measure, len(c.samples), got, has, c.want, c.has)
		}
	}
}

func TestKinds(t *testing.T) {
	status := http.StatusOK
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Probe") != "yes" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(status)
	}))
	defer web.Close()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedAddr := closed.Addr().String()
	closed.Close()
	redis := testenv.Redis(t)

	cases := []struct {
		name    string
		kind    string
		opts    map[string]any
		wantErr string // "" for success
	}{
		{"http ok", "http", map[string]any{"url": web.URL, "headers": []any{"X-Probe: yes"}}, ""},
		{"http status not listed", "http", map[string]any{"url": web.URL, "headers": []any{"X-Probe: yes"}, "status": []any{204.0}}, "status 200"},
		{"http 400 by default", "http", map[string]any{"url": web.URL}, "status 400"},
		{"http refused", "http", map[string]any{"url": "http://" + closedAddr + "/"}, "refused"},
		{"tcp ok", "tcp", map[string]any{"address": redis.Addr}, ""},
		{"tcp refused", "tcp", map[string]any{"address": closedAddr}, "refused"},
		{"redis ping", "redis", map[string]any{"address": redis.Addr}, ""},
		{"redis nil reply", "redis", map[string]any{"address": redis.Addr, "command": []any{"GET", "no-such-key"}}, ""},
		{"redis error reply", "redis", map[string]any{"address": redis.Addr, "command": []any{"NOSUCHCOMMAND"}}, "unknown command"},
		{"command ok", "command", map[string]any{"command": []any{"true"}}, ""},
		{"command fails", "command", map[string]any{"command": []any{"sh", "-c", "echo broken; exit 3"}}, "exit status 3: broken"},
		{"command timeout", "command", map[string]any{"command": []any{"sleep", "5"}, "timeout": "100ms"}, "no exit within 100ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := New(c.kind, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if cl, ok := p.(interface{ Close() error }); ok {
				defer cl.Close()
			}
			start := time.Now()
			err = p.Probe(context.Background())
			if time.Since(start) > 3*time.Second {
				t.Errorf("the attempt took %s", time.Since(start))
			}
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("probe failed: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	cases := []struct {
		kind string
		opts map[string]any
		want string
	}{
		{"http", nil, "url option is required"},
		{"http", map[string]any{"url": "ftp://x/"}, "not an http:// or https:// URL"},
		{"http", map[string]any{"url": "http://x/", "headers": []any{"nocolon"}}, `not written "Name: value"`},
		{"http", map[string]any{"url": "http://x/", "status": []any{99.0}}, "not an HTTP status"},
		{"tcp", nil, "address option is required"},
		{"redis", map[string]any{"address": "nohost"}, "not host:port"},
		{"command", nil, "command option is required"},
		{"gopher", nil, `unknown probe kind "gopher"`},
	}
	for _, c := range cases {
		_, err := New(c.kind, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: error %v, want %q", c.kind, c.opts, err, c.want)
		}
	}
}

// FuzzReadReply: whatever a server under test answers, reading its reply
// ends without a panic.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"+PONG\r\n", "-ERR x\r\n", ":1\r\n", "$-1\r\n", "$3\r\nabc\r\n",
		"*2\r\n$1\r\na\r\n-ERR in array\r\n", "*-1\r\n", "$99999999999\r\n", "*9999999\r\n", "?\r\n", "\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = readReply(bufio.NewReader(bytes.NewReader(b)), 0)
	})
}
