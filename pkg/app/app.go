// Package app wires vaurien together and owns its lifecycle: it turns a
// loaded configuration into running routes, starts the demo backend when a
// route asks for it and the admin API when the file gives it an address,
// reloads on SIGHUP, and drains on SIGTERM/SIGINT. It is the one package
// that imports every layer.
package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/pkg/admin"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/demo"
	"github.com/vaurien-go/vaurien/pkg/logging"
	"github.com/vaurien-go/vaurien/pkg/proxy"
	"github.com/vaurien-go/vaurien/pkg/toxiproxy"
)

// App is a running vaurien.
type App struct {
	log    zerolog.Logger
	server *proxy.Server

	mu        sync.Mutex
	file      *config.File
	demo      *demo.Server
	overrides overrides
	metrics   http.Handler
	admin     *admin.Server
	state     state
	dynamic   dynamicRoutes     // routes started at run time, beside the file's
	toxi      *toxiproxy.Server // the Toxiproxy-compatible API, nil when off
	toxiToken bool              // whether its mutating calls need a token
	reloads   []reloadObserver  // told the result of every reload
	loaded    []loadObserver    // told of every configuration put in force
	exps      experiments       // experiment runs, in-process and remote
	faults    *admin.FaultCounter
}

// reloadObserver is an observer that also counts config reloads.
type reloadObserver interface{ Reloaded(ok bool) }

// loadObserver is an observer that records the configuration in force.
type loadObserver interface{ ConfigLoaded(sum [sha256.Size]byte) }

func (a *App) inForce(f *config.File) {
	for _, l := range a.loaded {
		l.ConfigLoaded(f.SHA256)
	}
}

func (a *App) reloaded(ok bool) {
	for _, r := range a.reloads {
		r.Reloaded(ok)
	}
}

// state is where the app is in its lifecycle, for readiness.
type state int

const (
	stateNew state = iota
	stateRunning
	stateStopping
)

// New prepares an app for a validated configuration. Observers get the
// engine's events besides the log.
func New(f *config.File, log zerolog.Logger, observers ...proxy.Observer) *App {
	a := &App{log: log, file: f}
	for _, o := range observers {
		if r, ok := o.(reloadObserver); ok {
			a.reloads = append(a.reloads, r)
		}
		if l, ok := o.(loadObserver); ok {
			a.loaded = append(a.loaded, l)
		}
	}
	a.exps = a.newExperiments(observers)
	observers = append(observers, a.newToxiproxy(f)...)
	a.faults = admin.NewFaultCounter()
	obs := proxy.Observers(append([]proxy.Observer{logging.Observer{Log: log}, a.faults}, observers...)...)
	a.server = proxy.New(obs, f.Drain)
	return a
}

// Server is the running engine.
func (a *App) Server() *proxy.Server { return a.server }

// File is the configuration in force.
func (a *App) File() *config.File {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.file
}

// SetMetricsHandler gives the admin API the handler it serves at GET
// /metrics. Call it before Start; without it /metrics answers 404.
func (a *App) SetMetricsHandler(h http.Handler) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.metrics = h
}

// Start opens every route's listener, and the admin API's when the file
// gives it an address (an empty admin listen address leaves it off, as the
// original's flags do without --http). On failure nothing is left running.
func (a *App) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	// The admin API starts first so that a port clash fails before any
	// route listens; it answers /readyz with 503 until the routes are up.
	if a.file.Admin.Listen != "" {
		srv := admin.New(a, admin.Config{
			Listen:       a.file.Admin.Listen,
			Token:        a.file.Admin.Token,
			AllowedHosts: a.file.Admin.AllowedHosts,
			Metrics:      a.metrics,
			Log:          a.log,
			Faults:       a.faults,

			Experiments: a.exps.manager,
		})
		if err := srv.Start(); err != nil {
			return err
		}
		a.admin = srv
		a.log.Info().Str(logging.FieldListen, srv.Addr()).Bool("token", a.file.Admin.Token != "").Msg("admin API listening")
	}
	if err := a.startRoutes(); err != nil {
		if a.admin != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			a.admin.Shutdown(ctx)
			a.admin = nil
		}
		return err
	}
	a.state = stateRunning
	a.inForce(a.file)
	for _, r := range a.server.Routes() {
		cfg := r.Config()
		a.log.Info().Str(logging.FieldRoute, r.Name()).Str(logging.FieldListen, r.Addr()).
			Str(logging.FieldBackend, cfg.Backend).Str(logging.FieldProtocol, cfg.Protocol).
			Str(logging.FieldMix, cfg.Mix.String()).Msg("route listening")
	}
	return nil
}

