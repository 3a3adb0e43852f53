package metrics_test

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// backend is a real TCP server on 127.0.0.1 that runs handle for each
// connection and stops, connections included, when the test ends.
func backend(t testing.TB, handle func(net.Conn)) string {
	return testenv.Serve(t, handle).Addr
}

// echo sends back what it reads and half-closes at the client's end.
func echo(c net.Conn) {
	io.Copy(c, c)
	c.(*net.TCPConn).CloseWrite()
}

// discard reads everything and answers nothing.
func discard(c net.Conn) { io.Copy(io.Discard, c) }

// deadAddr is an address where nothing listens.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// mix builds a mix from the original's syntax, with options after a slash:
// "100:delay/sleep=10ms".
func mix(t testing.TB, spec string) *chaos.Mix {
	t.Helper()
	shares, err := chaos.ParseShares(spec)
	if err != nil {
		t.Fatal(err)
	}
	var entries []chaos.Entry
	for _, s := range shares {
		name, opts, _ := strings.Cut(s.Name, "/")
		o := map[string]any{}
		for _, kv := range strings.Split(opts, ";") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				o[k] = v
			}
		}
		b, vals, err := chaos.NewBehavior(name, o)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, chaos.Entry{Name: name, Percent: s.Percent, Options: vals, Behavior: b})
	}
	m, err := chaos.NewMix(entries)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// serve runs routes on a proxy server reporting to obs until the test ends.
func serve(t testing.TB, obs proxy.Observer, routes ...proxy.RouteConfig) *proxy.Server {
	t.Helper()
	s := proxy.New(obs, time.Second)
	for i := range routes {
		if routes[i].Listen == "" {
			routes[i].Listen = "127.0.0.1:0"
		}
		if routes[i].Protocol == "" {
			routes[i].Protocol = "tcp"
		}
	}
	if err := s.Apply(routes); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s
}

// eventually polls cond until it holds, failing the test after 10s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// sample is the value of the series of family name whose labels include
// labels, or -1 when there is no such series. Histograms give their count.
func sample(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m := series(t, g, name, labels)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("%s: unexpected metric type", name)
	return 0
}

func series(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metric
				}
			}
			return m
		}
	}
	return nil
}

// counting is an observer that counts the engine's fault reports, to
// compare with the metrics.
type counting struct {
	mu     sync.Mutex
	faults map[[2]string]*atomic.Int64
}

func newCounting() *counting { return &counting{faults: map[[2]string]*atomic.Int64{}} }

func (c *counting) Route(name, _ string) proxy.RouteObserver {
	return &countingRoute{c: c, name: name}
}

func (c *counting) count(route, behavior string) *atomic.Int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := [2]string{route, behavior}
	if c.faults[k] == nil {
		c.faults[k] = new(atomic.Int64)
	}
	return c.faults[k]
}

type countingRoute struct {
	c    *counting
	name string
}

func (r *countingRoute) Injected(b string, _ *chaos.Request) { r.c.count(r.name, b).Add(1) }

// The rest of the events are ignored.
func (r *countingRoute) Accepted(net.Addr)                       {}
func (r *countingRoute) Closed(net.Addr, time.Duration, error)   {}
func (r *countingRoute) Refused(string)                          {}
func (r *countingRoute) DialFailed(string, error)                {}
func (r *countingRoute) Relayed(chaos.Direction, int64)          {}
func (r *countingRoute) Exchanged(*chaos.Request, time.Duration) {}
func (r *countingRoute) MixChanged(*chaos.Mix)                   {}
func (r *countingRoute) Stopped()                                {}
