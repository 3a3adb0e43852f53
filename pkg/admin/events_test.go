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
// keeps its pace, and each stalled subscriber is left with the latest
// state only, not a queue.
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

	// Requests through the proxy all along: the stalled subscribers must
	// not slow it down.
	var took []time.Duration
	var fetchErr error
	storming := make(chan struct{})
	fetched := make(chan struct{})
	go func() {
		defer close(fetched)
		for {
			select {
			case <-storming:
				return
			default:
			}
			t0 := time.Now()
			if _, err := fetch(r0.Addr()); err != nil {
				fetchErr = err
				return
			}
			took = append(took, time.Since(t0))
		}
	}()

	// A storm of changes, each sent to every subscriber, until every
	// reader has had some 10 MB: several times what a stalled one's
	// socket buffers hold.
	hc := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	changes := 0
	for least() < 400 && time.Since(start) < 30*time.Second {
		body := fmt.Sprintf(`{"behaviors": [{"name": "delay", "percent": %d}]}`, 1+changes%50)
		req, _ := http.NewRequest(http.MethodPut, admin+"/routes/r01/mix", strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		changes++
	}
	close(storming)
	<-fetched
	if fetchErr != nil || len(took) < 5 {
		t.Fatalf("requests through the proxy during the storm: %d answered, then %v", len(took), fetchErr)
	}
	slices.Sort(took)
	t.Logf("%d requests through the proxy meanwhile: median %s, slowest %s", len(took), took[len(took)/2], took[len(took)-1])
	if med := took[len(took)/2]; med > time.Second {
		t.Errorf("requests through the proxy took %s (median) with stalled subscribers", med)
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
	lo := least()
	t.Logf("%d changes; readers got at least %d events; a stalled subscriber %d (%d kB)", changes, lo, n, len(got)>>10)
	if lo < 2*n {
		t.Errorf("readers got as few as %d events while a stalled subscriber got %d: the stalled one held them up, or never stalled", lo, n)
	}
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
