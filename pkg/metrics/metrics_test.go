package metrics_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/metrics"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/http"
	"github.com/vaurien-go/vaurien/pkg/proxy"
	"github.com/vaurien-go/vaurien/pkg/version"
)

type labels = map[string]string

// TestFaultsAndBytesMatchClients drives two tcp routes with deterministic
// mixes (every connection errors on one, is delayed 10ms on the other) and
// checks the fault, byte and connection counts against what the clients saw
// and what an independent observer was told.
func TestFaultsAndBytesMatchClients(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	count := newCounting()
	echoAddr := backend(t, echo)
	s := serve(t, proxy.Observers(m, count),
		proxy.RouteConfig{Name: "broken", Backend: echoAddr, Mix: mix(t, "100:error")},
		proxy.RouteConfig{Name: "slow", Backend: echoAddr, Mix: mix(t, "100:delay/sleep=10ms")},
	)
	const conns, size = 24, 64 << 10
	payload := bytes.Repeat([]byte("vaurien!"), size/8)

	var errored, delayed, intact atomic.Int64
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			got, _ := exchange(t, s.Route("broken").Addr(), []byte("ping\n"))
			if string(got) != "ping\n" {
				errored.Add(1)
			}
		})
		wg.Go(func() {
			start := time.Now()
			got, err := exchange(t, s.Route("slow").Addr(), payload)
			if err != nil {
				t.Errorf("slow connection %d: %v", i, err)
			}
			if time.Since(start) >= 10*time.Millisecond {
				delayed.Add(1)
			}
			if bytes.Equal(got, payload) {
				intact.Add(1)
			}
		})
	}
	wg.Wait()
	if errored.Load() != conns || delayed.Load() != conns || intact.Load() != conns {
		t.Fatalf("clients saw %d errors, %d delays, %d intact echoes; want %d each", errored.Load(), delayed.Load(), intact.Load(), conns)
	}
	for _, r := range []string{"broken", "slow"} {
		eventually(t, r+" active connections back to 0", func() bool {
			return sample(t, reg, "vaurien_connections_active", labels{"route": r}) == 0
		})
		if got := sample(t, reg, "vaurien_connections_accepted_total", labels{"route": r}); got != conns {
			t.Errorf("%s accepted = %v, want %d", r, got, conns)
		}
	}

	want := map[[2]string]float64{{"broken", "error"}: conns, {"slow", "delay"}: conns}
	for _, r := range []string{"broken", "slow"} {
		for _, b := range chaos.BehaviorNames() {
			if b == "dummy" {
				continue // never a fault
			}
			got := sample(t, reg, "vaurien_faults_injected_total", labels{"route": r, "behavior": b})
			if got != want[[2]string{r, b}] {
				t.Errorf("faults{route=%s,behavior=%s} = %v, want %v", r, b, got, want[[2]string{r, b}])
			}
			if seen := float64(count.count(r, b).Load()); got != seen {
				t.Errorf("faults{route=%s,behavior=%s} = %v, but the engine reported %v", r, b, got, seen)
			}
		}
	}
	for _, dir := range []string{"to_backend", "to_client"} {
		if got := sample(t, reg, "vaurien_relayed_bytes_total", labels{"route": "slow", "direction": dir}); got != conns*size {
			t.Errorf("slow bytes %s = %v, want %d", dir, got, conns*size)
		}
	}
	// The error replaces the backend's answer with 1000 random bytes.
	if got := sample(t, reg, "vaurien_relayed_bytes_total", labels{"route": "broken", "direction": "to_client"}); got != conns*1000 {
		t.Errorf("broken bytes to_client = %v, want %d", got, conns*1000)
	}
	// tcp has no requests: the series exists (naming the protocol) at 0.
	if got := sample(t, reg, "vaurien_requests_total", labels{"route": "slow", "protocol": "tcp"}); got != 0 {
		t.Errorf("tcp requests = %v, want 0", got)
	}
}

