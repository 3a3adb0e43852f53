// Package admin owns vaurien's admin HTTP API, served with echo: the
// original Vaurien's single-route endpoints (GET/PUT /behavior, GET
// /behaviors, GET/PUT /backend) acting on the default route, the per-route
// endpoints (list, inspect, set a mix for good or for a while, reset,
// change the backend, disable and enable, reload the file), the health,
// readiness, version and metrics endpoints, and the OpenAPI document that
// describes them all (openapi.yaml, served at GET /openapi.yaml). It also
// serves the web console (pkg/console) at /ui/, the live state it shows as
// server-sent events (GET /events, events.go) and the behavior
// declarations its forms are built from (GET /catalog); guard.go keeps
// other web pages from driving the API through a visitor's browser.
//
// It drives the running proxy through the Controller interface it declares,
// which the app implements. Every option a client sends is checked against
// the behavior's declarations, the same ones the HCL file is checked with;
// a rejected call answers 4xx with {"error": "..."} (the original's PUT
// /behavior and PUT /backend in the original's own shape, see original.go)
// and changes nothing.
// With a token set, every call other than GET, HEAD and OPTIONS needs
// "Authorization: Bearer <token>"; reads stay open.
//
// A change applies at once to new connections and, on protocol-aware
// routes, to the next request of live connections, which draw from the
// route's live mix for each request. A live tcp connection drew its
// behavior when it was accepted and keeps it.
package admin

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/logging"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// OpenAPI is the OpenAPI 3 document of the API, served at GET /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Limits applied when Config leaves them zero. Requests are small JSON
// documents, so the limits are tight: a client that trickles its request
// (slowloris) is cut after ReadHeaderTimeout or ReadTimeout, and one
// connection never holds up the others.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultBodyLimit         = 64 << 10 // bytes
	maxHeaderBytes           = 16 << 10
	shutdownGrace            = 2 * time.Second
)

// Controller is what the admin API needs from the running proxy. Errors
// that implement StatusCode() int (echo.HTTPStatusCoder) choose the HTTP
// status of the answer; other errors of mutating calls are 500s, except
// Reload's, which are 422s (the file cannot be applied).
type Controller interface {
	// Routes returns the running routes sorted by name.
	Routes() []*proxy.Route
	// Route returns the running route named name.
	Route(name string) (*proxy.Route, error)
	// DefaultRoute is the route the original's endpoints act on.
	DefaultRoute() (*proxy.Route, error)
	// ConfiguredMix is the mix the file gives the route.
	ConfiguredMix(name string) (*chaos.Mix, error)
	// MixOverride reports when a timed mix change on the route ends, and
	// what comes in force then.
	MixOverride(name string) (until time.Time, then MixChange, ok bool)
	// ChangeMix changes the route's live mix.
	ChangeMix(name string, c MixChange) error
	// SetBackend points the route's new connections at addr.
	SetBackend(name, addr string) error
	// SetEnabled disables or enables the route.
	SetEnabled(name string, on bool) error
	// Reset returns one route, or every route for "", to the file.
	Reset(name string) error
	// Reload re-reads the configuration file.
	Reload() error
	// Ready is nil when the routes are listening.
	Ready() error
}

// Config configures the admin server.
type Config struct {
	Listen string // host:port; port 0 picks a free one
	Token  string // bearer token for mutating calls; "" for none
	// AllowedHosts are names, besides IP addresses, localhost names and
	// Listen's host, by which browsers may reach the API (see
	// guardBrowsers).
	AllowedHosts []string
	Metrics      http.Handler // served at GET /metrics; nil answers 404
	// Experiments serves /experiments; nil answers 404.
	Experiments Experiments
	// Faults gives GET /events the faults per behavior; nil shows none.
	Faults *FaultCounter
	// EventInterval is how often GET /events sends the state; zero takes
	// DefaultEventInterval.
	EventInterval time.Duration
	Log           zerolog.Logger

	// Zero values take the defaults above.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	BodyLimit         int64
}

// Server is the admin API server.
type Server struct {
	ctl  Controller
	cfg  Config
	log  zerolog.Logger
	echo *echo.Echo
	http *http.Server

	hub  *hub
	done chan struct{} // closed by Shutdown: event streams end
	stop sync.Once

	mu   sync.Mutex
	addr string
	wg   sync.WaitGroup
}

// Endpoint is one registered method and path, with path parameters written
// :name as echo writes them.
type Endpoint struct {
	Method string
	Path   string
}

// New builds the admin server; Start makes it listen.
func New(ctl Controller, cfg Config) *Server {
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	s := &Server{ctl: ctl, cfg: cfg, log: cfg.Log.With().Str("component", "admin").Logger(), done: make(chan struct{})}
	s.hub = newHub(s, cfg.EventInterval)
	s.echo = s.routes()
	s.http = &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(serverErrors{s.log}, "", 0),
	}
	return s
}

// Handler is the API as an http.Handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.echo }

// Endpoints lists the registered endpoints.
func (s *Server) Endpoints() []Endpoint {
	var out []Endpoint
	for _, r := range s.echo.Router().Routes() {
		out = append(out, Endpoint{Method: r.Method, Path: r.Path})
	}
	return out
}

// Start listens on the configured address and serves in the background.
func (s *Server) Start() error {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen for the admin API on %s: %w", s.cfg.Listen, err)
	}
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.mu.Unlock()
	s.wg.Go(func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("admin API stopped")
		}
	})
	return nil
}

// Addr is the bound address, with the real port; "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops listening, lets requests in progress finish for a short
// grace period (bounded by ctx), then closes every connection.
func (s *Server) Shutdown(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, shutdownGrace)
	defer cancel()
	s.stop.Do(func() { close(s.done) })
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
	}
	s.wg.Wait()
}

// serverErrors sends net/http's own error lines (bad TLS, accept errors,
// panics) to the log.
type serverErrors struct{ log zerolog.Logger }

func (w serverErrors) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	w.log.Warn().Str(logging.FieldReason, msg).Msg("admin http server error")
	return len(p), nil
}
