package admin_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// Other web pages cannot drive the API through a visitor's browser: a
// cross-site or cross-origin call that changes something is refused, and
// so is any browser request by a name this server does not answer to (DNS
// rebinding). Programs, which send no Origin, keep working by any name.
func TestBrowsersFromOtherSitesAreRefused(t *testing.T) {
	e := startEnv(t, "")
	addr := strings.TrimPrefix(e.admin, "http://")
	_, port, _ := strings.Cut(addr, ":")
	cases := []struct {
		name          string
		method, path  string
		host          string
		origin, site  string
		want          int
		wantInMessage string
	}{
		{"curl", http.MethodPost, "/routes/web/disable", "", "", "", http.StatusOK, ""},
		{"curl by a service name", http.MethodPost, "/routes/web/enable", "vaurien:8080", "", "", http.StatusOK, ""},
		{"curl read by a service name", http.MethodGet, "/routes", "vaurien:8080", "", "", http.StatusOK, ""},
		{"the console", http.MethodPost, "/routes/web/disable", "", "http://" + addr, "same-origin", http.StatusOK, ""},
		{"the console by localhost", http.MethodPost, "/routes/web/enable", "localhost:" + port, "http://localhost:" + port, "same-origin", http.StatusOK, ""},
		{"the console by an allowed name", http.MethodPost, "/routes/web/disable", "chaos.example:" + port, "http://chaos.example:" + port, "same-origin", http.StatusOK, ""},
		{"a typed address", http.MethodGet, "/ui/", "", "", "none", http.StatusOK, ""},
		{"cross-site POST", http.MethodPost, "/reset", "", "http://evil.example", "cross-site", http.StatusForbidden, "another site"},
		{"cross-site POST without Sec-Fetch", http.MethodPost, "/reset", "", "http://evil.example", "", http.StatusForbidden, "another origin"},
		{"another port of localhost", http.MethodPost, "/routes/web/enable", "", "http://127.0.0.1:1", "same-site", http.StatusForbidden, "another site"},
		{"opaque origin", http.MethodPost, "/reset", "", "null", "", http.StatusForbidden, "another origin"},
		{"rebound name, read", http.MethodGet, "/routes", "evil.example:" + port, "", "same-origin", http.StatusForbidden, "admin.allowed_hosts"},
		{"rebound name, write", http.MethodPost, "/reset", "evil.example:" + port, "http://evil.example:" + port, "same-origin", http.StatusForbidden, "admin.allowed_hosts"},
		{"cross-site read", http.MethodGet, "/routes", "", "http://evil.example", "cross-site", http.StatusOK, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, e.admin+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.host != "" {
				req.Host = c.host
			}
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
			}
			if c.site != "" {
				req.Header.Set("Sec-Fetch-Site", c.site)
			}
			resp, err := e.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.want || !strings.Contains(string(b), c.wantInMessage) {
				t.Fatalf("%d %s; want %d with %q", resp.StatusCode, b, c.want, c.wantInMessage)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("Content-Security-Policy: %q", csp)
			}
		})
	}
	// Nothing refused changed anything: the last accepted call disabled web.
	if r := e.route(t, "web"); r.Enabled {
		t.Fatalf("web is enabled: a refused call went through")
	}
}

