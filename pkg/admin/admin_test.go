package admin_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// The original Vaurien's API, used the way its documentation shows, with
// the real curl.
func TestOriginalAPIWithCurl(t *testing.T) {
	curl := testenv.LookPath(t, "curl")
	e := startEnv(t, "")

	var b api.CurrentBehavior
	e.mustCall(t, http.MethodGet, "/behavior", "", http.StatusOK, &b)
	if b.Behavior != "dummy" {
		t.Fatalf("GET /behavior on an empty mix = %q, want dummy", b.Behavior)
	}
	mustFetch(t, e.web, "A")

	out, err := exec.Command(curl, "-s", "-XPUT", "-d", `{"sleep": 0.3, "name": "delay"}`,
		"-H", "Content-Type: application/json", e.admin+"/behavior").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != `{"status":"ok"}` {
		t.Fatalf("curl PUT /behavior: %v: %s", err, out)
	}
	for range 3 {
		start := time.Now()
		mustFetch(t, e.web, "A")
		if took := time.Since(start); took < 300*time.Millisecond || took > 3*time.Second {
			t.Fatalf("a request took %s after PUT /behavior delay sleep=0.3, want about 300ms", took)
		}
	}
	e.mustCall(t, http.MethodGet, "/behavior", "", http.StatusOK, &b)
	if b.Behavior != "delay" {
		t.Fatalf("GET /behavior = %q, want delay", b.Behavior)
	}
	out, err = exec.Command(curl, "-s", e.admin+"/behavior").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != `{"behavior":"delay"}` {
		t.Fatalf("curl GET /behavior: %v: %s", err, out)
	}

	var names api.BehaviorNames
	e.mustCall(t, http.MethodGet, "/behaviors", "", http.StatusOK, &names)
	for _, want := range []string{"abort", "blackout", "delay", "dummy", "error", "hang", "transient"} {
		if !slices.Contains(names.Behaviors, want) {
			t.Errorf("GET /behaviors lacks %q: %v", want, names.Behaviors)
		}
	}
	if !slices.IsSorted(names.Behaviors) {
		t.Errorf("GET /behaviors is not sorted: %v", names.Behaviors)
	}

	var be api.CurrentBackend
	e.mustCall(t, http.MethodGet, "/backend", "", http.StatusOK, &be)
	if be.Backend != e.a.Listener.Addr().String() {
		t.Fatalf("GET /backend = %q, want %q", be.Backend, e.a.Listener.Addr())
	}
	e.mustCall(t, http.MethodPut, "/behavior", `{"name": "dummy"}`, http.StatusOK, nil)
	e.mustCall(t, http.MethodPut, "/backend", fmt.Sprintf(`{"backend": %q}`, e.b.Listener.Addr()), http.StatusOK, nil)
	mustFetch(t, e.web, "B")
	e.mustCall(t, http.MethodGet, "/backend", "", http.StatusOK, &be)
	if be.Backend != e.b.Listener.Addr().String() {
		t.Fatalf("GET /backend after PUT = %q", be.Backend)
	}
}

func TestGetBehaviorRendersMixes(t *testing.T) {
	e := startEnv(t, "")
	cases := []struct{ mix, want string }{
		{`[]`, "dummy"},
		{`[{"name": "error", "percent": 100}]`, "error"},
		{`[{"name": "error", "percent": 50}]`, "50:error"},
		{`[{"name": "delay", "percent": 20}, {"name": "error", "percent": 5}]`, "20:delay,5:error"},
	}
	for _, c := range cases {
		e.mustCall(t, http.MethodPut, "/routes/web/mix", `{"behaviors": `+c.mix+`}`, http.StatusOK, nil)
		var b api.CurrentBehavior
		e.mustCall(t, http.MethodGet, "/behavior", "", http.StatusOK, &b)
		if b.Behavior != c.want {
			t.Errorf("mix %s: GET /behavior = %q, want %q", c.mix, b.Behavior, c.want)
		}
	}
}

