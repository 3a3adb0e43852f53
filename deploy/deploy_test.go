package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/experiment"
	"github.com/vaurien-go/vaurien/pkg/logging"
	"github.com/vaurien-go/vaurien/pkg/metrics"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/http"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// The files an operator copies.
const (
	promConfig    = "prometheus/prometheus.yml"
	alertRules    = "prometheus/alerts.yml"
	dashboardJSON = "grafana/dashboards/vaurien.json"
	datasourceYML = "grafana/provisioning/datasources/prometheus.yaml"
	providerYML   = "grafana/provisioning/dashboards/vaurien.yaml"
)

// Grafana's variables, replaced by what Grafana would send: every route,
// and windows that fit this test's 1s scrapes and its length.
var grafanaVars = strings.NewReplacer(
	"$route", ".*",
	"$__rate_interval", "10s",
	"$__interval", "1m",
	"$__range", "1m",
)

// alertWindows shrinks the alert rules' windows so that each alert can be
// seen to hold within seconds: "no traffic for 5 minutes" becomes 5
// seconds, "traffic in the last hour" a minute.
var alertWindows = strings.NewReplacer(
	"[1h]", "[1m]",
	"[15m]", "[1m]",
	"[5m]", "[5s]",
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(testenv.WithSkipSummary(m)) }

// TestPrometheusRunsEveryQuery points a real Prometheus, configured from
// this folder's files, at a running vaurien with traffic and faults on
// four routes, and runs every expression of the dashboard and of the alert
// rules through its HTTP API: each must succeed and return series, and
// each alert must single out the route (or target) it is about.
//
// The routes: web (http, delays and errors), cache (tcp, delays and
// errors), dead (its backend is down: dial errors), quiet (one connection
// that moves 1 MiB once and then stays idle, holding the route's
// single slot, so that every later client is refused).
func TestPrometheusRunsEveryQuery(t *testing.T) {
	bin := testenv.LookPath(t, "prometheus")
	promtool := testenv.LookPath(t, "promtool")
	v := startVaurien(t)
	deadTarget := deadAddr(t)
	prom := startPrometheus(t, bin, v.target, deadTarget)

	// Counters must be seen at their starting values before they move, or
	// increase() has nothing to compare with.
	prom.await(t, `vaurien_relayed_bytes_total{route="quiet"}`, nil)
	v.m.Reloaded(false)
	v.m.Reloaded(true)
	v.s.Route("cache").SetMix(mixOf(t, "20:delay/sleep=5ms,20:error"))
	// An experiment's step is running, as the board reports it: the
	// annotation layer marks it.
	board := experiment.NewBoard(v.m)
	step := api.ExperimentStatus{Experiment: "game-day", Run: "1", State: api.StateRunning, Routes: []string{"cache"}}
	if _, err := board.Publish(step, time.Minute); err != nil {
		t.Fatal(err)
	}
	step.Step = "slow-cache"
	if _, err := board.Publish(step, time.Minute); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var traffic sync.WaitGroup
	v.run(ctx, t, &traffic)
	defer func() {
		cancel()
		traffic.Wait()
	}()

	dash := loadDashboard(t)
	for _, expr := range dash.exprs {
		q := grafanaVars.Replace(expr)
		prom.await(t, q, nil)
	}

	rules := prom.rules(t)
	if want := strings.Count(readFile(t, alertRules), "- alert:"); len(rules) != want {
		t.Fatalf("Prometheus loaded %d alert rules, the file has %d", len(rules), want)
	}
	routes := func(want ...string) func([]series) error {
		return func(got []series) error {
			var names []string
			for _, s := range got {
				names = append(names, s.Metric["route"])
			}
			sort.Strings(names)
			if !slices.Equal(names, want) {
				return fmt.Errorf("routes %v, want %v", names, want)
			}
			return nil
		}
	}
	expect := map[string]func([]series) error{
		"VaurienDown": func(got []series) error {
			if len(got) != 1 || got[0].Metric["instance"] != deadTarget {
				return fmt.Errorf("%v, want the dead target %s only", got, deadTarget)
			}
			return nil
		},
		"VaurienBackendUnreachable":    routes("dead"),
		"VaurienRouteNoTraffic":        routes("quiet"),
		"VaurienMaxConnectionsReached": routes("quiet"),
		"VaurienConfigReloadFailed":    nil,
	}
	for _, r := range rules {
		check, ok := expect[r.Name]
		if !ok {
			t.Errorf("alert %s has no expectation in this test", r.Name)
		}
		prom.await(t, r.Query, check)
	}
	prom.awaitRulesHealthy(t)

	// The dashboard's route variable.
	var values []string
	prom.get(t, "/api/v1/label/route/values?match[]="+url.QueryEscape("vaurien_connections_accepted_total"), &values)
	if want := []string{"cache", "dead", "quiet", "web"}; !slices.Equal(values, want) {
		t.Errorf("route variable values %v, want %v", values, want)
	}

	// promtool's linter on what vaurien serves, after real traffic.
	resp, err := v.client.Get(v.target + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := runTool(promtool, bytes.NewReader(text), "check", "metrics"); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	cancel()
	traffic.Wait()
	for _, ev := range v.logs.events(t) {
		if ev["level"] == "error" {
			t.Errorf("chaos logged an error: %v", ev)
		}
	}
}

// TestPromtoolChecksFiles runs promtool over the scrape configuration (and
// through it the rule file it names) and the rules.
func TestPromtoolChecksFiles(t *testing.T) {
	promtool := testenv.LookPath(t, "promtool")
	for _, args := range [][]string{
		{"check", "config", promConfig},
		{"check", "rules", alertRules},
	} {
		if out, err := runTool(promtool, nil, args...); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if !strings.Contains(readFile(t, promConfig), "- alerts.yml") {
		t.Errorf("%s does not load alerts.yml", promConfig)
	}
}

// TestDashboardShape checks the dashboard without Prometheus: valid JSON,
// every panel on the provisioned data source, the route variable, every
// metric it names one that vaurien serves, and provisioning that matches.
func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if len(d.exprs) < 10 {
		t.Errorf("the dashboard has %d queries", len(d.exprs))
	}
	served := map[string]bool{}
	names, err := func() ([]string, error) {
		reg := prometheus.NewRegistry()
		m := metrics.New(reg)
		m.Route("r", "http").Exchanged(nil, time.Millisecond)
		m.StepRunning("e", "s", true)
		fams, err := reg.Gather()
		var names []string
		for _, f := range fams {
			names = append(names, f.GetName())
		}
		return names, err
	}()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		served[n] = true
		served[n+"_bucket"] = true
	}
	for _, expr := range d.exprs {
		for _, name := range metricNames(expr) {
			if !served[name] {
				t.Errorf("query %q names %s, which vaurien does not serve", expr, name)
			}
		}
		if strings.Contains(expr, "vaurien_") && !strings.Contains(expr, `route=~"$route"`) &&
			!strings.Contains(expr, "build_info") && !strings.Contains(expr, "config_reloads") &&
			!strings.Contains(expr, "experiment_") { // an experiment's steps span routes
			t.Errorf("query %q ignores the route variable", expr)
		}
	}
	ds := readFile(t, datasourceYML)
	for _, want := range []string{"uid: prometheus", "type: prometheus", "url: http://prometheus:9090"} {
		if !strings.Contains(ds, want) {
			t.Errorf("%s lacks %q", datasourceYML, want)
		}
	}
	if !strings.Contains(readFile(t, providerYML), "path: /var/lib/grafana/dashboards") {
		t.Errorf("%s does not point at /var/lib/grafana/dashboards", providerYML)
	}
}

