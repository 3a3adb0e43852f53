// Command app is the demo application of the compose example: it keeps
// calling Redis (SET then GET), memcached (set then get) and an HTTP
// service (GET), through vaurien's routes, and prints every second one JSON
// line per backend ("redis", "memcached", "web") with the calls that
// succeeded and failed in that second, their latency percentiles, the
// totals since start and the last error of the second:
//
//	{"time":"...","backend":"redis","ok":5,"errors":0,"p50_ms":0.4,"p99_ms":1.2,"total_ok":120,"total_errors":0}
//
// Watching it while faults are switched on and off shows what an
// application sees of each fault.
//
// Addresses come from the environment:
//
//	REDIS_ADDR      host:port of Redis            (default vaurien:6379)
//	MEMCACHED_ADDR  host:port of memcached        (default vaurien:11211)
//	HTTP_URL        URL fetched with GET          (default http://vaurien:8000/)
//	INTERVAL        pause between two calls       (default 200ms)
//	TIMEOUT         timeout of one call           (default 1s)
//	LISTEN          serve GET / on this address   (default: off)
//
// With LISTEN set, GET / makes one Redis and one memcached round trip and
// answers 200 "ok", or 503 with the first error: the endpoint a chaos
// experiment's probe checks (experiment.hcl).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"
)

func main() {
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(2)
	}
	// The app is PID 1 in its container: without a handler, SIGTERM would
	// be ignored and `docker stop` would wait for the SIGKILL.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	run(ctx, cfg, os.Stdout)
}

// config is what the app calls and how often.
type config struct {
	RedisAddr     string
	MemcachedAddr string
	HTTPURL       string
	Interval      time.Duration
	Timeout       time.Duration
	Report        time.Duration
	Listen        string // GET / checks the cache backends; "" for off
}

func configFromEnv(getenv func(string) string) (config, error) {
	cfg := config{
		RedisAddr:     "vaurien:6379",
		MemcachedAddr: "vaurien:11211",
		HTTPURL:       "http://vaurien:8000/",
		Interval:      200 * time.Millisecond,
		Timeout:       time.Second,
		Report:        time.Second,
	}
	for name, dst := range map[string]*string{"REDIS_ADDR": &cfg.RedisAddr, "MEMCACHED_ADDR": &cfg.MemcachedAddr, "HTTP_URL": &cfg.HTTPURL, "LISTEN": &cfg.Listen} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	for name, dst := range map[string]*time.Duration{"INTERVAL": &cfg.Interval, "TIMEOUT": &cfg.Timeout} {
		v := getenv(name)
		if v == "" {
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return cfg, fmt.Errorf("parse %s=%q: want a positive duration such as 200ms", name, v)
		}
		*dst = d
	}
	return cfg, nil
}

// run calls the three backends until ctx ends, reporting to out.
func run(ctx context.Context, cfg config, out io.Writer) {
	rdb := redis.NewClient(&redis.Options{
		Addr:         cfg.RedisAddr,
		DialTimeout:  cfg.Timeout,
		ReadTimeout:  cfg.Timeout,
		WriteTimeout: cfg.Timeout,
		// No retries, so that every injected fault shows in the counts.
		MaxRetries:      -1,
		DialerRetries:   1,
		DisableIdentity: true,
	})
	// The report lines carry every error; the client's own log would
	// repeat them.
	redis.SetLogger(quiet{})
	defer rdb.Close()
	mc := memcache.NewFromSelector(hostSelector{cfg.MemcachedAddr})
	mc.Timeout = cfg.Timeout
	defer mc.Close()
	hc := &http.Client{Timeout: cfg.Timeout}
	defer hc.CloseIdleConnections()

	probes := []*probe{
		{name: "redis", call: func(ctx context.Context, n int) error { return callRedis(ctx, rdb, n) }},
		{name: "memcached", call: func(ctx context.Context, n int) error { return callMemcached(mc, n) }},
		{name: "web", call: func(ctx context.Context, n int) error { return callHTTP(ctx, hc, cfg.HTTPURL) }},
	}
	var wg sync.WaitGroup
	if cfg.Listen != "" {
		serve(ctx, &wg, cfg, rdb, mc, out)
	}
	for _, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.loop(ctx, cfg.Interval, cfg.Timeout)
		}()
	}
	report(ctx, cfg.Report, probes, out)
	wg.Wait()
}

// serve answers GET / with one Redis and one memcached round trip until
// ctx ends.
func serve(ctx context.Context, wg *sync.WaitGroup, cfg config, rdb *redis.Client, mc *memcache.Client, out io.Writer) {
	var n sync.Mutex
	calls := 0
	srv := &http.Server{Addr: cfg.Listen, ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Lock()
		calls++
		i := calls
		n.Unlock()
		cctx, cancel := context.WithTimeout(r.Context(), cfg.Timeout)
		defer cancel()
		err := callRedis(cctx, rdb, i)
		if err == nil {
			err = callMemcached(mc, i)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})}
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(out, "{\"error\":%q}\n", "serve "+cfg.Listen+": "+err.Error())
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		srv.Close()
	}()
}

