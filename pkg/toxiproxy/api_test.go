package toxiproxy_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func TestProxyLifecycleWithTheClient(t *testing.T) {
	e := start(t, "", false)
	up := echo(t)

	p := e.proxy("redis", up)
	if !p.Enabled || p.Upstream != up || strings.HasSuffix(p.Listen, ":0") {
		t.Fatalf("created %+v: want enabled, with the bound port", p)
	}
	roundTrip(t, dial(t, p.Listen), "through")

	// list
	all, err := e.client.Proxies()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all["redis"] == nil || all["redis"].Listen != p.Listen {
		t.Fatalf("list: %+v", all)
	}
	// inspect
	got, err := e.client.Proxy("redis")
	if err != nil || got.Listen != p.Listen || got.Upstream != up || len(got.ActiveToxics) != 0 {
		t.Fatalf("inspect: %+v, %v", got, err)
	}
	if _, err := e.client.Proxy("nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("inspect a missing proxy: %v", err)
	}

	// toggle: disabled refuses connections, enabled listens again on the same port
	if err := got.Disable(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", p.Listen, time.Second); err == nil {
		c.Close()
		t.Fatal("a disabled proxy accepted a connection")
	}
	if err := got.Enable(); err != nil {
		t.Fatal(err)
	}
	if got.Listen != p.Listen || !got.Enabled {
		t.Fatalf("enabled again: %+v", got)
	}
	roundTrip(t, dial(t, p.Listen), "again")

	// update: another upstream (Save is the client's POST update)
	other := echo(t)
	got.Upstream = other
	if err := got.Save(); err != nil {
		t.Fatal(err)
	}
	if got.Upstream != other || got.Listen != p.Listen {
		t.Fatalf("updated: %+v", got)
	}
	if rt, _ := e.app.Route("redis"); rt.Config().Backend != other {
		t.Fatalf("the route's backend is %s", rt.Config().Backend)
	}
	roundTrip(t, dial(t, p.Listen), "other")

	// update: another listen address (PATCH, as newer clients send)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	newAddr := ln.Addr().String()
	ln.Close()
	status, body := e.call("PATCH", "/proxies/redis", fmt.Sprintf(`{"listen":%q}`, newAddr))
	if status != 200 || !strings.Contains(body, `"listen":"`+newAddr+`"`) {
		t.Fatalf("PATCH listen: %d %s", status, body)
	}
	roundTrip(t, dial(t, newAddr), "moved")

	// delete
	if err := got.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Proxy("redis"); err == nil {
		t.Fatal("the proxy is still there")
	}
	if _, err := e.app.Route("redis"); err == nil {
		t.Fatal("the route is still running")
	}
	if c, err := net.DialTimeout("tcp", newAddr, time.Second); err == nil {
		c.Close()
		t.Fatal("a deleted proxy accepted a connection")
	}
}

func TestEveryToxicTypeAddUpdateRemove(t *testing.T) {
	e := start(t, "", false)
	p := e.proxy("p", echo(t))
	types := []struct {
		typ    string
		stream string
		attrs  toxiclient.Attributes
		update toxiclient.Attributes
	}{
		{"latency", "downstream", toxiclient.Attributes{"latency": 10, "jitter": 1}, toxiclient.Attributes{"jitter": 2}},
		{"bandwidth", "upstream", toxiclient.Attributes{"rate": 1000}, toxiclient.Attributes{"rate": 2000}},
		{"slow_close", "downstream", toxiclient.Attributes{"delay": 10}, toxiclient.Attributes{"delay": 20}},
		{"timeout", "upstream", toxiclient.Attributes{"timeout": 1000}, toxiclient.Attributes{"timeout": 2000}},
		{"reset_peer", "downstream", toxiclient.Attributes{"timeout": 1000}, toxiclient.Attributes{"timeout": 2000}},
		{"slicer", "upstream", toxiclient.Attributes{"average_size": 10, "size_variation": 2, "delay": 5}, toxiclient.Attributes{"delay": 7}},
		{"limit_data", "downstream", toxiclient.Attributes{"bytes": 100}, toxiclient.Attributes{"bytes": 200}},
	}
	for _, tt := range types {
		tox, err := p.AddToxic("", tt.typ, tt.stream, 0.5, tt.attrs)
		if err != nil {
			t.Fatalf("add %s: %v", tt.typ, err)
		}
		name := tt.typ + "_" + tt.stream
		if tox.Name != name || tox.Type != tt.typ || tox.Stream != tt.stream || tox.Toxicity != 0.5 {
			t.Fatalf("added %+v", tox)
		}
		for k, v := range tt.attrs {
			if tox.Attributes[k] != float64(v.(int)) {
				t.Errorf("%s: attribute %s is %v, want %v", tt.typ, k, tox.Attributes[k], v)
			}
		}
		up, err := p.UpdateToxic(name, 1, tt.update)
		if err != nil {
			t.Fatalf("update %s: %v", tt.typ, err)
		}
		for k, v := range tt.update {
			if up.Attributes[k] != float64(v.(int)) {
				t.Errorf("%s: updated attribute %s is %v, want %v", tt.typ, k, up.Attributes[k], v)
			}
		}
		if up.Toxicity != 1 || len(up.Attributes) != len(tox.Attributes) {
			t.Errorf("%s: updated %+v from %+v", tt.typ, up, tox)
		}
	}
	list, err := p.Toxics()
	if err != nil || len(list) != len(types) {
		t.Fatalf("toxics: %v, %v", list, err)
	}
	// Toxiproxy's order: upstream toxics, then downstream ones.
	var streams []string
	for _, tox := range list {
		streams = append(streams, tox.Stream)
	}
	if got := strings.Join(streams, ","); got != "upstream,upstream,upstream,downstream,downstream,downstream,downstream" {
		t.Errorf("order: %s", got)
	}
	if mix, _ := e.app.Route("p"); mix.Mix().String() != "100:toxics" {
		t.Errorf("the route's mix is %s", mix.Mix())
	}
	for _, tt := range types {
		if err := p.RemoveToxic(tt.typ + "_" + tt.stream); err != nil {
			t.Fatalf("remove %s: %v", tt.typ, err)
		}
	}
	if list, _ := p.Toxics(); len(list) != 0 {
		t.Fatalf("left: %+v", list)
	}
	if err := p.RemoveToxic("latency_downstream"); err == nil {
		t.Fatal("removed a missing toxic")
	}
}