// metricNames picks the metric names out of a PromQL expression: words
// with an underscore that are not functions, keywords or labels.
func metricNames(expr string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(expr, func(r rune) bool {
		return !(r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		if strings.HasPrefix(w, "vaurien_") || strings.HasPrefix(w, "process_") {
			out = append(out, w)
		}
	}
	return out
}

// dashboard is what the tests need of the dashboard JSON.
type dashboard struct {
	exprs []string
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(readFile(t, dashboardJSON)), &doc); err != nil {
		t.Fatalf("%s: %v", dashboardJSON, err)
	}
	var d dashboard
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					d.exprs = append(d.exprs, s)
				}
				if k == "datasource" {
					if m, ok := x.(map[string]any); ok && m["type"] == "prometheus" && m["uid"] != "prometheus" {
						t.Errorf("a datasource reference %v is not the provisioned uid \"prometheus\"", m)
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
	sort.Strings(d.exprs)

	ids := map[float64]bool{}
	for _, p := range doc["panels"].([]any) {
		panel := p.(map[string]any)
		id, _ := panel["id"].(float64)
		if ids[id] {
			t.Errorf("panel id %v is used twice", id)
		}
		ids[id] = true
		if panel["type"] == "row" {
			continue
		}
		if ds, _ := panel["datasource"].(map[string]any); ds["uid"] != "prometheus" {
			t.Errorf("panel %q has data source %v", panel["title"], panel["datasource"])
		}
		if targets, _ := panel["targets"].([]any); len(targets) == 0 {
			t.Errorf("panel %q has no query", panel["title"])
		}
	}
	vars := doc["templating"].(map[string]any)["list"].([]any)
	found := false
	for _, v := range vars {
		v := v.(map[string]any)
		if v["name"] == "route" {
			found = true
			q, _ := v["query"].(map[string]any)
			if q["query"] != "label_values(vaurien_connections_accepted_total, route)" || v["includeAll"] != true || v["allValue"] != ".*" {
				t.Errorf("route variable %v", v)
			}
		}
	}
	if !found {
		t.Error("no route variable")
	}
	return d
}

// vaurien is an in-process vaurien with the metrics and logging observers.
type vaurien struct {
	s      *proxy.Server
	m      *metrics.Metrics
	logs   *logBuffer
	target string // the metrics server's base URL
	client *http.Client
}

func startVaurien(t *testing.T) *vaurien {
	t.Helper()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from the backend\n")
	}))
	t.Cleanup(web.Close)
	echo := echoServer(t)
	v := &vaurien{m: metrics.New(prometheus.NewRegistry()), logs: &logBuffer{}}
	log, err := logging.New(v.logs, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	v.s = proxy.New(proxy.Observers(logging.Observer{Log: log}, v.m), time.Second)
	routes := []proxy.RouteConfig{
		{Name: "web", Protocol: "http", Backend: web.Listener.Addr().String(), Mix: mixOf(t, "30:delay/sleep=10ms,20:error")},
		{Name: "cache", Protocol: "tcp", Backend: echo, Mix: mixOf(t, "40:delay/sleep=5ms,10:error")},
		{Name: "dead", Protocol: "tcp", Backend: deadAddr(t)},
		{Name: "quiet", Protocol: "tcp", Backend: echo, MaxConnections: 1},
	}
	for i := range routes {
		routes[i].Listen = "127.0.0.1:0"
	}
	if err := v.s.Apply(routes); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v.s.Shutdown(ctx)
	})
	mux := http.NewServeMux()
	mux.Handle("/metrics", v.m.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	v.target = srv.URL
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	v.client = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	return v
}