// Each per-route endpoint, with its effect seen on real traffic.
func TestRouteEndpointsChangeTheTraffic(t *testing.T) {
	e := startEnv(t, "")

	var all api.Routes
	e.mustCall(t, http.MethodGet, "/routes", "", http.StatusOK, &all)
	if len(all.Routes) != 2 || all.Routes[0].Name != "side" || all.Routes[1].Name != "web" {
		t.Fatalf("GET /routes: %+v", all.Routes)
	}
	side := all.Routes[0]
	if side.Default || side.Protocol != "tcp" || !side.Enabled || side.Backend != e.b.Listener.Addr().String() ||
		len(side.Mix) != 1 || side.Mix[0].Name != "delay" || side.Mix[0].Percent != 10 || side.Mix[0].Options["sleep"] != "1ms" ||
		len(side.ConfiguredMix) != 1 || side.Listen != e.routeAddr(t, "side") {
		t.Fatalf("GET /routes shows side as %+v", side)
	}

	mustFetch(t, e.web, "A")
	var web api.Route
	// The proxy counts a connection's bytes as it winds down, a moment
	// after the client has its answer.
	eventually(t, 5*time.Second, "the counters do not show the request", func() bool {
		web = e.route(t, "web")
		return web.Stats.Accepted == 1 && web.Stats.BytesToClient > 0 && web.Stats.Active == 0
	})
	if !web.Default {
		t.Fatalf("GET /routes/web: %+v", web)
	}

	// error on a tcp route replaces the answer with random bytes.
	e.mustCall(t, http.MethodPut, "/routes/web/mix", `{"behaviors": [{"name": "error", "percent": 100}]}`, http.StatusOK, &web)
	if len(web.Mix) != 1 || web.Mix[0].Name != "error" || web.RevertsAt != nil {
		t.Fatalf("PUT mix answered %+v", web)
	}
	for range 3 {
		if got, err := fetch(e.web); err == nil {
			t.Fatalf("with error at 100%% the client got a clean answer %q", got)
		}
	}
	if st := e.route(t, "web").Stats; st.Faults < 3 {
		t.Fatalf("faults = %d after three errors", st.Faults)
	}

	e.mustCall(t, http.MethodPost, "/routes/web/reset", "", http.StatusOK, &web)
	if len(web.Mix) != 0 {
		t.Fatalf("reset left the mix %+v", web.Mix)
	}
	mustFetch(t, e.web, "A")

	e.mustCall(t, http.MethodPut, "/routes/web/backend", fmt.Sprintf(`{"backend": %q}`, e.b.Listener.Addr()), http.StatusOK, &web)
	if web.Backend != e.b.Listener.Addr().String() {
		t.Fatalf("PUT backend answered %+v", web)
	}
	mustFetch(t, e.web, "B")

	e.mustCall(t, http.MethodPost, "/routes/web/disable", "", http.StatusOK, &web)
	if web.Enabled {
		t.Fatal("disable answered enabled")
	}
	if _, err := fetch(e.web); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("a disabled route: %v, want connection refused", err)
	}
	e.mustCall(t, http.MethodPost, "/routes/web/enable", "", http.StatusOK, &web)
	mustFetch(t, e.web, "B")

	// Reset of every route brings back the backend and the mixes.
	e.mustCall(t, http.MethodPut, "/routes/side/mix", `{"behaviors": [{"name": "blackout", "percent": 100}]}`, http.StatusOK, nil)
	if _, err := fetch(e.routeAddr(t, "side")); err == nil {
		t.Fatal("blackout let a request through")
	}
	e.mustCall(t, http.MethodPost, "/routes/web/disable", "", http.StatusOK, nil)
	e.mustCall(t, http.MethodPost, "/reset", "", http.StatusOK, &all)
	for _, r := range all.Routes {
		if !r.Enabled || len(r.Mix) != len(r.ConfiguredMix) {
			t.Fatalf("after POST /reset: %+v", r)
		}
	}
	mustFetch(t, e.web, "A")
	mustFetch(t, e.routeAddr(t, "side"), "B")
}