// apply makes the engine run f's routes beside the dynamic ones. On
// failure nothing has changed: a demo backend started for f is stopped
// again.
func (a *App) apply(f *config.File) (err error) {
	if a.demo == nil && usesDemo(f) {
		d, err := demo.Start()
		if err != nil {
			return err
		}
		a.demo = d
		defer func() {
			if err != nil {
				a.demo = nil
				d.Close(context.Background())
			}
		}()
		a.log.Info().Str(logging.FieldListen, d.Addr()).Msg("demo backend started")
	}
	cfgs, err := RouteConfigs(f, a.demoAddr())
	if err != nil {
		return err
	}
	if cfgs, err = a.withDynamic(f, cfgs); err != nil {
		return err
	}
	return a.applyRoutes(cfgs)
}

func (a *App) demoAddr() string {
	if a.demo == nil {
		return ""
	}
	return a.demo.Addr()
}

func usesDemo(f *config.File) bool {
	for _, r := range f.Routes {
		if r.Backend == config.DemoBackend {
			return true
		}
	}
	return false
}

// AdminAddr is the admin API's bound address (with the real port when the
// configured one was 0), or "" when the admin API is off or not started.
func (a *App) AdminAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.admin == nil {
		return ""
	}
	return a.admin.Addr()
}

// Admin is the running admin API server, or nil.
func (a *App) Admin() *admin.Server {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.admin
}

// Ready reports whether the routes are listening: nil once Start has
// succeeded and until Shutdown begins.
func (a *App) Ready() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch a.state {
	case stateNew:
		return errors.New("vaurien is starting: routes are not listening yet")
	case stateStopping:
		return errors.New("vaurien is shutting down")
	}
	return nil
}

// ErrNoConfigFile is returned by Reload when vaurien was started from the
// original's flags rather than from a file.
var ErrNoConfigFile = &NoConfigFileError{}

// NoConfigFileError is the type of ErrNoConfigFile.
type NoConfigFileError struct{}

func (*NoConfigFileError) Error() string {
	return "reload: vaurien was started from flags, not from a file"
}

// StatusCode makes the admin API answer 409 Conflict: the request is fine,
// the running process cannot honour it.
func (*NoConfigFileError) StatusCode() int { return http.StatusConflict }

// ReloadError is a reload refused because the file does not validate. It
// carries every diagnostic, each in the "file:line:col: error: ..." form
// that `vaurien validate` prints.
type ReloadError struct {
	Path  string
	Lines []string
	err   error
}

func (e *ReloadError) Error() string {
	return fmt.Sprintf("reload %s: the file has %d problem(s), the running configuration stays:\n%s", e.Path, len(e.Lines), strings.Join(e.Lines, "\n"))
}

func (e *ReloadError) Unwrap() error { return e.err }

// Diagnostics lists the problems, for the admin API's answer.
func (e *ReloadError) Diagnostics() []string { return e.Lines }

// StatusCode makes the admin API answer 422: the file cannot be applied.
func (*ReloadError) StatusCode() int { return http.StatusUnprocessableEntity }

// Reload re-reads the configuration file and applies it. A file that fails
// validation, or routes that cannot start, leave the running config as is.
// The admin block is read at start only: a change to it needs a restart.
func (a *App) Reload() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.file.Path == "" {
		return ErrNoConfigFile
	}
	f, err := config.Load(a.file.Path)
	if err != nil {
		a.reloaded(false)
		rerr := &ReloadError{Path: a.file.Path, Lines: config.DiagnosticLines(a.file.Path, err), err: err}
		a.log.Error().Str("file", a.file.Path).Strs(logging.FieldDiagnostics, rerr.Lines).Msg("reload rejected")
		return rerr
	}
	err = a.apply(f)
	a.reloaded(err == nil)
	if err != nil {
		a.log.Error().Str("file", a.file.Path).Err(err).Msg("reload rejected")
		// The file is valid but cannot run as it stands (an address taken,
		// a backend that is one of the APIs): still a file that cannot be
		// applied, whatever status the cause carries.
		return &ReloadError{Path: a.file.Path, Lines: []string{err.Error()}, err: err}
	}
	if !reflect.DeepEqual(f.Admin, a.file.Admin) {
		a.log.Warn().Str("file", f.Path).Msg("admin block changed: restart vaurien to apply it")
	}
	a.file = f
	a.inForce(f)
	// Routes now follow the file again: a pending timed revert would bring
	// back a mix from the previous file.
	a.overrides.stopAll()
	a.log.Info().Str("file", f.Path).Int(logging.FieldCount, len(f.Routes)).Msg("config reloaded")
	return nil
}

