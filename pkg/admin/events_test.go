package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/pkg/admin"
	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/config"
)

// stream is one subscriber of GET /events.
type stream struct {
	resp   *http.Response
	sc     *bufio.Scanner
	cancel context.CancelFunc
}

func openStream(t *testing.T, url string, header http.Header) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := (&http.Transport{}).RoundTrip(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: %d %s %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	s := &stream{resp: resp, sc: bufio.NewScanner(resp.Body), cancel: cancel}
	s.sc.Buffer(make([]byte, 64<<10), 4<<20)
	t.Cleanup(s.close)
	return s
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// next returns the next state event.
func (s *stream) next() (api.Snapshot, error) {
	event := ""
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "state":
			var snap api.Snapshot
			err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &snap)
			return snap, err
		}
	}
	if err := s.sc.Err(); err != nil {
		return api.Snapshot{}, err
	}
	return api.Snapshot{}, io.EOF
}

func (s *stream) mustNext(t *testing.T) api.Snapshot {
	t.Helper()
	snap, err := s.next()
	if err != nil {
		t.Fatalf("read an event: %v", err)
	}
	return snap
}

// readEvent opens a stream, reads its first event and closes it.
func readEvent(t *testing.T, url string, header http.Header) api.Snapshot {
	t.Helper()
	s := openStream(t, url, header)
	defer s.close()
	return s.mustNext(t)
}

func routeState(t *testing.T, snap api.Snapshot, name string) api.RouteState {
	t.Helper()
	for _, r := range snap.Routes {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no route %q in the event of %s", name, snap.Time)
	return api.RouteState{}
}

// One stream carries every route with its counters and rates, the timed
// changes and the experiments; a change made through the API arrives at
// once, not at the next tick.
func TestEventsCarryTheState(t *testing.T) {
	e := startEnv(t, "")
	s := openStream(t, e.admin+"/events", nil)
	first := s.mustNext(t)
	if web := routeState(t, first, "web"); !web.Enabled || !web.Default || web.Listen != e.web || web.Protocol == "" {
		t.Fatalf("web in the first event: %+v", web)
	}
	if side := routeState(t, first, "side"); len(side.ConfiguredMix) != 1 || side.ConfiguredMix[0].Name != "delay" {
		t.Fatalf("side's configured mix: %+v", side.ConfiguredMix)
	}
	if len(first.Experiments) != 1 || first.Experiments[0].Name != "web" {
		t.Fatalf("experiments: %+v", first.Experiments)
	}

	// Traffic with faults: the rates of a later tick show it.
	e.mustCall(t, http.MethodPut, "/routes/web/mix", `{"behaviors": [{"name": "error", "percent": 100}], "duration": "1m"}`, http.StatusOK, nil)
	changed := time.Now()
	for {
		snap := s.mustNext(t)
		web := routeState(t, snap, "web")
		if len(web.Mix) == 1 && web.Mix[0].Name == "error" {
			if web.RevertsAt == nil || web.RevertsAt.Before(changed.Add(50*time.Second)) {
				t.Fatalf("the timed change's end: %v", web.RevertsAt)
			}
			if took := time.Since(changed); took > 900*time.Millisecond {
				t.Logf("the change took %s to arrive (a loaded machine?)", took)
			}
			break
		}
	}
	for range 20 {
		fetch(e.web) // answered with the injected error
	}
	// web is a tcp route: connections, not requests, are what it counts.
	deadline := time.Now().Add(10 * time.Second)
	for {
		web := routeState(t, s.mustNext(t), "web")
		if web.Rates.Connections > 0 && web.Rates.Bytes > 0 && web.Rates.Faults["error"] > 0 && web.Faults["error"] >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rates never showed the traffic: %+v, faults %v", web.Rates, web.Faults)
		}
	}
}