func TestTimedMixRevertsByItself(t *testing.T) {
	e := startEnv(t, "")
	var web api.Route
	start := time.Now()
	e.mustCall(t, http.MethodPut, "/routes/web/mix", `{"behaviors": [{"name": "blackout", "percent": 100}], "duration": "400ms"}`, http.StatusOK, &web)
	if web.RevertsAt == nil || web.RevertsAt.Sub(start) < 300*time.Millisecond || web.RevertsAt.Sub(start) > 2*time.Second {
		t.Fatalf("reverts_at = %v, want about 400ms from now", web.RevertsAt)
	}
	if _, err := fetch(e.web); err == nil && time.Since(start) < 400*time.Millisecond {
		t.Fatal("blackout let a request through")
	}
	eventually(t, 5*time.Second, "the timed mix did not revert", func() bool {
		_, err := fetch(e.web)
		return err == nil
	})
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Fatalf("reverted after %s, before its 400ms", took)
	}
	if r := e.route(t, "web"); len(r.Mix) != 0 || r.RevertsAt != nil {
		t.Fatalf("after the revert: %+v", r)
	}

	// A newer change cancels the pending revert of an older one.
	e.mustCall(t, http.MethodPut, "/routes/web/mix", `{"behaviors": [{"name": "blackout", "percent": 100}], "duration": 0.2}`, http.StatusOK, nil)
	e.mustCall(t, http.MethodPut, "/routes/web/mix", `{"behaviors": [{"name": "delay", "percent": 100, "options": {"sleep": "1ms"}}]}`, http.StatusOK, nil)
	deadline := time.NewTimer(500 * time.Millisecond)
	<-deadline.C
	if r := e.route(t, "web"); len(r.Mix) != 1 || r.Mix[0].Name != "delay" {
		t.Fatalf("an older timed change reverted a newer one: %+v", r.Mix)
	}
}

// TestTimedMixThen: a timed change says what follows it, itself timed,
// and the route goes through each in turn.
func TestTimedMixThen(t *testing.T) {
	e := startEnv(t, "")
	var web api.Route
	e.mustCall(t, http.MethodPut, "/routes/web/mix", `{"behaviors": [{"name": "blackout", "percent": 100}], "duration": "300ms", "seed": 5,
		"then": {"behaviors": [{"name": "delay", "percent": 100, "options": {"sleep": "1ms"}}], "duration": "300ms", "then": {"behaviors": []}}}`, http.StatusOK, &web)
	if to := web.RevertsTo; web.RevertsAt == nil || to == nil || to.Behaviors[0].Name != "delay" || time.Duration(to.Duration) != 300*time.Millisecond || to.Then == nil || len(to.Then.Behaviors) != 0 {
		t.Fatalf("a timed change with a then shows reverts_at %v, reverts_to %+v", web.RevertsAt, web.RevertsTo)
	}
	eventually(t, 5*time.Second, "the then did not come in force", func() bool {
		r := e.route(t, "web")
		return len(r.Mix) == 1 && r.Mix[0].Name == "delay" && r.RevertsAt != nil && r.RevertsTo != nil && len(r.RevertsTo.Behaviors) == 0
	})
	eventually(t, 5*time.Second, "the then's own then did not come in force", func() bool {
		r := e.route(t, "web")
		return len(r.Mix) == 0 && r.RevertsAt == nil
	})
	mustFetch(t, e.web, "A")

	for body, want := range map[string]string{
		`{"behaviors": [], "then": {"behaviors": []}}`:                                      "follows a timed change",
		`{"behaviors": [], "duration": "1s", "then": {"behaviors": [], "duration": "-1s"}}`: "then: duration -1s is negative",
		`{"behaviors": [], "duration": "1s", "then": {}}`:                                   "then: the \\\"behaviors\\\" list is required",
	} {
		if code, out := e.call(t, http.MethodPut, "/routes/web/mix", body); code != http.StatusBadRequest || !strings.Contains(out, want) {
			t.Errorf("PUT %s: %d %s, want 400 saying %q", body, code, out, want)
		}
	}
}

