package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/client"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/vaurientest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(testenv.WithSkipSummary(m)) }

// ctl runs "vaurien ctl args..." and returns its exit code and output.
func ctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"ctl"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func mustCtl(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := ctl(t, args...)
	if code != 0 {
		t.Fatalf("vaurien ctl %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func TestCtlDrivesARunningVaurien(t *testing.T) {
	a, b := testenv.NamedHTTP(t, "A"), testenv.NamedHTTP(t, "B")
	p := vaurientest.Start(t, fmt.Sprintf(`
route "web" {
  listen  = "127.0.0.1:0"
  backend = %q
  behavior "delay" {
    percent = 10
    sleep   = "1ms"
  }
}
route "side" {
  listen  = "127.0.0.1:0"
  backend = %q
}`, a, b))
	admin := "--admin=" + p.AdminAddr()
	web := p.Addr("web")

	out := mustCtl(t, admin, "routes")
	for _, want := range []string{"ROUTE", "LISTEN", "MIX", "web", web, "10:delay", "side", "100:dummy", "enabled"} {
		if !strings.Contains(out, want) {
			t.Errorf("ctl routes lacks %q:\n%s", want, out)
		}
	}
	out = mustCtl(t, "show", "web", admin)
	for _, want := range []string{"listen", web, "backend", a, "configured mix  10:delay", "BEHAVIOR", "sleep=1ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("ctl show lacks %q:\n%s", want, out)
		}
	}

	out = mustCtl(t, admin, "set", "web", "blackout", "--for", "30s")
	if !strings.Contains(out, "100:blackout (reverts in") {
		t.Errorf("ctl set output:\n%s", out)
	}
	if _, err := testenv.Fetch(web); err == nil {
		t.Fatal("ctl set blackout: traffic still goes through")
	}

	mustCtl(t, admin, "reset", "web")
	if got, err := testenv.Fetch(web); err != nil || got != "A" {
		t.Fatalf("after ctl reset: %q %v", got, err)
	}

	out = mustCtl(t, admin, "--json", "set", "web", "delay", "--opt", "sleep=0.25", "--opt", "before=false", "--percent", "100")
	var r client.Route
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("ctl --json set: %v\n%s", err, out)
	}
	if len(r.Mix) != 1 || r.Mix[0].Options["sleep"] != "250ms" || r.Mix[0].Options["before"] != false {
		t.Fatalf("ctl set with options: %+v", r.Mix)
	}
	start := time.Now()
	if got, err := testenv.Fetch(web); err != nil || got != "A" || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("after set delay sleep=0.25: %q %v in %s", got, err, time.Since(start))
	}

	out = mustCtl(t, admin, "--json", "set", "web", "20:delay,5:error", "--opt", "delay.sleep=2ms", "--opt", "error.inject=true")
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Mix) != 2 || r.Mix[0].Options["sleep"] != "2ms" || r.Mix[1].Options["inject"] != true {
		t.Fatalf("ctl set with a mix: %v %+v", err, r.Mix)
	}

	mustCtl(t, admin, "set", "web", "dummy")
	mustCtl(t, admin, "backend", "web", b)
	if got, err := testenv.Fetch(web); err != nil || got != "B" {
		t.Fatalf("after ctl backend: %q", got)
	}
	mustCtl(t, admin, "reset", "web")

	out = mustCtl(t, admin, "disable", "web")
	if !strings.Contains(out, "disabled") {
		t.Errorf("ctl disable output:\n%s", out)
	}
	if _, err := testenv.Fetch(web); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("after ctl disable: %v, want connection refused", err)
	}
	mustCtl(t, admin, "enable", "web")
	if got, err := testenv.Fetch(web); err != nil || got != "A" {
		t.Fatalf("after ctl enable: %q %v", got, err)
	}

	mustCtl(t, admin, "set", "side", "blackout")
	out = mustCtl(t, admin, "--json", "reset")
	var all struct{ Routes []client.Route }
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all.Routes) != 2 {
		t.Fatalf("ctl --json reset: %v\n%s", err, out)
	}
	if got, err := testenv.Fetch(p.Addr("side")); err != nil || got != "B" {
		t.Fatalf("after ctl reset of every route: %q %v", got, err)
	}

	// The server's refusals reach the user with their message, exit 1.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "web", "delya"}, `did you mean "delay"`},
		{[]string{"set", "web", "delay", "--opt", "sleep=soon"}, `option "sleep"`},
		{[]string{"set", "web", "delay", "--percent", "150"}, "outside 0..100"},
		{[]string{"show", "nope"}, `no route named "nope"`},
		{[]string{"backend", "web", "nowhere"}, "host:port"},
		{[]string{"reload"}, "not from a file"},
	} {
		code, _, errs := ctl(t, append([]string{admin}, c.args...)...)
		if code != 1 || !strings.Contains(errs, c.want) {
			t.Errorf("ctl %v: exit %d, stderr %q; want 1 and %q", c.args, code, errs, c.want)
		}
	}
	if r, _ := p.Client.Route(t.Context(), "web"); len(r.Mix) != 1 || r.Mix[0].Name != "delay" {
		t.Fatalf("refused calls changed the mix: %+v", r.Mix)
	}
}

func TestCtlUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"show"},
		{"set", "web"},
		{"routes", "--percent", "5"},
		{"set", "web", "delay", "--for", "-3s"},
		{"set", "web", "20:delay,5:error", "--opt", "sleep=1"},
		{"--bogus", "routes"},
	} {
		if code, _, errs := ctl(t, args...); code != 2 || errs == "" {
			t.Errorf("ctl %v: exit %d, stderr %q; want 2 and a message", args, code, errs)
		}
	}
	if code, out, _ := ctl(t, "help"); code != 0 || !strings.Contains(out, "disable ROUTE") {
		t.Errorf("ctl help: %d\n%s", code, out)
	}
}

func TestCtlTokenAndAddressFromTheEnvironment(t *testing.T) {
	p := vaurientest.Start(t, `
route "web" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:9"
}`, vaurientest.WithToken("env-t0ken"))
	t.Setenv("VAURIEN_ADMIN", p.AdminAddr())
	t.Setenv("VAURIEN_ADMIN_TOKEN", "")
	if out := mustCtl(t, "routes"); !strings.Contains(out, "web") {
		t.Fatalf("reads need no token:\n%s", out)
	}
	code, _, errs := ctl(t, "disable", "web")
	if code != 1 || !strings.Contains(errs, "401") || strings.Contains(errs, "env-t0ken") {
		t.Fatalf("a change without the token: exit %d: %s", code, errs)
	}
	mustCtl(t, "--token", "env-t0ken", "disable", "web")
	t.Setenv("VAURIEN_ADMIN_TOKEN", "env-t0ken")
	mustCtl(t, "enable", "web")
}

func TestCtlReload(t *testing.T) {
	a, b := testenv.NamedHTTP(t, "A"), testenv.NamedHTTP(t, "B")
	content := `
admin {
  listen = "127.0.0.1:0"
}
route "web" {
  listen  = "127.0.0.1:0"
  backend = %q
}`
	path := writeFile(t, "vaurien.hcl", fmt.Sprintf(content, a))
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ap := app.New(f, zerolog.Nop())
	if err := ap.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Shutdown(context.Background()) })
	r, _ := ap.Route("web")
	if err := writeFileAt(path, fmt.Sprintf(content, b)); err != nil {
		t.Fatal(err)
	}
	out := mustCtl(t, "--admin", ap.AdminAddr(), "reload")
	if !strings.Contains(out, b) {
		t.Fatalf("ctl reload output lacks the new backend:\n%s", out)
	}
	if got, err := testenv.Fetch(r.Addr()); err != nil || got != "B" {
		t.Fatalf("after ctl reload: %q %v", got, err)
	}
}

