package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/pkg/admin"
	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/config"
)

// bodies gives each mutating endpoint a valid body, so that a 401 cannot
// come from anything but the missing token.
func validBody(e *env, method, path string) string {
	switch {
	case strings.HasSuffix(path, "/mix"):
		return `{"behaviors": [{"name": "blackout", "percent": 100}]}`
	case path == "/behavior":
		return `{"name": "blackout"}`
	case strings.HasSuffix(path, "backend"):
		return fmt.Sprintf(`{"backend": %q}`, e.b.Listener.Addr())
	}
	return ""
}

// Every registered endpoint that is not a read needs the token: the test
// walks the router, so an endpoint added later cannot skip the check.
func TestTokenGuardsEveryMutatingEndpoint(t *testing.T) {
	const token = "tok-3f9a1c"
	e := startEnv(t, token)
	srv := e.app.Admin()
	mutating := 0
	for _, ep := range srv.Endpoints() {
		file := "console.js"
		if strings.Contains(ep.Path, "/report/") {
			file = "report.html"
		}
		path := strings.NewReplacer(":name", "web", ":file", file).Replace(ep.Path)
		switch ep.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			if ep.Path == "/metrics" {
				continue // 404 without a handler, checked elsewhere
			}
			if ep.Path == "/events" {
				// A stream that does not end: its first event is the answer.
				if ev := readEvent(t, e.admin+path, nil); ev.Routes == nil {
					t.Errorf("read %s %s without a token: no routes in %+v", ep.Method, path, ev)
				}
				continue
			}
			want := http.StatusOK
			if strings.Contains(ep.Path, "/report/") {
				want = http.StatusNotFound // no run has written a report yet
			}
			if code, body := e.callAuth(t, ep.Method, path, "", ""); code != want {
				t.Errorf("read %s %s without a token: %d %s; reads stay open", ep.Method, path, code, body)
			}
			continue
		}
		mutating++
		before := e.route(t, "web")
		for _, tok := range []string{"", "wrong", token + "x", strings.ToUpper(token)} {
			code, body := e.callAuth(t, ep.Method, path, validBody(e, ep.Method, ep.Path), tok)
			if code != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
				t.Errorf("%s %s with token %q: %d %s, want 401", ep.Method, path, tok, code, body)
			}
		}
		after := e.route(t, "web")
		after.Stats, before.Stats = api.Stats{}, api.Stats{}
		if fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("%s %s without the token changed the route", ep.Method, path)
		}
		mustFetch(t, e.web, "A")
	}
	if mutating < 9 {
		t.Fatalf("found %d mutating endpoints; the walk is broken", mutating)
	}

	// Methods no endpoint has are refused before routing.
	for _, m := range []string{http.MethodDelete, http.MethodPatch, "PURGE"} {
		if code, _ := e.callAuth(t, m, "/routes/web", "", ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d, want 401", m, code)
		}
	}

	// With the token, the same calls go through ("bearer" in any case).
	req, _ := http.NewRequest(http.MethodPut, e.admin+"/routes/web/mix", strings.NewReader(`{"behaviors": [{"name": "blackout", "percent": 100}]}`))
	req.Header.Set("Authorization", "bearer "+token)
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with the token: %d", resp.StatusCode)
	}
	if _, err := fetch(e.web); err == nil {
		t.Fatal("the authorized change did not apply")
	}
	code, body := e.callAuth(t, http.MethodPost, "/routes/web/reset", "", "wrong")
	if code != http.StatusUnauthorized || strings.Contains(body, token) {
		t.Fatalf("401 answer: %d %s", code, body)
	}
}

// A client that sends its headers one byte a second neither starves the
// admin API nor holds its connection past the read timeout.
func TestSlowlorisIsCutAndDoesNotStarve(t *testing.T) {
	e := startEnv(t, "")
	srv := admin.New(e.app, admin.Config{
		Listen: "127.0.0.1:0", Log: zerolog.Nop(),
		ReadHeaderTimeout: 3 * time.Second, ReadTimeout: 3 * time.Second,
	})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })

	slow, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	start := time.Now()
	cut := make(chan time.Duration, 1)
	go func() {
		// The server closes the connection when the timeout strikes: a
		// read returns then.
		slow.SetReadDeadline(time.Now().Add(20 * time.Second))
		io.Copy(io.Discard, slow)
		cut <- time.Since(start)
	}()
	stop := make(chan struct{})
	var trickled sync.WaitGroup
	trickled.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for _, b := range []byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaa") {
			if _, err := slow.Write([]byte{b}); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	})
	defer func() { close(stop); trickled.Wait() }()

	// Starved requests would wait for the slowloris to be cut, 3s in.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	for range 5 {
		t0 := time.Now()
		resp, err := c.Get("http://" + srv.Addr() + "/healthz")
		if err != nil {
			t.Fatalf("a request while a slowloris is connected: %v", err)
		}
		resp.Body.Close()
		if took := time.Since(t0); took > 1500*time.Millisecond {
			t.Fatalf("a request took %s while a slowloris is connected", took)
		}
	}
	select {
	case d := <-cut:
		if d < 2900*time.Millisecond || d > 8*time.Second {
			t.Fatalf("the slow connection was cut after %s; the read timeout is 3s", d)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the slow connection was never cut")
	}
}

