package app

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/logging"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// The live controls below are what the admin API drives. Each applies at
// once to new connections and to the next draw of live ones.

// ErrNoRoute is returned for a route name that is not running.
type ErrNoRoute struct{ Name string }

func (e *ErrNoRoute) Error() string { return fmt.Sprintf("no route named %q", e.Name) }

// StatusCode makes the admin API answer 404 Not Found.
func (e *ErrNoRoute) StatusCode() int { return http.StatusNotFound }

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
// revert of an older one. Its lock is held across every swap of a route's
// mix made through the App, so that a revert firing while a newer change
// lands can never bring the older mix back.
type overrides struct {
	mu     sync.Mutex
	timers map[string]*override
}

type override struct {
	timer *time.Timer
	until time.Time
	then  admin.MixChange
}

// replace applies c to route r under the lock and, for a timed change,
// arms the change to what follows it. reverted is told of each such change
// when its time comes.
func (o *overrides) replace(r *proxy.Route, c admin.MixChange, reverted func(then *chaos.Mix)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.apply(r, c, reverted)
}

func (o *overrides) apply(r *proxy.Route, c admin.MixChange, reverted func(then *chaos.Mix)) {
	if o.timers == nil {
		o.timers = map[string]*override{}
	}
	name := r.Name()
	if old := o.timers[name]; old != nil {
		old.timer.Stop()
		delete(o.timers, name)
	}
	prev := r.Mix()
	if c.Seed != 0 {
		r.SetMixSeeded(c.Mix, c.Seed)
	} else {
		r.SetMix(c.Mix)
	}
	if c.For <= 0 {
		return
	}
	ov := &override{until: time.Now().Add(c.For), then: admin.MixChange{Mix: prev}}
	if c.Then != nil {
		ov.then = *c.Then
	}
	ov.timer = time.AfterFunc(c.For, func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.timers[name] != ov {
			return // replaced while this revert waited for the lock
		}
		delete(o.timers, name)
		o.apply(r, ov.then, reverted)
		reverted(ov.then.Mix)
	})
	o.timers[name] = ov
}

func (o *overrides) until(route string) (time.Time, admin.MixChange, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ov := o.timers[route]; ov != nil {
		return ov.until, ov.then, true
	}
	return time.Time{}, admin.MixChange{}, false
}

func (o *overrides) stopAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for name, ov := range o.timers {
		ov.timer.Stop()
		delete(o.timers, name)
	}
}

// SetMix replaces a route's live mix. With a positive d the previous mix
// comes back by itself after d, so a crashed test never leaves chaos on.
func (a *App) SetMix(name string, m *chaos.Mix, d time.Duration) error {
	return a.ChangeMix(name, admin.MixChange{Mix: m, For: d})
}

// ChangeMix changes a route's live mix: for good, or for a while after
// which the previous mix or c.Then comes in force, with its draws
// restarted from c.Seed if that is set.
func (a *App) ChangeMix(name string, c admin.MixChange) error {
	r, err := a.Route(name)
	if err != nil {
		return err
	}
	for ch := &c; ch != nil; ch = ch.Then {
		if err := needsTLS(r, name, ch.Mix); err != nil {
			return err
		}
	}
	a.overrides.replace(r, c, func(then *chaos.Mix) {
		a.log.Info().Str(logging.FieldRoute, name).Str(logging.FieldMix, then.String()).Msg("timed mix reverted")
	})
	a.log.Info().Str(logging.FieldRoute, name).Str(logging.FieldMix, c.Mix.String()).Dur(logging.FieldDuration, c.For).Uint64(logging.FieldSeed, c.Seed).Msg("mix changed")
	return nil
}

// needsTLS refuses mixes with a TLS behavior on a route that does not
// terminate TLS, as the configuration file does.
func needsTLS(r *proxy.Route, name string, m *chaos.Mix) error {
	if m == nil || r.Config().TLS != nil {
		return nil
	}
	for _, e := range m.Entries() {
		if spec, ok := chaos.LookupBehavior(e.Name); ok && spec.Handshake {
			return &conflictError{fmt.Sprintf("set mix: the %q behavior acts on the TLS handshake, and route %q does not terminate TLS (its configuration has no tls block)", e.Name, name)}
		}
	}
	return nil
}

// MixOverride reports when the timed mix change in force on a route ends,
// and what comes in force then, if one is.
func (a *App) MixOverride(name string) (time.Time, admin.MixChange, bool) {
	return a.overrides.until(name)
}

// SetBackend points a route's new connections at addr; "demo:http" names
// the demo backend, which must be running.
func (a *App) SetBackend(name, addr string) error {
	r, err := a.Route(name)
	if err != nil {
		return err
	}
	a.mu.Lock()
	if addr == config.DemoBackend {
		addr = a.demoAddr()
		if addr == "" {
			a.mu.Unlock()
			return errDemoOff
		}
	}
	err = checkLoop(name, addr, a.listeners(a.liveConfigs("")))
	a.mu.Unlock()
	if err != nil {
		return err
	}
	r.SetBackend(addr)
	a.log.Info().Str(logging.FieldRoute, name).Str(logging.FieldBackend, addr).Msg("backend changed")
	return nil
}

var errDemoOff = &conflictError{"set backend: the demo backend is not running; no route of the file uses it"}

// conflictError is a refusal that depends on the running state, not on the
// request: the admin API answers it with 409 Conflict.
type conflictError struct{ msg string }

func (e *conflictError) Error() string   { return e.msg }
func (e *conflictError) StatusCode() int { return http.StatusConflict }

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
	if err != nil {
		// The address was taken by another process meanwhile.
		return &conflictError{msg: err.Error()}
	}
	return nil
}

// Reset returns a route — or every route when name is "" — to the file's
// mix and backend, and enables it; a route added at run time (AddRoute)
// gets an empty mix. Every mix is built before anything
// changes.
func (a *App) Reset(name string) error {
	a.mu.Lock()
	f, demoAddr := a.file, a.demoAddr()
	a.mu.Unlock()
	type reset struct {
		route   *proxy.Route
		mix     *chaos.Mix
		backend string
	}
	var todo []reset
	for _, rc := range a.resettable(f) {
		if name != "" && rc.Name != name {
			continue
		}
		r, err := a.Route(rc.Name)
		if err != nil {
			return err
		}
		m, err := BuildMix(rc.Behaviors)
		if err != nil {
			return err
		}
		backend := rc.Backend
		if backend == config.DemoBackend {
			backend = demoAddr
		}
		todo = append(todo, reset{r, m, backend})
	}
	if len(todo) == 0 {
		return &ErrNoRoute{Name: name}
	}
	// Listening again is what can fail (an address taken meanwhile): every
	// disabled route listens first, and if one cannot, those that did stop
	// again and nothing else changes.
	var reopened []*proxy.Route
	for _, t := range todo {
		if t.route.Enabled() {
			continue
		}
		if err := t.route.Enable(); err != nil {
			for _, r := range reopened {
				r.Disable()
			}
			return &conflictError{msg: "reset: " + err.Error()}
		}
		reopened = append(reopened, t.route)
	}
	for _, t := range todo {
		a.overrides.replace(t.route, admin.MixChange{Mix: t.mix}, nil)
		t.route.SetBackend(t.backend)
	}
	a.log.Info().Str(logging.FieldRoute, name).Msg("reset to the file")
	return nil
}