// Shutdown stops the admin API, stops accepting, lets live connections
// finish until ctx ends, then closes them.
func (a *App) Shutdown(ctx context.Context) {
	a.mu.Lock()
	a.state = stateStopping
	srv := a.admin
	a.mu.Unlock()
	if srv != nil {
		srv.Shutdown(ctx)
	}
	a.stopToxiproxy(ctx)
	a.exps.manager.Close() // in-process runs roll back before the routes stop
	a.overrides.stopAll()
	a.server.Shutdown(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.demo != nil {
		a.demo.Close(ctx)
	}
}

// Run starts the app and serves until ctx ends or SIGINT/SIGTERM arrives,
// reloading on SIGHUP. Shutdown drains for the file's drain period; a second
// signal stops at once.
func (a *App) Run(ctx context.Context) error {
	// Signals are caught before "vaurien started" is logged: whoever waits
	// for that line may signal at once, and Go's default would kill the
	// process without a drain.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	if err := a.Start(); err != nil {
		return err
	}
	a.log.Info().Int(logging.FieldCount, len(a.server.Routes())).Msg("vaurien started")
	w := a.watch()
	defer w.close()
	for {
		select {
		case <-w.changed():
			a.reloadIfChanged()
			continue
		case err := <-w.errors():
			a.log.Warn().Err(err).Str("file", a.File().Path).Msg("config watch")
			continue
		case s := <-sig:
			if s == syscall.SIGHUP {
				_ = a.Reload() // logged; the running config stays
				continue
			}
			a.log.Info().Str("signal", s.String()).Dur(logging.FieldDrain, a.File().Drain).Msg("shutting down")
		case <-ctx.Done():
			a.log.Info().Dur(logging.FieldDrain, a.File().Drain).Msg("shutting down")
		}
		break
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), a.File().Drain)
	defer cancel()
	go func() {
		select {
		case <-sig: // a second signal: stop draining now
			a.log.Warn().Msg("second signal: closing live connections now")
			cancel()
		case <-drainCtx.Done():
		}
	}()
	a.Shutdown(drainCtx)
	a.log.Info().Msg("vaurien stopped")
	return nil
}

// RouteConfigs turns the file's routes into engine routes, building each
// mix from the registry. demoAddr replaces the "demo:http" backend.
func RouteConfigs(f *config.File, demoAddr string) ([]proxy.RouteConfig, error) {
	out := make([]proxy.RouteConfig, 0, len(f.Routes))
	for _, r := range f.Routes {
		mix, err := BuildMix(r.Behaviors)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", r.Name, err)
		}
		backend := r.Backend
		if backend == config.DemoBackend {
			backend = demoAddr
		}
		out = append(out, proxy.RouteConfig{
			Name: r.Name, Listen: r.Listen, Backend: backend,
			Protocol: r.Protocol, ProtocolOptions: r.ProtocolOptions,
			Mix: mix, Seed: f.Seed,
			IdleTimeout: r.Timeout, DialTimeout: r.ConnectTimeout, MaxConnections: r.MaxConnections,
			TLS: r.TLS, BackendTLS: r.BackendTLS,
		})
	}
	return out, nil
}

// BuildMix builds a mix from the file's behavior blocks.
func BuildMix(bs []config.Behavior) (*chaos.Mix, error) {
	entries := make([]chaos.Entry, 0, len(bs))
	for _, b := range bs {
		e, err := chaos.NewEntry(b.Name, b.Percent, map[string]any(b.Options), b.Match)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return chaos.NewMix(entries)
}
