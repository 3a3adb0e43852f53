package app

import (
	"fmt"
	"sync"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/logging"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// The live controls below are what the admin API drives. Each applies at
// once to new connections and to the next draw of live ones.

// ErrNoRoute is returned for a route name that is not running.
type ErrNoRoute struct{ Name string }

func (e *ErrNoRoute) Error() string { return fmt.Sprintf("no route named %q", e.Name) }

// Route returns the running route named name.
func (a *App) Route(name string) (*proxy.Route, error) {
	if r := a.server.Route(name); r != nil {
		return r, nil
	}
	return nil, &ErrNoRoute{Name: name}
}

// Routes returns the running routes sorted by name.
func (a *App) Routes() []*proxy.Route { return a.server.Routes() }

// DefaultRoute is the route the original single-route API acts on: the one
// the file marks default, or the only one.
func (a *App) DefaultRoute() (*proxy.Route, error) {
	f := a.File()
	if r := f.DefaultRoute(); r != nil {
		return a.Route(r.Name)
	}
	return nil, fmt.Errorf("no default route: the file declares %d routes and none has default = true", len(f.Routes))
}

// ConfiguredMix is the mix the file gives a route.
func (a *App) ConfiguredMix(name string) (*chaos.Mix, error) {
	for _, r := range a.File().Routes {
		if r.Name == name {
			return BuildMix(r.Behaviors)
		}
	}
	return nil, &ErrNoRoute{Name: name}
}

// overrides tracks timed mix changes so that a newer change cancels the
// revert of an older one.
type overrides struct {
	mu     sync.Mutex
	timers map[string]*time.Timer
}

func (o *overrides) set(route string, t *time.Timer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.timers == nil {
		o.timers = map[string]*time.Timer{}
	}
	if old := o.timers[route]; old != nil {
		old.Stop()
	}
	if t == nil {
		delete(o.timers, route)
		return
	}
	o.timers[route] = t
}

// SetMix replaces a route's live mix. With a positive d the previous mix
// comes back by itself after d, so a crashed test never leaves chaos on.
func (a *App) SetMix(name string, m *chaos.Mix, d time.Duration) error {
	r, err := a.Route(name)
	if err != nil {
		return err
	}
	prev := r.Mix()
	r.SetMix(m)
	var t *time.Timer
	if d > 0 {
		t = time.AfterFunc(d, func() {
			r.SetMix(prev)
			a.log.Info().Str(logging.FieldRoute, name).Str(logging.FieldMix, prev.String()).Msg("timed mix reverted")
		})
	}
	a.overrides.set(name, t)
	a.log.Info().Str(logging.FieldRoute, name).Str(logging.FieldMix, m.String()).Dur(logging.FieldDuration, d).Msg("mix changed")
	return nil
}

// SetBackend points a route's new connections at addr.
func (a *App) SetBackend(name, addr string) error {
	r, err := a.Route(name)
	if err != nil {
		return err
	}
	r.SetBackend(addr)
	a.log.Info().Str(logging.FieldRoute, name).Str(logging.FieldBackend, addr).Msg("backend changed")
	return nil
}

// SetEnabled disables (stops listening, closes live connections) or
// enables a route.
func (a *App) SetEnabled(name string, on bool) error {
	r, err := a.Route(name)
	if err != nil {
		return err
	}
	if on {
		err = r.Enable()
	} else {
		r.Disable()
	}
	a.log.Info().Str(logging.FieldRoute, name).Bool("enabled", on).Err(err).Msg("route toggled")
	return err
}

// Reset returns a route — or every route when name is "" — to the file's
// mix and backend, and enables it.
func (a *App) Reset(name string) error {
	f := a.File()
	found := false
	for _, rc := range f.Routes {
		if name != "" && rc.Name != name {
			continue
		}
		found = true
		r, err := a.Route(rc.Name)
		if err != nil {
			return err
		}
		m, err := BuildMix(rc.Behaviors)
		if err != nil {
			return err
		}
		a.overrides.set(rc.Name, nil)
		r.SetMix(m)
		r.SetBackend(a.backendAddr(rc.Backend))
		if err := r.Enable(); err != nil {
			return err
		}
	}
	if !found {
		return &ErrNoRoute{Name: name}
	}
	a.log.Info().Str(logging.FieldRoute, name).Msg("reset to the file")
	return nil
}
