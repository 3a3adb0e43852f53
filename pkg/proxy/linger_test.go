package proxy_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/redis"
	"github.com/vaurien-go/vaurien/pkg/proxy"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

// desync is redis' "Protocol desync" test: a request redis cannot frame,
// then more bytes until a write fails, and only then a read. Redis answers
// its protocol error and closes with the client's bytes unread, which
// resets the connection; the client still reads the error, directly and
// through every route.
func desync(t *testing.T, addr, start string) (string, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	began := time.Now()
	c.SetDeadline(began.Add(20 * time.Second))
	if _, err := c.Write([]byte(start)); err != nil {
		t.Fatal(err)
	}
	payload := []byte("payload")
	for {
		if _, err := c.Write(payload); err != nil {
			break
		}
		if time.Since(began) > 15*time.Second {
			t.Fatalf("%q: the connection stayed open", start)
		}
	}
	took := time.Since(began)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Errorf("%q: read %q, %v", start, line, err)
	}
	return line, took
}

func TestBackendLastWordsReachTheClient(t *testing.T) {
	srv := testenv.Redis(t)
	s := startServer(t,
		proxy.RouteConfig{Name: "tcp", Listen: "127.0.0.1:0", Backend: srv.Addr, Protocol: "tcp"},
		proxy.RouteConfig{Name: "redis", Listen: "127.0.0.1:0", Backend: srv.Addr, Protocol: "redis"})
	var wg sync.WaitGroup
	for _, target := range []string{"direct", "tcp", "redis"} {
		addr := srv.Addr
		if target != "direct" {
			addr = s.Route(target).Addr()
		}
		for _, start := range []string{"\x00", "*\x00", "$\x00"} {
			wg.Go(func() {
				// The reset races with the relay: one round may pass by luck.
				for range 3 {
					line, took := desync(t, addr, start)
					if !strings.HasPrefix(line, "-ERR Protocol error") {
						t.Errorf("%s, %q: the client read %q, want redis' protocol error", target, start, line)
						return
					}
					// The lingering close is bounded.
					if took > relay.LingerTime+5*time.Second {
						t.Errorf("%s, %q: the connection closed after %v, want within %v and some slack", target, start, took, relay.LingerTime)
					}
				}
			})
		}
	}
	wg.Wait()
}

// A client that lingers after its backend answered and reset the
// connection reads the answer and the end at once, and the proxy lets it
// go after relay.LingerTime: the lingering close holds no connection for
// long.
func TestLingeringCloseIsBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(c).ReadString('\n')
			io.WriteString(c, "-ERR bye\r\n")
			c.(*net.TCPConn).SetLinger(0) // a reset
			c.Close()
		}
	})
	s := startServer(t,
		proxy.RouteConfig{Name: "tcp", Listen: "127.0.0.1:0", Backend: ln.Addr().String(), Protocol: "tcp"},
		proxy.RouteConfig{Name: "redis", Listen: "127.0.0.1:0", Backend: ln.Addr().String(), Protocol: "redis"})
	for _, route := range []string{"tcp", "redis"} {
		r := s.Route(route)
		c, err := net.Dial("tcp", r.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		c.SetDeadline(start.Add(10 * time.Second))
		io.WriteString(c, "PING\r\n")
		got, err := io.ReadAll(c)
		if string(got) != "-ERR bye\r\n" || err != nil {
			t.Fatalf("%s: read %q, %v; want the backend's error and EOF", route, got, err)
		}
		for r.Stats().Active > 0 {
			if time.Since(start) > relay.LingerTime+3*time.Second {
				t.Fatalf("%s: the connection is still open after %v", route, time.Since(start))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