func TestReloadFollowsTheFile(t *testing.T) {
	e := startEnv(t, "")
	e.mustCall(t, http.MethodPut, "/routes/web/mix", `{"behaviors": [{"name": "blackout", "percent": 100}]}`, http.StatusOK, nil)
	e.writeFile(t, fmt.Sprintf(envConfig, "", e.b.Listener.Addr().String(), e.b.Listener.Addr().String()))
	var all api.Routes
	e.mustCall(t, http.MethodPost, "/reload", "", http.StatusOK, &all)
	mustFetch(t, e.web, "B")

	// A broken file is refused with its diagnostics; nothing changes.
	e.writeFile(t, "route \"web\" {\n  listen = \n}\n")
	code, body := e.call(t, http.MethodPost, "/reload", "")
	if code != http.StatusUnprocessableEntity || !strings.Contains(body, "vaurien.hcl:2") {
		t.Fatalf("reload of a broken file: %d %s", code, body)
	}
	mustFetch(t, e.web, "B")
}

// Every bad input gets its 4xx, a message saying what is wrong, and leaves
// the route as it was.
func TestBadInputChangesNothing(t *testing.T) {
	e := startEnv(t, "")
	e.mustCall(t, http.MethodPut, "/routes/web/mix", `{"behaviors": [{"name": "delay", "percent": 30, "options": {"sleep": "5ms"}}]}`, http.StatusOK, nil)
	before := e.route(t, "web")
	big := `{"behaviors": [], "pad": "` + strings.Repeat("x", 70<<10) + `"}`
	cases := []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"bad JSON", "PUT", "/routes/web/mix", `{"behaviors": [`, 400, "invalid JSON"},
		{"not JSON", "PUT", "/routes/web/mix", `behaviors`, 400, "invalid JSON"},
		{"empty body", "PUT", "/routes/web/mix", ``, 400, "empty"},
		{"trailing data", "PUT", "/routes/web/mix", `{"behaviors": []} {}`, 400, "after the JSON"},
		{"unknown key", "PUT", "/routes/web/mix", `{"behaviours": []}`, 400, `unknown field "behaviours"`},
		{"no behaviors key", "PUT", "/routes/web/mix", `{}`, 400, `"behaviors" list is required`},
		{"behaviors not a list", "PUT", "/routes/web/mix", `{"behaviors": 3}`, 400, "must be a list"},
		{"unknown route", "PUT", "/routes/nope/mix", `{"behaviors": []}`, 404, `no route named "nope"`},
		{"unknown route show", "GET", "/routes/nope", ``, 404, `no route named "nope"`},
		{"unknown behavior", "PUT", "/routes/web/mix", `{"behaviors": [{"name": "delya", "percent": 5}]}`, 400, "valid behaviors: abort, "},
		{"wrong option type", "PUT", "/routes/web/mix", `{"behaviors": [{"name": "delay", "percent": 5, "options": {"sleep": true}}]}`, 400, `option "sleep": want a duration`},
		{"unknown option", "PUT", "/routes/web/mix", `{"behaviors": [{"name": "delay", "percent": 5, "options": {"slep": 1}}]}`, 400, `unknown option "slep"`},
		{"missing percent", "PUT", "/routes/web/mix", `{"behaviors": [{"name": "delay"}]}`, 400, `"percent" key is required`},
		{"missing name", "PUT", "/routes/web/mix", `{"behaviors": [{"percent": 5}]}`, 400, `"name" key is required`},
		{"percent over 100", "PUT", "/routes/web/mix", `{"behaviors": [{"name": "delay", "percent": 101}]}`, 400, "outside 0..100"},
		{"negative percent", "PUT", "/routes/web/mix", `{"behaviors": [{"name": "delay", "percent": -1}]}`, 400, "outside 0..100"},
		{"sum over 100", "PUT", "/routes/web/mix", `{"behaviors": [{"name": "delay", "percent": 60}, {"name": "error", "percent": 50}]}`, 400, "add up to 110"},
		{"negative duration", "PUT", "/routes/web/mix", `{"behaviors": [], "duration": "-1s"}`, 400, "negative"},
		{"bad duration", "PUT", "/routes/web/mix", `{"behaviors": [], "duration": "soon"}`, 400, "invalid duration"},
		{"bad backend port", "PUT", "/routes/web/backend", `{"backend": "127.0.0.1:99999"}`, 400, "want host:port"},
		{"no backend", "PUT", "/routes/web/backend", `{}`, 400, "want host:port"},
		{"unknown route reset", "POST", "/routes/nope/reset", ``, 404, "no route"},
		{"unknown route disable", "POST", "/routes/nope/disable", ``, 404, "no route"},
		{"body over the limit", "PUT", "/routes/web/mix", big, 413, "larger than 65536 bytes"},
		{"duplicate key", "PUT", "/routes/web/mix", `{"behaviors": [], "behaviors": [{"name": "error", "percent": 100}]}`, 400, `the key "behaviors" appears twice`},
		{"duplicate nested key", "PUT", "/routes/web/mix", `{"behaviors": [{"name": "delay", "percent": 5, "percent": 100}]}`, 400, `the key "percent" appears twice`},
		{"duplicate option", "PUT", "/routes/web/mix", `{"behaviors": [{"name": "delay", "percent": 5, "options": {"sleep": "1ms", "sleep": "1h"}}]}`, 400, `the key "sleep" appears twice`},
		{"duplicate backend", "PUT", "/routes/web/backend", `{"backend": "127.0.0.1:1", "backend": "127.0.0.1:2"}`, 400, `the key "backend" appears twice`},
		{"unknown endpoint", "GET", "/nope", ``, 404, "no endpoint GET /nope"},
		{"wrong method", "DELETE", "/routes/web", ``, 405, "not allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.call(t, c.method, c.path, c.body)
			var msg api.Error
			if err := json.Unmarshal([]byte(body), &msg); err != nil || msg.Error == "" {
				t.Fatalf("answer is not {\"error\": ...}: %s", body)
			}
			if code != c.code || !strings.Contains(msg.Error, c.want) {
				t.Fatalf("%s %s %.60s: %d %q; want %d and %q", c.method, c.path, c.body, code, msg.Error, c.code, c.want)
			}
			after := e.route(t, "web")
			after.Stats, before.Stats = api.Stats{}, api.Stats{}
			if fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("a rejected call changed the route:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
}

// The body limit holds for bodies without a Content-Length too.
func TestChunkedBodyOverTheLimit(t *testing.T) {
	e := startEnv(t, "")
	c, err := net.Dial("tcp", strings.TrimPrefix(e.admin, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT /routes/web/mix HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := strings.Repeat(" ", 8<<10)
	go func() {
		for range 10 {
			if _, err := fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
				return
			}
		}
		fmt.Fprint(c, "0\r\n\r\n")
	}()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a chunked body over the limit: %d, want 413", resp.StatusCode)
	}
}

func TestHealthReadinessVersionOpenAPI(t *testing.T) {
	e := startEnv(t, "")
	var st api.Status
	e.mustCall(t, http.MethodGet, "/healthz", "", http.StatusOK, &st)
	e.mustCall(t, http.MethodGet, "/readyz", "", http.StatusOK, &st)
	if st.Status != "ready" {
		t.Fatalf("readyz: %+v", st)
	}
	var v api.Version
	e.mustCall(t, http.MethodGet, "/version", "", http.StatusOK, &v)
	if v.Version == "" || !strings.HasPrefix(v.Go, "go") {
		t.Fatalf("version: %+v", v)
	}
	code, body := e.call(t, http.MethodGet, "/openapi.yaml", "")
	if code != http.StatusOK || !strings.HasPrefix(body, "openapi: 3.") {
		t.Fatalf("openapi.yaml: %d %.40s", code, body)
	}
	code, body = e.call(t, http.MethodGet, "/metrics", "")
	if code != http.StatusNotFound || !strings.Contains(body, "metrics") {
		t.Fatalf("/metrics without a handler: %d %s", code, body)
	}
}

// A percent of -0 is 0: the answer does not echo "-0".
func TestNegativeZeroPercentReadsAsZero(t *testing.T) {
	e := startEnv(t, "")
	code, body := e.call(t, http.MethodPut, "/routes/web/mix", `{"behaviors": [{"name": "error", "percent": -0}]}`)
	if code != http.StatusOK || strings.Contains(body, "-0") || !strings.Contains(body, `"percent":0`) {
		t.Fatalf("PUT mix with percent -0: %d %s; want 200 with percent 0", code, body)
	}
}