// 50 consoles read the stream while other subscribers read nothing at all,
// their connections full: the readers keep getting every tick, the proxy
// keeps the pace it had with the readers alone, and each stalled
// subscriber is left with the latest state only, not a queue.
func TestEventsStalledSubscribersHoldUpNoOne(t *testing.T) {
	// 40 routes make each event some 25 kB, so that the storm of changes
	// below sends each subscriber far more than a socket's buffers hold.
	a := backend(t, "A")
	var cfg strings.Builder
	cfg.WriteString("admin {\n  listen = \"127.0.0.1:0\"\n}\n")
	for i := range 40 {
		fmt.Fprintf(&cfg, "route \"r%02d\" {\n  listen = \"127.0.0.1:0\"\n  backend = %q\n  behavior \"delay\" {\n    percent = 1\n    sleep = \"1ms\"\n  }\n}\n", i, a.Listener.Addr().String())
	}
	p := startApp(t, cfg.String())
	admin := "http://" + p.AdminAddr()
	host := p.AdminAddr()
	r0, err := p.Route("r00")
	if err != nil {
		t.Fatal(err)
	}

	// The same requests through the proxy with no subscriber at all.
	quiet, err := timedFetches(r0.Addr(), 200, nil)
	if err != nil {
		t.Fatalf("requests through the proxy before the subscribers: %v", err)
	}

	const readersN = 50
	readers := make([]*stream, readersN)
	for i := range readers {
		readers[i] = openStream(t, admin+"/events", nil)
	}
	counts := make([]atomic.Int64, readersN)
	var wg sync.WaitGroup
	for i, r := range readers {
		wg.Go(func() {
			// Counted, not decoded: the readers' own work must not be
			// what limits the pace.
			for r.sc.Scan() {
				if strings.HasPrefix(r.sc.Text(), "event: state") {
					counts[i].Add(1)
				}
			}
		})
	}
	least := func() int {
		m := counts[0].Load()
		for i := range counts {
			m = min(m, counts[i].Load())
		}
		return int(m)
	}

	// storm sends changes, each to every subscriber, until every reader
	// has had n more events (some 25 kB each), and times requests through
	// the proxy all along.
	hc := &http.Client{Timeout: 5 * time.Second}
	changes := 0
	storm := func(n int) []time.Duration {
		t.Helper()
		var took []time.Duration
		var fetchErr error
		stop := make(chan struct{})
		fetched := make(chan struct{})
		go func() {
			defer close(fetched)
			took, fetchErr = timedFetches(r0.Addr(), 0, stop)
		}()
		start, until := time.Now(), least()+n
		for least() < until && time.Since(start) < 30*time.Second {
			body := fmt.Sprintf(`{"behaviors": [{"name": "delay", "percent": %d}]}`, 1+changes%50)
			req, _ := http.NewRequest(http.MethodPut, admin+"/routes/r01/mix", strings.NewReader(body))
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			changes++
		}
		close(stop)
		<-fetched
		if fetchErr != nil || len(took) < 5 {
			t.Fatalf("requests through the proxy during the storm: %d answered, then %v", len(took), fetchErr)
		}
		return took
	}

	// The readers alone first: the pace of the proxy while the machine is
	// this busy, the baseline.
	baseline := storm(100)

	// Stalled subscribers: a tiny receive buffer, never read, so that
	// their writers block.
	const stalledN = 5
	var stalled []net.Conn
	for range stalledN {
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
			if err != nil {
				return err
			}
			return serr
		}}
		conn, err := d.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: %s\r\n\r\n", host)
		stalled = append(stalled, conn)
	}

	// The storm again, until every reader has had some 10 MB more: several
	// times what a stalled subscriber's socket buffers hold.
	from := least()
	took := storm(400)
	// The bound is loose on purpose: a loaded machine is noisy. A proxy
	// held up by the stalled subscribers would wait on their full sockets,
	// far longer.
	base, med := median(baseline), median(took)
	t.Logf("requests through the proxy, median (slowest) of each run: %s (%s) of %d with no subscriber; %s (%s) of %d with the readers, the baseline; %s (%s) of %d with the stalled subscribers too",
		median(quiet), slices.Max(quiet), len(quiet), base, slices.Max(baseline), len(baseline), med, slices.Max(took), len(took))
	if limit := 5*base + 5*time.Millisecond; med > limit {
		t.Errorf("requests through the proxy took %s (median) with stalled subscribers, over %s (5 times the baseline's %s, plus 5ms)", med, limit, base)
	}
	for i := range readers {
		readers[i].close()
	}
	wg.Wait()

	// A stalled subscriber, read at last, holds what its socket's buffers
	// took and then the latest state: far fewer events than the readers
	// got while it stalled.
	conn := stalled[0]
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, _ := io.ReadAll(conn)
	n := strings.Count(string(got), "event: state")
	lo := least() - from
	t.Logf("%d changes; readers got at least %d events while a stalled subscriber got %d (%d kB)", changes, lo, n, len(got)>>10)
	if lo < 2*n {
		t.Errorf("readers got as few as %d events while a stalled subscriber got %d: the stalled one held them up, or never stalled", lo, n)
	}
}

// timedFetches times requests through addr, one after another: n of them,
// or as many as it takes until stop closes when n is 0.
func timedFetches(addr string, n int, stop <-chan struct{}) ([]time.Duration, error) {
	var took []time.Duration
	for n == 0 || len(took) < n {
		select {
		case <-stop:
			return took, nil
		default:
		}
		t0 := time.Now()
		if _, err := fetch(addr); err != nil {
			return took, err
		}
		took = append(took, time.Since(t0))
	}
	return took, nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// startApp runs a vaurien from a configuration text until the test ends.
func startApp(t *testing.T, text string) *app.App {
	t.Helper()
	file := filepath.Join(t.TempDir(), "vaurien.hcl")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	p := app.New(f, zerolog.Nop())
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p
}

// The streams open at once are bounded: one more gets a 503 that says
// why, and a place frees when a stream closes.
func TestEventsStreamsAreBounded(t *testing.T) {
	e := startEnv(t, "")
	streams := make([]*stream, admin.MaxSubscribers)
	for i := range streams {
		streams[i] = openStream(t, e.admin+"/events", nil)
	}
	code, body := e.call(t, http.MethodGet, "/events", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "too many streams") {
		t.Fatalf("stream %d: %d %s", admin.MaxSubscribers+1, code, body)
	}
	streams[0].close()
	eventually(t, 5*time.Second, "a place freed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.admin+"/events", nil)
		resp, err := e.http.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
