// Package vaurientest starts vaurien inside a Go test — the original
// Vaurien's start_proxy and stop_proxy. The proxy runs in the test's
// process on free ports of 127.0.0.1, with its admin API, and stops when
// the test ends. Nothing is read from or written to disk.
//
// A complete test, putting a proxy between a go-redis client and a Redis
// server and turning errors on for part of it. The client keeps a pool of
// connections, opened before the fault: a change of a route's mix reaches
// the connections already open, at their next read.
//
//	func TestCacheSurvivesRedisErrors(t *testing.T) {
//		p := vaurientest.Start(t, `
//			route "cache" {
//			  listen  = "127.0.0.1:0"
//			  backend = "127.0.0.1:6379"
//			}`)
//		rdb := redis.NewClient(&redis.Options{Addr: p.Addr("cache")}) // through vaurien
//		defer rdb.Close()
//		ctx := t.Context()
//		if err := rdb.Set(ctx, "key", "value", 0).Err(); err != nil { // opens a pooled connection
//			t.Fatal(err)
//		}
//		err := p.Client.WithBehavior(ctx, "cache", client.Behavior{Name: "error"}, func() error {
//			// redis.Nil is Redis's answer for a missing key, not the fault.
//			if _, err := rdb.Get(ctx, "key").Result(); err == nil || errors.Is(err, redis.Nil) {
//				return fmt.Errorf("the injected error did not reach the caller: %v", err)
//			}
//			return nil
//		})
//		if err != nil {
//			t.Fatal(err)
//		}
//		// The error behavior is off again here, for the same pool.
//		if v, err := rdb.Get(ctx, "key").Result(); err != nil || v != "value" {
//			t.Fatalf("after WithBehavior: %q, %v", v, err)
//		}
//	}
//
// Routes can also be given as Go values with StartRoutes. Every built-in
// behavior and protocol is available; a test that uses its own plugins
// imports them.
package vaurientest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/client"
	"github.com/vaurien-go/vaurien/pkg/config"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard" // the built-in behaviors and protocols
)

// Proxy is a vaurien running for one test.
type Proxy struct {
	// App is the running proxy, for what the admin API does not offer.
	App *app.App
	// Client is a client of the proxy's admin API, with its token if the
	// configuration sets one.
	Client *client.Client

	t    testing.TB
	stop func()
}

// Route is a route given as Go values. Zero values take the defaults of a
// configuration file; Listen defaults to a free port of 127.0.0.1.
type Route struct {
	Name            string
	Listen          string // default "127.0.0.1:0"
	Backend         string // host:port
	Protocol        string // default "tcp"
	ProtocolOptions map[string]any
	Behaviors       []client.Behavior
	Default         bool          // the route the original /behavior and /backend endpoints act on
	Timeout         time.Duration // idle timeout; 0 means none
	ConnectTimeout  time.Duration // default 5s
	MaxConnections  int           // 0 means unlimited
}

// Option configures a Proxy.
type Option func(*options)

type options struct {
	log   zerolog.Logger
	token string
	seed  uint64
}

// WithLogger sends the proxy's logs to log; they are discarded by default.
func WithLogger(log zerolog.Logger) Option { return func(o *options) { o.log = log } }

// WithToken requires token on the admin API's mutating calls.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithSeed seeds the behavior draws, so that a run repeats its sequence of
// behaviors exactly.
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }

// Start runs the routes of an HCL configuration, given as text. Listen on
// "127.0.0.1:0" to get a free port; Addr tells which. The admin block's
// listen address is replaced by a free port; its token is kept. The test
// fails at once if the configuration is invalid or a route cannot listen.
func Start(t testing.TB, hcl string, opts ...Option) *Proxy {
	t.Helper()
	f, err := config.Parse([]byte(hcl), "inline.hcl")
	if err != nil {
		t.Fatalf("vaurientest: invalid configuration: %v", err)
	}
	o := newOptions(opts)
	if o.token != "" {
		f.Admin.Token = o.token
	}
	if o.seed != 0 {
		f.Seed = o.seed
	}
	return start(t, f, o)
}

