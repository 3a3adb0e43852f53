// Package app wires vaurien together and owns its lifecycle: it turns a
// loaded configuration into running routes, starts the demo backend when a
// route asks for it, reloads on SIGHUP, and drains on SIGTERM/SIGINT. It is
// the one package that imports every layer.
package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/demo"
	"github.com/vaurien-go/vaurien/pkg/logging"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// App is a running vaurien.
type App struct {
	log    zerolog.Logger
	server *proxy.Server

	mu        sync.Mutex
	file      *config.File
	demo      *demo.Server
	overrides overrides
}

// New prepares an app for a validated configuration. Observers get the
// engine's events besides the log.
func New(f *config.File, log zerolog.Logger, observers ...proxy.Observer) *App {
	obs := proxy.Observers(append([]proxy.Observer{logging.Observer{Log: log}}, observers...)...)
	return &App{log: log, file: f, server: proxy.New(obs, f.Drain)}
}

// Server is the running engine.
func (a *App) Server() *proxy.Server { return a.server }

// File is the configuration in force.
func (a *App) File() *config.File {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.file
}

// Start opens every route's listener. On failure nothing is left running.
func (a *App) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.apply(a.file); err != nil {
		return err
	}
	for _, r := range a.server.Routes() {
		cfg := r.Config()
		a.log.Info().Str(logging.FieldRoute, r.Name()).Str(logging.FieldListen, r.Addr()).
			Str(logging.FieldBackend, cfg.Backend).Str(logging.FieldProtocol, cfg.Protocol).
			Str(logging.FieldMix, cfg.Mix.String()).Msg("route listening")
	}
	return nil
}

func (a *App) apply(f *config.File) error {
	if a.demo == nil && usesDemo(f) {
		d, err := demo.Start()
		if err != nil {
			return err
		}
		a.demo = d
		a.log.Info().Str(logging.FieldListen, d.Addr()).Msg("demo backend started")
	}
	cfgs, err := RouteConfigs(f, a.demoAddr())
	if err != nil {
		return err
	}
	return a.server.Apply(cfgs)
}

func (a *App) demoAddr() string {
	if a.demo == nil {
		return ""
	}
	return a.demo.Addr()
}

// backendAddr resolves the demo backend's name to its address.
func (a *App) backendAddr(backend string) string {
	if backend == config.DemoBackend {
		return a.demoAddr()
	}
	return backend
}

func usesDemo(f *config.File) bool {
	for _, r := range f.Routes {
		if r.Backend == config.DemoBackend {
			return true
		}
	}
	return false
}

// Reload re-reads the configuration file and applies it. A file that fails
// validation, or routes that cannot start, leave the running config as is.
func (a *App) Reload() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.file.Path == "" {
		return errors.New("reload: vaurien was started from flags, not from a file")
	}
	f, err := config.Load(a.file.Path)
	if err != nil {
		a.log.Error().Str("file", a.file.Path).Err(err).Msg("reload rejected")
		return fmt.Errorf("reload %s: %w", a.file.Path, err)
	}
	if err := a.apply(f); err != nil {
		a.log.Error().Str("file", a.file.Path).Err(err).Msg("reload rejected")
		return fmt.Errorf("reload %s: %w", a.file.Path, err)
	}
	a.file = f
	a.log.Info().Str("file", f.Path).Int(logging.FieldCount, len(f.Routes)).Msg("config reloaded")
	return nil
}

// Shutdown stops accepting, lets live connections finish until ctx ends,
// then closes them.
func (a *App) Shutdown(ctx context.Context) {
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
	if err := a.Start(); err != nil {
		return err
	}
	a.log.Info().Int(logging.FieldCount, len(a.server.Routes())).Msg("vaurien started")
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				_ = a.Reload() // logged; the running config stays
				continue
			}
			a.log.Info().Str("signal", s.String()).Dur(logging.FieldDuration, a.File().Drain).Msg("shutting down")
		case <-ctx.Done():
			a.log.Info().Msg("shutting down")
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
		})
	}
	return out, nil
}

// BuildMix builds a mix from the file's behavior blocks.
func BuildMix(bs []config.Behavior) (*chaos.Mix, error) {
	entries := make([]chaos.Entry, 0, len(bs))
	for _, b := range bs {
		beh, vals, err := chaos.NewBehavior(b.Name, map[string]any(b.Options))
		if err != nil {
			return nil, err
		}
		entries = append(entries, chaos.Entry{Name: b.Name, Percent: b.Percent, Options: vals, Behavior: beh})
	}
	return chaos.NewMix(entries)
}
