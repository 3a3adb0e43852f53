package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Backend is an in-process TCP server on 127.0.0.1 that runs a script on
// each connection: the stand-in backend of tests that need no real server.
type Backend struct {
	Addr     string
	Accepted atomic.Int64 // connections accepted so far
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
	once     sync.Once
}

// Serve starts a backend that runs handle on each accepted connection and
// closes the connection when handle returns. It stops when the test ends.
func Serve(t testing.TB, handle func(net.Conn)) *Backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for a test backend: %v", err)
	}
	b := &Backend{Addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.Accepted.Add(1)
			b.mu.Lock()
			b.conns[c] = true
			b.mu.Unlock()
			b.wg.Go(func() {
				defer func() {
					b.mu.Lock()
					delete(b.conns, c)
					b.mu.Unlock()
					c.Close()
				}()
				handle(c)
			})
		}
	})
	t.Cleanup(b.Stop)
	return b
}

// Echo starts a backend that sends back every byte it receives, and
// half-closes once the client has.
func Echo(t testing.TB) *Backend {
	t.Helper()
	return Serve(t, func(c net.Conn) {
		io.Copy(c, c)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	})
}

// Stop closes the listener and every open connection, and waits for the
// scripts to return.
func (b *Backend) Stop() {
	b.once.Do(func() {
		b.ln.Close()
		b.mu.Lock()
		for c := range b.conns {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
}

// Echoes checks that a connection to addr (a route in front of an Echo
// backend) sends back what it is sent.
func Echoes(t testing.TB, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatalf("through %s: %v", addr, err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("through %s: got %q, %v; want the echo", addr, got, err)
	}
}

// Taken returns an address of 127.0.0.1 that a socket holds until the test
// ends, so that nothing else can listen there.
func Taken(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}