// quiet is a go-redis logger that drops everything.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func callRedis(ctx context.Context, rdb *redis.Client, n int) error {
	key, val := "vaurien-demo:"+strconv.Itoa(n%100), strconv.Itoa(n)
	if err := rdb.Set(ctx, key, val, time.Minute).Err(); err != nil {
		return fmt.Errorf("redis set: %w", err)
	}
	got, err := rdb.Get(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("redis get: %w", err)
	}
	if got != val {
		return fmt.Errorf("redis get: got %q, want %q", got, val)
	}
	return nil
}

// hostSelector gives the memcached client the server's name rather than
// the IP address memcache.New resolves once: the name is resolved at each
// dial, so the app finds vaurien again after it starts late or restarts
// with a new address, as the Redis and HTTP clients do.
type hostSelector struct{ addr string }

func (s hostSelector) PickServer(string) (net.Addr, error) { return hostAddr(s.addr), nil }

func (s hostSelector) Each(f func(net.Addr) error) error { return f(hostAddr(s.addr)) }

// hostAddr is a TCP address as host:port, host a name or an IP.
type hostAddr string

func (hostAddr) Network() string  { return "tcp" }
func (a hostAddr) String() string { return string(a) }

func callMemcached(mc *memcache.Client, n int) error {
	key, val := "vaurien-demo:"+strconv.Itoa(n%100), strconv.Itoa(n)
	if err := mc.Set(&memcache.Item{Key: key, Value: []byte(val), Expiration: 60}); err != nil {
		return fmt.Errorf("memcached set: %w", err)
	}
	it, err := mc.Get(key)
	if err != nil {
		return fmt.Errorf("memcached get: %w", err)
	}
	if string(it.Value) != val {
		return fmt.Errorf("memcached get: got %q, want %q", it.Value, val)
	}
	return nil
}

func callHTTP(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("http get: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("http get: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return fmt.Errorf("http get: read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("http get: status %s", resp.Status)
	}
	return nil
}

// probe calls one backend in a loop and keeps the current window's
// outcomes.
type probe struct {
	name string
	call func(ctx context.Context, n int) error

	mu       sync.Mutex
	window   window
	totalOK  int64
	totalErr int64
}

// window is what happened since the last report.
type window struct {
	ok, errors int
	latencies  []time.Duration
	lastErr    string
}

func (p *probe) loop(ctx context.Context, interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 0; ; n++ {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		start := time.Now()
		err := p.call(cctx, n)
		took := time.Since(start)
		cancel()
		if ctx.Err() != nil {
			return // a call cut short by the shutdown is no outcome
		}
		p.record(took, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *probe) record(took time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.window.latencies = append(p.window.latencies, took)
	if err != nil {
		p.window.errors++
		p.totalErr++
		p.window.lastErr = err.Error()
		return
	}
	p.window.ok++
	p.totalOK++
}

// Line is one report line of one backend.
type Line struct {
	Time        time.Time `json:"time"`
	Backend     string    `json:"backend"`
	OK          int       `json:"ok"`     // calls that succeeded in the last second
	Errors      int       `json:"errors"` // calls that failed in the last second
	P50ms       float64   `json:"p50_ms"`
	P99ms       float64   `json:"p99_ms"`
	TotalOK     int64     `json:"total_ok"`
	TotalErrors int64     `json:"total_errors"`
	LastError   string    `json:"last_error,omitempty"` // of the last second
}

// take ends the current window and returns its line.
func (p *probe) take(now time.Time) Line {
	p.mu.Lock()
	w := p.window
	p.window = window{latencies: make([]time.Duration, 0, cap(w.latencies))}
	l := Line{Time: now.UTC(), Backend: p.name, OK: w.ok, Errors: w.errors, TotalOK: p.totalOK, TotalErrors: p.totalErr, LastError: w.lastErr}
	p.mu.Unlock()
	l.P50ms = ms(percentile(w.latencies, 50))
	l.P99ms = ms(percentile(w.latencies, 99))
	return l
}

func report(ctx context.Context, every time.Duration, probes []*probe, out io.Writer) {
	t := time.NewTicker(every)
	defer t.Stop()
	enc := json.NewEncoder(out)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, p := range probes {
				if err := enc.Encode(p.take(now)); err != nil && !errors.Is(err, io.ErrClosedPipe) {
					fmt.Fprintln(os.Stderr, "app: write report:", err)
				}
			}
		}
	}
}

// percentile is the nearest-rank p-th percentile of ds (0 when empty).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100 // ceil(p/100 * n)
	return s[max(rank, 1)-1]
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