// run sends traffic to every route until ctx ends. quiet gets one
// connection that moves 1 MiB each way and stays open, then only refused
// ones.
func (v *vaurien) run(ctx context.Context, t *testing.T, wg *sync.WaitGroup) {
	addr := func(route string) string { return v.s.Route(route).Addr() }
	quiet, err := net.Dial("tcp", addr("quiet"))
	if err != nil {
		t.Fatal(err)
	}
	// 1 MiB, the relay's splice chunk: an open connection's bytes are
	// counted chunk by chunk.
	payload := make([]byte, 1<<20)
	werr := make(chan error, 1)
	go func() { _, err := quiet.Write(payload); werr <- err }()
	quiet.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(quiet, make([]byte, len(payload))); err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	every := func(d time.Duration, f func()) {
		wg.Go(func() {
			tick := time.NewTicker(d)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					f()
				}
			}
		})
	}
	wg.Go(func() {
		<-ctx.Done()
		quiet.Close()
	})
	every(10*time.Millisecond, func() {
		resp, err := v.client.Get("http://" + addr("web") + "/")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	every(10*time.Millisecond, func() { knock(addr("cache"), "ping\n") })
	every(50*time.Millisecond, func() { knock(addr("dead"), "ping\n") })
	every(50*time.Millisecond, func() { knock(addr("quiet"), "ping\n") })
}

// knock sends msg and reads until the proxy ends the connection.
func knock(addr, msg string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return // a reset at once can beat the end of connect
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte(msg))
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
}

// prom is a running Prometheus.
type prom struct {
	base   string
	client *http.Client
}

