package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

func TestFDExhaustionBacksOffAndRecovers(t *testing.T) {
	listen, path := oneRouteConfig(t, echoServer(t), "log {\n  level = \"warn\"\n}\n")
	v := start(t, "ulimit -n 48", "run", "-c", path)
	if err := waitListening(listen); err != nil {
		t.Fatal(err)
	}
	// Each proxied connection needs two descriptors: 60 connections exhaust 48.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 60; i++ {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err != nil {
			break // the kernel's backlog filled up too
		}
		conns = append(conns, c)
	}
	time.Sleep(500 * time.Millisecond)
	// While out of descriptors, the accept loop must back off, not spin.
	before := v.cpu()
	time.Sleep(2 * time.Second)
	if used := v.cpu() - before; used > 300*time.Millisecond {
		t.Fatalf("vaurien used %v of CPU in 2s while out of file descriptors: the accept loop spins", used)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	// Once descriptors are free, service resumes by itself.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Write([]byte("ping"))
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			got := make([]byte, 4)
			_, err = io.ReadFull(c, got)
			c.Close()
			if err == nil && string(got) == "ping" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("service did not recover after descriptors were freed: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitListening(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for !dialOK(addr) {
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func TestNonReadingClientKeepsMemoryBounded(t *testing.T) {
	listen, path := oneRouteConfig(t, echoServer(t), "log {\n  level = \"warn\"\n}\n")
	v := start(t, "", "run", "-c", path)
	if err := waitListening(listen); err != nil {
		t.Fatal(err)
	}
	base := v.rss()
	// Ten clients push as fast as they can and never read their echo.
	var sent int64
	done := make(chan int64)
	for i := 0; i < 10; i++ {
		go func() {
			c, err := net.Dial("tcp", listen)
			if err != nil {
				done <- 0
				return
			}
			defer c.Close()
			buf := make([]byte, 1<<20)
			var n int64
			c.SetWriteDeadline(time.Now().Add(3 * time.Second))
			for {
				m, err := c.Write(buf)
				n += int64(m)
				if err != nil {
					break
				}
			}
			done <- n
		}()
	}
	for i := 0; i < 10; i++ {
		sent += <-done
	}
	grew := v.rss() - base
	t.Logf("10 non-reading clients pushed %d MB before back-pressure stopped them; RSS grew %d KB", sent>>20, grew>>10)
	if grew > 32<<20 {
		t.Fatalf("RSS grew by %d MB with non-reading clients: something buffers without bound", grew>>20)
	}
}

func TestThreeThousandIdleConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 3,000 connections")
	}
	listen, path := oneRouteConfig(t, echoServer(t), "log {\n  level = \"warn\"\n}\n")
	v := start(t, "", "run", "-c", path)
	if err := waitListening(listen); err != nil {
		t.Fatal(err)
	}
	baseRSS, baseFDs := v.rss(), v.fds()
	const n = 3000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	buf := make([]byte, 64<<10)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		// 64 KiB through each, so buffers that grow with use show up.
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("echo on connection %d: %v", i, err)
		}
	}
	time.Sleep(time.Second)
	rss, fds := v.rss()-baseRSS, v.fds()-baseFDs
	perConn, fdsPerConn := float64(rss)/n/1024, float64(fds)/n
	t.Logf("%d idle proxied connections after 64 KiB each: %.1f KB and %.2f descriptors per connection", n, perConn, fdsPerConn)
	if fdsPerConn > 3 {
		t.Errorf("%.2f descriptors per idle connection, want at most 3", fdsPerConn)
	}
	// About 2 KB here: the sockets' structures and the relay's state, no
	// goroutine (a poller relays idle connections) and no net.Conn (they
	// are accepted bare); the slack is for what the garbage collector has
	// not reclaimed yet.
	if perConn > 3.5 {
		t.Errorf("%.1f KB per idle connection, want at most 3.5: a relay keeps a goroutine, a buffer, a pipe or a net.Conn while it waits", perConn)
	}
	// Every connection still works.
	for i, c := range conns[:100] {
		c.Write([]byte("x"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf[:1]); err != nil {
			t.Fatalf("connection %d after the idle period: %v", i, err)
		}
	}
}

