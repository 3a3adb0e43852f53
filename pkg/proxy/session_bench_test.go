package proxy

import (
	"testing"
	"time"

	_ "github.com/vaurien-go/vaurien/pkg/behavior"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/tcp"
)

// benchMixes are the mixes a route draws from in the per-request
// benchmarks: none (every draw is dummy), the active fault mix of the
// benchmark suite, and one whose drawn behavior builds an error effect.
var benchMixes = []struct {
	name   string
	shares map[string]map[string]any // behavior → options, at 10% each
}{
	{"dummy", nil},
	{"delay10", map[string]map[string]any{"delay": {"sleep": "1ms"}}},
	{"error10", map[string]map[string]any{"error": {}}},
}

// benchSession builds a route (without a listener) with a 10% share for
// each behavior given and returns a session on it, as a protocol sees it.
func benchSession(b *testing.B, shares map[string]map[string]any) *session {
	b.Helper()
	var entries []chaos.Entry
	for name, opts := range shares {
		bh, _, err := chaos.NewBehavior(name, opts)
		if err != nil {
			b.Fatal(err)
		}
		entries = append(entries, chaos.Entry{Name: name, Percent: 10, Behavior: bh})
	}
	mix, err := chaos.NewMix(entries)
	if err != nil {
		b.Fatal(err)
	}
	r, err := newRoute(RouteConfig{Name: "bench", Protocol: "tcp", Mix: mix, Seed: 1}, Nop{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(r.cancel)
	return &session{route: r, protocol: r.plan.Load()}
}

var drawn chaos.Drawn

// BenchmarkSessionDraw is what a protocol-aware route pays per request to
// draw from the live mix through the session: the plan load, the draw and
// the fault accounting.
func BenchmarkSessionDraw(b *testing.B) {
	for _, m := range benchMixes {
		b.Run(m.name, func(b *testing.B) {
			s := benchSession(b, m.shares)
			req := &chaos.Request{Command: "SET"}
			b.ReportAllocs()
			for b.Loop() {
				s.Draw(req, &drawn)
			}
		})
	}
}

// BenchmarkSessionRequest is the session's whole share of one request on a
// protocol-aware route: timing it, drawing, reporting the bytes each way
// and the exchange. The parallel variant runs one session per goroutine
// on the same route, as concurrent connections do, so that contention on
// the route's shared counters and draw source shows.
func BenchmarkSessionRequest(b *testing.B) {
	for _, m := range benchMixes {
		b.Run(m.name, func(b *testing.B) {
			s := benchSession(b, m.shares)
			req := &chaos.Request{Command: "SET"}
			b.ReportAllocs()
			for b.Loop() {
				drawn = request(s, req)
			}
		})
		b.Run(m.name+"-parallel", func(b *testing.B) {
			s := benchSession(b, m.shares)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				mine := &session{route: s.route, protocol: s.protocol}
				req := &chaos.Request{Command: "SET"}
				var d chaos.Drawn
				for pb.Next() {
					d = request(mine, req)
				}
				_ = d
			})
		})
	}
}

// request is what a protocol asks of its session for one request.
func request(s *session, req *chaos.Request) chaos.Drawn {
	start := time.Now()
	var d chaos.Drawn
	s.Draw(req, &d)
	s.Relayed(chaos.ToBackend, 40)
	s.Relayed(chaos.ToClient, 5)
	s.Exchanged(req, time.Since(start))
	return d
}
