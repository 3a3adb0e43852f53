package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/client"
	"github.com/vaurien-go/vaurien/pkg/vaurientest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs a proxy with route "web" (default, to backend A, a configured
// delay mix) and route "side" (to backend B).
func start(t *testing.T, opts ...vaurientest.Option) (*vaurientest.Proxy, string, string) {
	t.Helper()
	a, b := testenv.NamedHTTP(t, "A"), testenv.NamedHTTP(t, "B")
	p := vaurientest.Start(t, fmt.Sprintf(`
route "web" {
  listen  = "127.0.0.1:0"
  backend = %q
  default = true
  behavior "delay" {
    percent = 10
    sleep   = "1ms"
  }
}
route "side" {
  listen  = "127.0.0.1:0"
  backend = %q
}`, a, b), opts...)
	return p, a, b
}

func TestWithBehaviorRestoresAfterSuccessErrorAndPanic(t *testing.T) {
	p, _, _ := start(t)
	ctx := t.Context()
	c := p.Client
	web := p.Addr("web")
	before, err := c.Route(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		after, err := c.Route(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(after.Mix, before.Mix) {
			t.Fatalf("%s: mix %+v, want the previous %+v", when, after.Mix, before.Mix)
		}
		if got, err := testenv.Fetch(web); err != nil || got != "A" {
			t.Fatalf("%s: traffic %q %v", when, got, err)
		}
	}
	inside := func() error {
		if _, err := testenv.Fetch(web); err == nil {
			return errors.New("blackout let a request through")
		}
		return nil
	}

	if err := c.WithBehavior(ctx, "web", client.Behavior{Name: "blackout"}, inside); err != nil {
		t.Fatal(err)
	}
	check("after success")

	boom := errors.New("boom")
	err = c.WithBehavior(ctx, "web", client.Mix{{Name: "blackout", Percent: 100}}, func() error {
		if err := inside(); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WithBehavior returned %v, want fn's error", err)
	}
	check("after an error")

	func() {
		defer func() {
			if r := recover(); r != "panic in fn" {
				t.Fatalf("recovered %v, want fn's panic to go on", r)
			}
		}()
		c.WithBehavior(ctx, "web", client.Behavior{Name: "blackout", Percent: 100}, func() error {
			if err := inside(); err != nil {
				t.Error(err)
			}
			panic("panic in fn")
		})
	}()
	check("after a panic")

	// The caller's context ending inside fn does not stop the restore.
	cctx, cancel := context.WithCancel(ctx)
	c.WithBehavior(cctx, "web", client.Behavior{Name: "blackout"}, func() error {
		cancel()
		return nil
	})
	check("after the context ended")
}

func TestEveryCall(t *testing.T) {
	p, a, b := start(t)
	ctx := t.Context()
	c := p.Client
	web, side := p.Addr("web"), p.Addr("side")

	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Version(ctx); err != nil || v.Version == "" {
		t.Fatalf("Version: %+v %v", v, err)
	}
	if doc, err := c.OpenAPI(ctx); err != nil || !strings.HasPrefix(string(doc), "openapi: 3") {
		t.Fatalf("OpenAPI: %.30s %v", doc, err)
	}
	var apiErr *client.Error
	if _, err := c.Metrics(ctx); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("Metrics without a handler: %v", err)
	}

	names, err := c.Behaviors(ctx)
	if err != nil || !slices.Contains(names, "delay") || !slices.IsSorted(names) {
		t.Fatalf("Behaviors: %v %v", names, err)
	}
	if got, err := c.Behavior(ctx); err != nil || got != "10:delay" {
		t.Fatalf("Behavior: %q %v", got, err)
	}
	if err := c.SetBehavior(ctx, "delay", map[string]any{"sleep": 0.2}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if got, err := testenv.Fetch(web); err != nil || got != "A" || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("after SetBehavior delay 0.2: %q %v in %s", got, err, time.Since(start))
	}
	if got, err := c.Behavior(ctx); err != nil || got != "delay" {
		t.Fatalf("Behavior: %q %v", got, err)
	}
	if got, err := c.Backend(ctx); err != nil || got != a {
		t.Fatalf("Backend: %q %v", got, err)
	}
	if err := c.SetBackend(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := testenv.Fetch(web); got != "B" {
		t.Fatalf("after SetBackend: %q", got)
	}

	routes, err := c.Routes(ctx)
	if err != nil || len(routes) != 2 || routes[0].Name != "side" || routes[1].Listen != web {
		t.Fatalf("Routes: %+v %v", routes, err)
	}
	r, err := c.SetMix(ctx, "side", client.Behavior{Name: "blackout"}, 300*time.Millisecond)
	if err != nil || r.RevertsAt == nil || len(r.Mix) != 1 || r.Mix[0].Percent != 100 {
		t.Fatalf("SetMix: %+v %v", r, err)
	}
	if _, err := testenv.Fetch(side); err == nil {
		t.Fatal("blackout let a request through")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, err := testenv.Fetch(side); err == nil && got == "B" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the timed mix never reverted")
		}
		tm := time.NewTimer(10 * time.Millisecond)
		<-tm.C
	}

	if r, err = c.SetRouteBackend(ctx, "side", a); err != nil || r.Backend != a {
		t.Fatalf("SetRouteBackend: %+v %v", r, err)
	}
	if got, _ := testenv.Fetch(side); got != "A" {
		t.Fatalf("after SetRouteBackend: %q", got)
	}
	if r, err = c.DisableRoute(ctx, "side"); err != nil || r.Enabled {
		t.Fatalf("DisableRoute: %+v %v", r, err)
	}
	if _, err := testenv.Fetch(side); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a disabled route: %v", err)
	}
	if r, err = c.EnableRoute(ctx, "side"); err != nil || !r.Enabled {
		t.Fatalf("EnableRoute: %+v %v", r, err)
	}
	if r, err = c.ResetRoute(ctx, "side"); err != nil || r.Backend != b {
		t.Fatalf("ResetRoute: %+v %v", r, err)
	}
	if routes, err = c.ResetAll(ctx); err != nil || len(routes) != 2 || routes[1].Backend != a || len(routes[1].Mix) != 1 {
		t.Fatalf("ResetAll: %+v %v", routes, err)
	}
	if got, _ := testenv.Fetch(web); got != "A" {
		t.Fatalf("after ResetAll: %q", got)
	}

	// vaurientest runs without a file: the server says so.
	if _, err := c.Reload(ctx); !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict || !strings.Contains(apiErr.Message, "not from a file") {
		t.Fatalf("Reload: %v", err)
	}
}

