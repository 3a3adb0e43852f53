package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// idleRow is what holding n connections costs one proxy: resident memory
// (KB) and descriptors per connection, idle and after 64 KiB went through
// each.
type idleRow struct {
	name                   string
	kb, fds, kbAfter, fdsA float64
}

// idleSample is one measurement of a fresh proxy process.
type idleSample struct {
	rss, fds, rssAfter, fdsAfter float64 // per connection
}

// exchanger pushes 64 KiB through one connection in the backend's
// protocol and checks the answer.
type exchanger func(c net.Conn, r *bufio.Reader) error

// echo64k writes 64 KiB to an echo backend and reads it back.
func echo64k(c net.Conn, r *bufio.Reader) error {
	out := body(64 << 10)
	if _, err := c.Write(out); err != nil {
		return err
	}
	in := make([]byte, len(out))
	if _, err := io.ReadFull(r, in); err != nil {
		return err
	}
	if !bytes.Equal(in, out) {
		return fmt.Errorf("echo differs")
	}
	return nil
}

// starter starts a fresh proxy of the given kind and returns its process,
// its address and how to push 64 KiB through one of its connections.
type starter func(b *testing.B, kind string) (*child, string, exchanger)

// idleWorkload holds BENCH_IDLE_CONNS connections open through each proxy
// (a fresh process per round, so that a heap grown in an earlier round does
// not hide what connections cost) and charges it the growth of its
// resident set and descriptor table.
func idleWorkload(b *testing.B, cfg config, rep *report) {
	start := time.Now()
	load := loadAvg()
	echo := startEcho(b)
	kinds := []string{"yardstick", "vaurien"}
	if cfg.toxiproxy != "" {
		kinds = append(kinds, "toxiproxy")
	}
	if cfg.haproxy != "" {
		kinds = append(kinds, "haproxy")
	}
	rows := measureIdle(b, cfg, kinds, func(b *testing.B, kind string) (*child, string, exchanger) {
		switch kind {
		case "toxiproxy":
			tp := startToxiproxy(b, cfg.toxiproxy)
			return tp.proc, tp.proxy(b, echo.addr), echo64k
		case "haproxy":
			h := startHAProxy(b, cfg.haproxy, echo.addr)
			return h, h.addr, echo64k
		}
		c := startChild(b, kind, echo.addr)
		return c, c.addr, echo64k
	})
	rep.addIdle(&idleTable{
		title: fmt.Sprintf("%d idle connections, tcp", cfg.idleConns), rows: rows,
		anchor: "yardstick 11.9 KB and 6 descriptors per connection, 12 KB after 64 KiB; Toxiproxy 43.9 KB and 2 descriptors, 242 KB after 64 KiB",
		load:   [2]string{load, loadAvg()}, took: time.Since(start),
		command: fmt.Sprintf("Go client: %d connections opened one after another through the proxy to an in-process echo backend, then 64 KiB echoed through each; a fresh proxy process per round; growth of VmRSS and of /proc/PID/fd over the count", cfg.idleConns),
	})
}

// idleProtocolsWorkload does the same through the protocol-aware routes,
// whose framing buffers are what an idle connection costs them.
func idleProtocolsWorkload(b *testing.B, cfg config, rep *report) {
	start := time.Now()
	load := loadAvg()
	type proto struct {
		backend string
		ex      exchanger
	}
	protos := map[string]proto{}
	var kinds []string
	if installed("redis-server") {
		srv := testenv.Start(b, "redis-server", "--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no", "--maxclients", "10000")
		protos["vaurien-redis"] = proto{srv.Addr, redisEcho64k}
		kinds = append(kinds, "vaurien-redis")
	}
	if installed("memcached") {
		srv := testenv.Start(b, "memcached", "-p", "{port}", "-l", "127.0.0.1", "-U", "0", "-c", "10000", "-u", "root")
		protos["vaurien-memcache"] = proto{srv.Addr, memcache64k}
		kinds = append(kinds, "vaurien-memcache")
	}
	httpAddr, _ := httpBackend(b)
	protos["vaurien-http"] = proto{httpAddr, http64k}
	kinds = append(kinds, "vaurien-http")
	rows := measureIdle(b, cfg, kinds, func(b *testing.B, kind string) (*child, string, exchanger) {
		p := protos[kind]
		c := startChild(b, "vaurien", p.backend, protocolEnv+"="+strings.TrimPrefix(kind, "vaurien-"))
		c.name = kind
		return c, c.addr, p.ex
	})
	rep.addIdle(&idleTable{
		title: fmt.Sprintf("%d idle connections, protocol-aware routes", cfg.idleConns), rows: rows,
		load: [2]string{load, loadAvg()}, took: time.Since(start),
		command: fmt.Sprintf("Go client: %d connections through a vaurien route of each protocol to redis-server, memcached and the HTTP backend, then 64 KiB each way through each: redis ECHO, memcache set then get of a 64 KiB value, HTTP GET of a 64 KiB file", cfg.idleConns),
	})
}

