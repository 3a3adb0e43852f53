package toxiproxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/config"
)

// startWith runs vaurien from an HCL file whose toxiproxy block may set a
// token; listen replaces the block's address. It returns the API's URL and
// the log.
func startWith(t *testing.T, hcl, listen string) (string, *testenv.LogBuffer) {
	t.Helper()
	f, err := config.Parse([]byte(hcl), "test.hcl")
	if err != nil {
		t.Fatal(err)
	}
	f.Toxiproxy.Listen, f.Admin.Listen, f.Drain = listen, "", time.Second
	logs := &testenv.LogBuffer{}
	a := app.New(f, zerolog.New(logs))
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	return "http://" + a.ToxiproxyAddr(), logs
}

func request(t *testing.T, method, url, body, auth string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// With a token, every call that changes something needs it: without it,
// or with another, the answer is Toxiproxy's 401 error object and nothing
// changes. Reads stay open. The token comes from the block or, when the
// block sets none, from TOXIPROXY_AUTH_TOKEN.
func TestTokenGuardsMutatingCalls(t *testing.T) {
	up := echo(t)
	for _, setup := range []struct {
		name, block, env string
	}{
		{"token attribute", `toxiproxy {
  token = "s3cret"
}`, "ignored-when-the-block-sets-one"},
		{"TOXIPROXY_AUTH_TOKEN", "toxiproxy {}", "s3cret"},
	} {
		t.Run(setup.name, func(t *testing.T) {
			t.Setenv("TOXIPROXY_AUTH_TOKEN", setup.env)
			url, _ := startWith(t, setup.block, "127.0.0.1:0")
			if code, body, _ := request(t, "POST", url+"/proxies", fmt.Sprintf(`{"name":"p","listen":"127.0.0.1:0","upstream":%q}`, up), "Bearer s3cret"); code != 201 {
				t.Fatalf("create with the token: %d %s", code, body)
			}
			_, before, _ := request(t, "GET", url+"/proxies", "", "")
			calls := []struct{ method, path, body string }{
				{"POST", "/proxies", fmt.Sprintf(`{"name":"q","listen":"127.0.0.1:0","upstream":%q}`, up)},
				{"POST", "/proxies/p", `{"enabled":false}`},
				{"PATCH", "/proxies/p", `{"enabled":false}`},
				{"DELETE", "/proxies/p", ""},
				{"POST", "/proxies/p/toxics", `{"type":"latency","attributes":{"latency":100}}`},
				{"POST", "/populate", fmt.Sprintf(`[{"name":"q","listen":"127.0.0.1:0","upstream":%q}]`, up)},
				{"POST", "/reset", ""},
			}
			for _, auth := range []string{"", "Bearer wrong", "s3cret", "Basic s3cret", "Bearer  s3cret2"} {
				for _, c := range calls {
					code, body, h := request(t, c.method, url+c.path, c.body, auth)
					var e struct {
						Error  string `json:"error"`
						Status int    `json:"status"`
					}
					if code != 401 || json.Unmarshal([]byte(body), &e) != nil || e.Status != 401 || !strings.Contains(e.Error, "Authorization: Bearer") || h.Get("WWW-Authenticate") == "" {
						t.Errorf("%s %s with %q: %d %s; want 401 and {\"error\": ..., \"status\": 401}", c.method, c.path, auth, code, body)
					}
				}
			}
			if _, after, _ := request(t, "GET", url+"/proxies", "", ""); after != before {
				t.Errorf("refused calls changed the proxies:\nbefore %s\nafter  %s", before, after)
			}
			for _, path := range []string{"/version", "/proxies", "/proxies/p", "/proxies/p/toxics"} {
				if code, body, _ := request(t, "GET", url+path, "", ""); code != 200 {
					t.Errorf("GET %s without a token: %d %s; reads stay open", path, code, body)
				}
			}
			if code, body, _ := request(t, "POST", url+"/proxies/p/toxics", `{"type":"latency","attributes":{"latency":100}}`, "bearer s3cret"); code != 200 {
				t.Errorf("add a toxic with the token: %d %s", code, body)
			}
		})
	}
}

// Without a token, an API that listens beyond loopback says at start that
// anyone who reaches it can change the proxies.
func TestWarnsWhenOpenBeyondLoopback(t *testing.T) {
	t.Setenv("TOXIPROXY_AUTH_TOKEN", "")
	const warning = "the Toxiproxy API listens beyond loopback without a token"
	for _, tt := range []struct {
		block, listen string
		warn          bool
	}{
		{"toxiproxy {}", "0.0.0.0:0", true},
		{"toxiproxy {}", ":0", true},
		{"toxiproxy {}", "127.0.0.1:0", false},
		{"toxiproxy {}", "[::1]:0", false},
		{"toxiproxy {\n  token = \"x\"\n}", "0.0.0.0:0", false},
	} {
		_, logs := startWith(t, tt.block, tt.listen)
		if got := strings.Contains(logs.String(), warning); got != tt.warn {
			t.Errorf("%s on %s: warned %v, want %v\n%s", tt.block, tt.listen, got, tt.warn, logs)
		}
	}
}

// A body over the limit is a 413, as on the admin API; /populate refuses
// a list that names a proxy twice. Neither changes anything.
func TestBodyLimitAndDuplicatePopulate(t *testing.T) {
	url, _ := startWith(t, "toxiproxy {}", "127.0.0.1:0")
	up := echo(t)
	big := `{"name":"p","upstream":"` + strings.Repeat("x", 2<<20) + `"}`
	_, before, _ := request(t, "GET", url+"/proxies", "", "")
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/proxies", big, 413, "request body too large"},
		{"POST", "/populate", "[" + big + "]", 413, "request body too large"},
		{"POST", "/populate", fmt.Sprintf(`[{"name":"d","listen":"127.0.0.1:0","upstream":%q},{"name":"d","listen":"127.0.0.1:0","upstream":%[1]q}]`, up), 400, `proxy \"d\" is listed twice`},
	} {
		code, body, _ := request(t, tc.method, url+tc.path, tc.body, "")
		if code != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s: %d %.200s; want %d with %q", tc.method, tc.path, code, body, tc.status, tc.want)
		}
	}
	if _, after, _ := request(t, "GET", url+"/proxies", "", ""); after != before {
		t.Errorf("refused calls changed the proxies: %s", after)
	}
}