func TestPopulate(t *testing.T) {
	e := start(t, "", false)
	a, b := echo(t), echo(t)
	proxies, err := e.client.Populate([]toxiclient.Proxy{
		{Name: "one", Listen: "127.0.0.1:0", Upstream: a, Enabled: true},
		{Name: "two", Listen: "127.0.0.1:0", Upstream: b, Enabled: false},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(proxies) != 2 || proxies[0].Name != "one" || !proxies[0].Enabled || proxies[1].Enabled {
		t.Fatalf("populated %+v", proxies)
	}
	one := proxies[0]
	e.toxic(one, "latency", "downstream", 1, toxiclient.Attributes{"latency": 1})

	// The same name, listen and upstream: left untouched, toxics included.
	again, err := e.client.Populate([]toxiclient.Proxy{{Name: "one", Listen: "127.0.0.1:0", Upstream: a, Enabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Listen != one.Listen || len(again[0].ActiveToxics) != 1 {
		t.Fatalf("repopulated %+v, want %s with its toxic", again[0], one.Listen)
	}
	// Another upstream: replaced, its toxics gone.
	replaced, err := e.client.Populate([]toxiclient.Proxy{{Name: "one", Listen: one.Listen, Upstream: b, Enabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	if replaced[0].Upstream != b || len(replaced[0].ActiveToxics) != 0 || replaced[0].Listen != one.Listen {
		t.Fatalf("replaced %+v", replaced[0])
	}
	roundTrip(t, dial(t, one.Listen), "via b")
}

func TestResetEnablesAndClearsEverything(t *testing.T) {
	up := echo(t)
	e := start(t, fmt.Sprintf(`
route "file" {
  listen  = "127.0.0.1:0"
  backend = %q
  behavior "delay" {
    percent = 10
    sleep   = "1ms"
  }
}`, up), true)
	p := e.proxy("api", up)
	e.toxic(p, "latency", "upstream", 1, toxiclient.Attributes{"latency": 1})
	file, err := e.client.Proxy("file")
	if err != nil {
		t.Fatal(err)
	}
	e.toxic(file, "bandwidth", "downstream", 1, toxiclient.Attributes{"rate": 1})
	if err := file.Disable(); err != nil {
		t.Fatal(err)
	}
	if err := p.Disable(); err != nil {
		t.Fatal(err)
	}
	if err := e.client.ResetState(); err != nil {
		t.Fatal(err)
	}
	all, err := e.client.Proxies()
	if err != nil {
		t.Fatal(err)
	}
	for name, px := range all {
		if !px.Enabled || len(px.ActiveToxics) != 0 {
			t.Errorf("%s after reset: %+v", name, px)
		}
	}
	if rt, _ := e.app.Route("file"); rt.Mix().String() != "10:delay" {
		t.Errorf("the file route's mix is %s, want the file's", rt.Mix())
	}
	if rt, _ := e.app.Route("api"); rt.Mix().String() != "100:toxics" {
		t.Errorf("the API route's mix is %s", rt.Mix())
	}
	roundTrip(t, dial(t, all["file"].Listen), "file")
	roundTrip(t, dial(t, all["api"].Listen), "api")
}

// One world: the file's routes are proxies, the API's proxies are routes
// of vaurien's own API, and either API's changes show in the other.
func TestOneWorld(t *testing.T) {
	up := echo(t)
	e := start(t, fmt.Sprintf(`
route "file" {
  listen  = "127.0.0.1:0"
  backend = %q
}`, up), true)
	file, err := e.client.Proxy("file")
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := e.app.Route("file")
	if file.Listen != rt.Addr() || file.Upstream != up || !file.Enabled {
		t.Fatalf("the file's route as a proxy: %+v", file)
	}
	if status, body := e.call("DELETE", "/proxies/file", ""); status != 409 || !strings.Contains(body, `"status":409`) {
		t.Errorf("deleting a route of the file: %d %s", status, body)
	}

	e.proxy("dyn", up)
	resp, err := http.Get("http://" + e.app.AdminAddr() + "/routes")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"dyn"`) || !strings.Contains(string(body), `"file"`) {
		t.Errorf("vaurien's API lists %s", body)
	}

	// A toxic on a file route replaces its mix; removing it brings the
	// file's mix back.
	e.toxic(file, "latency", "downstream", 1, toxiclient.Attributes{"latency": 1})
	if rt.Mix().String() != "100:toxics" {
		t.Fatalf("mix %s", rt.Mix())
	}
	if err := file.RemoveToxic("latency_downstream"); err != nil {
		t.Fatal(err)
	}
	if rt.Mix().String() != "100:dummy" {
		t.Fatalf("mix after the last toxic: %s", rt.Mix())
	}

	// A mix set through vaurien's API ends the toxics.
	dyn, _ := e.client.Proxy("dyn")
	e.toxic(dyn, "latency", "downstream", 1, toxiclient.Attributes{"latency": 1})
	empty, _ := chaos.NewMix(nil)
	if err := e.app.SetMix("dyn", empty, 0); err != nil {
		t.Fatal(err)
	}
	if list, _ := dyn.Toxics(); len(list) != 0 {
		t.Errorf("toxics after vaurien's API set a mix: %+v", list)
	}
	// A reset through vaurien's API clears them too.
	e.toxic(dyn, "latency", "downstream", 1, toxiclient.Attributes{"latency": 1})
	if err := e.app.Reset(""); err != nil {
		t.Fatal(err)
	}
	if list, _ := dyn.Toxics(); len(list) != 0 {
		t.Errorf("toxics after vaurien's reset: %+v", list)
	}
	// And disabling through vaurien shows as a disabled proxy.
	if err := e.app.SetEnabled("dyn", false); err != nil {
		t.Fatal(err)
	}
	if dyn, _ = e.client.Proxy("dyn"); dyn.Enabled {
		t.Error("disabled through vaurien, enabled through Toxiproxy")
	}
}

func TestStatusCodesAndShapes(t *testing.T) {
	e := start(t, "", false)
	up := echo(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	proxyJSON := fmt.Sprintf(`{"name":"p","listen":%q,"upstream":%q,"enabled":true,"toxics":[]}`, addr, up)
	latency := `{"attributes":{"latency":100,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}`
	steps := []struct {
		method, path, body string
		status             int
		want               string // the JSON answer, or "" not to check
	}{
		{"GET", "/version", "", 200, ""},
		{"GET", "/proxies", "", 200, `{}`},
		{"POST", "/proxies", fmt.Sprintf(`{"name":"p","listen":%q,"upstream":%q}`, addr, up), 201, proxyJSON},
		{"POST", "/proxies", fmt.Sprintf(`{"name":"p","listen":%q,"upstream":%q}`, addr, up), 409, `{"error":"proxy already exists","status":409}`},
		{"POST", "/proxies", `{"listen":"127.0.0.1:0","upstream":"x:1"}`, 400, `{"error":"missing required field: name","status":400}`},
		{"POST", "/proxies", `{"name":"q","listen":"127.0.0.1:0"}`, 400, `{"error":"missing required field: upstream","status":400}`},
		{"POST", "/proxies", `{"name":`, 400, `{"error":"bad request body: unexpected end of JSON input","status":400}`},
		{"POST", "/proxies", `{"name":"q","upstream":"x:1","enabled":"yes"}`, 400, ""},
		{"GET", "/proxies", "", 200, `{"p":` + proxyJSON + `}`},
		{"GET", "/proxies/p", "", 200, proxyJSON},
		{"GET", "/proxies/nope", "", 404, `{"error":"proxy not found","status":404}`},
		{"PATCH", "/proxies/nope", `{}`, 404, `{"error":"proxy not found","status":404}`},
		{"POST", "/proxies/p", `{"enabled":`, 400, ""},
		{"GET", "/proxies/p/toxics", "", 200, `[]`},
		{"GET", "/proxies/nope/toxics", "", 404, `{"error":"proxy not found","status":404}`},
		{"POST", "/proxies/p/toxics", `{"type":"latency","attributes":{"latency":100}}`, 200, latency},
		{"POST", "/proxies/p/toxics", `{"type":"latency","attributes":{"latency":100}}`, 409, `{"error":"toxic already exists","status":409}`},
		{"POST", "/proxies/p/toxics", `{"name":"x","type":"latency","attributes":{"latency":"100"}}`, 400, ""},
		{"POST", "/proxies/p/toxics", `{"name":"x","type":"latency","stream":"sideways"}`, 400, `{"error":"stream was invalid, can be either upstream or downstream","status":400}`},
		{"POST", "/proxies/p/toxics", `{"name":"x","type":"nope"}`, 400, `{"error":"invalid toxic type","status":400}`},
		{"POST", "/proxies/nope/toxics", `{"type":"latency"}`, 404, `{"error":"proxy not found","status":404}`},
		{"GET", "/proxies/p/toxics", "", 200, `[` + latency + `]`},
		{"GET", "/proxies/p/toxics/latency_downstream", "", 200, latency},
		{"GET", "/proxies/p/toxics/nope", "", 404, `{"error":"toxic not found","status":404}`},
		{"PATCH", "/proxies/p/toxics/latency_downstream", `{"attributes":{"jitter":5},"toxicity":0.5}`, 200,
			`{"attributes":{"latency":100,"jitter":5},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":0.5}`},
		{"POST", "/proxies/p/toxics/latency_downstream", `{"attributes":{"latency":200}}`, 200,
			`{"attributes":{"latency":200,"jitter":5},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":0.5}`},
		{"PATCH", "/proxies/p/toxics/nope", `{}`, 404, `{"error":"toxic not found","status":404}`},
		{"PATCH", "/proxies/p/toxics/latency_downstream", `{"attributes":{"latency":-1}}`, 400, ""},
		{"DELETE", "/proxies/p/toxics/latency_downstream", "", 204, ""},
		{"DELETE", "/proxies/p/toxics/latency_downstream", "", 404, `{"error":"toxic not found","status":404}`},
		{"POST", "/proxies/p", `{"enabled":false}`, 200, strings.Replace(proxyJSON, `"enabled":true`, `"enabled":false`, 1)},
		{"POST", "/reset", "", 204, ""},
		{"GET", "/proxies/p", "", 200, proxyJSON},
		{"POST", "/populate", `[{"name":"p","listen":"` + addr + `","upstream":"` + up + `"}]`, 201, `{"proxies":[` + proxyJSON + `]}`},
		{"POST", "/populate", `[{"name":"q","listen":"127.0.0.1:0"}]`, 400, `{"error":"missing required field: upstream at proxy 1","status":400,"proxies":null}`},
		{"POST", "/populate", `{}`, 400, ""},
		{"DELETE", "/proxies/p", "", 204, ""},
		{"DELETE", "/proxies/p", "", 404, `{"error":"proxy not found","status":404}`},
		{"GET", "/nothing", "", 404, ""},
		{"PUT", "/proxies", "", 405, ""},
	}
	for _, s := range steps {
		status, body := e.call(s.method, s.path, s.body)
		if status != s.status {
			t.Errorf("%s %s %s: status %d, want %d: %s", s.method, s.path, s.body, status, s.status, body)
			continue
		}
		if s.want != "" {
			jsonEqual(t, body, s.want)
		}
		if s.status == 204 && body != "" {
			t.Errorf("%s %s: a 204 with a body: %q", s.method, s.path, body)
		}
	}
	status, body := e.call("GET", "/version", "")
	if status != 200 || !strings.Contains(body, `"version"`) {
		t.Errorf("version: %d %s", status, body)
	}
}

func TestBrowsersAreRefused(t *testing.T) {
	e := start(t, "", false)
	req, _ := http.NewRequest("POST", e.url+"/reset", nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64)")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("a browser got %d", resp.StatusCode)
	}
}

func TestPortInUseIsAServerError(t *testing.T) {
	e := start(t, "", false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	status, body := e.call("POST", "/proxies", fmt.Sprintf(`{"name":"p","listen":%q,"upstream":"127.0.0.1:1"}`, ln.Addr()))
	if status != 500 || !strings.Contains(body, "address already in use") {
		t.Errorf("got %d %s", status, body)
	}
	if status, _ := e.call("GET", "/proxies/p", ""); status != 404 {
		t.Errorf("a proxy that could not listen exists: %d", status)
	}
}