// exchange sends msg, half-closes and reads the answer to its end.
func exchange(t testing.TB, addr string, msg []byte) ([]byte, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(msg)
		c.(*net.TCPConn).CloseWrite()
		werr <- err
	}()
	got, err := io.ReadAll(c)
	<-werr // a write may fail when the proxy drops the connection on purpose
	return got, err
}

// TestRequestsOnProtocolRoute checks the protocol-aware counters and the
// duration histogram on an http route in front of a real HTTP server.
func TestRequestsOnProtocolRoute(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer web.Close()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	s := serve(t, m, proxy.RouteConfig{Name: "web", Protocol: "http", Backend: web.Listener.Addr().String(),
		Mix: mix(t, "100:delay/sleep=10ms")})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	const n = 20
	for i := range n {
		resp, err := client.Get("http://" + s.Route("web").Addr() + "/x")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello" {
			t.Fatalf("request %d: body %q", i, body)
		}
	}
	l := labels{"route": "web", "protocol": "http"}
	eventually(t, "every exchange counted", func() bool {
		return sample(t, reg, "vaurien_requests_total", l) == n
	})
	h := series(t, reg, "vaurien_request_duration_seconds", l).GetHistogram()
	if h.GetSampleCount() != n || h.GetSampleSum() < n*0.010 {
		t.Errorf("duration histogram: count %d sum %vs, want %d exchanges of at least 10ms", h.GetSampleCount(), h.GetSampleSum(), n)
	}
	if got := sample(t, reg, "vaurien_faults_injected_total", labels{"route": "web", "behavior": "delay"}); got != n {
		t.Errorf("delays = %v, want %d (one per request)", got, n)
	}
	if got := sample(t, reg, "vaurien_connections_accepted_total", labels{"route": "web"}); got < 1 || got > n {
		t.Errorf("accepted = %v: keep-alive requests should share connections", got)
	}
}

