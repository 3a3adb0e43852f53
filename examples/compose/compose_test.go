// Package compose_test runs the compose example for real on the machine's
// Docker engine: the images are built the way CI builds them (static
// binaries and the Dockerfile.prebuilt files), the upstream images are
// stood in for by images made of the host's own redis-server, memcached,
// nginx and prometheus when they cannot be pulled, and every service but
// Grafana (which has no such stand-in) is brought up under a project name
// of its own. Without a Docker engine the test skips, or fails under
// VAURIEN_REQUIRE_SERVERS=1.
package compose_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/dockertest"
	"github.com/vaurien-go/vaurien/internal/testenv"
)

// services are the compose services the test starts: all but grafana.
var services = []string{"redis", "memcached", "web", "vaurien", "app", "prometheus"}

// backends are the app's backends, named as vaurien's routes.
var backends = []string{"redis", "memcached", "web"}

func TestComposeStack(t *testing.T) {
	dockertest.Require(t)
	start := time.Now()
	root := dockertest.ModuleRoot(t)
	dockertest.VaurienImage(t, "vaurien-go/vaurien:latest", dockertest.TestVersion)
	dockertest.PrebuiltImage(t, "./examples/compose/app", "bin/compose-demo-app",
		"examples/compose/app/Dockerfile.prebuilt", "vaurien-go/compose-demo-app:latest", "")
	for _, s := range dockertest.StandIns() {
		dockertest.BuildStandIn(t, s)
	}
	t.Logf("images ready in %v", time.Since(start).Round(time.Millisecond))

	ports := map[string]int{}
	var env []string
	for _, name := range []string{"VAURIEN_ADMIN_PORT", "VAURIEN_WEB_PORT", "APP_PORT", "PROMETHEUS_PORT", "GRAFANA_PORT"} {
		ports[name] = testenv.FreePort(t)
		env = append(env, fmt.Sprintf("%s=%d", name, ports[name]))
	}
	admin := fmt.Sprintf("http://127.0.0.1:%d", ports["VAURIEN_ADMIN_PORT"])
	prometheus := fmt.Sprintf("http://127.0.0.1:%d", ports["PROMETHEUS_PORT"])

	p := dockertest.NewProject(t, filepath.Join(root, "examples", "compose"), env...)
	p.Up(services...)
	vaurien, app := p.Container("vaurien"), p.Container("app")
	t.Logf("compose project %s up in %v", p.Name, time.Since(start).Round(time.Millisecond))
	logs := &appLogs{t: t, id: app, vaurien: vaurien}

	// Every route carries the app's calls, and none fails.
	logs.waitClean(backends, 0, time.Minute)
	t.Logf("clean traffic on every route at %v", time.Since(start).Round(time.Millisecond))

	// The console, the walkthrough's first link, is served under its
	// strict policy.
	for _, path := range []string{"/ui/", "/ui/console.js"} {
		consoleFile(t, admin+path)
	}

	// A fault switched on from the host: every Redis call fails, the
	// other routes are untouched, and vaurien counts the faults.
	before := faultsInjected(t, admin, "redis")
	mark := logs.count()
	adminCall(t, http.MethodPut, admin+"/routes/redis/mix", `{"behaviors":[{"name":"error","percent":100}]}`)
	errLine := logs.wait("redis errors", mark, 45*time.Second, func(l line) bool {
		return l.Backend == "redis" && l.Errors > 0 && l.OK == 0
	})
	t.Logf("with 100%% error on the redis route the app sees: %s", errLine.LastError)
	for _, l := range logs.since(mark) {
		if l.Backend != "redis" && l.Errors > 0 {
			t.Errorf("the fault on the redis route reached %s: %+v", l.Backend, l)
		}
	}
	if after := faultsInjected(t, admin, "redis"); after <= before {
		t.Errorf("vaurien_faults_injected_total for route redis went from %v to %v while every call failed", before, after)
	}

	// Reset: the route's mix is the file's again and the errors stop.
	mark = logs.count()
	adminCall(t, http.MethodPost, admin+"/routes/redis/reset", "")
	logs.waitClean([]string{"redis"}, mark, 45*time.Second)
	t.Logf("redis clean again at %v", time.Since(start).Round(time.Millisecond))

	dockertest.WaitHealthy(t, vaurien, 90*time.Second)
	t.Logf("vaurien healthy at %v", time.Since(start).Round(time.Millisecond))

	waitScraped(t, prometheus, 90*time.Second)
	t.Logf("prometheus scraped vaurien at %v", time.Since(start).Round(time.Millisecond))

	took := dockertest.Stop(t, vaurien)
	c := dockertest.InspectContainer(t, vaurien)
	t.Logf("docker stop vaurien took %v, exit code %d (total %v)", took.Round(time.Millisecond), c.State.ExitCode, time.Since(start).Round(time.Millisecond))
	if c.State.ExitCode != 0 || took >= 10*time.Second {
		t.Errorf("docker stop vaurien: exit code %d after %v, want 0 within the 10s grace period; logs:\n%s",
			c.State.ExitCode, took, tail(dockertest.Logs(t, vaurien), 30))
	}
}

