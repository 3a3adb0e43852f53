package proxy_test

import (
	"net"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// An Apply that fails leaves every running route exactly as it was: the
// same listener, settings and enabled state, still relaying.
func TestApplyThatFailsChangesNothing(t *testing.T) {
	backend, _ := echoServer(t)
	other, _ := echoServer(t)
	busy := testenv.Taken(t)
	tests := []struct {
		name   string
		change func(a, b proxy.RouteConfig) []proxy.RouteConfig
	}{
		{"a moves to a taken address", func(a, b proxy.RouteConfig) []proxy.RouteConfig {
			a.Listen, a.Backend = busy, other
			return []proxy.RouteConfig{a, b}
		}},
		{"a new route on a taken address", func(a, b proxy.RouteConfig) []proxy.RouteConfig {
			c := tcpRoute("c", other)
			c.Listen = busy
			a.Backend = other
			return []proxy.RouteConfig{a, b, c}
		}},
		{"b removed and a new route on a taken address", func(a, _ proxy.RouteConfig) []proxy.RouteConfig {
			c := tcpRoute("c", other)
			c.Listen = busy
			return []proxy.RouteConfig{a, c}
		}},
		{"a route declared twice", func(a, b proxy.RouteConfig) []proxy.RouteConfig {
			a.Backend = other
			return []proxy.RouteConfig{a, b, b}
		}},
		{"an unknown protocol", func(a, b proxy.RouteConfig) []proxy.RouteConfig {
			b.Protocol = "gopher"
			a.Backend = other
			return []proxy.RouteConfig{a, b}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tcpRoute("a", backend), tcpRoute("b", backend))
			b := s.Route("b")
			b.Disable()
			a := s.Route("a")
			aAddr, bAddr := a.Addr(), b.Addr()
			aCfg, bCfg := a.Config(), b.Config()
			aCfg.Listen, bCfg.Listen = aAddr, bAddr
			if err := s.Apply(tt.change(aCfg, bCfg)); err == nil {
				t.Fatal("Apply succeeded; want an error")
			}
			if s.Route("a") != a || s.Route("b") != b || s.Route("c") != nil {
				t.Fatalf("routes replaced or added by a failed Apply")
			}
			if a.Addr() != aAddr || !a.Enabled() || a.Config().Backend != backend {
				t.Errorf("route a after a failed Apply: %s enabled=%v backend %s", a.Addr(), a.Enabled(), a.Config().Backend)
			}
			if b.Enabled() {
				t.Errorf("disabled route b is enabled after a failed Apply")
			}
			testenv.Echoes(t, aAddr)
			if c, err := net.DialTimeout("tcp", bAddr, time.Second); err == nil {
				c.Close()
				t.Errorf("disabled route b accepts after a failed Apply")
			}
		})
	}
}

// A route whose listener must change hands its socket over: a route
// renamed, or given a new protocol, keeps its address without a moment in
// which it is refused or taken by another process.
func TestApplyHandsTheListenerOver(t *testing.T) {
	backend, _ := echoServer(t)
	s := startServer(t, tcpRoute("old", backend))
	addr := s.Route("old").Addr()
	// A live connection of the replaced route stays until it drains.
	live, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	// The old route must have taken it off the listener's queue: one still
	// queued at the change is the new route's to accept.
	waitFor(t, func() bool { return s.Route("old").Stats().Accepted == 1 },
		func() string { return "the old route never accepted the live connection" })
	renamed := tcpRoute("new", backend)
	renamed.Listen = addr
	if err := s.Apply([]proxy.RouteConfig{renamed}); err != nil {
		t.Fatalf("rename a route on the same address: %v", err)
	}
	if s.Route("old") != nil || s.Route("new") == nil || s.Route("new").Addr() != addr {
		t.Fatalf("after the rename: old=%v new=%v", s.Route("old"), s.Route("new"))
	}
	testenv.Echoes(t, addr)
	if got := s.Route("new").Stats().Accepted; got != 1 {
		t.Errorf("the new route accepted %d connections, want 1 (the old one must stop accepting)", got)
	}
	// Two routes swap their addresses in one change.
	other := tcpRoute("other", backend)
	if err := s.Apply([]proxy.RouteConfig{renamed, other}); err != nil {
		t.Fatal(err)
	}
	otherAddr := s.Route("other").Addr()
	renamed.Listen, other.Listen = otherAddr, addr
	if err := s.Apply([]proxy.RouteConfig{renamed, other}); err != nil {
		t.Fatalf("swap two routes' addresses: %v", err)
	}
	if s.Route("new").Addr() != otherAddr || s.Route("other").Addr() != addr {
		t.Fatalf("after the swap: new on %s, other on %s", s.Route("new").Addr(), s.Route("other").Addr())
	}
	testenv.Echoes(t, addr)
	testenv.Echoes(t, otherAddr)
}

// Routes whose backends lead back to vaurien, which no address check
// saw: the connection that arrives from vaurien's own dialer is refused,
// so one client connection costs one more, not thousands.
func TestConnectionFromOwnDialerIsRefused(t *testing.T) {
	tests := []struct {
		name string
		wire func(a, b *proxy.Route)
	}{
		{"a route to itself", func(a, _ *proxy.Route) { a.SetBackend(a.Addr()) }},
		{"a route through another", func(a, b *proxy.Route) { a.SetBackend(b.Addr()); b.SetBackend(a.Addr()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, tcpRoute("a", "127.0.0.1:1"), tcpRoute("b", "127.0.0.1:1"))
			a, b := s.Route("a"), s.Route("b")
			tt.wire(a, b)
			c, err := net.Dial("tcp", a.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte("x"))
			if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Fatalf("read %d bytes, %v through a loop; want the connection closed", n, err)
			}
			// The loop is refused on whichever side saw it (both may): the
			// dial that returned after its accept, the accept that ran
			// after it.
			var refused, accepted int64
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				sa, sb := a.Stats(), b.Stats()
				refused, accepted = sa.Refused+sb.Refused, sa.Accepted+sb.Accepted
				if refused >= 1 || time.Now().After(deadline) {
					break
				}
			}
			if refused < 1 || refused > 2 || accepted > 2 {
				t.Fatalf("%d refusals, %d connections accepted; want the loop refused (once or on both sides) and at most the client and the first hop accepted", refused, accepted)
			}
			// The refusal is exact: clients are served once the loop is gone.
			backend, _ := echoServer(t)
			a.SetBackend(backend)
			testenv.Echoes(t, a.Addr())
		})
	}
}