// TestBytesGrowWhileOpen sends 3 MiB over one connection in 1 MiB steps and
// watches the counter follow each step before the connection closes.
func TestBytesGrowWhileOpen(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := serve(t, metrics.New(reg), proxy.RouteConfig{Name: "long", Backend: backend(t, discard)})
	c, err := net.Dial("tcp", s.Route("long").Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	step := make([]byte, 1<<20)
	l := labels{"route": "long", "direction": "to_backend"}
	for i := 1; i <= 3; i++ {
		if _, err := c.Write(step); err != nil {
			t.Fatal(err)
		}
		want := float64(i << 20)
		eventually(t, fmt.Sprintf("%d MiB counted on an open connection", i), func() bool {
			return sample(t, reg, "vaurien_relayed_bytes_total", l) == want
		})
	}
	if got := sample(t, reg, "vaurien_connections_active", labels{"route": "long"}); got != 1 {
		t.Errorf("active = %v while the connection is open, want 1", got)
	}
}

// TestActiveConnections holds connections open, then lets them go.
func TestActiveConnections(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := serve(t, metrics.New(reg), proxy.RouteConfig{Name: "hold", Backend: backend(t, echo)})
	const k = 7
	var conns []net.Conn
	for range k {
		c, err := net.Dial("tcp", s.Route("hold").Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	l := labels{"route": "hold"}
	eventually(t, "7 active connections", func() bool {
		return sample(t, reg, "vaurien_connections_active", l) == k
	})
	for _, c := range conns {
		c.Close()
	}
	eventually(t, "active connections back to 0", func() bool {
		return sample(t, reg, "vaurien_connections_active", l) == 0
	})
	if got := sample(t, reg, "vaurien_connections_accepted_total", l); got != k {
		t.Errorf("accepted = %v, want %d", got, k)
	}
}

// TestRefusalsAndDialErrors covers max_connections, the down behavior and an
// unreachable backend.
func TestRefusalsAndDialErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := serve(t, metrics.New(reg),
		proxy.RouteConfig{Name: "full", Backend: backend(t, discard), MaxConnections: 1},
		proxy.RouteConfig{Name: "down", Backend: backend(t, discard), Mix: mix(t, "100:down")},
		proxy.RouteConfig{Name: "dead", Backend: deadAddr(t)},
	)
	hold, err := net.Dial("tcp", s.Route("full").Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	eventually(t, "the first connection accepted", func() bool {
		return sample(t, reg, "vaurien_connections_active", labels{"route": "full"}) == 1
	})
	const n = 3
	for range n {
		for _, r := range []string{"full", "down", "dead"} {
			got, err := exchange(t, s.Route(r).Addr(), []byte("x"))
			if len(got) != 0 {
				t.Errorf("%s answered %q", r, got)
			}
			if err != nil {
				t.Logf("%s: %v", r, err) // resets are expected, failed dials not
			}
		}
	}
	checks := []struct {
		name string
		l    labels
		want float64
	}{
		{"vaurien_connections_refused_total", labels{"route": "full", "reason": "max_connections"}, n},
		{"vaurien_connections_refused_total", labels{"route": "full", "reason": "down"}, 0},
		{"vaurien_connections_refused_total", labels{"route": "down", "reason": "down"}, n},
		{"vaurien_faults_injected_total", labels{"route": "down", "behavior": "down"}, n},
		{"vaurien_backend_dial_errors_total", labels{"route": "dead"}, n},
		{"vaurien_backend_dial_errors_total", labels{"route": "full"}, 0},
	}
	for _, c := range checks {
		var got float64
		eventually(t, fmt.Sprintf("%s%v = %v", c.name, c.l, c.want), func() bool {
			got = sample(t, reg, c.name, c.l)
			if got != c.want {
				t.Logf("%s%v = %v", c.name, c.l, got)
			}
			return got == c.want
		})
	}
}

// TestMixWeights checks the live mix gauges, including behaviors that leave
// the mix and go back to 0.
func TestMixWeights(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := serve(t, metrics.New(reg), proxy.RouteConfig{Name: "mixed", Backend: deadAddr(t), Mix: mix(t, "20:delay,5:error")})
	weights := func() map[string]float64 {
		w := map[string]float64{}
		for _, b := range chaos.BehaviorNames() {
			w[b] = sample(t, reg, "vaurien_mix_weight_ratio", labels{"route": "mixed", "behavior": b})
		}
		return w
	}
	check := func(want map[string]float64) {
		t.Helper()
		for b, got := range weights() {
			if d := got - want[b]; d > 1e-9 || d < -1e-9 {
				t.Errorf("mix weight of %s = %v, want %v", b, got, want[b])
			}
		}
	}
	check(map[string]float64{"delay": .2, "error": .05, "dummy": .75})
	s.Route("mixed").SetMix(mix(t, "30:reset_peer"))
	check(map[string]float64{"reset_peer": .3, "dummy": .7})
	s.Route("mixed").SetMix(mix(t, ""))
	check(map[string]float64{"dummy": 1})
}

// TestStoppedDeletesSeries removes a route and replaces another (a new
// listen address and protocol): the removed route's series go, the replaced
// route's stay, its old protocol's series go once the old route drained.
func TestStoppedDeletesSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := serve(t, metrics.New(reg),
		proxy.RouteConfig{Name: "gone", Backend: deadAddr(t)},
		proxy.RouteConfig{Name: "moved", Backend: deadAddr(t)},
	)
	if err := s.Apply([]proxy.RouteConfig{{Name: "moved", Listen: "127.0.0.1:0", Protocol: "mysql", Backend: deadAddr(t)}}); err != nil {
		t.Fatal(err)
	}
	perRoute := func(route string) int {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "route" && lp.GetValue() == route {
						n++
					}
				}
			}
		}
		return n
	}
	eventually(t, "the removed route's series deleted", func() bool { return perRoute("gone") == 0 })
	eventually(t, "the old protocol's series deleted", func() bool {
		return sample(t, reg, "vaurien_requests_total", labels{"route": "moved", "protocol": "tcp"}) == -1
	})
	if sample(t, reg, "vaurien_requests_total", labels{"route": "moved", "protocol": "mysql"}) != 0 ||
		sample(t, reg, "vaurien_mix_weight_ratio", labels{"route": "moved", "behavior": "dummy"}) != 1 {
		t.Errorf("the replaced route lost its series")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Shutdown(ctx)
	if n := perRoute("moved"); n != 0 {
		t.Errorf("%d series left after shutdown", n)
	}
}