func TestHealthcheck(t *testing.T) {
	port := testenv.FreePort(t)
	path := writeFile(t, "vaurien.hcl", fmt.Sprintf(`
admin {
  listen = "0.0.0.0:%d"
}
route "web" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:9"
}`, port))
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ap := app.New(f, zerolog.Nop())
	if err := ap.Start(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAURIEN_ADMIN", "")
	hc := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"healthcheck"}, args...), &out, &errb)
		return code, out.String() + errb.String()
	}
	// The file's 0.0.0.0 means this machine.
	if code, out := hc("-c", path); code != 0 {
		t.Fatalf("healthcheck -c: %d %s", code, out)
	}
	t.Setenv("VAURIEN_CONFIG", path)
	if code, out := hc(); code != 0 {
		t.Fatalf("healthcheck with $VAURIEN_CONFIG: %d %s", code, out)
	}
	if code, out := hc("--admin", fmt.Sprintf("127.0.0.1:%d", port)); code != 0 {
		t.Fatalf("healthcheck --admin: %d %s", code, out)
	}
	t.Setenv("VAURIEN_ADMIN", fmt.Sprintf(":%d", port))
	if code, out := hc(); code != 0 {
		t.Fatalf("healthcheck with $VAURIEN_ADMIN: %d %s", code, out)
	}
	ap.Shutdown(context.Background())
	if code, out := hc(); code != 1 || !strings.Contains(out, "unhealthy") {
		t.Fatalf("healthcheck of a stopped vaurien: %d %s", code, out)
	}
	t.Setenv("VAURIEN_ADMIN", "")
	if code, out := hc("-c", writeFile(t, "bad.hcl", "route {")); code != 1 {
		t.Fatalf("healthcheck with a broken file: %d %s", code, out)
	}
}

// Without --http the original's flags start no admin API; with it they do.
func TestOriginalFlagsStartTheAdminOnlyWithHTTP(t *testing.T) {
	backend := testenv.NamedHTTP(t, "A")
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	adminPort := testenv.FreePort(t)
	startCLI(t, listen, "--proxy", listen, "--backend", backend, "--log-level", "warn",
		"--http", "--http-host", "127.0.0.1", "--http-port", fmt.Sprint(adminPort))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", adminPort)
	if err := testenv.WaitListening(adminAddr, 5*time.Second); err != nil {
		t.Fatalf("--http did not start the admin API: %v", err)
	}
	c := client.New(adminAddr)
	defer c.Close()
	if got, err := c.Behavior(t.Context()); err != nil || got != "dummy" {
		t.Fatalf("GET /behavior: %q %v", got, err)
	}

	// Without --http the configuration leaves the admin API off (an empty
	// address), so the original's flags never take the admin port.
	l := newLegacyFlags(io.Discard)
	if err := l.fs.Parse([]string{"--proxy", listen}); err != nil {
		t.Fatal(err)
	}
	f, err := l.file()
	if err != nil {
		t.Fatal(err)
	}
	if f.Admin.Listen != "" {
		t.Fatalf("without --http the admin API listens on %q", f.Admin.Listen)
	}
}

func writeFileAt(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

func TestDialAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:8080":     "127.0.0.1:8080",
		":8080":            "127.0.0.1:8080",
		"[::]:8080":        "[::1]:8080",
		"10.0.0.5:9":       "10.0.0.5:9",
		"vaurien:8080":     "vaurien:8080",
		"http://x:1/admin": "http://x:1/admin",
	} {
		if got := dialAddr(in); got != want {
			t.Errorf("dialAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOptionValueFollowsTheDeclaration(t *testing.T) {
	cases := []struct {
		behavior, key, text string
		want                any
	}{
		{"delay", "sleep", "0.5", "500ms"},
		{"delay", "sleep", "2s", "2s"},
		{"delay", "before", "false", false},
		{"error", "warmup", "3", int64(3)},
		{"error", "status", "502,503", []int64{502, 503}},
		{"error", "message", "42", "42"},   // a string option stays a string
		{"delay", "slep", "1", float64(1)}, // unknown: a JSON literal, for the server to refuse
		{"custom", "mode", "fast", "fast"}, // a behavior this binary does not know
		{"delay", "sleep", "soon", "soon"}, // the server says what it wants
		{"custom", "flag", "true", true},
	}
	for _, c := range cases {
		got := optionValue(c.behavior, c.key, c.text)
		if fmt.Sprint(got) != fmt.Sprint(c.want) || fmt.Sprintf("%T", got) != fmt.Sprintf("%T", c.want) {
			t.Errorf("optionValue(%s, %s, %q) = %#v, want %#v", c.behavior, c.key, c.text, got, c.want)
		}
	}
}
