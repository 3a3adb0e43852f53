package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// restartableHTTP is an HTTP backend that can be stopped and started again
// on the same address.
type restartableHTTP struct {
	addr string
	mu   sync.Mutex
	srv  *http.Server
}

func (h *restartableHTTP) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old socket may linger a moment
		if ln, err = net.Listen("tcp", h.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(ln)
	h.mu.Lock()
	h.srv = srv
	h.mu.Unlock()
}

func (h *restartableHTTP) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.srv != nil {
		h.srv.Close()
		h.srv = nil
	}
}

// Each real backend is killed and restarted while clients keep calling it
// through vaurien: while it is down the clients get clean errors (never a
// hang), vaurien keeps running without spinning, and traffic comes back by
// itself once the backend is back.
func TestBackendsKilledAndRestartedUnderTraffic(t *testing.T) {
	rds := testenv.Redis(t)
	mc := testenv.Memcached(t)
	web := &restartableHTTP{addr: "127.0.0.1:0"}
	web.start(t)
	defer web.stop()

	routes := map[string]string{"redis": freeAddr(t), "memcache": freeAddr(t), "http": freeAddr(t)}
	backends := map[string]string{"redis": rds.Addr, "memcache": mc.Addr, "http": web.addr}
	cfg := fmt.Sprintf("admin {\n  listen = %q\n}\nlog {\n  level = \"warn\"\n}\n", freeAddr(t))
	for _, name := range []string{"redis", "memcache", "http"} {
		cfg += fmt.Sprintf("route %q {\n  listen          = %q\n  backend         = %q\n  protocol        = %q\n  connect_timeout = \"1s\"\n}\n", name, routes[name], backends[name], name)
	}
	path := filepath.Join(t.TempDir(), "vaurien.hcl")
	writeConfig(t, path, cfg)
	v := start(t, "", "run", "-c", path)
	for _, a := range routes {
		if err := waitListening(a); err != nil {
			t.Fatal(err)
		}
	}

	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: routes["redis"], MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
	defer rc.Close()
	mcc := memcache.New(routes["memcache"])
	mcc.Timeout = 2 * time.Second
	hc := &http.Client{Timeout: 3 * time.Second}
	call := map[string]func() error{
		"redis": func() error { return rc.Set(ctx, "k", "v", 0).Err() },
		"memcache": func() error {
			return mcc.Set(&memcache.Item{Key: "k", Value: []byte("v")})
		},
		"http": func() error {
			resp, err := hc.Get("http://" + routes["http"] + "/")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
				return fmt.Errorf("body %q", b)
			}
			return nil
		},
	}
	stop := map[string]func(){"redis": rds.Stop, "memcache": mc.Stop, "http": web.stop}
	restart := map[string]func(){"redis": rds.Restart, "memcache": mc.Restart, "http": func() { web.start(t) }}

	for _, name := range []string{"redis", "memcache", "http"} {
		t.Run(name, func(t *testing.T) {
			// Clients call continuously through the whole episode.
			var okN, errN atomic.Int64
			var slowest atomic.Int64
			done := make(chan struct{})
			var wg sync.WaitGroup
			for i := 0; i < 4; i++ {
				wg.Go(func() {
					for {
						select {
						case <-done:
							return
						default:
						}
						began := time.Now()
						err := call[name]()
						if d := int64(time.Since(began)); d > slowest.Load() {
							slowest.Store(d)
						}
						if err == nil {
							okN.Add(1)
						} else {
							errN.Add(1)
							time.Sleep(20 * time.Millisecond)
						}
					}
				})
			}
			waitFor(t, "traffic before the kill", func() bool { return okN.Load() > 20 })
			stop[name]()
			errsBefore := errN.Load()
			waitFor(t, "clean errors while the backend is down", func() bool { return errN.Load() > errsBefore+10 })
			cpuBefore := v.cpu()
			time.Sleep(time.Second)
			if used := v.cpu() - cpuBefore; used > 500*time.Millisecond {
				t.Errorf("vaurien used %v of CPU in 1s with the backend down: it spins", used)
			}
			restart[name]()
			okAfter := okN.Load()
			waitFor(t, "traffic after the restart", func() bool { return okN.Load() > okAfter+20 })
			close(done)
			wg.Wait()
			if d := time.Duration(slowest.Load()); d > 5*time.Second {
				t.Errorf("a call took %v: clients hung instead of failing", d)
			}
			t.Logf("%s: %d calls ok, %d failed cleanly while the backend was down; slowest call %v", name, okN.Load(), errN.Load(), time.Duration(slowest.Load()).Round(time.Millisecond))
		})
	}
	if strings.Contains(v.output(), "panic") {
		t.Fatalf("vaurien crashed:\n%s", v.output())
	}
	select {
	case <-v.done:
		t.Fatalf("vaurien exited during the test:\n%s", v.output())
	default:
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