// installed reports whether a server binary can be found.
func installed(name string) bool {
	if _, err := exec.LookPath(name); err == nil {
		return true
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// measureIdle measures every kind of proxy over the rounds, a fresh
// process each time, and returns the medians.
func measureIdle(b *testing.B, cfg config, kinds []string, start starter) []idleRow {
	samples := make([][]idleSample, len(kinds))
	for round := range cfg.rounds {
		for k := range kinds {
			i := (k + round) % len(kinds)
			proc, addr, ex := start(b, kinds[i])
			samples[i] = append(samples[i], holdIdle(b, proc, addr, cfg.idleConns, ex))
			proc.stop()
		}
	}
	rows := make([]idleRow, len(kinds))
	for i, k := range kinds {
		var rss, fds, rssA, fdsA []float64
		for _, s := range samples[i] {
			rss, fds, rssA, fdsA = append(rss, s.rss), append(fds, s.fds), append(rssA, s.rssAfter), append(fdsA, s.fdsAfter)
		}
		rows[i] = idleRow{name: k, kb: median(rss) / 1e3, fds: median(fds), kbAfter: median(rssA) / 1e3, fdsA: median(fdsA)}
		b.ReportMetric(rows[i].kb, k+"-idle-KB/conn")
		b.ReportMetric(rows[i].fds, k+"-idle-fds/conn")
		b.ReportMetric(rows[i].kbAfter, k+"-used-KB/conn")
	}
	return rows
}

// holdIdle opens n connections through the proxy at addr, measures, pushes
// 64 KiB through each, measures again, and closes them.
func holdIdle(b *testing.B, proc *child, addr string, n int, ex exchanger) idleSample {
	pid := proc.pid()
	// One exchange first, so that what the process builds once (pools,
	// the first goroutines) is in the base and not charged to connections.
	warm, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	if err := ex(warm, bufio.NewReader(warm)); err != nil {
		b.Fatalf("%s: first exchange: %v", proc.name, err)
	}
	warm.Close()
	waitStable(b, pid)
	rss0, fd0 := processRSS(b, pid), processFDs(b, pid)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatalf("%s: connection %d: %v", proc.name, len(conns), err)
		}
		conns = append(conns, c)
	}
	// Every proxy measured here dials its backend when it accepts, so a
	// held connection is two sockets at least; a proxy that dialed lazily
	// would be measured after the 30 s wait all the same. The slack is for
	// descriptors the process holds on its own and may drop meanwhile, such
	// as the splice pipe Go's pool kept from the first exchange.
	const slack = 16
	if !waitFor(30*time.Second, func() bool { return processFDs(b, pid) >= fd0+2*n-slack }) {
		b.Logf("%s: holds %d descriptors for %d connections after 30s", proc.name, processFDs(b, pid)-fd0, n)
	}
	waitStable(b, pid)
	rss1, fd1 := processRSS(b, pid), processFDs(b, pid)
	work := make(chan net.Conn)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for c := range work {
				if err := ex(c, bufio.NewReader(c)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for _, c := range conns {
		work <- c
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("%s: 64 KiB exchange: %v", proc.name, err)
	}
	waitStable(b, pid)
	rss2, fd2 := processRSS(b, pid), processFDs(b, pid)
	f := float64(n)
	return idleSample{
		rss: float64(rss1-rss0) / f, fds: float64(fd1-fd0) / f,
		rssAfter: float64(rss2-rss0) / f, fdsAfter: float64(fd2-fd0) / f,
	}
}

// waitStable waits until a process's descriptor count and resident set
// have not moved for 200 ms (or 10 s have passed).
func waitStable(b *testing.B, pid int) {
	var lastFD int
	var lastRSS int64
	var since time.Time
	waitFor(10*time.Second, func() bool {
		fd, rss := processFDs(b, pid), processRSS(b, pid)
		if fd != lastFD || rss != lastRSS || since.IsZero() {
			lastFD, lastRSS, since = fd, rss, time.Now()
			return false
		}
		return time.Since(since) >= 200*time.Millisecond
	})
}

// redisEcho64k sends ECHO with a 64 KiB argument and reads the reply.
func redisEcho64k(c net.Conn, r *bufio.Reader) error {
	v := body(64 << 10)
	req := append([]byte("*2\r\n$4\r\nECHO\r\n$65536\r\n"), v...)
	if _, err := c.Write(append(req, "\r\n"...)); err != nil {
		return err
	}
	want := append(append([]byte("$65536\r\n"), v...), "\r\n"...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("redis ECHO reply differs")
	}
	return nil
}

// memcache64k stores a 64 KiB value and reads it back.
func memcache64k(c net.Conn, r *bufio.Reader) error {
	v := body(64 << 10)
	req := append([]byte("set idle 0 0 65536\r\n"), v...)
	if _, err := c.Write(append(req, "\r\nget idle\r\n"...)); err != nil {
		return err
	}
	want := append(append([]byte("STORED\r\nVALUE idle 0 65536\r\n"), v...), "\r\nEND\r\n"...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("memcache set/get of 64 KiB: answer differs")
	}
	return nil
}

// http64k fetches a 64 KiB file on a kept-alive connection.
func http64k(c net.Conn, r *bufio.Reader) error {
	if _, err := io.WriteString(c, "GET /64k HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || n != 64<<10 {
		return fmt.Errorf("GET /64k: %s, %d bytes, %v", resp.Status, n, err)
	}
	return nil
}