// The console's page is served at /ui/, / leads there, and the page runs
// under a policy that allows no inline script or style.
func TestConsoleIsServed(t *testing.T) {
	e := startEnv(t, "")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(e.admin + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for path, typ := range map[string]string{"/ui/": "text/html", "/ui/console.js": "javascript", "/ui/console.css": "text/css"} {
		resp, err := e.http.Get(e.admin + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), typ) || len(b) == 0 {
			t.Errorf("GET %s: %d %s, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
		}
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("GET %s: no strict policy: %q", path, resp.Header.Get("Content-Security-Policy"))
		}
	}
	for _, path := range []string{"/ui/nope.js", "/ui/..%2fconsole.go", "/ui/."} {
		if code, body := e.call(t, http.MethodGet, path, ""); code != http.StatusNotFound {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
	}
}

// The catalog gives every behavior with each option's kind, default, range
// and doc, as declared: the forms of the console are built from it.
func TestCatalogDeclaresEveryOption(t *testing.T) {
	e := startEnv(t, "")
	var cat api.Catalog
	e.mustCall(t, http.MethodGet, "/catalog", "", http.StatusOK, &cat)
	byName := map[string]api.BehaviorDecl{}
	for _, b := range cat.Behaviors {
		byName[b.Name] = b
	}
	delay, ok := byName["delay"]
	if !ok || len(cat.Behaviors) < 10 {
		t.Fatalf("catalog: %d behaviors, delay %v", len(cat.Behaviors), ok)
	}
	var sleep *api.OptionDecl
	for i := range delay.Options {
		if delay.Options[i].Name == "sleep" {
			sleep = &delay.Options[i]
		}
	}
	if sleep == nil || sleep.Kind != "duration" || sleep.Doc == "" || sleep.Min == nil {
		t.Fatalf("delay's sleep: %+v", sleep)
	}
	if _, isString := sleep.Default.(string); !isString {
		t.Fatalf("a duration's default is sent as the API takes it, a string: %#v", sleep.Default)
	}
	// The range reads as the API's error on a value out of it.
	code, body := e.call(t, http.MethodPut, "/routes/web/mix", `{"behaviors": [{"name": "delay", "percent": 1, "options": {"sleep": "-1s"}}]}`)
	if sleep.Range == "" || code != http.StatusBadRequest || !strings.Contains(body, "want "+sleep.Range) {
		t.Fatalf("sleep's range %q; the API's answer to a value out of it: %d %s", sleep.Range, code, body)
	}
}

// An error about one field of a mix names it, so that a form shows the
// message next to that field.
func TestMixErrorsNameTheField(t *testing.T) {
	e := startEnv(t, "")
	cases := []struct{ body, field, words string }{
		{`{"behaviors": [{"name": "error", "percent": 5}, {"name": "delay", "percent": 10, "options": {"sleep": "soon"}}]}`, "behaviors[1].options.sleep", `option "sleep"`},
		{`{"behaviors": [{"name": "delay", "percent": 10, "options": {"slep": "1s"}}]}`, "behaviors[0].options.slep", `did you mean "sleep"`},
		{`{"behaviors": [{"name": "delay", "percent": 150}]}`, "behaviors[0].percent", "outside 0..100"},
		{`{"behaviors": [{"name": "delay"}]}`, "behaviors[0].percent", "required"},
		{`{"behaviors": [{"name": "dealy", "percent": 1}]}`, "behaviors[0].name", "unknown behavior"},
		{`{"behaviors": [], "duration": "-1s"}`, "duration", "negative"},
	}
	for _, c := range cases {
		code, body := e.call(t, http.MethodPut, "/routes/web/mix", c.body)
		var ans api.Error
		if err := json.Unmarshal([]byte(body), &ans); err != nil || code != http.StatusBadRequest || ans.Field != c.field || !strings.Contains(ans.Error, c.words) {
			t.Errorf("%s: %d %s; want 400 on field %q saying %q", c.body, code, body, c.field, c.words)
		}
	}
	code, body := e.call(t, http.MethodPut, "/routes/web/backend", `{"backend": "nowhere"}`)
	if code != http.StatusBadRequest || !strings.Contains(body, `"field":"backend"`) {
		t.Errorf("bad backend: %d %s", code, body)
	}
}

// An error behavior's code names an error of the route's protocol: the API
// takes the protocol's presets and codes, and refuses, on the code's field,
// one the protocol does not have, as a config file refuses it at the
// attribute; the original's PUT /behavior checks it against the default
// route's protocol. On a route without database errors the code is left to
// the protocol, as before.
func TestMixErrorCodeIsTheRoutesProtocols(t *testing.T) {
	p := startApp(t, `
admin {
  listen = "127.0.0.1:0"
}
route "pg" {
  listen   = "127.0.0.1:0"
  backend  = "127.0.0.1:1"
  protocol = "postgres"
  default  = true
}
route "my" {
  listen   = "127.0.0.1:0"
  backend  = "127.0.0.1:1"
  protocol = "mysql"
}
route "raw" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:1"
}
`)
	e := &env{app: p, admin: "http://" + p.AdminAddr(), http: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}}
	t.Cleanup(e.http.CloseIdleConnections)
	mix := func(behavior, code string) string {
		return fmt.Sprintf(`{"behaviors": [{"name": %q, "percent": 5, "options": {"code": %q}}]}`, behavior, code)
	}
	for _, c := range []struct{ route, body string }{
		{"pg", mix("error", "deadlock")},
		{"pg", mix("transient", "40P01")},
		{"pg", mix("error", "")},
		{"my", mix("error", "lock_wait_timeout")},
		{"my", mix("transient", "1213")},
		{"raw", mix("error", "40P0")},
	} {
		if code, body := e.call(t, http.MethodPut, "/routes/"+c.route+"/mix", c.body); code != http.StatusOK {
			t.Errorf("%s %s: %d %s; want 200", c.route, c.body, code, body)
		}
	}
	for _, c := range []struct{ route, body, field, words string }{
		{"pg", mix("error", "40P0"), "behaviors[0].options.code",
			`error: option "code": on a postgres route, error code "40P0" is neither a preset (admin_shutdown, deadlock, `},
		{"pg", `{"behaviors": [], "duration": "1s", "then": ` + mix("transient", "dead_lock") + `}`, "then.behaviors[0].options.code",
			`transient: option "code": on a postgres route, error code "dead_lock" is neither a preset`},
		{"my", mix("error", "40P01"), "behaviors[0].options.code",
			`error: option "code": on a mysql route, error code "40P01" is neither a preset (deadlock, `},
	} {
		code, body := e.call(t, http.MethodPut, "/routes/"+c.route+"/mix", c.body)
		var ans api.Error
		if err := json.Unmarshal([]byte(body), &ans); err != nil || code != http.StatusBadRequest || ans.Field != c.field || !strings.Contains(ans.Error, c.words) {
			t.Errorf("%s %s: %d %s; want 400 on field %q saying %q", c.route, c.body, code, body, c.field, c.words)
		} else {
			t.Logf("%s: %s", c.route, body)
		}
	}
	if code, body := e.call(t, http.MethodPut, "/behavior", `{"name": "error", "code": "deadlock"}`); code != http.StatusOK {
		t.Errorf("PUT /behavior with a postgres preset: %d %s", code, body)
	}
	code, body := e.call(t, http.MethodPut, "/behavior", `{"name": "error", "code": "40P0"}`)
	var got api.OriginalErrors
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != http.StatusBadRequest || len(got.Errors) != 1 ||
		got.Errors[0].Name != "code" || !strings.Contains(got.Errors[0].Description, `on a postgres route, error code "40P0" is neither`) {
		t.Errorf("PUT /behavior with a bad code: %d %s; want 400 on name \"code\"", code, body)
	} else {
		t.Logf("PUT /behavior: %s", body)
	}
}
