package app

import (
	"fmt"
	"net/http"

	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/proxy"
	"github.com/vaurien-go/vaurien/pkg/selfloop"
)

// LoopError refuses a backend that is one of vaurien's own listeners: the
// route would dial itself for every connection until the process runs out
// of file descriptors.
type LoopError struct {
	Route    string // the route given the backend
	Backend  string
	Listener string // the listener the backend reaches
	Owner    string // what listens there: a route, the admin API, the Toxiproxy API
}

func (e *LoopError) Error() string {
	return fmt.Sprintf("route %q: backend %q is vaurien's own listener %s (%s): the route would connect to itself; point it at the real server",
		e.Route, e.Backend, e.Listener, e.Owner)
}

// StatusCode makes the admin API answer 400: the request asks for
// something that cannot work.
func (*LoopError) StatusCode() int { return http.StatusBadRequest }

// listener is an address the process listens on, or is about to.
type listener struct{ addr, owner string }

// listeners are the addresses of cfgs (as configured and, for a route that
// keeps its listener, as bound) and of the APIs. Callers hold a.mu.
func (a *App) listeners(cfgs []proxy.RouteConfig) []listener {
	var out []listener
	for _, c := range cfgs {
		owner := fmt.Sprintf("route %q", c.Name)
		out = append(out, listener{c.Listen, owner})
		if rt := a.server.Route(c.Name); rt != nil && rt.Config().Listen == c.Listen && rt.Addr() != "" {
			out = append(out, listener{rt.Addr(), owner})
		}
	}
	if a.admin != nil {
		out = append(out, listener{a.admin.Addr(), "the admin API"})
	}
	if a.toxi != nil && a.toxi.Addr() != "" {
		out = append(out, listener{a.toxi.Addr(), "the Toxiproxy API"})
	}
	return out
}

// checkLoop refuses backend for route when it reaches one of ls.
func checkLoop(route, backend string, ls []listener) error {
	if backend == config.DemoBackend {
		return nil
	}
	addrs := make([]string, len(ls))
	for i, l := range ls {
		addrs[i] = l.addr
	}
	if i := selfloop.Find(backend, addrs); i >= 0 {
		return &LoopError{Route: route, Backend: backend, Listener: ls[i].addr, Owner: ls[i].owner}
	}
	return nil
}

// applyRoutes makes the engine run cfgs, unless a backend among them is
// one of the process's own listeners. Callers hold a.mu.
func (a *App) applyRoutes(cfgs []proxy.RouteConfig) error {
	ls := a.listeners(cfgs)
	for _, c := range cfgs {
		if err := checkLoop(c.Name, c.Backend, ls); err != nil {
			return err
		}
	}
	return a.server.Apply(cfgs)
}