// adminAndWebRoute is a config with an admin server and one route, web,
// whose backend port nothing listens on.
func adminAndWebRoute(t *testing.T) *config.File {
	t.Helper()
	f, err := config.Parse([]byte(`
admin {
  listen = "127.0.0.1:0"
}
route "web" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:9"
}`), "inline.hcl")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestReadyOnlyOnceRoutesListen(t *testing.T) {
	f := adminAndWebRoute(t)
	f.Admin.Listen = "" // the test runs its own admin server on the app
	a := app.New(f, zerolog.Nop())
	srv := admin.New(a, admin.Config{Listen: "127.0.0.1:0", Log: zerolog.Nop()})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	get := func() int {
		resp, err := http.Get("http://" + srv.Addr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if code := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz before Start: %d, want 503", code)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("readyz after Start: %d, want 200", code)
	}
	a.Shutdown(context.Background())
	if code := get(); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz during shutdown: %d, want 503", code)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestMetricsHandlerIsServed(t *testing.T) {
	f := adminAndWebRoute(t)
	a := app.New(f, zerolog.Nop())
	a.SetMetricsHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "vaurien_up 1\n")
	}))
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	resp, err := http.Get("http://" + a.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp.StatusCode != http.StatusOK || string(b) != "vaurien_up 1\n" {
		t.Fatalf("/metrics: %d %q", resp.StatusCode, b)
	}
}

// Writers swap whole mixes while clients send traffic and readers check
// every mix they see is one of the written ones: never a blend.
func TestConcurrentWritesWhileTrafficFlows(t *testing.T) {
	e := startEnv(t, "")
	mixes := []string{
		`[{"name": "delay", "percent": 30, "options": {"sleep": "1ms"}}, {"name": "delay", "percent": 20, "options": {"sleep": "2ms"}}]`,
		`[{"name": "slicer", "percent": 50}]`,
		`[]`,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	var writes, reads, requests atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i++ {
				body := `{"behaviors": ` + mixes[i%len(mixes)] + `}`
				if i%5 == 0 {
					body = `{"behaviors": ` + mixes[i%len(mixes)] + `, "duration": "5ms"}`
				}
				if code, resp, err := e.do(http.MethodPut, "/routes/web/mix", body, ""); err != nil || code != http.StatusOK {
					t.Errorf("PUT mix: %d %s %v", code, resp, err)
					return
				}
				writes.Add(1)
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				code, body, err := e.do(http.MethodGet, "/routes/web", "", "")
				var r api.Route
				if err == nil && code == http.StatusOK {
					err = json.Unmarshal([]byte(body), &r)
				}
				if err != nil || code != http.StatusOK {
					t.Errorf("GET route: %d %s %v", code, body, err)
					return
				}
				var sig []string
				for _, b := range r.Mix {
					sig = append(sig, fmt.Sprintf("%s/%v/%v", b.Name, b.Percent, b.Options["sleep"]))
				}
				switch strings.Join(sig, " ") {
				case "delay/30/1ms delay/20/2ms", "slicer/50/<nil>", "":
				default:
					t.Errorf("a torn mix: %v", sig)
					return
				}
				reads.Add(1)
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if got, err := fetch(e.web); err != nil || got != "A" {
					t.Errorf("traffic during mix changes: %q %v", got, err)
					return
				}
				requests.Add(1)
			}
		})
	}
	wg.Wait()
	if writes.Load() < 10 || reads.Load() < 10 || requests.Load() < 10 {
		t.Fatalf("too little happened: %d writes, %d reads, %d requests", writes.Load(), reads.Load(), requests.Load())
	}
}

// The OpenAPI document and the router agree: every endpoint is
// documented, and every documented operation exists.
func TestOpenAPIDocumentsEveryEndpoint(t *testing.T) {
	documented := map[string]bool{}
	path := ""
	pathLine := regexp.MustCompile(`^  (/[^:]*):\s*$`)
	opLine := regexp.MustCompile(`^    (get|put|post|delete|patch):\s*$`)
	inPaths := false
	sc := bufio.NewScanner(strings.NewReader(string(admin.OpenAPI)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && len(line) > 0 && line[0] != ' ':
			inPaths = false
		case inPaths && pathLine.MatchString(line):
			path = pathLine.FindStringSubmatch(line)[1]
		case inPaths && opLine.MatchString(line):
			documented[strings.ToUpper(opLine.FindStringSubmatch(line)[1])+" "+path] = true
		}
	}
	srv := admin.New(nil, admin.Config{Log: zerolog.Nop()})
	var registered []string
	for _, ep := range srv.Endpoints() {
		p := regexp.MustCompile(`:(\w+)`).ReplaceAllString(ep.Path, "{$1}")
		registered = append(registered, ep.Method+" "+p)
	}
	for _, r := range registered {
		if !documented[r] {
			t.Errorf("%s is not in openapi.yaml", r)
		}
	}
	for d := range documented {
		if !slices.Contains(registered, d) {
			t.Errorf("openapi.yaml documents %s, which the server does not have", d)
		}
	}
	if len(documented) < 19 {
		t.Fatalf("read only %d operations from openapi.yaml", len(documented))
	}
}