// line is one report line of the demo app.
type line struct {
	Backend     string  `json:"backend"`
	OK          int     `json:"ok"`
	Errors      int     `json:"errors"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	TotalOK     int64   `json:"total_ok"`
	TotalErrors int64   `json:"total_errors"`
	LastError   string  `json:"last_error"`
}

// appLogs reads the demo app's report lines from its container.
type appLogs struct {
	t       *testing.T
	id      string
	vaurien string // vaurien's container: waits end early when it is gone
}

// checkVaurien fails the test at once when vaurien's container has stopped
// (a configuration it rejects, a crash): no wait on the app can succeed.
func (a *appLogs) checkVaurien() {
	a.t.Helper()
	if c := dockertest.InspectContainer(a.t, a.vaurien); !c.State.Running {
		a.t.Fatalf("vaurien's container is %s (exit code %d); its last lines:\n%s",
			c.State.Status, c.State.ExitCode, tail(dockertest.Logs(a.t, a.vaurien), 15))
	}
}

func (a *appLogs) all() []line {
	a.t.Helper()
	var out []line
	sc := bufio.NewScanner(strings.NewReader(dockertest.Logs(a.t, a.id)))
	for sc.Scan() {
		var l line
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Backend != "" {
			out = append(out, l)
		}
	}
	return out
}

func (a *appLogs) count() int { return len(a.all()) }

func (a *appLogs) since(mark int) []line {
	all := a.all()
	return all[min(mark, len(all)):]
}

// wait polls the lines after mark until one satisfies cond.
func (a *appLogs) wait(what string, mark int, d time.Duration, cond func(line) bool) line {
	a.t.Helper()
	var found line
	ok := dockertest.Eventually(d, 500*time.Millisecond, func() bool {
		a.checkVaurien()
		for _, l := range a.since(mark) {
			if cond(l) {
				found = l
				return true
			}
		}
		return false
	})
	if !ok {
		a.t.Fatalf("the app's output shows no %s within %v; its last lines:\n%s", what, d, a.tail())
	}
	return found
}

// waitClean waits until each backend's last three lines after mark show
// successful calls, a growing total, and no error.
func (a *appLogs) waitClean(which []string, mark int, d time.Duration) {
	a.t.Helper()
	ok := dockertest.Eventually(d, 500*time.Millisecond, func() bool {
		a.checkVaurien()
		per := map[string][]line{}
		for _, l := range a.since(mark) {
			per[l.Backend] = append(per[l.Backend], l)
		}
		for _, b := range which {
			ls := per[b]
			if len(ls) < 3 {
				return false
			}
			ls = ls[len(ls)-3:]
			for i, l := range ls {
				if l.OK == 0 || l.Errors != 0 || (i > 0 && l.TotalOK <= ls[i-1].TotalOK) {
					return false
				}
			}
		}
		return true
	})
	if !ok {
		a.t.Fatalf("the app's calls to %v are not all succeeding within %v; its last lines:\n%s", which, d, a.tail())
	}
}

func (a *appLogs) tail() string {
	return tail(dockertest.Logs(a.t, a.id), 15)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// adminCall makes a call to vaurien's admin API and wants a 2xx answer.
func adminCall(t *testing.T, method, url, body string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, url, resp.Status, b)
	}
}

// consoleFile wants a file of the console served whole, with the policy
// that allows no inline script or style.
func consoleFile(t *testing.T, url string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	csp := resp.Header.Get("Content-Security-Policy")
	if err != nil || resp.StatusCode != http.StatusOK || len(b) < 1000 {
		t.Errorf("GET %s: %s, %d bytes, %v", url, resp.Status, len(b), err)
	}
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("GET %s: Content-Security-Policy %q, want the console's strict one", url, csp)
	}
}

// faultsInjected sums vaurien_faults_injected_total over the behaviors of
// a route, from vaurien's /metrics.
func faultsInjected(t *testing.T, admin, route string) float64 {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "vaurien_faults_injected_total{") || !strings.Contains(l, `route="`+route+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", l, err)
		}
		sum += v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	return sum
}

// waitScraped waits until Prometheus reports vaurien's target up.
func waitScraped(t *testing.T, prometheus string, d time.Duration) {
	t.Helper()
	url := prometheus + `/api/v1/query?query=up%7Bjob%3D%22vaurien%22%7D`
	var last string
	ok := dockertest.Eventually(d, time.Second, func() bool {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Value []any
				}
			}
		}
		b, _ := io.ReadAll(resp.Body)
		last = string(b)
		if json.Unmarshal(b, &r) != nil || r.Status != "success" || len(r.Data.Result) != 1 {
			return false
		}
		v := r.Data.Result[0].Value
		return len(v) == 2 && v[1] == "1"
	})
	if !ok {
		t.Fatalf("prometheus does not report up{job=\"vaurien\"} == 1 within %v; last answer: %s", d, last)
	}
}
