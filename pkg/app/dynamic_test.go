package app_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/config"
)

// echoServer answers every connection with what it gets.
func echoServer(t *testing.T) string {
	return testenv.Echo(t).Addr
}

func echoes(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hi"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("through %s: %q %v", addr, buf, err)
	}
}

func dynRoute(name, backend string) config.Route {
	return config.Route{Name: name, Listen: "127.0.0.1:0", Backend: backend, Protocol: "tcp",
		ProtocolOptions: chaos.Values{}, ConnectTimeout: time.Second}
}

// startDyn runs an app from an HCL file on disk (so that it reloads).
func startDyn(t *testing.T, hcl string, before func(*app.App)) (*app.App, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v.hcl")
	if err := os.WriteFile(path, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Admin.Listen = ""
	a := app.New(f, zerolog.Nop())
	if before != nil {
		before(a)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	return a, path
}

func fileRoute(name, backend string) string {
	return fmt.Sprintf("route %q {\n  listen  = \"127.0.0.1:0\"\n  backend = %q\n}\n", name, backend)
}

func TestAddRouteBeforeAndAfterStart(t *testing.T) {
	up := echoServer(t)
	a, _ := startDyn(t, fileRoute("file", up), func(a *app.App) {
		if err := a.AddRoute(dynRoute("early", up)); err != nil {
			t.Fatal(err)
		}
	})
	early, err := a.Route("early")
	if err != nil || !a.IsDynamic("early") || a.IsDynamic("file") {
		t.Fatalf("early route: %v, dynamic %v/%v", err, a.IsDynamic("early"), a.IsDynamic("file"))
	}
	echoes(t, early.Addr())

	// A live change of another route survives adding a route.
	delay, _ := app.BuildMix([]config.Behavior{{Name: "delay", Percent: 50, Options: chaos.Values{"sleep": time.Millisecond}}})
	if err := a.SetMix("file", delay, 0); err != nil {
		t.Fatal(err)
	}
	file, _ := a.Route("file")
	fileAddr := file.Addr()
	if err := a.AddRoute(dynRoute("late", up)); err != nil {
		t.Fatal(err)
	}
	late, _ := a.Route("late")
	echoes(t, late.Addr())
	if file, _ = a.Route("file"); file.Mix().String() != "50:delay" || file.Addr() != fileAddr {
		t.Errorf("the file's route changed: mix %s, addr %s", file.Mix(), file.Addr())
	}
	for _, name := range []string{"file", "late"} {
		err := a.AddRoute(dynRoute(name, up))
		var sc interface{ StatusCode() int }
		if err == nil || !asStatus(err, &sc) || sc.StatusCode() != 409 {
			t.Errorf("adding %q again: %v", name, err)
		}
	}
}

func asStatus(err error, sc *interface{ StatusCode() int }) bool {
	s, ok := err.(interface{ StatusCode() int })
	*sc = s
	return ok
}

func TestDynamicRoutesSurviveReloads(t *testing.T) {
	up := echoServer(t)
	a, path := startDyn(t, fileRoute("file", up), nil)
	if err := a.AddRoute(dynRoute("dyn", up)); err != nil {
		t.Fatal(err)
	}
	delay, _ := app.BuildMix([]config.Behavior{{Name: "delay", Percent: 30, Options: chaos.Values{"sleep": time.Millisecond}}})
	if err := a.SetMix("dyn", delay, 0); err != nil {
		t.Fatal(err)
	}
	dyn, _ := a.Route("dyn")
	addr := dyn.Addr()
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if dyn, _ = a.Route("dyn"); dyn == nil || dyn.Addr() != addr || dyn.Mix().String() != "30:delay" {
		t.Fatalf("after a reload: %v", dyn)
	}
	echoes(t, addr)

	// The file comes to declare a route of the same name: it wins.
	if err := os.WriteFile(path, []byte(fileRoute("file", up)+fileRoute("dyn", up)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	if a.IsDynamic("dyn") {
		t.Error("the file's route of the same name did not win")
	}
	if dyn, _ = a.Route("dyn"); dyn == nil || dyn.Mix().String() != "100:dummy" {
		t.Errorf("the route is not the file's: %v", dyn)
	}
}

func TestRemoveRouteClosesItsConnections(t *testing.T) {
	up := echoServer(t)
	a, _ := startDyn(t, fileRoute("file", up), nil)
	if err := a.AddRoute(dynRoute("dyn", up)); err != nil {
		t.Fatal(err)
	}
	dyn, _ := a.Route("dyn")
	c, err := net.Dial("tcp", dyn.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.ReadFull(c, make([]byte, 1))
	if err := a.RemoveRoute("dyn"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("a live connection of the removed route is still open")
	}
	if _, err := a.Route("dyn"); err == nil || a.IsDynamic("dyn") {
		t.Error("the route is still there")
	}
	tests := []struct {
		name   string
		status int
	}{{"file", 409}, {"nope", 404}}
	for _, tt := range tests {
		var sc interface{ StatusCode() int }
		if err := a.RemoveRoute(tt.name); !asStatus(err, &sc) || sc.StatusCode() != tt.status {
			t.Errorf("remove %q: %v", tt.name, err)
		}
	}
}

func TestUpdateRouteKeepsMixAndState(t *testing.T) {
	up, other := echoServer(t), echoServer(t)
	a, _ := startDyn(t, fileRoute("file", up), nil)
	if err := a.AddRoute(dynRoute("dyn", up)); err != nil {
		t.Fatal(err)
	}
	delay, _ := app.BuildMix([]config.Behavior{{Name: "delay", Percent: 30, Options: chaos.Values{"sleep": time.Millisecond}}})
	a.SetMix("dyn", delay, 0)
	dyn, _ := a.Route("dyn")
	addr := dyn.Addr()

	// A new backend: same address, same mix.
	r := dynRoute("dyn", other)
	r.Listen = addr
	if err := a.UpdateRoute(r, true); err != nil {
		t.Fatal(err)
	}
	dyn, _ = a.Route("dyn")
	if dyn.Addr() != addr || dyn.Config().Backend != other || dyn.Mix().String() != "30:delay" || !dyn.Enabled() {
		t.Fatalf("after a backend change: %s %s %s %v", dyn.Addr(), dyn.Config().Backend, dyn.Mix(), dyn.Enabled())
	}
	echoes(t, addr)

	// A new address while disabled: it stays disabled.
	a.SetEnabled("dyn", false)
	if err := a.UpdateRoute(dynRoute("dyn", other), false); err != nil {
		t.Fatal(err)
	}
	dyn, _ = a.Route("dyn")
	if dyn.Addr() == addr || dyn.Enabled() || dyn.Mix().String() != "30:delay" {
		t.Fatalf("after a listen change: %s enabled %v mix %s", dyn.Addr(), dyn.Enabled(), dyn.Mix())
	}
	// Reset: enabled, no behavior, the backend it was given.
	if err := a.Reset("dyn"); err != nil {
		t.Fatal(err)
	}
	dyn, _ = a.Route("dyn")
	if !dyn.Enabled() || dyn.Mix().String() != "100:dummy" || dyn.Config().Backend != other {
		t.Errorf("after reset: enabled %v mix %s backend %s", dyn.Enabled(), dyn.Mix(), dyn.Config().Backend)
	}
	echoes(t, dyn.Addr())
	var sc interface{ StatusCode() int }
	if err := a.UpdateRoute(dynRoute("file", up), true); !asStatus(err, &sc) || sc.StatusCode() != 409 {
		t.Errorf("updating a route of the file: %v", err)
	}
}