// Toxiproxy accepts attributes a toxic type does not have and drops them;
// vaurien accepts them too, for its clients' sake, but says so in the log.
func TestUnknownToxicAttributesAcceptedAndLogged(t *testing.T) {
	url, logs := startWith(t, "toxiproxy {}", "127.0.0.1:0")
	up := echo(t)
	if code, body, _ := request(t, "POST", url+"/proxies", fmt.Sprintf(`{"name":"u","listen":"127.0.0.1:0","upstream":%q}`, up), ""); code != 201 {
		t.Fatalf("create proxy: %d %s", code, body)
	}
	const warning = "unknown toxic attributes ignored"
	code, body, _ := request(t, "POST", url+"/proxies/u/toxics", `{"name":"lat","type":"latency","attributes":{"latency":5,"jitter":0,"colour":"red"}}`, "")
	if code != 200 || !strings.Contains(body, `"latency":5`) {
		t.Fatalf("a toxic with an unknown attribute: %d %s; want 200 as Toxiproxy answers", code, body)
	}
	if !strings.Contains(logs.String(), warning) || !strings.Contains(logs.String(), `"ignored":["colour"]`) {
		t.Errorf("the ignored attribute is not in the log:\n%s", logs)
	}
	before := strings.Count(logs.String(), warning)
	if code, body, _ := request(t, "POST", url+"/proxies/u/toxics/lat", `{"attributes":{"latency":7}}`, ""); code != 200 {
		t.Fatalf("update: %d %s", code, body)
	}
	if after := strings.Count(logs.String(), warning); after != before {
		t.Errorf("an update with known attributes only warned:\n%s", logs)
	}
	if code, _, _ := request(t, "POST", url+"/proxies/u/toxics/lat", `{"attributes":{"latency":7,"shape":1}}`, ""); code != 200 || !strings.Contains(logs.String(), `"ignored":["shape"]`) {
		t.Errorf("an update's unknown attribute: %d, log:\n%s", code, logs)
	}
}