// TestLabelsAreBounded gathers everything after traffic of every kind and
// checks each family's label names and that every value comes from the
// config or a fixed set, never from a client.
func TestLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	s := serve(t, m,
		proxy.RouteConfig{Name: "a", Backend: backend(t, echo), Mix: mix(t, "30:delay/sleep=1ms,30:error,10:down")},
		proxy.RouteConfig{Name: "b", Backend: deadAddr(t), MaxConnections: 1},
	)
	for range 20 {
		exchange(t, s.Route("a").Addr(), []byte("hello"))
		exchange(t, s.Route("b").Addr(), []byte("hello"))
	}
	db := m.Route("a", "postgres")
	db.Exchanged(&chaos.Request{Command: "drop table users; --"}, time.Millisecond)
	db.Injected("error", &chaos.Request{Command: "UPDATE"})
	m.Reloaded(true)
	m.Reloaded(false)
	before := time.Now()
	m.ConfigLoaded(sha256.Sum256([]byte("route {}")))

	allowed := map[string][]string{
		"route":     {"a", "b"},
		"protocol":  chaos.ProtocolNames(),
		"behavior":  chaos.BehaviorNames(),
		"direction": {"to_backend", "to_client"},
		"reason":    {"max_connections", "down", "bad_request", "loop", "other"},
		"result":    {"success", "failure"},
		"command":   postgresCommands(t),
	}
	wantLabels := map[string][]string{
		"vaurien_connections_accepted_total":                   {"route"},
		"vaurien_connections_active":                           {"route"},
		"vaurien_connections_refused_total":                    {"reason", "route"},
		"vaurien_backend_dial_errors_total":                    {"route"},
		"vaurien_relayed_bytes_total":                          {"direction", "route"},
		"vaurien_requests_total":                               {"protocol", "route"},
		"vaurien_request_duration_seconds":                     {"protocol", "route"},
		"vaurien_faults_injected_total":                        {"behavior", "route"},
		"vaurien_mix_weight_ratio":                             {"behavior", "route"},
		"vaurien_statements_total":                             {"command", "route"},
		"vaurien_statement_duration_seconds":                   {"command", "route"},
		"vaurien_statement_faults_injected_total":              {"behavior", "command", "route"},
		"vaurien_config_reloads_total":                         {"result"},
		"vaurien_config_hash":                                  nil,
		"vaurien_config_last_reload_success_timestamp_seconds": nil,
		"vaurien_build_info":                                   {"goversion", "revision", "version"},
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "vaurien_") {
			continue
		}
		seen[name] = true
		want, ok := wantLabels[name]
		if !ok {
			t.Errorf("undocumented metric %s", name)
			continue
		}
		for _, m := range mf.GetMetric() {
			var names []string
			for _, lp := range m.GetLabel() {
				names = append(names, lp.GetName())
				v := lp.GetValue()
				if strings.Contains(v, "127.0.0.1") || strings.Contains(v, ":") {
					t.Errorf("%s{%s=%q} looks like an address", name, lp.GetName(), v)
				}
				if vals, bounded := allowed[lp.GetName()]; bounded && !slices.Contains(vals, v) {
					t.Errorf("%s{%s=%q}: not a configured or fixed value", name, lp.GetName(), v)
				}
			}
			if !slices.Equal(names, want) {
				t.Errorf("%s has labels %v, want %v", name, names, want)
			}
		}
	}
	for name := range wantLabels {
		if !seen[name] {
			t.Errorf("metric %s missing", name)
		}
	}
	if got := sample(t, reg, "vaurien_build_info", labels{"version": version.Version, "goversion": version.GoVersion()}); got != 1 {
		t.Errorf("build info = %v, want 1", got)
	}
	if got, want := sample(t, reg, "vaurien_config_hash", nil), float64(0xf9764b3220f7); got != want {
		t.Errorf("config hash = %v, want %v (sha256sum of the bytes begins f9764b3220f7)", got, want)
	}
	if got := sample(t, reg, "vaurien_config_last_reload_success_timestamp_seconds", nil); got < float64(before.Unix()) || got > float64(time.Now().Unix()+1) {
		t.Errorf("last reload success = %v, want between %d and now", got, before.Unix())
	}
	for r, want := range map[string]float64{"success": 1, "failure": 1} {
		if got := sample(t, reg, "vaurien_config_reloads_total", labels{"result": r}); got != want {
			t.Errorf("reloads{result=%s} = %v, want %v", r, got, want)
		}
	}
}