// startPrometheus runs Prometheus with this folder's configuration, its
// target rewritten to vaurien's metrics server (plus a target where
// nothing listens, for VaurienDown), 1s scrape and rule intervals, and the
// alert rules with their windows shrunk.
func startPrometheus(t *testing.T, bin, target, deadTarget string) *prom {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := readFile(t, promConfig)
	cfg = mustReplace(t, cfg, "- vaurien:8080", "- "+u.Host+"\n          - "+deadTarget)
	cfg = mustReplace(t, cfg, "scrape_interval: 15s", "scrape_interval: 1s")
	cfg = mustReplace(t, cfg, "evaluation_interval: 15s", "evaluation_interval: 1s")
	writeFile(t, filepath.Join(dir, "prometheus.yml"), cfg)
	writeFile(t, filepath.Join(dir, "alerts.yml"), alertWindows.Replace(readFile(t, alertRules)))

	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
	var out logBuffer
	cmd := exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen,
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	if err := testenv.WaitListening(listen, 30*time.Second); err != nil {
		t.Fatalf("prometheus did not listen: %v\n%s", err, out.String())
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &prom{base: "http://" + listen, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// series is one element of an instant vector.
type series struct {
	Metric map[string]string `json:"metric"`
	Value  []any             `json:"value"`
}

// apiError is an error answer of Prometheus's API, which must fail the
// test at once rather than be retried.
type apiError struct{ msg string }

func (e *apiError) Error() string { return e.msg }

// get calls Prometheus's API and decodes its data into out.
func (p *prom) get(t *testing.T, path string, out any) error {
	t.Helper()
	resp, err := p.client.Get(p.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Status    string          `json:"status"`
		Error     string          `json:"error"`
		ErrorType string          `json:"errorType"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	if body.Status != "success" {
		return &apiError{fmt.Sprintf("%s: %s: %s", path, body.ErrorType, body.Error)}
	}
	return json.Unmarshal(body.Data, out)
}

// await runs an instant query until it returns series that satisfy check
// (any series when check is nil), for at most a minute. An error answer
// fails at once.
func (p *prom) await(t *testing.T, query string, check func([]series) error) []series {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		var data struct {
			ResultType string   `json:"resultType"`
			Result     []series `json:"result"`
		}
		err := p.get(t, "/api/v1/query?query="+url.QueryEscape(query), &data)
		if _, ok := err.(*apiError); ok {
			t.Fatalf("query %s: %v", query, err)
		}
		switch {
		case err != nil:
			last = err
		case data.ResultType != "vector":
			t.Fatalf("query %s: a %s, want a vector", query, data.ResultType)
		case len(data.Result) == 0:
			last = fmt.Errorf("no series")
		case check != nil:
			if last = check(data.Result); last == nil {
				return data.Result
			}
		default:
			return data.Result
		}
		select {
		case <-deadline.C:
			t.Fatalf("query %s: %v after a minute", query, last)
		case <-tick.C:
		}
	}
}

// rule is an alerting rule as Prometheus loaded it.
type rule struct {
	Name      string `json:"name"`
	Query     string `json:"query"`
	Type      string `json:"type"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

func (p *prom) rules(t *testing.T) []rule {
	t.Helper()
	var data struct {
		Groups []struct {
			Rules []rule `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get(t, "/api/v1/rules", &data); err != nil {
		t.Fatal(err)
	}
	var out []rule
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			if r.Type == "alerting" {
				out = append(out, r)
			}
		}
	}
	return out
}

// awaitRulesHealthy waits until Prometheus has evaluated every rule
// without an error.
func (p *prom) awaitRulesHealthy(t *testing.T) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var bad []string
		for _, r := range p.rules(t) {
			if r.Health != "ok" {
				bad = append(bad, fmt.Sprintf("%s: %s %s", r.Name, r.Health, r.LastError))
			}
		}
		if len(bad) == 0 {
			return
		}
		select {
		case <-deadline.C:
			t.Fatalf("rules not healthy: %v", bad)
		case <-tick.C:
		}
	}
}

func runTool(bin string, stdin io.Reader, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = stdin
	return cmd.CombinedOutput()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustReplace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not found: the file's shape changed, update the test", old)
	}
	return strings.Replace(s, old, new, 1)
}

// mixOf builds a mix from the original's syntax with options after a
// slash: "30:delay/sleep=10ms,20:error".
func mixOf(t *testing.T, spec string) *chaos.Mix {
	t.Helper()
	shares, err := chaos.ParseShares(spec)
	if err != nil {
		t.Fatal(err)
	}
	var entries []chaos.Entry
	for _, s := range shares {
		name, opts, _ := strings.Cut(s.Name, "/")
		o := map[string]any{}
		for _, kv := range strings.Split(opts, ";") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				o[k] = v
			}
		}
		b, vals, err := chaos.NewBehavior(name, o)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, chaos.Entry{Name: name, Percent: s.Percent, Options: vals, Behavior: b})
	}
	m, err := chaos.NewMix(entries)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// echoServer answers every connection with what it reads.
func echoServer(t *testing.T) string {
	return testenv.Echo(t).Addr
}

func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// logBuffer collects output written from many goroutines.
type logBuffer struct{ testenv.LogBuffer }

func (b *logBuffer) events(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, ev)
	}
	return out
}