// StartRoutes runs routes given as Go values.
func StartRoutes(t testing.TB, routes []Route, opts ...Option) *Proxy {
	t.Helper()
	o := newOptions(opts)
	f := &config.File{
		Admin: config.Admin{Token: o.token},
		Log:   config.Log{Level: config.DefaultLogLevel, Format: config.DefaultLogFormat},
		Seed:  o.seed,
		Drain: time.Second,
	}
	for _, r := range routes {
		rc, err := routeConfig(r)
		if err != nil {
			t.Fatalf("vaurientest: route %q: %v", r.Name, err)
		}
		f.Routes = append(f.Routes, rc)
	}
	return start(t, f, o)
}

func newOptions(opts []Option) options {
	o := options{log: zerolog.Nop()}
	for _, fn := range opts {
		fn(&o)
	}
	return o
}

// routeConfig checks a Go route against the registry the way the HCL
// decoder does.
func routeConfig(r Route) (config.Route, error) {
	rc := config.Route{
		Name: r.Name, Listen: r.Listen, Backend: r.Backend, Protocol: r.Protocol,
		Default: r.Default, Timeout: r.Timeout, ConnectTimeout: r.ConnectTimeout, MaxConnections: r.MaxConnections,
	}
	if rc.Name == "" {
		return rc, fmt.Errorf("a route needs a name")
	}
	if rc.Backend == "" {
		return rc, fmt.Errorf("a route needs a backend")
	}
	if rc.Listen == "" {
		rc.Listen = "127.0.0.1:0"
	}
	if rc.Protocol == "" {
		rc.Protocol = config.DefaultProtocol
	}
	if rc.ConnectTimeout == 0 {
		rc.ConnectTimeout = config.DefaultConnectTimeout
	}
	spec, ok := chaos.LookupProtocol(rc.Protocol)
	if !ok {
		return rc, &chaos.UnknownError{What: "protocol", Name: rc.Protocol, Valid: chaos.ProtocolNames()}
	}
	v, err := spec.Options.Resolve(rc.Protocol, r.ProtocolOptions)
	if err != nil {
		return rc, err
	}
	rc.ProtocolOptions = v
	for _, b := range r.Behaviors {
		_, vals, err := chaos.NewBehavior(b.Name, b.Options)
		if err != nil {
			return rc, err
		}
		rc.Behaviors = append(rc.Behaviors, config.Behavior{Name: b.Name, Percent: b.Percent, Options: vals})
	}
	return rc, nil
}

// stopGrace is how long connections still open when the test ends may
// finish before they are closed.
const stopGrace = time.Second

func start(t testing.TB, f *config.File, o options) *Proxy {
	t.Helper()
	// Free ports only, and no file behind the configuration: a reload
	// through the API answers that there is none to read.
	f.Admin.Listen = "127.0.0.1:0"
	f.Path = ""
	a := app.New(f, o.log)
	if err := a.Start(); err != nil {
		t.Fatalf("vaurientest: start: %v", err)
	}
	var copts []client.Option
	if f.Admin.Token != "" {
		copts = append(copts, client.WithToken(f.Admin.Token))
	}
	p := &Proxy{App: a, Client: client.New(a.AdminAddr(), copts...), t: t}
	p.stop = sync.OnceFunc(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
		defer cancel()
		a.Shutdown(ctx)
		p.Client.Close()
	})
	t.Cleanup(p.stop)
	return p
}

// Addr is the address a route listens on, with its real port. The test
// fails if there is no such route.
func (p *Proxy) Addr(route string) string {
	p.t.Helper()
	r, err := p.App.Route(route)
	if err != nil {
		p.t.Fatalf("vaurientest: %v", err)
	}
	return r.Addr()
}

// AdminAddr is the admin API's address.
func (p *Proxy) AdminAddr() string { return p.App.AdminAddr() }

// Stop shuts the proxy down before the test ends (the original's
// stop_proxy); the test's cleanup does it otherwise. Live connections are
// closed after a second.
func (p *Proxy) Stop() { p.stop() }