func TestErrorsCarryTheServersMessage(t *testing.T) {
	p, _, _ := start(t)
	ctx := t.Context()
	cases := []struct {
		name   string
		call   func() error
		status int
		want   string
	}{
		{"unknown behavior", func() error {
			_, err := p.Client.SetMix(ctx, "web", client.Behavior{Name: "delya"}, 0)
			return err
		}, 400, `did you mean "delay"`},
		{"wrong option type", func() error {
			return p.Client.SetBehavior(ctx, "delay", map[string]any{"sleep": []int{1}})
		}, 400, `option "sleep": want a duration`},
		{"over 100", func() error {
			_, err := p.Client.SetMix(ctx, "web", client.Mix{{Name: "delay", Percent: 70}, {Name: "error", Percent: 70}}, 0)
			return err
		}, 400, "add up to 140"},
		{"unknown route", func() error { _, err := p.Client.Route(ctx, "nope"); return err }, 404, `no route named "nope"`},
		{"bad backend", func() error { _, err := p.Client.SetRouteBackend(ctx, "web", "x"); return err }, 400, "host:port"},
	}
	for _, c := range cases {
		err := c.call()
		var apiErr *client.Error
		if !errors.As(err, &apiErr) || apiErr.Status != c.status || !strings.Contains(apiErr.Message, c.want) {
			t.Errorf("%s: %v; want an *client.Error %d with %q", c.name, err, c.status, c.want)
		}
	}
	// WithBehavior does not run fn when the behavior is refused.
	ran := false
	err := p.Client.WithBehavior(ctx, "web", client.Behavior{Name: "nope"}, func() error { ran = true; return nil })
	if err == nil || ran {
		t.Fatalf("WithBehavior with an unknown behavior: %v, ran=%v", err, ran)
	}
}

func TestToken(t *testing.T) {
	p, _, _ := start(t, vaurientest.WithToken("t0k"))
	ctx := t.Context()
	anon := client.New(p.AdminAddr())
	defer anon.Close()
	if _, err := anon.Routes(ctx); err != nil {
		t.Fatalf("a read without the token: %v", err)
	}
	var apiErr *client.Error
	if _, err := anon.ResetAll(ctx); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Fatalf("a change without the token: %v", err)
	}
	if _, err := p.Client.ResetAll(ctx); err != nil {
		t.Fatalf("the proxy's own client has the token: %v", err)
	}
}

// The client must stay usable without the server's dependencies.
func TestClientDoesNotDependOnTheServer(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/vaurien-go/vaurien/pkg/client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		// pkg/chaos (the match spec type) imports only the standard library.
		if strings.HasPrefix(dep, "github.com/") && !strings.HasPrefix(dep, "github.com/vaurien-go/vaurien/pkg/admin/api") &&
			dep != "github.com/vaurien-go/vaurien/pkg/client" && dep != "github.com/vaurien-go/vaurien/pkg/chaos" {
			t.Errorf("pkg/client depends on %s", dep)
		}
	}
}
