// Command soak runs vaurien for a bounded time at a steady request rate
// through redis, memcache and http routes while the fault mix switches
// every 30 seconds through the admin API, and reports the proxy's RSS,
// goroutines and file descriptors at the start and the end, so that a leak
// shows as growth. It starts its own redis-server, memcached, HTTP backend
// and vaurien process, all on 127.0.0.1, and stops them when done.
//
//	go run ./internal/soak -duration 10m -rate 300
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/redis/go-redis/v9"

	"github.com/vaurien-go/vaurien/pkg/client"
)

func main() {
	duration := flag.Duration("duration", 10*time.Minute, "how long to run")
	rate := flag.Int("rate", 300, "requests per second per protocol")
	every := flag.Duration("switch", 30*time.Second, "how often the fault mix changes")
	flag.Parse()
	if err := run(*duration, *rate, *every); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type sample struct {
	at         time.Duration
	rss        int64
	fds        int
	goroutines int
}

func run(duration time.Duration, rate int, every time.Duration) error {
	dir, err := os.MkdirTemp("", "vaurien-soak")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	redisAddr, memAddr, webAddr := freeAddr(), freeAddr(), ""
	servers := []*exec.Cmd{
		exec.CommandContext(ctx, "redis-server", "--port", port(redisAddr), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
		exec.CommandContext(ctx, "memcached", "-p", port(memAddr), "-l", "127.0.0.1", "-U", "0", "-u", "root"),
	}
	for _, s := range servers {
		if err := s.Start(); err != nil {
			return fmt.Errorf("start %s: %w", s.Path, err)
		}
		defer s.Wait()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	webAddr = ln.Addr().String()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, strings.Repeat("x", 1024)) }))
	defer ln.Close()

	bin := filepath.Join(dir, "vaurien")
	build := exec.Command("go", "build", "-o", bin, "github.com/vaurien-go/vaurien/cmd/vaurien")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build vaurien: %w", err)
	}
	admin, rRoute, mRoute, hRoute := freeAddr(), freeAddr(), freeAddr(), freeAddr()
	cfg := fmt.Sprintf(`admin {
  listen = %q
}
log {
  level = "warn"
}
route "redis" {
  listen   = %q
  backend  = %q
  protocol = "redis"
}
route "memcache" {
  listen   = %q
  backend  = %q
  protocol = "memcache"
}
route "http" {
  listen   = %q
  backend  = %q
  protocol = "http"
}
`, admin, rRoute, redisAddr, mRoute, memAddr, hRoute, webAddr)
	cfgPath := filepath.Join(dir, "vaurien.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	v := exec.CommandContext(ctx, bin, "run", "-c", cfgPath)
	v.Stdout, v.Stderr = os.Stderr, os.Stderr
	if err := v.Start(); err != nil {
		return err
	}
	defer v.Wait()
	for _, a := range []string{redisAddr, memAddr, admin, rRoute, mRoute, hRoute} {
		if err := waitListening(a); err != nil {
			return err
		}
	}
	c := client.New(admin)

	var ok, failed atomic.Int64
	load := func(do func(int) error) {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if do(i) == nil {
				ok.Add(1)
			} else {
				failed.Add(1)
			}
		}
	}
	rc := redis.NewClient(&redis.Options{Addr: rRoute, MaxRetries: -1})
	defer rc.Close()
	mc := memcache.New(mRoute)
	hc := &http.Client{Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() {
		load(func(i int) error { return rc.Set(ctx, "k"+strconv.Itoa(i%1000), i, 0).Err() })
	})
	wg.Go(func() {
		load(func(i int) error { return mc.Set(&memcache.Item{Key: "k" + strconv.Itoa(i%1000), Value: []byte("v")}) })
	})
	wg.Go(func() {
		load(func(int) error {
			resp, err := hc.Get("http://" + hRoute + "/")
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		})
	})

	mixes := []client.Mix{
		{{Name: "error", Percent: 10}},
		{{Name: "delay", Percent: 20, Options: map[string]any{"sleep": "5ms"}}},
		{{Name: "error", Percent: 5}, {Name: "abort", Percent: 2}},
		{},
	}
	start := time.Now()
	var samples []sample
	take := func() {
		samples = append(samples, measure(v.Process.Pid, admin, time.Since(start)))
	}
	time.Sleep(5 * time.Second) // warm up pools before the first sample
	take()
	switches := time.NewTicker(every)
	defer switches.Stop()
	deadline := time.After(duration)
	for n := 0; ; n++ {
		select {
		case <-switches.C:
			for _, route := range []string{"redis", "memcache", "http"} {
				if _, err := c.SetMix(ctx, route, mixes[n%len(mixes)], 0); err != nil {
					return fmt.Errorf("switch the mix: %w", err)
				}
			}
			take()
			continue
		case <-deadline:
		}
		break
	}
	// The last mix is dummy-only again before the final sample.
	for _, route := range []string{"redis", "memcache", "http"} {
		c.ResetRoute(ctx, route)
	}
	time.Sleep(5 * time.Second)
	take()
	cancel()
	wg.Wait()

	fmt.Printf("soak: %v, %d req/s per protocol, mix switched every %v; %d requests ok, %d failed (injected faults)\n",
		duration, rate, every, ok.Load(), failed.Load())
	fmt.Printf("%10s %10s %6s %11s\n", "time", "RSS (KB)", "fds", "goroutines")
	for _, s := range samples {
		fmt.Printf("%10s %10d %6d %11d\n", s.at.Round(time.Second), s.rss>>10, s.fds, s.goroutines)
	}
	first, last := samples[0], samples[len(samples)-1]
	fmt.Printf("start→end: RSS %+d KB, fds %+d, goroutines %+d\n", (last.rss-first.rss)>>10, last.fds-first.fds, last.goroutines-first.goroutines)
	return nil
}

func measure(pid int, admin string, at time.Duration) sample {
	s := sample{at: at}
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
				s.rss = kb << 10
			}
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = len(ents)
	}
	if resp, err := http.Get("http://" + admin + "/metrics"); err == nil {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
				s.goroutines, _ = strconv.Atoi(strings.TrimSpace(rest))
			}
		}
		resp.Body.Close()
	}
	return s
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func waitListening(addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
