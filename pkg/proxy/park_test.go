package proxy_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/redis"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// redisLine sends a request and reads one line of its answer.
func redisLine(t *testing.T, c net.Conn, r *bufio.Reader, req string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	return line
}

// skipReply reads the rest of a reply whose first line is head.
func skipReply(t *testing.T, r *bufio.Reader, head string) {
	t.Helper()
	n, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
	switch head[0] {
	case '$':
		r.Discard(n + 2)
	case '*', '%':
		if head[0] == '%' {
			n *= 2
		}
		for range n {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			skipReply(t, r, line)
		}
	}
}

// waitParked waits until the route's connections hold no goroutine beyond
// the relay's pollers.
func waitParked(t *testing.T, before int, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		grew := runtime.NumGoroutine() - before
		if grew <= runtime.GOMAXPROCS(0) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the idle connections hold %d more goroutines, want at most one poller per CPU", what, grew)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An idle connection of a protocol route holds no goroutine: once it has
// been quiet for a while, the relay's poller watches its sockets, and a
// request, a backend's push or a backend's close brings it back.
func TestIdleProtocolConnectionsHoldNoGoroutine(t *testing.T) {
	srv := testenv.Redis(t)
	s := startServer(t, proxy.RouteConfig{Name: "cache", Listen: "127.0.0.1:0", Backend: srv.Addr, Protocol: "redis"})
	addr := s.Route("cache").Addr()
	direct, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	dr := bufio.NewReader(direct)
	before := runtime.NumGoroutine()
	const n = 200
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i], readers[i] = c, bufio.NewReader(c)
	}
	// Fresh connections park at once; used ones once quiet.
	waitParked(t, before, "connections never used")
	for i, c := range conns {
		if got := redisLine(t, c, readers[i], "PING\r\n"); got != "+PONG\r\n" {
			t.Fatalf("PING: %q", got)
		}
	}
	// One connection tracks a key (RESP3 pushes an invalidation when it
	// changes), another is killed by the backend.
	tracker, tr := conns[0], readers[0]
	skipReply(t, tr, redisLine(t, tracker, tr, "HELLO 3\r\n"))
	if got := redisLine(t, tracker, tr, "CLIENT TRACKING ON\r\n"); got != "+OK\r\n" {
		t.Fatalf("CLIENT TRACKING ON: %q", got)
	}
	if got := redisLine(t, tracker, tr, "GET parked:key\r\n"); got != "_\r\n" {
		t.Fatalf("GET: %q", got)
	}
	victim, vr := conns[1], readers[1]
	id := strings.TrimSpace(strings.TrimPrefix(redisLine(t, victim, vr, "CLIENT ID\r\n"), ":"))
	waitParked(t, before, "connections used once")

	// A request.
	for i, c := range conns[2:] {
		if got := redisLine(t, c, readers[i+2], "PING\r\n"); got != "+PONG\r\n" {
			t.Fatalf("PING after parking: %q", got)
		}
	}
	waitParked(t, before, "connections used twice")
	// A push from the backend, with no request in flight.
	if got := redisLine(t, direct, dr, "SET parked:key 1\r\n"); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	tracker.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := tr.ReadString('\n'); err != nil || line != ">2\r\n" {
		t.Fatalf("the parked connection's push: %q, %v", line, err)
	}
	// The backend closes: the client sees the end.
	if got := redisLine(t, direct, dr, "CLIENT KILL ID "+id+"\r\n"); got != ":1\r\n" {
		t.Fatalf("CLIENT KILL: %q", got)
	}
	victim.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := vr.ReadByte(); err != io.EOF {
		t.Fatalf("the parked connection whose backend left: read %v, want io.EOF", err)
	}
}

// A parked connection still ends when the route closes its connections and
// when its idle timeout comes: its sockets leave the poller first, and the
// client sees the end.
func TestParkedConnectionsEnd(t *testing.T) {
	srv := testenv.Redis(t)
	s := startServer(t,
		proxy.RouteConfig{Name: "kept", Listen: "127.0.0.1:0", Backend: srv.Addr, Protocol: "redis"},
		proxy.RouteConfig{Name: "idle", Listen: "127.0.0.1:0", Backend: srv.Addr, Protocol: "redis", IdleTimeout: 2 * time.Second})
	before := runtime.NumGoroutine()
	var kept, idle []net.Conn
	for range 20 {
		for _, name := range []string{"kept", "idle"} {
			c, err := net.Dial("tcp", s.Route(name).Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := redisLine(t, c, bufio.NewReader(c), "PING\r\n"); got != "+PONG\r\n" {
				t.Fatalf("PING: %q", got)
			}
			if name == "kept" {
				kept = append(kept, c)
			} else {
				idle = append(idle, c)
			}
		}
	}
	waitParked(t, before, "connections used once")
	for _, c := range idle {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("a parked connection past its idle timeout: read %v, want io.EOF", err)
		}
	}
	s.Route("kept").CloseConnections()
	for _, c := range kept {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("a parked connection the route closed: read %v, want io.EOF", err)
		}
	}
}

// A route's shutdown ends its protocol connections once the drain period
// is over, parked or waiting for an answer that a backend never gives,
// with a backend that keeps its side open after the client's end.
func TestShutdownEndsProtocolConnections(t *testing.T) {
	hold, asked := make(chan struct{}), make(chan string, 1)
	b := testenv.Serve(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				<-hold
				return
			}
			if line != "PING\r\n" {
				asked <- line
				continue
			}
			io.WriteString(c, "+PONG\r\n")
		}
	})
	t.Cleanup(func() { close(hold) })
	s := proxy.New(nil, time.Second)
	if err := s.Apply([]proxy.RouteConfig{{Name: "r", Listen: "127.0.0.1:0", Backend: b.Addr, Protocol: "redis"}}); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	var conns []net.Conn
	for i := range 10 {
		c, err := net.Dial("tcp", s.Route("r").Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i%2 == 0 { // the others never spoke
			if got := redisLine(t, c, bufio.NewReader(c), "PING\r\n"); got != "+PONG\r\n" {
				t.Fatalf("PING: %q", got)
			}
		}
		conns = append(conns, c)
	}
	// The backend holds a goroutine for each.
	waitParked(t, before+len(conns), "connections used once or never")
	if _, err := io.WriteString(conns[1], "BLPOP list 0\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("BLPOP never reached the backend")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		s.Shutdown(ctx)
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown still waits for its connections 10 s on")
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("a connection after shutdown: read %v, want io.EOF", err)
		}
	}
}