// An idle connection on a protocol route is parked: the pollers watch its
// sockets, and it holds neither its two loops' goroutines nor a buffer.
// Each connection is opened and left silent, then a sample of them is used
// once to show that parked connections still work.
func TestIdleProtocolConnectionsHoldNoLoops(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,500 connections per protocol")
	}
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer web.Close()
	cases := []struct {
		protocol string
		backend  func() string
		exchange func(c net.Conn, r *bufio.Reader) error
	}{
		{"redis", func() string { return testenv.Redis(t).Addr }, func(c net.Conn, r *bufio.Reader) error {
			return roundTrip(c, r, "*1\r\n$4\r\nPING\r\n", "+PONG\r\n")
		}},
		{"memcache", func() string {
			return testenv.Start(t, "memcached", "-p", "{port}", "-l", "127.0.0.1", "-c", "4096", "-u", "root").Addr
		}, func(c net.Conn, r *bufio.Reader) error {
			return roundTrip(c, r, "get absent\r\n", "END\r\n")
		}},
		{"http", func() string { return web.Listener.Addr().String() }, func(c net.Conn, r *bufio.Reader) error {
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				return err
			}
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if body, _ := io.ReadAll(resp.Body); string(body) != "ok" {
				return fmt.Errorf("status %d, body %q", resp.StatusCode, body)
			}
			return nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.protocol, func(t *testing.T) {
			listen := freeAddr(t)
			path := filepath.Join(t.TempDir(), "vaurien.hcl")
			writeConfig(t, path, fmt.Sprintf("admin {\n  listen = %q\n}\nlog {\n  level = \"warn\"\n}\n", freeAddr(t))+
				fmt.Sprintf("route \"a\" {\n  listen   = %q\n  backend  = %q\n  protocol = %q\n}\n", listen, tc.backend(), tc.protocol))
			v := start(t, "", "run", "-c", path)
			if err := waitListening(listen); err != nil {
				t.Fatal(err)
			}
			// One exchange first, so that what the process builds once
			// (pools, the pollers) is in the base.
			warm, err := net.Dial("tcp", listen)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.exchange(warm, bufio.NewReader(warm)); err != nil {
				t.Fatalf("first exchange: %v", err)
			}
			warm.Close()
			time.Sleep(500 * time.Millisecond)
			baseRSS, baseFDs := v.rss(), v.fds()
			const n = 1500
			conns := make([]net.Conn, 0, n)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for i := range n {
				c, err := net.Dial("tcp", listen)
				if err != nil {
					t.Fatalf("connection %d: %v", i, err)
				}
				conns = append(conns, c)
			}
			// Every connection is accepted and its backend dialed.
			deadline := time.Now().Add(30 * time.Second)
			for v.fds()-baseFDs < 2*n && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(time.Second)
			rss, fds := v.rss()-baseRSS, v.fds()-baseFDs
			perConn, fdsPerConn := float64(rss)/n/1024, float64(fds)/n
			t.Logf("%d idle connections on a %s route: %.1f KB and %.2f descriptors per connection", n, tc.protocol, perConn, fdsPerConn)
			if fdsPerConn < 2 || fdsPerConn > 2.1 {
				t.Errorf("%.2f descriptors per idle connection, want 2 (client and backend)", fdsPerConn)
			}
			// About 5 KB: the sockets' structures, the connection's state
			// and the poller's watch. Connections that never park hold
			// 12 to 14 KB here.
			if perConn > 8 {
				t.Errorf("%.1f KB per idle connection, want at most 8: an idle connection keeps its loops' goroutines or a buffer", perConn)
			}
			for i, c := range conns[:50] {
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if err := tc.exchange(c, bufio.NewReader(c)); err != nil {
					t.Fatalf("connection %d after the idle period: %v", i, err)
				}
			}
		})
	}
}

// roundTrip writes req and expects exactly want back.
func roundTrip(c net.Conn, r *bufio.Reader, req, want string) error {
	if _, err := io.WriteString(c, req); err != nil {
		return err
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil {
		return err
	}
	if string(got) != want {
		return fmt.Errorf("got %q, want %q", got, want)
	}
	return nil
}
