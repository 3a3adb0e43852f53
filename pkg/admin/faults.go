package admin

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// FaultCounter is a proxy.Observer that counts, per route and behavior,
// the draws that injected a fault, for the console's faults per second by
// behavior. The app adds it to the engine's observers and hands it to the
// server in Config.Faults.
type FaultCounter struct {
	mu     sync.Mutex
	routes map[string]*routeFaults
}

var _ proxy.Observer = (*FaultCounter)(nil)

// NewFaultCounter returns a counter with no counts.
func NewFaultCounter() *FaultCounter { return &FaultCounter{routes: map[string]*routeFaults{}} }

// Route returns the route's counter; a route started again (by a reload)
// keeps counting where it was, as its other counters do.
func (f *FaultCounter) Route(name, _ string) proxy.RouteObserver {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.routes[name]; ok {
		return r
	}
	r := &routeFaults{known: map[string]*atomic.Int64{}}
	for _, b := range chaos.BehaviorNames() {
		r.known[b] = new(atomic.Int64)
	}
	f.routes[name] = r
	return r
}

// Counts returns the route's counts by behavior, leaving out zeros.
func (f *FaultCounter) Counts(route string) map[string]int64 {
	out := map[string]int64{}
	if f == nil {
		return out
	}
	f.mu.Lock()
	r := f.routes[route]
	f.mu.Unlock()
	if r == nil {
		return out
	}
	for b, n := range r.known {
		if v := n.Load(); v > 0 {
			out[b] = v
		}
	}
	r.mu.Lock()
	for b, v := range r.other {
		out[b] += v
	}
	r.mu.Unlock()
	return out
}

// routeFaults sits on the relay path: every event but Injected does
// nothing, and Injected is one atomic add for a registered behavior.
type routeFaults struct {
	known map[string]*atomic.Int64 // every behavior registered at start; read-only

	mu    sync.Mutex
	other map[string]int64 // behaviors registered later
}

func (r *routeFaults) Injected(behavior string, _ *chaos.Request) {
	if n, ok := r.known[behavior]; ok {
		n.Add(1)
		return
	}
	r.mu.Lock()
	if r.other == nil {
		r.other = map[string]int64{}
	}
	r.other[behavior]++
	r.mu.Unlock()
}

func (*routeFaults) Accepted(net.Addr)                       {}
func (*routeFaults) Closed(net.Addr, time.Duration, error)   {}
func (*routeFaults) Refused(string)                          {}
func (*routeFaults) DialFailed(string, error)                {}
func (*routeFaults) Relayed(chaos.Direction, int64)          {}
func (*routeFaults) Exchanged(*chaos.Request, time.Duration) {}
func (*routeFaults) MixChanged(*chaos.Mix)                   {}
func (*routeFaults) Stopped()                                {}
