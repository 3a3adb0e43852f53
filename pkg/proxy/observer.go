package proxy

import (
	"net"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// Observer is how the engine reports what happens, so that metrics and logs
// live outside the data path. Route is called once per route start; the
// RouteObserver it returns is then called from many goroutines at once and
// must be cheap: it sits on the relay path.
type Observer interface {
	Route(name, protocol string) RouteObserver
}

// RouteObserver receives one route's events.
type RouteObserver interface {
	Accepted(client net.Addr)
	Closed(client net.Addr, took time.Duration, err error) // err is nil for an ordinary end
	Refused(reason string)                                 // RefusedLimit, RefusedDown, RefusedBadRequest, RefusedLoop
	DialFailed(backend string, err error)
	Relayed(d chaos.Direction, n int64)
	Exchanged(req *chaos.Request, took time.Duration)
	Injected(behavior string, req *chaos.Request) // a drawn behavior changed the traffic of req (nil on tcp)
	MixChanged(mix *chaos.Mix)                    // the route's live mix is now mix
	Stopped()                                     // the route is gone (removed by a reload or shut down)
}

// Reasons for refusing a connection.
const (
	RefusedLimit = "max_connections"
	RefusedDown  = "down"
	// RefusedBadRequest is a request a protocol would not forward, its
	// framing malformed or ambiguous: answered (http: 400 or 505) and the
	// connection closed.
	RefusedBadRequest = "bad_request"
	// RefusedLoop is a connection from vaurien's own dialer: a route whose
	// backend leads back to vaurien.
	RefusedLoop = "loop"
)

// Observers fans events out to several observers.
func Observers(obs ...Observer) Observer { return multi(obs) }

type multi []Observer

func (m multi) Route(name, protocol string) RouteObserver {
	rs := make(multiRoute, 0, len(m))
	for _, o := range m {
		if o != nil {
			rs = append(rs, o.Route(name, protocol))
		}
	}
	if len(rs) == 1 {
		return rs[0]
	}
	return rs
}

type multiRoute []RouteObserver

func (m multiRoute) Accepted(c net.Addr) {
	for _, o := range m {
		o.Accepted(c)
	}
}
func (m multiRoute) Closed(c net.Addr, took time.Duration, err error) {
	for _, o := range m {
		o.Closed(c, took, err)
	}
}
func (m multiRoute) Refused(r string) {
	for _, o := range m {
		o.Refused(r)
	}
}
func (m multiRoute) DialFailed(b string, err error) {
	for _, o := range m {
		o.DialFailed(b, err)
	}
}
func (m multiRoute) Relayed(d chaos.Direction, n int64) {
	for _, o := range m {
		o.Relayed(d, n)
	}
}
func (m multiRoute) Exchanged(r *chaos.Request, took time.Duration) {
	for _, o := range m {
		o.Exchanged(r, took)
	}
}
func (m multiRoute) Injected(b string, r *chaos.Request) {
	for _, o := range m {
		o.Injected(b, r)
	}
}
func (m multiRoute) MixChanged(mix *chaos.Mix) {
	for _, o := range m {
		o.MixChanged(mix)
	}
}
func (m multiRoute) Stopped() {
	for _, o := range m {
		o.Stopped()
	}
}

// Nop is an observer that ignores everything.
type Nop struct{}

// Route returns a route observer that ignores everything.
func (Nop) Route(string, string) RouteObserver { return nopRoute{} }

type nopRoute struct{}

func (nopRoute) Accepted(net.Addr)                       {}
func (nopRoute) Closed(net.Addr, time.Duration, error)   {}
func (nopRoute) Refused(string)                          {}
func (nopRoute) DialFailed(string, error)                {}
func (nopRoute) Relayed(chaos.Direction, int64)          {}
func (nopRoute) Exchanged(*chaos.Request, time.Duration) {}
func (nopRoute) Injected(string, *chaos.Request)         {}
func (nopRoute) MixChanged(*chaos.Mix)                   {}
func (nopRoute) Stopped()                                {}
