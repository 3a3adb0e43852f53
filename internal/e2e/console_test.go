package e2e

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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

const consoleConfig = `
admin {
  listen = %q
%s}
log {
  level = "debug"
}
route "api" {
  listen   = %q
  backend  = %q
  protocol = "http"
}
route "web" {
  listen   = %q
  backend  = %q
  protocol = "http"
  behavior "error" {
    percent = 1
  }
}
experiment "web-slow" {
  report = "reports/web-slow"
  probe "web" {
    http {
      url = "http://%s/"
    }
    interval = "50ms"
  }
  steady_state {
    duration = "2s"
  }
  step "slow" {
    duration = "20s"
    route "web" {
      behavior "delay" {
        percent = 100
        sleep   = "20ms"
      }
    }
  }
}
`

// consoleStack is a vaurien process with two http routes under steady
// traffic, and the means to restart it on the same addresses.
type consoleStack struct {
	dir, config             string
	admin, apiAddr, webAddr string
	apiBackend, webBackend  string
	proc                    *vaurien
	served                  atomic.Int64 // answers the traffic got through both routes
	// paused stops the traffic while vaurien restarts: a connection
	// attempt to a port nobody listens on can take it as its own local
	// port, and the restarted vaurien could not listen there.
	paused atomic.Bool
	client *http.Client
}

func newConsoleStack(t *testing.T) *consoleStack {
	t.Helper()
	backend := func(name string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello from "+name+"\n")
		}))
		t.Cleanup(s.Close)
		return s.Listener.Addr().String()
	}
	// The backends listen before free ports are picked, so that none of
	// them takes a port picked for vaurien.
	s := &consoleStack{dir: t.TempDir(), apiBackend: backend("api"), webBackend: backend("web")}
	s.admin, s.apiAddr, s.webAddr = freeAddr(t), freeAddr(t), freeAddr(t)
	s.config = filepath.Join(s.dir, "vaurien.hcl")
	s.client = &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(s.client.CloseIdleConnections)
	s.start(t, "")

	// Traffic on both routes for as long as the test runs: each route's
	// own client, keep-alive, one request every 20 ms.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	t.Cleanup(func() { cancel(); <-done; <-done })
	for _, addr := range []string{s.apiAddr, s.webAddr} {
		go func() {
			defer func() { done <- struct{}{} }()
			c := &http.Client{Timeout: 5 * time.Second}
			defer c.CloseIdleConnections()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if s.paused.Load() {
					continue
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
				if resp, err := c.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					s.served.Add(1)
				}
			}
		}()
	}
	return s
}