// TestLint runs client_golang's linter (Prometheus naming rules) over the
// whole registry, Go and process collectors included.
func TestLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Route("r", "tcp").Exchanged(nil, time.Millisecond)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	n, err := testutil.GatherAndCount(reg, "vaurien_faults_injected_total")
	if err != nil {
		t.Fatal(err)
	}
	if n != len(chaos.BehaviorNames())-1 {
		t.Errorf("%d fault series for one route, want one per registered behavior but dummy (%d)", n, len(chaos.BehaviorNames())-1)
	}
}

// TestHandler scrapes the handler as Prometheus would.
func TestHandler(t *testing.T) {
	m := metrics.New(nil)
	m.Route("r", "tcp").Injected("delay", nil)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`vaurien_faults_injected_total{behavior="delay",route="r"} 1`,
		`vaurien_build_info{`,
		"go_goroutines ",
		"process_cpu_seconds_total ",
		"promhttp_metric_handler_requests_total",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// BenchmarkObserver measures the hot-path events from many goroutines at
// once, as live connections report them.
func BenchmarkObserver(b *testing.B) {
	r := metrics.New(nil).Route("bench", "tcp")
	b.Run("Relayed", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.Relayed(chaos.ToClient, 1<<20)
			}
		})
	})
	b.Run("Injected", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.Injected("delay", nil)
			}
		})
	})
	b.Run("Exchanged", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				r.Exchanged(nil, 3*time.Millisecond)
			}
		})
	})
	// A statement on a database route is counted by command as well.
	db := metrics.New(nil).Route("bench", "postgres")
	update := &chaos.Request{Command: "UPDATE"}
	b.Run("ExchangedStatement", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				db.Exchanged(update, 3*time.Millisecond)
			}
		})
	})
}

