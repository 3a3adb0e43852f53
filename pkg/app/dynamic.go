package app

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/logging"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// dynamicRoutes are the routes started at run time (by the Toxiproxy API)
// rather than declared in the file. They run beside the file's routes, in
// the same engine, and survive reloads.
type dynamicRoutes struct {
	mu     sync.Mutex
	routes []config.Route
}

func (d *dynamicRoutes) list() []config.Route {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.routes)
}

func (d *dynamicRoutes) index(name string) int {
	return slices.IndexFunc(d.routes, func(r config.Route) bool { return r.Name == name })
}

func (d *dynamicRoutes) has(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.index(name) >= 0
}

// set adds r, or replaces the route of the same name.
func (d *dynamicRoutes) set(r config.Route) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i := d.index(r.Name); i >= 0 {
		d.routes[i] = r
		return
	}
	d.routes = append(d.routes, r)
}

func (d *dynamicRoutes) remove(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i := d.index(name); i >= 0 {
		d.routes = slices.Delete(d.routes, i, i+1)
	}
}

// IsDynamic reports whether the route was started by AddRoute rather than
// declared in the file.
func (a *App) IsDynamic(name string) bool { return a.dynamic.has(name) }

// DynamicRoutes lists the routes started by AddRoute, as they were given.
func (a *App) DynamicRoutes() []config.Route { return a.dynamic.list() }

