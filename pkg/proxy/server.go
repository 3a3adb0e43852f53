package proxy

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Server runs many routes in one process.
type Server struct {
	obs   Observer
	drain time.Duration

	mu       sync.Mutex
	routes   map[string]*Route
	draining sync.WaitGroup // routes removed by a reload, still draining
	closed   bool
}

// New returns a server that reports to obs and gives live connections of
// removed routes the drain period to finish.
func New(obs Observer, drain time.Duration) *Server {
	if obs == nil {
		obs = Nop{}
	}
	return &Server{obs: obs, drain: drain, routes: map[string]*Route{}}
}

// Apply makes the running routes match cfgs: new routes start listening,
// routes whose listener and protocol are unchanged are updated in place
// (their live connections untouched), others are replaced, and routes that
// are gone stop accepting and drain. Nothing changes when a listener cannot
// be opened or a route cannot be built.
func (s *Server) Apply(cfgs []RouteConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("apply routes: server is shut down")
	}
	seen := map[string]bool{}
	var fresh []*Route // routes that need a listener
	var updates []func() error
	fail := func(err error) error {
		for _, r := range fresh {
			if r.ln != nil {
				r.ln.Close()
			}
			r.cancel()
			r.obs.Stopped()
		}
		return err
	}
	for _, cfg := range cfgs {
		if seen[cfg.Name] {
			return fail(fmt.Errorf("route %q is declared twice", cfg.Name))
		}
		seen[cfg.Name] = true
		old := s.routes[cfg.Name]
		if old != nil {
			oldCfg := old.plan.Load().cfg
			if cfg.sameListener(&oldCfg) {
				if _, err := newPlan(cfg); err != nil {
					return fail(err)
				}
				updates = append(updates, func() error { return old.update(cfg) })
				continue
			}
		}
		r, err := newRoute(cfg, s.obs)
		if err != nil {
			return fail(err)
		}
		fresh = append(fresh, r)
	}
	// Every listener is ready before any running route changes, so that a
	// failure leaves the running routes exactly as they were. A route that
	// gives up its address in this change (replaced, or removed) hands its
	// listening socket over instead of closing it: its successor never has
	// to bind a port that is still taken, and no client is refused meanwhile.
	donors := s.donors(seen, fresh)
	for _, r := range fresh {
		if err := r.bind(donors); err != nil {
			return fail(err)
		}
	}
	for _, u := range updates {
		if err := u(); err != nil {
			return err // cannot happen: the plan was built above
		}
	}
	for name, r := range s.routes {
		if !seen[name] {
			s.retire(r)
			delete(s.routes, name)
		}
	}
	for _, r := range fresh {
		if old := s.routes[r.name]; old != nil {
			s.retire(old)
		}
	}
	for _, r := range fresh {
		s.routes[r.name] = r
		r.start()
	}
	return nil
}

// donors are the listening routes that this change replaces or removes,
// whose sockets their successors may take over.
func (s *Server) donors(seen map[string]bool, fresh []*Route) map[*Route]bool {
	out := map[*Route]bool{}
	for name, r := range s.routes {
		if !seen[name] {
			out[r] = true
		}
	}
	for _, r := range fresh {
		if old := s.routes[r.name]; old != nil {
			out[old] = true
		}
	}
	return out
}

// retire stops a route accepting at once, then drains it in the
// background for the drain period.
func (s *Server) retire(r *Route) {
	r.stopAccepting()
	s.draining.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.drain)
		defer cancel()
		r.drain(ctx)
	})
}

// Route returns the running route named name, or nil.
func (s *Server) Route(name string) *Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.routes[name]
}

// Routes returns the running routes sorted by name.
func (s *Server) Routes() []*Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Route, 0, len(s.routes))
	for _, r := range s.routes {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// Shutdown stops accepting on every route at once, lets live connections
// finish until ctx ends, then closes them. It returns when every connection
// is gone.
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	routes := make([]*Route, 0, len(s.routes))
	for _, r := range s.routes {
		routes = append(routes, r)
		r.stopAccepting()
	}
	s.routes = map[string]*Route{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range routes {
		wg.Go(func() { r.drain(ctx) })
	}
	wg.Wait()
	s.draining.Wait()
}
