package app_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/logging"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func parse(t *testing.T, src string) *config.File {
	t.Helper()
	f, err := config.Parse([]byte(src), "inline.hcl")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func dialRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections", addr)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
}

func TestAdminStartsWithTheAppAndStopsWithIt(t *testing.T) {
	f := parse(t, `
admin {
  listen = "127.0.0.1:0"
}
route "web" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:9"
}`)
	a := app.New(f, zerolog.Nop())
	if a.AdminAddr() != "" {
		t.Fatal("AdminAddr before Start")
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	addr := a.AdminAddr()
	if strings.HasSuffix(addr, ":0") || addr == "" {
		t.Fatalf("AdminAddr = %q, want the bound port", addr)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	a.Shutdown(context.Background())
	dialRefused(t, addr)
}

func TestNoAdminWithoutAnAddress(t *testing.T) {
	f := parse(t, `
route "web" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:9"
}`)
	f.Admin.Listen = "" // the original's flags without --http
	a := app.New(f, zerolog.Nop())
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	if a.AdminAddr() != "" || a.Admin() != nil {
		t.Fatalf("an admin API runs at %q", a.AdminAddr())
	}
	if err := a.Ready(); err != nil {
		t.Fatal(err)
	}
}

// A taken admin port fails Start before any route listens.
func TestAdminPortTakenLeavesNothingRunning(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	route := free.Addr().String()
	free.Close()
	f := parse(t, `
route "web" {
  listen  = "`+route+`"
  backend = "127.0.0.1:9"
}`)
	f.Admin.Listen = taken.Addr().String()
	a := app.New(f, zerolog.Nop())
	err = a.Start()
	if err == nil || !strings.Contains(err.Error(), "admin API") {
		t.Fatalf("Start with the admin port taken: %v", err)
	}
	dialRefused(t, route)
	a.Shutdown(context.Background())
}

// A route that cannot listen takes the admin API down with it.
func TestRouteFailureStopsTheAdmin(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	f := parse(t, `
admin {
  listen = "127.0.0.1:0"
}
route "web" {
  listen  = "`+taken.Addr().String()+`"
  backend = "127.0.0.1:9"
}`)
	a := app.New(f, zerolog.Nop())
	if err := a.Start(); err == nil {
		t.Fatal("Start succeeded with the route's port taken")
	}
	if a.AdminAddr() != "" {
		t.Fatalf("the admin API still runs at %s", a.AdminAddr())
	}
	a.Shutdown(context.Background())
}

func TestControlErrorsCarryTheirStatus(t *testing.T) {
	f := parse(t, `
route "web" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:9"
}`)
	f.Admin.Listen = ""
	f.Path = "" // as the original's flags build it
	a := app.New(f, zerolog.Nop())
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	cases := []struct {
		name string
		err  error
		code int
	}{
		{"unknown route", a.SetBackend("nope", "127.0.0.1:1"), http.StatusNotFound},
		{"unknown route reset", a.Reset("nope"), http.StatusNotFound},
		{"demo backend off", a.SetBackend("web", config.DemoBackend), http.StatusConflict},
		{"reload without a file", a.Reload(), http.StatusConflict},
	}
	for _, c := range cases {
		if got := echo.StatusCode(c.err); got != c.code {
			t.Errorf("%s: %v has status %d, want %d", c.name, c.err, got, c.code)
		}
	}
}

// A reload drops live changes: a pending timed revert must not bring back
// a mix of the previous file afterwards.
func TestReloadCancelsTimedReverts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vaurien.hcl")
	src := `
route "web" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:9"
}`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Admin.Listen = ""
	a := app.New(f, zerolog.Nop())
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	m, err := app.BuildMix([]config.Behavior{{Name: "blackout", Percent: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetMix("web", m, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := a.MixOverride("web"); !ok {
		t.Fatal("no override recorded for a timed change")
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := a.MixOverride("web"); ok {
		t.Fatal("the override survived the reload")
	}
	// A change made after the reload must stay.
	after, _ := chaos.NewMix([]chaos.Entry{{Name: "delay", Percent: 100, Behavior: mustBehavior(t, "delay")}})
	r, _ := a.Route("web")
	r.SetMix(after)
	tm := time.NewTimer(1300 * time.Millisecond)
	<-tm.C
	if got := r.Mix().String(); got != "100:delay" {
		t.Fatalf("after the reload the old revert came back: mix %s", got)
	}
}

func mustBehavior(t *testing.T, name string) chaos.Behavior {
	t.Helper()
	b, _, err := chaos.NewBehavior(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestShutdownLogsTheDrainWithItsUnit: the shutdown event says how long
// it drains as a duration with its unit (drain=10s), not a bare number.
func TestShutdownLogsTheDrainWithItsUnit(t *testing.T) {
	f := parse(t, `
drain = "10s"
admin {
  listen = "127.0.0.1:0"
}
route "web" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:9"
}`)
	var buf bytes.Buffer
	log, err := logging.New(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := app.New(f, log).Run(ctx); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.Contains(line, `"message":"shutting down"`) {
			found = true
			if !strings.Contains(line, `"drain":"10s"`) {
				t.Errorf("shutdown event %s, want \"drain\":\"10s\"", line)
			}
		}
	}
	if !found {
		t.Errorf("no shutdown event in\n%s", buf.String())
	}
}
