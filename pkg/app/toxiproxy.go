package app

import (
	"context"
	"net"
	"net/netip"
	"os"

	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/logging"
	"github.com/vaurien-go/vaurien/pkg/proxy"
	"github.com/vaurien-go/vaurien/pkg/toxiproxy"
)

// newToxiproxy prepares the Toxiproxy-compatible API when the file gives
// it an address, and returns the observer through which it hears of mix
// changes. Like the admin block, the toxiproxy block is read at start only.
func (a *App) newToxiproxy(f *config.File) []proxy.Observer {
	if f.Toxiproxy.Listen == "" {
		return nil
	}
	token := f.Toxiproxy.Token
	if token == "" {
		token = os.Getenv(ToxiproxyTokenEnv)
	}
	a.toxi = toxiproxy.New(a, toxiproxy.Config{Listen: f.Toxiproxy.Listen, Token: token, Log: a.log})
	a.toxiToken = token != ""
	return []proxy.Observer{a.toxi.Observer()}
}

// ToxiproxyTokenEnv is Toxiproxy's variable for its API token, honoured
// when the toxiproxy block sets no token.
const ToxiproxyTokenEnv = "TOXIPROXY_AUTH_TOKEN"

// loopback reports whether addr (host:port, as bound) is reachable from
// this machine only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Toxiproxy is the Toxiproxy-compatible API server, or nil when it is off.
// Its Preload declares proxies before Start.
func (a *App) Toxiproxy() *toxiproxy.Server { return a.toxi }

// ToxiproxyAddr is the Toxiproxy API's bound address, or "" when it is off
// or not started.
func (a *App) ToxiproxyAddr() string {
	if a.toxi == nil {
		return ""
	}
	return a.toxi.Addr()
}

// startRoutes applies the file and runs the Toxiproxy API around it: its
// address is bound first, so that a clash fails before any route listens,
// and it answers once the routes are up. On failure it is stopped. Start
// holds a.mu meanwhile: the controls Serve calls (Routes, IsDynamic,
// SetMix, SetEnabled) must not take it.
func (a *App) startRoutes() error {
	if a.toxi != nil {
		if err := a.toxi.Listen(); err != nil {
			return err
		}
	}
	err := a.apply(a.file)
	if err == nil && a.toxi != nil {
		if err = a.toxi.Serve(); err == nil {
			a.log.Info().Str(logging.FieldListen, a.toxi.Addr()).Bool("token", a.toxiToken).Msg("Toxiproxy API listening")
			if !a.toxiToken && !loopback(a.toxi.Addr()) {
				a.log.Warn().Str(logging.FieldListen, a.toxi.Addr()).Msg("the Toxiproxy API listens beyond loopback without a token: anyone who reaches it can change the proxies; set token in the toxiproxy block, or " + ToxiproxyTokenEnv)
			}
		}
	}
	if err != nil && a.toxi != nil {
		a.toxi.Shutdown(context.Background())
	}
	return err
}

// stopToxiproxy stops the Toxiproxy API, if it runs.
func (a *App) stopToxiproxy(ctx context.Context) {
	if a.toxi != nil {
		a.toxi.Shutdown(ctx)
	}
}