// start runs vaurien with the configuration, adminExtra added to its
// admin block, and waits until it is ready.
func (s *consoleStack) start(t *testing.T, adminExtra string) {
	t.Helper()
	writeConfig(t, s.config, fmt.Sprintf(consoleConfig, s.admin, adminExtra, s.apiAddr, s.apiBackend, s.webAddr, s.webBackend, s.webAddr))
	s.proc = start(t, "", "run", "-c", s.config)
	waitFor(t, "vaurien ready", func() bool {
		resp, err := s.client.Get("http://" + s.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	s.paused.Store(false)
}

// stop ends the vaurien process with SIGTERM, as a restart does.
func (s *consoleStack) stop(t *testing.T) {
	t.Helper()
	s.paused.Store(true)
	s.proc.signal(syscall.SIGTERM)
	if code, _ := s.proc.wait(20 * time.Second); code != 0 {
		t.Fatalf("vaurien exited with %d on SIGTERM:\n%s", code, s.proc.output())
	}
	s.client.CloseIdleConnections()
}

func (s *consoleStack) route(t *testing.T, name string) api.Route {
	t.Helper()
	resp, err := s.client.Get("http://" + s.admin + "/routes/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r api.Route
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r
}

// timeGet measures one request through a route with the test's own client.
func (s *consoleStack) timeGet(t *testing.T, addr string) time.Duration {
	t.Helper()
	t0 := time.Now()
	resp, err := s.client.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET through %s: %v", addr, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(t0)
}

// page drives the console in a browser: evaluate and wait on the page's
// own state. Evaluation goes through the DevTools protocol, so that the
// page's policy (no eval) stays as strict as users get it.
type page struct {
	t   *testing.T
	ctx context.Context
}

func (p page) run(what string, actions ...chromedp.Action) {
	p.t.Helper()
	if err := chromedp.Run(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

func (p page) eval(expr string, out any) {
	p.t.Helper()
	p.run("evaluate "+expr, chromedp.Evaluate(expr, out))
}

// wait polls a JavaScript expression until it is true.
func (p page) wait(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ok bool
		if err := chromedp.Run(p.ctx, chromedp.Evaluate("!!("+expr+")", &ok)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			var body string
			chromedp.Run(p.ctx, chromedp.Evaluate(`document.querySelector("main").innerText + "\n" + document.getElementById("notice").innerText + "\n" + document.getElementById("conn").innerText`, &body))
			p.t.Fatalf("timed out waiting for %s (%s); the page shows:\n%s", what, expr, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p page) text(sel string) string {
	p.t.Helper()
	var s string
	p.eval(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel), &s)
	return s
}

func (p page) click(sel string) {
	p.t.Helper()
	p.run("click "+sel, chromedp.Click(sel, chromedp.ByQuery, chromedp.NodeVisible))
}

// setField replaces an input's value as a person types it.
func (p page) setField(sel, value string) {
	p.t.Helper()
	p.run("type into "+sel, chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).value = ""`, sel), nil), chromedp.SendKeys(sel, value, chromedp.ByQuery))
}

// The console in headless Chromium against a real vaurien with traffic on
// two routes: it loads cleanly, shows the traffic live, changes a route's
// mix through a form built from the declarations (and the proxy slows
// down), shows the API's validation error next to the field, resets,
// starts and stops an experiment, comes back by itself after vaurien
// restarts, and asks for the token once a token is set. Other sites'
// pages cannot drive the API.
func TestConsoleInBrowser(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	s := newConsoleStack(t)
	ctx, probs := browse(t, chromium, 1280, 1000)
	p := page{t, ctx}
	web := `[data-route="web"]`

	// The page loads from / with no console error and no failed request.
	p.run("open the console", chromedp.Navigate("http://"+s.admin+"/"))
	p.wait("the stream is live", `document.getElementById("conn").dataset.state === "live"`)
	p.wait("both routes are shown", `document.querySelectorAll("[data-route]").length === 2`)
	p.wait("requests per second on web", `Number(document.querySelector('[data-route="web"] [data-part="requests"]').textContent) > 0`)
	p.wait("requests per second on api", `Number(document.querySelector('[data-route="api"] [data-part="requests"]').textContent) > 0`)
	if got := p.text(web + ` [data-part="configured"]`); !strings.Contains(got, "error 1%") {
		t.Fatalf("web's file mix reads %q", got)
	}
	var unlabelled int
	p.eval(`[...document.querySelectorAll("input, select, button")].filter(el => !el.labels?.length && !el.textContent.trim() && !el.getAttribute("aria-label")).length`, &unlabelled)
	if unlabelled != 0 {
		t.Errorf("%d controls have no label", unlabelled)
	}
	if ps := probs.take(); len(ps) > 0 {
		t.Fatalf("the page reported problems while loading:\n%s", strings.Join(ps, "\n"))
	}

	// Counters move: the page's running total of web's faults follows the
	// proxy's, and its traffic line grows with each event.
	first := s.route(t, "web").Stats.Requests
	waitFor(t, "more requests through web", func() bool { return s.route(t, "web").Stats.Requests >= first+20 })
	p.wait("a traffic line of several points", `document.querySelector('[data-route="web"] .spark .req').getAttribute("points").split(" ").length >= 3`)
	var shown float64
	var served int64
	p.eval(`Number(document.querySelector('[data-route="web"] [data-part="requests"]').textContent)`, &shown)
	if shown <= 0 {
		t.Fatalf("web shows %v requests per second under traffic", shown)
	}
	served = s.route(t, "web").Stats.Faults
	p.wait("web's fault total", fmt.Sprintf(`/\((\d+) in all\)/.test(document.querySelector('[data-route="web"] [data-part="faults"]').textContent) && Number(document.querySelector('[data-route="web"] [data-part="faults"]').textContent.match(/\((\d+) in all\)/)[1]) >= %d`, served))

	// delay 100% through the form: the next requests through web are slow.
	p.click(web + ` details.editor > summary`)
	p.wait("the editor, with web's live mix", `document.querySelectorAll('[data-route="web"] fieldset.entry').length === 1`)
	p.run("pick delay", chromedp.SetValue(web+` fieldset.entry [data-key="name"]`, "delay", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('[data-route="web"] fieldset.entry [data-key="name"]').dispatchEvent(new Event("change"))`, nil))
	p.wait("delay's options, from its declaration", `document.querySelector('[data-route="web"] [data-option="sleep"]') && document.querySelector('[data-route="web"] [data-option="jitter"]')`)
	var help string
	p.eval(`document.getElementById(document.querySelector('[data-route="web"] [data-option="sleep"]').getAttribute("aria-describedby").split(" ")[0]).textContent`, &help)
	if !strings.Contains(help, "how long to wait") || !strings.Contains(help, "Default 1s") || !strings.Contains(help, "From 0s to 100000h0m0s") {
		t.Errorf("sleep's help reads %q; want its doc, default and range as the API's errors write it", help)
	}
	p.setField(web+` [data-key="percent"]`, "100")
	p.setField(web+` [data-option="sleep"]`, "300ms")
	p.click(web + ` [data-action="apply"]`)
	p.wait("the live mix shows the delay", `document.querySelector('[data-route="web"] [data-part="mix"]').textContent.includes("delay 100%")`)
	var slow []time.Duration
	for i := range 3 {
		took := s.timeGet(t, s.webAddr)
		slow = append(slow, took)
		if took < 300*time.Millisecond {
			t.Fatalf("request %d through web took %s after delay 100%% sleep 300ms", i, took)
		}
	}
	t.Logf("requests through web after delay 100%% sleep 300ms took %v", slow)
	if took := s.timeGet(t, s.apiAddr); took >= 300*time.Millisecond {
		t.Logf("api took %s (a loaded machine?); its mix is untouched: %v", took, s.route(t, "api").Mix)
	}

	// A bad value: the API's own error shows next to the field.
	p.click(web + ` details.editor > summary`)
	p.wait("the editor again", `document.querySelector('[data-route="web"] [data-option="sleep"]')`)
	p.setField(web+` [data-option="sleep"]`, "soon")
	p.click(web + ` [data-action="apply"]`)
	sel := web + ` [data-error-for="behaviors[0].options.sleep"]`
	p.wait("the error next to sleep", fmt.Sprintf(`document.querySelector(%q).textContent !== ""`, sel))
	want := apiError(t, s, "web", `{"behaviors": [{"name": "delay", "percent": 100, "options": {"sleep": "soon"}}]}`)
	if got := p.text(sel); got != want.Error || want.Field != "behaviors[0].options.sleep" {
		t.Fatalf("next to sleep: %q; the API says %q on %q", got, want.Error, want.Field)
	}
	var invalid string
	p.eval(`document.querySelector('[data-route="web"] [data-option="sleep"]').getAttribute("aria-invalid")`, &invalid)
	if invalid != "true" {
		t.Errorf("the sleep field is not marked invalid")
	}
	if m := s.route(t, "web").Mix; len(m) != 1 || m[0].Options["sleep"] != "300ms" {
		t.Fatalf("a refused change changed the mix: %+v", m)
	}
	probs.take() // the refused call's 400 is the point

	// A one-click what-if with its countdown, then the screenshot.
	p.click(`[data-route="api"] [data-action="whatif-errors"]`)
	p.wait("api's timed change", `document.querySelector('[data-route="api"] [data-part="timed"]').textContent.includes("reverts")`)
	if r := s.route(t, "api"); r.RevertsAt == nil || len(r.Mix) != 1 || r.Mix[0].Name != "error" {
		t.Fatalf("api after what-if errors: %+v", r)
	}
	p.wait("api's faults by behavior", `document.querySelector('[data-route="api"] [data-behavior="error"]')`)
	// A "for" that is not a duration: the API refuses it, nothing changes.
	p.setField(`[data-route="api"] [data-field="whatif-duration"]`, "a while")
	p.click(`[data-route="api"] [data-action="whatif-down"]`)
	p.wait("the refusal", `document.getElementById("notice").textContent.includes("invalid duration")`)
	if r := s.route(t, "api"); len(r.Mix) != 1 || r.Mix[0].Name != "error" {
		t.Fatalf("a refused what-if changed api: %+v", r.Mix)
	}
	p.setField(`[data-route="api"] [data-field="whatif-duration"]`, "30")
	p.run("clear the notice", chromedp.Evaluate(`document.getElementById("notice").hidden = true`, nil))
	probs.take() // the refused call's 400 is the point
	var shot []byte
	p.run("screenshot", chromedp.FullScreenshot(&shot, 100))
	testenv.CheckPicture(t, shot)
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "console.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if *updateScreenshot {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "console.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A new backend: a bad address is refused next to the field, a good
	// one is taken.
	p.setField(web+` input[name="backend"]`, "nowhere")
	p.click(web + ` [data-form="backend"] button[type="submit"]`)
	p.wait("the backend's error", `document.querySelector('[data-route="web"] [data-error-for="backend"]').textContent.includes("host:port")`)
	p.setField(web+` input[name="backend"]`, s.apiBackend)
	p.click(web + ` [data-form="backend"] button[type="submit"]`)
	p.wait("the new backend shown", fmt.Sprintf(`document.querySelector('[data-route="web"] dl.facts dd:nth-of-type(2)').textContent === %q`, s.apiBackend))
	if r := s.route(t, "web"); r.Backend != s.apiBackend {
		t.Fatalf("web's backend: %s, want %s", r.Backend, s.apiBackend)
	}
	probs.take() // the refused address's 400 is the point

	// Reset restores the file's mix and backend.
	p.click(web + ` [data-action="reset"]`)
	p.wait("web's file mix again", `document.querySelector('[data-route="web"] [data-part="mix"]').textContent === "error 1%"`)
	if r := s.route(t, "web"); len(r.Mix) != 1 || r.Mix[0].Name != "error" || r.Mix[0].Percent != 1 || r.Backend != s.webBackend {
		t.Fatalf("web after reset: %+v to %s", r.Mix, r.Backend)
	}
	p.click(`#reset-all`)
	p.wait("api's timed change gone", `document.querySelector('[data-route="api"] [data-part="timed"]').textContent === "none"`)
	p.click(`#reload`)
	p.wait("the file reloaded", `document.getElementById("notice").textContent === "Reload the file: done."`)

	// An experiment: start, watch its timeline, stop.
	exp := `[data-experiment="web-slow"]`
	p.wait("the experiment", fmt.Sprintf(`document.querySelector(%q)`, exp))
	p.click(exp + ` [data-action="start"]`)
	p.wait("the run under way", fmt.Sprintf(`document.querySelector(%q).textContent.startsWith("running")`, exp+` [data-part="state"]`))
	p.wait("its timeline", fmt.Sprintf(`document.querySelector(%q)`, exp+` svg.timeline rect.phase.current`))
	p.wait("its step", fmt.Sprintf(`document.querySelector(%q).textContent.startsWith("slow")`, exp+` [data-part="phase"]`))
	p.click(exp + ` [data-action="stop"]`)
	p.wait("the run stopped", fmt.Sprintf(`document.querySelector(%q).textContent === "stopped"`, exp+` [data-part="state"]`))
	p.wait("the link to its report", fmt.Sprintf(`!document.querySelector(%q).hidden`, exp+` [data-part="report"]`))
	var report string
	p.eval(fmt.Sprintf(`document.querySelector(%q).href`, exp+` [data-part="report"]`), &report)
	if !strings.HasSuffix(report, "/experiments/web-slow/report/report.html") {
		t.Fatalf("the last report's link: %q", report)
	}
	if ps := probs.take(); len(ps) > 0 {
		t.Fatalf("the page reported problems:\n%s", strings.Join(ps, "\n"))
	}
	// The report renders under its own policy, its timeline drawn.
	p.run("open the report", chromedp.Navigate(report))
	p.wait("the report's timeline", `document.querySelector("svg") && document.title.startsWith("web-slow")`)
	var styled string
	p.eval(`getComputedStyle(document.body).fontFamily`, &styled)
	if ps := probs.take(); len(ps) > 0 || !strings.Contains(styled, "system-ui") {
		t.Fatalf("the report reported problems (font %q):\n%s", styled, strings.Join(ps, "\n"))
	}
	p.run("back to the console", chromedp.Navigate("http://"+s.admin+"/ui/"))
	p.wait("the stream is live again", `document.getElementById("conn").dataset.state === "live" && document.querySelector('[data-route="web"]')`)

	// vaurien restarts, now with a token: the page says the connection is
	// lost, then comes back by itself on the same stream.
	const token = "console-tok-51c2"
	s.stop(t)
	p.wait("the connection shown lost", `document.getElementById("conn").dataset.state === "lost"`)
	s.start(t, fmt.Sprintf("  token = %q\n", token))
	p.wait("the stream back", `document.getElementById("conn").dataset.state === "live"`)
	p.wait("fresh counters", `Number(document.querySelector('[data-route="web"] [data-part="requests"]').textContent) > 0`)
	probs.take() // requests failed while vaurien was down: that is the point

	// A click that changes something, without the token: refused, and the
	// page asks for it; declined, nothing changes.
	p.click(web + ` [data-action="toggle"]`)
	p.wait("the token dialog", `document.getElementById("token-dialog").open`)
	p.click(`#token-cancel`)
	p.wait("the refusal shown", `document.getElementById("notice").textContent.includes("needs the admin token")`)
	if !s.route(t, "web").Enabled {
		t.Fatal("a click without the token disabled web")
	}
	// With the token: done, and the token is kept for the tab.
	p.click(web + ` [data-action="toggle"]`)
	p.wait("the token dialog", `document.getElementById("token-dialog").open`)
	p.setField(`#token-input`, token)
	p.click(`#token-ok`)
	p.wait("web shown disabled", `document.querySelector('[data-route="web"] [data-part="enabled"]').textContent === "disabled"`)
	if s.route(t, "web").Enabled {
		t.Fatal("web is still enabled after a click with the token")
	}
	var kept string
	p.eval(`sessionStorage.getItem("vaurien.token") + "|" + document.cookie`, &kept)
	if kept != token+"|" {
		t.Fatalf("sessionStorage and cookies: %q", kept)
	}
	p.click(web + ` [data-action="toggle"]`)
	p.wait("web shown enabled, without asking again", `document.querySelector('[data-route="web"] [data-part="enabled"]').textContent === "enabled" && !document.getElementById("token-dialog").open`)
	probs.take()

	// Another site's page posts to the API from the same browser: refused.
	// So is a page reached by a name that is not this server's (DNS
	// rebinding), while curl without Origin, by any name, still works.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><title>elsewhere</title><script>
fetch("http://%s/routes/web/disable", {method: "POST", mode: "no-cors", headers: {"Authorization": "Bearer %s"}}).then(() => document.title = "sent", () => document.title = "sent");
</script>`, s.admin, token)
	}))
	defer evil.Close()
	_, port, _ := strings.Cut(evil.Listener.Addr().String(), ":")
	p.run("open another site", chromedp.Navigate("http://localhost:"+port+"/"))
	p.wait("its request sent", `document.title === "sent"`)
	s.proc.waitLog(`"path":"/routes/web/disable","status":403`, 10*time.Second)
	if !s.route(t, "web").Enabled {
		t.Fatal("another site's page disabled web")
	}
	for _, c := range []struct {
		name, host, origin, site string
		want                     int
	}{
		{"cross-site POST", "", "http://evil.example", "cross-site", http.StatusForbidden},
		{"a foreign Host", "evil.example:" + strings.Split(s.admin, ":")[1], "", "same-origin", http.StatusForbidden},
		{"curl", "", "", "", http.StatusOK},
		{"curl by a service name", "vaurien:8080", "", "", http.StatusOK},
	} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.admin+"/routes/web/enable", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if c.host != "" {
			req.Host = c.host
		}
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		if c.site != "" {
			req.Header.Set("Sec-Fetch-Site", c.site)
		}
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
		}
	}
}

// The console on a phone's screen: nothing wider than the screen, every
// route and its controls there. With the keyboard alone (Tab, Shift+Tab,
// Enter, Space), the focus ring shown at every stop: skip to the routes,
// walk a route's controls, flip its "slow" what-if, open its mix editor
// and apply a change; the API shows both changes made.
func TestConsoleOnAPhone(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	s := newConsoleStack(t)
	ctx, probs := browse(t, chromium, 390, 844)
	p := page{t, ctx}
	p.run("open the console", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate("http://"+s.admin+"/ui/"))
	p.wait("both routes", `document.querySelectorAll("[data-route]").length === 2 && document.getElementById("conn").dataset.state === "live"`)
	var overflow int
	p.eval(`document.documentElement.scrollWidth - window.innerWidth`, &overflow)
	if overflow > 0 {
		t.Errorf("the page is %d px wider than a phone's screen", overflow)
	}
	var shot []byte
	p.run("screenshot", chromedp.FullScreenshot(&shot, 100))
	testenv.CheckPicture(t, shot)
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), "console-phone.png"), shot, 0o644); err != nil {
		t.Fatal(err)
	}

	// The keyboard alone. Each stop of the focus is checked for a visible
	// ring, and the way is logged.
	var stops []string
	press := func(what, keys string, opts ...chromedp.KeyOption) {
		t.Helper()
		p.run(what, chromedp.KeyEvent(keys, opts...))
	}
	// at tells whether the focus is on sel, and wants its ring shown.
	at := func(sel string) bool {
		t.Helper()
		var f struct {
			Desc  string `json:"desc"`
			Ring  bool   `json:"ring"`
			Match bool   `json:"match"`
		}
		p.eval(fmt.Sprintf(`(() => {
  const el = document.activeElement, st = getComputedStyle(el);
  const name = (el.labels && el.labels.length ? el.labels[0].textContent : el.textContent || el.id).trim().slice(0, 30);
  const route = el.closest("[data-route]");
  return {desc: (route ? route.dataset.route + ": " : "") + el.tagName.toLowerCase() + " " + JSON.stringify(name),
    ring: el.matches(":focus-visible") && st.outlineStyle !== "none" && parseFloat(st.outlineWidth) >= 2,
    match: el.matches(%q)};
})()`, sel), &f)
		stops = append(stops, f.Desc)
		if !f.Ring {
			t.Errorf("the focus on %s shows no ring", f.Desc)
		}
		return f.Match
	}
	// tabTo presses Tab until the focus is on sel, at most n times.
	tabTo := func(sel string, n int) {
		t.Helper()
		for range n {
			press("Tab", kb.Tab)
			if at(sel) {
				return
			}
		}
		t.Fatalf("%d Tabs did not reach %s; the focus went: %s", n, sel, strings.Join(stops, " → "))
	}
	api := `[data-route="api"]`
	tabTo(`a.skip`, 1)
	press("Enter on the skip link", kb.Enter)
	tabTo(api+` button`, 1)
	tabTo(api+` [data-action="whatif-slow"]`, 5)
	press("Shift+Tab", kb.Tab, chromedp.KeyModifiers(input.ModifierShift))
	if !at(api + ` [data-action="reset"]`) {
		t.Fatalf("Shift+Tab from api's Slow did not go back to its Reset; the focus went: %s", strings.Join(stops, " → "))
	}
	tabTo(api+` [data-action="whatif-slow"]`, 1)
	press("Space on Slow", " ")
	waitFor(t, "api slow for a while", func() bool {
		r := s.route(t, "api")
		return r.RevertsAt != nil && len(r.Mix) == 1 && r.Mix[0].Name == "delay" && r.Mix[0].Percent == 100
	})

	tabTo(api+` details.editor > summary`, 10)
	press("Enter on the editor", kb.Enter)
	p.wait("api's editor", `document.querySelectorAll('[data-route="api"] fieldset.entry').length === 1`)
	tabTo(api+` fieldset.entry [data-key="percent"]`, 3)
	// The field's text is selected as the focus comes in: typing replaces it.
	press("type 50", "50")
	var typed string
	p.eval(`document.querySelector('[data-route="api"] fieldset.entry [data-key="percent"]').value`, &typed)
	if typed != "50" {
		t.Fatalf("api's percent field reads %q after typing 50", typed)
	}
	tabTo(api+` [data-action="apply"]`, 40)
	press("Enter on Apply", kb.Enter)
	waitFor(t, "api's mix applied", func() bool {
		r := s.route(t, "api")
		return len(r.Mix) == 1 && r.Mix[0].Name == "delay" && r.Mix[0].Percent == 50
	})
	t.Logf("by keyboard, %d stops: %s", len(stops), strings.Join(stops, " → "))
	if ps := probs.take(); len(ps) > 0 {
		t.Fatalf("the page reported problems:\n%s", strings.Join(ps, "\n"))
	}
}

// Every text of the console, in every state a person meets, keeps a
// contrast of 4.5:1 with what it is drawn on, 3:1 when it is large (WCAG 2
// AA): the routes with a timed change, faults, a disabled route, the mix
// editor with its help and errors, the notices, a running experiment's
// timeline, each state of the connection and the token dialog.
func TestConsoleContrast(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	s := newConsoleStack(t)
	ctx, probs := browse(t, chromium, 1280, 1000)
	p := page{t, ctx}
	web, api := `[data-route="web"]`, `[data-route="api"]`
	exp := `[data-experiment="web-slow"]`
	p.run("open the console", chromedp.Navigate("http://"+s.admin+"/ui/"))
	p.wait("the stream is live", `document.getElementById("conn").dataset.state === "live" && document.querySelectorAll("[data-route]").length === 2`)
	p.eval(contrastJS, nil)

	var pairs []contrastPair
	measure := func(what, expr string) {
		t.Helper()
		var got []contrastPair
		p.eval(expr, &got)
		if len(got) == 0 {
			t.Fatalf("%s: no text found", what)
		}
		pairs = append(pairs, got...)
	}

	// The experiment running on web, a timed change with its faults on
	// api, web's editor and backend form with their errors, and a refused
	// what-if in the notice.
	p.click(exp + ` [data-action="start"]`)
	p.wait("the experiment's timeline", fmt.Sprintf(`document.querySelector(%q)`, exp+` svg.timeline rect.phase.current`))
	p.click(api + ` [data-action="whatif-errors"]`)
	p.wait("api's faults", `document.querySelector('[data-route="api"] [data-behavior="error"]') && document.querySelector('[data-route="api"] .badge.timed')`)
	p.click(web + ` details.editor > summary`)
	p.wait("the editor", `document.querySelectorAll('[data-route="web"] fieldset.entry').length === 1`)
	p.click(web + ` [data-action="add-behavior"]`)
	p.wait("delay's options", `document.querySelector('[data-route="web"] [data-option="sleep"]')`)
	p.setField(web+` [data-option="sleep"]`, "soon")
	p.click(web + ` [data-action="apply"]`)
	p.wait("the error next to sleep", `document.querySelector('[data-route="web"] [data-error-for="behaviors[1].options.sleep"]').textContent !== ""`)
	p.setField(web+` input[name="backend"]`, "nowhere")
	p.click(web + ` [data-form="backend"] button[type="submit"]`)
	p.wait("the backend's error", `document.querySelector('[data-route="web"] [data-error-for="backend"]').textContent !== ""`)
	p.setField(api+` [data-field="whatif-duration"]`, "a while")
	p.click(api + ` [data-action="whatif-down"]`)
	p.wait("the refusal", `document.getElementById("notice").textContent.includes("invalid duration")`)
	p.wait("the timeline's labels", fmt.Sprintf(`document.querySelectorAll(%q).length >= 2`, exp+` svg.timeline text`))
	measure("the busy page", `contrastPairs(document.body)`)

	// The experiment stopped, an SLO verdict of each kind (the file's
	// experiment has no SLO: they are put in its list as a run's would
	// be), a done notice and a disabled route.
	p.click(exp + ` [data-action="stop"]`)
	p.wait("the run stopped", fmt.Sprintf(`document.querySelector(%q).textContent === "stopped" && !document.querySelector(%q).hidden`, exp+` [data-part="state"]`, exp+` [data-part="report"]`))
	p.click(`#reload`)
	p.wait("the file reloaded", `document.getElementById("notice").textContent === "Reload the file: done."`)
	p.click(api + ` [data-action="toggle"]`)
	p.wait("api disabled", `document.querySelector('[data-route="api"] [data-part="enabled"]').textContent === "disabled"`)
	measure("the page after", fmt.Sprintf(`(() => {
  const slos = document.querySelector(%q);
  slos.append(Object.assign(document.createElement("li"), {className: "slo-ok", textContent: "✔ steady: p99 12ms ≤ 50ms"}),
    Object.assign(document.createElement("li"), {className: "slo-bad", textContent: "✘ flaky: error rate 0.31 > 0.05"}));
  const out = contrastPairs(document.body);
  slos.replaceChildren();
  return out;
})()`, exp+` [data-part="slos"]`))

	// Each state of the connection, and the token dialog.
	measure("the connection's states", `(() => {
  const conn = document.getElementById("conn"), was = [conn.dataset.state, conn.textContent], out = [];
  for (const [state, text] of [["connecting", "Connecting…"], ["live", "Live"], ["lost", "Connection lost: reconnecting…"]]) {
    conn.dataset.state = state;
    conn.textContent = text;
    out.push(...contrastPairs(conn));
  }
  [conn.dataset.state, conn.textContent] = was;
  return out;
})()`)
	measure("the token dialog", `(() => {
  const d = document.getElementById("token-dialog");
  d.showModal();
  const out = contrastPairs(d);
  d.close();
  return out;
})()`)
	probs.take() // the refused calls' 400s are the point

	lowest := pairs[0]
	slo := map[string]string{}
	for _, c := range pairs {
		if strings.Contains(c.What, "li.slo-") {
			slo[c.What[:strings.IndexByte(c.What, ' ')]] = c.FG
		}
		want := 4.5
		if c.Large {
			want = 3
		}
		if c.Ratio < want {
			t.Errorf("%s: %s on %s is %.2f:1, want at least %.1f:1", c.What, c.FG, c.BG, c.Ratio, want)
		}
		if c.Ratio < lowest.Ratio {
			lowest = c
		}
	}
	t.Logf("%d texts measured; the lowest contrast is %.2f:1, %s on %s: %s", len(pairs), lowest.Ratio, lowest.FG, lowest.BG, lowest.What)
	if len(slo) != 2 || slo["li.slo-ok"] == slo["li.slo-bad"] {
		t.Errorf("the SLO verdicts' colours: %v; a met one and a broken one must differ", slo)
	}
}

// apiError sends a mix straight to the API and returns its error answer.
func apiError(t *testing.T, s *consoleStack, route, body string) api.Error {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+s.admin+"/routes/"+route+"/mix", strings.NewReader(body))
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e api.Error
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("PUT %s: %d %v", body, resp.StatusCode, err)
	}
	return e
}

// contrastJS defines contrastPairs(root): every piece of text shown under
// root, with its colour and the background it is drawn on, composed
// through every translucent layer beneath, and their contrast ratio as
// WCAG 2 defines it.
const contrastJS = `
window.contrastPairs = (root) => {
  const cv = document.createElement("canvas");
  cv.width = cv.height = 1;
  const cx = cv.getContext("2d", { willReadFrequently: true });
  // Any CSS colour to [r, g, b, alpha], as the browser itself paints it.
  const rgba = (c) => {
    cx.clearRect(0, 0, 1, 1);
    cx.fillStyle = "rgba(0, 0, 0, 0)";
    cx.fillStyle = c;
    cx.fillRect(0, 0, 1, 1);
    const d = cx.getImageData(0, 0, 1, 1).data;
    return [d[0], d[1], d[2], d[3] / 255];
  };
  const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let bg = [255, 255, 255, 1];
    for (const c of layers.reverse()) bg = over(c, bg);
    return bg;
  };
  // SVG text lies on the shapes painted before it under its middle.
  const svgBackground = (el) => {
    const root = el.ownerSVGElement;
    let bg = background(root);
    const r = el.getBoundingClientRect();
    const x = r.left + r.width / 2, y = r.top + r.height / 2;
    for (const s of root.querySelectorAll("rect, circle, ellipse, polygon, path")) {
      const b = s.getBoundingClientRect();
      if (!(s.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) || x < b.left || x > b.right || y < b.top || y > b.bottom) continue;
      const st = getComputedStyle(s);
      const c = rgba(st.fill);
      c[3] *= Number(st.fillOpacity) * Number(st.opacity);
      if (c[3] > 0) bg = over(c, bg);
    }
    return bg;
  };
  const lum = (c) => {
    const v = c.slice(0, 3).map((x) => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
  };
  const hex = (c) => "#" + c.slice(0, 3).map((x) => Math.round(x).toString(16).padStart(2, "0")).join("");
  const shown = (el) => {
    if (!el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) return false;
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.right + scrollX > 0 && r.bottom + scrollY > 0;
  };
  const name = (el, text) => {
    const route = el.closest("[data-route]");
    const cls = (el.getAttribute("class") || "").trim().split(/\s+/).filter(Boolean).map((c) => "." + c).join("");
    return (route ? "[" + route.dataset.route + "] " : "") + el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + cls + " \"" + text.trim().slice(0, 40) + "\"";
  };
  const out = [];
  const add = (el, colour, what) => {
    const st = getComputedStyle(el);
    const bg = el instanceof SVGElement ? svgBackground(el) : background(el);
    const fg = over(rgba(colour), bg);
    const l = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const size = parseFloat(st.fontSize), weight = Number(st.fontWeight);
    out.push({ what, fg: hex(fg), bg: hex(bg), ratio: (l[0] + 0.05) / (l[1] + 0.05), large: size >= 24 || (size >= 18.66 && weight >= 700) });
  };
  const seen = new Set();
  const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const el = n.parentElement;
    // Disabled controls are exempt from the contrast WCAG asks.
    if (!n.textContent.trim() || !el || seen.has(el) || el.closest(":disabled") || !shown(el)) continue;
    seen.add(el);
    add(el, el instanceof SVGElement ? getComputedStyle(el).fill : getComputedStyle(el).color, name(el, n.textContent));
  }
  for (const el of root.querySelectorAll("input, select")) {
    if (el.disabled || !shown(el)) continue;
    if (el.tagName === "SELECT") add(el, getComputedStyle(el).color, name(el, el.selectedOptions[0] ? el.selectedOptions[0].text : ""));
    else if (el.value) add(el, getComputedStyle(el).color, name(el, el.type === "password" ? "(hidden value)" : el.value));
    else if (el.placeholder) add(el, getComputedStyle(el, "::placeholder").color, name(el, "placeholder " + el.placeholder));
  }
  return out;
};
`

// contrastPair is a piece of text of the page, its colours and their
// contrast ratio.
type contrastPair struct {
	What  string  `json:"what"`
	FG    string  `json:"fg"`
	BG    string  `json:"bg"`
	Ratio float64 `json:"ratio"`
	Large bool    `json:"large"`
}
