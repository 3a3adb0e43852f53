package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/config"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(testenv.WithSkipSummary(m)) }

// backend is a real HTTP server that names itself in every answer.
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(s.Close)
	return s
}

// env is a running vaurien with its admin API, two HTTP backends and
// routes "web" (the default, to backend A, empty mix) and "side" (to B,
// a configured mix).
type env struct {
	app   *app.App
	admin string // base URL
	web   string // web's listen address
	a, b  *httptest.Server
	file  string
	token string
	log   *testenv.LogBuffer
	http  *http.Client
}

const envConfig = `
admin {
  listen        = "127.0.0.1:0"
  token         = %q
  allowed_hosts = ["chaos.example"]
}
route "web" {
  listen  = "127.0.0.1:0"
  backend = %q
  default = true
}
route "side" {
  listen  = "127.0.0.1:0"
  backend = %q
  behavior "delay" {
    percent = 10
    sleep   = "1ms"
  }
}
experiment "web" {
  probe "web" {
    tcp {
      address = "127.0.0.1:1"
    }
  }
  step "slow" {
    duration = "30s"
    route "web" {
      behavior "delay" {
        percent = 100
      }
    }
  }
}
`

func startEnv(t *testing.T, token string) *env {
	t.Helper()
	e := &env{a: backend(t, "A"), b: backend(t, "B"), token: token, log: &testenv.LogBuffer{}}
	e.file = filepath.Join(t.TempDir(), "vaurien.hcl")
	e.writeFile(t, fmt.Sprintf(envConfig, token, e.a.Listener.Addr().String(), e.b.Listener.Addr().String()))
	f, err := config.Load(e.file)
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(e.log).Level(zerolog.DebugLevel)
	e.app = app.New(f, log)
	if err := e.app.Start(); err != nil {
		t.Fatal(err)
	}
	e.http = &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		e.app.Shutdown(ctx)
		e.http.CloseIdleConnections()
		if token != "" && strings.Contains(e.log.String(), token) {
			t.Errorf("the token appears in the log:\n%s", e.log.String())
		}
	})
	e.admin = "http://" + e.app.AdminAddr()
	e.web = e.routeAddr(t, "web")
	return e
}

func (e *env) writeFile(t *testing.T, content string) {
	t.Helper()
	if err := os.WriteFile(e.file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *env) routeAddr(t *testing.T, name string) string {
	t.Helper()
	r, err := e.app.Route(name)
	if err != nil {
		t.Fatal(err)
	}
	return r.Addr()
}

// call sends one API request and returns the status and body. With a
// token set in the env, the token goes along unless noToken.
func (e *env) call(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	return e.callAuth(t, method, path, body, e.token)
}

func (e *env) callAuth(t *testing.T, method, path, body, token string) (int, string) {
	t.Helper()
	code, got, err := e.do(method, path, body, token)
	if err != nil {
		t.Fatal(err)
	}
	return code, got
}

// do is callAuth for goroutines other than the test's: it never stops the
// test itself.
func (e *env) do(method, path, body, token string) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.admin+path, rd)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// mustCall is call that fails the test on a status other than want and
// decodes the answer into out (when not nil).
func (e *env) mustCall(t *testing.T, method, path, body string, want int, out any) {
	t.Helper()
	code, got := e.call(t, method, path, body)
	if code != want {
		t.Fatalf("%s %s %s: status %d, want %d: %s", method, path, body, code, want, got)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(got), out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, got, err)
		}
	}
}

func (e *env) route(t *testing.T, name string) api.Route {
	t.Helper()
	var r api.Route
	e.mustCall(t, http.MethodGet, "/routes/"+name, "", http.StatusOK, &r)
	return r
}

// fetch makes one HTTP request through a route on a new connection and
// returns the backend's answer.
func fetch(addr string) (string, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), nil
}

// mustFetch fetches through a route and wants the answer of backend want.
func mustFetch(t *testing.T, addr, want string) {
	t.Helper()
	got, err := fetch(addr)
	if err != nil || got != want {
		t.Fatalf("through %s: got %q, %v; want %q", addr, got, err, want)
	}
}

// eventually polls cond until it holds or d has passed.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		tm := time.NewTimer(10 * time.Millisecond)
		<-tm.C
	}
}