// TestREADMEListsEveryMetric keeps the README's metric table true: every
// vaurien metric is listed with its type and labels, and nothing else is.
func TestREADMEListsEveryMetric(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Skipf("no README: %v", err)
	}
	_, section, ok := strings.Cut(string(data), "\n## Metrics\n")
	if !ok {
		t.Fatal("README has no Metrics section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string]string{} // name → "type labels"
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`vaurien_") {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		labels := strings.NewReplacer("`", "", " ", "").Replace(cells[3])
		documented[name] = strings.TrimSpace(cells[2]) + " " + labels
	}

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Route("r", "tcp").Exchanged(nil, time.Millisecond)
	// TLS series appear with a route's first handshake.
	tlsRoute := m.Route("t", "tcp").(proxy.TLSObserver)
	tlsRoute.Handshake(proxy.SideClient, time.Millisecond, "timeout", os.ErrDeadlineExceeded)
	tlsRoute.CertReloaded(nil)
	m.StepRunning("e", "s", true)
	m.SLOHeld("e", "slo", true)
	// Statement series appear with a database route's first statement.
	db := m.Route("db", "postgres")
	db.Exchanged(&chaos.Request{Command: "SELECT"}, time.Millisecond)
	db.Injected("error", &chaos.Request{Command: "SELECT"})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "vaurien_") {
			continue
		}
		var labels []string
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		want := strings.ToLower(mf.GetType().String()) + " " + strings.Join(labels, ",")
		got, ok := documented[name]
		delete(documented, name)
		if !ok {
			t.Errorf("README does not list %s", name)
			continue
		}
		// The README lists labels in a reading order; compare as sets.
		gotType, gotLabels, _ := strings.Cut(got, " ")
		wantType, wantLabels, _ := strings.Cut(want, " ")
		gl, wl := strings.Split(gotLabels, ","), strings.Split(wantLabels, ",")
		slices.Sort(gl)
		if gotType != wantType || !slices.Equal(gl, wl) {
			t.Errorf("README lists %s as %q, want %q", name, got, want)
		}
	}
	for name := range documented {
		t.Errorf("README lists %s, which vaurien does not serve", name)
	}
}

// TestStatementsByCommand: on a route whose protocol declares its commands
// (postgres), statements, their durations and faults are counted by
// command, and a command outside the declared set counts as the catch-all.
func TestStatementsByCommand(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	db := m.Route("db", "postgres")
	for range 3 {
		db.Exchanged(&chaos.Request{Command: "UPDATE", SQL: "update t set a = 1"}, 20*time.Millisecond)
	}
	db.Exchanged(&chaos.Request{Command: "SELECT"}, time.Millisecond)
	db.Exchanged(&chaos.Request{Command: "update t set a = 1"}, time.Millisecond) // not a keyword
	db.Injected("error", &chaos.Request{Command: "UPDATE"})
	db.Injected("error", nil) // a draw with no statement (tcp) counts only by behavior
	for cmd, want := range map[string]float64{"UPDATE": 3, "SELECT": 1, "OTHER": 1} {
		if got := sample(t, reg, "vaurien_statements_total", labels{"route": "db", "command": cmd}); got != want {
			t.Errorf("statements{command=%s} = %v, want %v", cmd, got, want)
		}
	}
	h := series(t, reg, "vaurien_statement_duration_seconds", labels{"route": "db", "command": "UPDATE"}).GetHistogram()
	if h.GetSampleCount() != 3 || h.GetSampleSum() < 0.06 {
		t.Errorf("UPDATE durations: %d samples, sum %vs; want 3 of 20ms", h.GetSampleCount(), h.GetSampleSum())
	}
	if got := sample(t, reg, "vaurien_statement_faults_injected_total", labels{"route": "db", "behavior": "error", "command": "UPDATE"}); got != 1 {
		t.Errorf("UPDATE faults = %v, want 1", got)
	}
	if got := sample(t, reg, "vaurien_requests_total", labels{"route": "db", "protocol": "postgres"}); got != 5 {
		t.Errorf("requests = %v, want 5", got)
	}
	// A protocol with open commands (redis) gets no series by command.
	m.Route("cache", "redis").Exchanged(&chaos.Request{Command: "GET"}, time.Millisecond)
	if got := sample(t, reg, "vaurien_statements_total", labels{"route": "cache", "command": "GET"}); got != -1 {
		t.Errorf("a redis route has statements{command=GET} = %v, want no series", got)
	}
	db.Stopped()
	if got := sample(t, reg, "vaurien_statements_total", labels{"route": "db", "command": "UPDATE"}); got != -1 {
		t.Errorf("after the route stopped, statements = %v, want no series", got)
	}
}

func postgresCommands(t *testing.T) []string {
	spec, ok := chaos.LookupProtocol("postgres")
	if !ok || len(spec.Commands) == 0 {
		t.Fatal("the postgres protocol declares no commands")
	}
	return spec.Commands
}