// AddRoute starts a route that the file does not declare. Before Start it
// is recorded and starts with the file's routes. The route keeps running
// across reloads until RemoveRoute, unless the file comes to declare a
// route of the same name, which then wins. Other routes are left as they
// are, live changes included.
func (a *App) AddRoute(r config.Route) error {
	if r.Name == "" || r.Listen == "" || r.Backend == "" {
		return fmt.Errorf("add route %q: a route needs a name, a listen address and a backend", r.Name)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state == stateStopping {
		return &conflictError{"add route: vaurien is shutting down"}
	}
	if slices.ContainsFunc(a.file.Routes, func(fr config.Route) bool { return fr.Name == r.Name }) ||
		a.dynamic.has(r.Name) || a.server.Route(r.Name) != nil {
		return &conflictError{fmt.Sprintf("add route: a route named %q already exists", r.Name)}
	}
	if a.state == stateNew {
		a.dynamic.set(r)
		return nil
	}
	cfgs, err := RouteConfigs(&config.File{Seed: a.file.Seed, Routes: []config.Route{r}}, a.demoAddr())
	if err != nil {
		return fmt.Errorf("add route %q: %w", r.Name, err)
	}
	if err := a.applyRoutes(append(a.liveConfigs(""), cfgs...)); err != nil {
		return wrapUnlessLoop("add route", r.Name, err)
	}
	a.dynamic.set(r)
	if rt := a.server.Route(r.Name); rt != nil {
		a.log.Info().Str(logging.FieldRoute, r.Name).Str(logging.FieldListen, rt.Addr()).
			Str(logging.FieldBackend, r.Backend).Msg("route added")
	}
	return nil
}

// RemoveRoute stops a route that AddRoute started. Its live connections
// are closed at once: the route is gone, not draining.
func (a *App) RemoveRoute(name string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.checkDynamic("remove", name); err != nil {
		return err
	}
	if a.state == stateRunning {
		if rt := a.server.Route(name); rt != nil {
			rt.Disable()
		}
		if err := a.server.Apply(a.liveConfigs(name)); err != nil {
			return fmt.Errorf("remove route %q: %w", name, err)
		}
	}
	a.dynamic.remove(name)
	a.log.Info().Str(logging.FieldRoute, name).Msg("route removed")
	return nil
}

// UpdateRoute gives a route that AddRoute started a new listen address and
// backend (the other fields of r are not used), and enables or disables it.
// Its live connections are closed, as a restart closes them; its live mix
// stays. When the change cannot be made (the new address is taken, the
// backend is vaurien itself, the old address cannot be listened on again)
// the route is left exactly as it was.
func (a *App) UpdateRoute(r config.Route, enabled bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.checkDynamic("update", r.Name); err != nil {
		return err
	}
	list := a.dynamic.list()
	next := list[slices.IndexFunc(list, func(d config.Route) bool { return d.Name == r.Name })]
	next.Listen, next.Backend = r.Listen, r.Backend
	rt := a.server.Route(r.Name)
	if a.state != stateRunning || rt == nil {
		a.dynamic.set(next)
		return nil
	}
	was := rt.Config()
	cfg := was
	cfg.Listen, cfg.Backend = r.Listen, r.Backend
	wasEnabled := rt.Enabled()
	// A route that keeps its listener and must listen again does so first:
	// when its address was taken meanwhile, nothing has changed yet.
	reopened := false
	if cfg.Listen == was.Listen && enabled && !wasEnabled {
		if err := rt.Enable(); err != nil {
			return &conflictError{msg: fmt.Sprintf("update route %q: %v", r.Name, err)}
		}
		reopened = true
	}
	if err := a.applyRoutes(append(a.liveConfigs(r.Name), cfg)); err != nil {
		if reopened {
			rt.Disable()
		}
		return wrapUnlessLoop("update route", r.Name, err)
	}
	a.dynamic.set(next)
	rt.CloseConnections()
	nr := a.server.Route(r.Name)
	if !enabled && nr.Enabled() {
		nr.Disable()
	}
	a.log.Info().Str(logging.FieldRoute, r.Name).Str(logging.FieldListen, nr.Addr()).
		Str(logging.FieldBackend, r.Backend).Bool("enabled", enabled).Msg("route updated")
	return nil
}

// wrapUnlessLoop names the operation in err, unless err is a LoopError,
// which names the route already.
func wrapUnlessLoop(op, name string, err error) error {
	if _, ok := errors.AsType[*LoopError](err); ok {
		return err
	}
	return fmt.Errorf("%s %q: %w", op, name, err)
}

func (a *App) checkDynamic(op, name string) error {
	if a.dynamic.has(name) {
		return nil
	}
	if a.server.Route(name) != nil {
		return &conflictError{fmt.Sprintf("%s route: route %q is declared in the configuration file", op, name)}
	}
	return &ErrNoRoute{Name: name}
}

// liveConfigs are the running routes' settings as they are now, live mix
// and backend included, less the route named except: applying them
// changes nothing but what the caller adds.
func (a *App) liveConfigs(except string) []proxy.RouteConfig {
	var out []proxy.RouteConfig
	for _, rt := range a.server.Routes() {
		if rt.Name() != except {
			out = append(out, rt.Config())
		}
	}
	return out
}

// withDynamic adds the dynamic routes to the file's: a running one keeps
// its live settings, one not started yet is built from what AddRoute got.
// A dynamic route that the file now declares too gives way to it.
func (a *App) withDynamic(f *config.File, cfgs []proxy.RouteConfig) ([]proxy.RouteConfig, error) {
	for _, d := range a.dynamic.list() {
		if slices.ContainsFunc(f.Routes, func(r config.Route) bool { return r.Name == d.Name }) {
			a.log.Warn().Str(logging.FieldRoute, d.Name).Msg("the file now declares a route of this name: the route added at run time gives way")
			a.dynamic.remove(d.Name)
			continue
		}
		if rt := a.server.Route(d.Name); rt != nil {
			cfgs = append(cfgs, rt.Config())
			continue
		}
		built, err := RouteConfigs(&config.File{Seed: f.Seed, Routes: []config.Route{d}}, a.demoAddr())
		if err != nil {
			return nil, err
		}
		cfgs = append(cfgs, built...)
	}
	return cfgs, nil
}

// resettable lists the routes Reset returns to their configuration: the
// file's, and the dynamic ones, whose configuration is no behavior at all.
func (a *App) resettable(f *config.File) []config.Route {
	return append(slices.Clip(f.Routes), a.dynamic.list()...)
}
