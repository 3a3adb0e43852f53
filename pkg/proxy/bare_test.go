package proxy_test

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// A tcp route accepts a connection that draws nothing bare, without a
// net.Conn; these tests cover what needs one after all, and what the
// engine does to a bare connection while the poller relays it.

func mixOf(t *testing.T, name string, percent float64, opts map[string]any) *chaos.Mix {
	t.Helper()
	b, _, err := chaos.NewBehavior(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	m, err := chaos.NewMix([]chaos.Entry{{Name: name, Percent: percent, Behavior: b}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// echoOnce sends a byte through c and reads its echo.
func echoOnce(t *testing.T, c net.Conn, b byte) {
	t.Helper()
	if _, err := c.Write([]byte{b}); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || got[0] != b {
		t.Fatalf("echo of %q: %q, %v", b, got, err)
	}
}

// waitStats waits until the route's counters satisfy ok.
func waitStats(t *testing.T, r *proxy.Route, what string, ok func(proxy.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(r.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: stats %+v", what, r.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// With a minor share of faults, connections are accepted bare, and those
// that draw the fault are given a net.Conn for the goroutines that carry
// it out.
func TestBareRouteCarriesOutDrawnFaults(t *testing.T) {
	backend, _ := echoServer(t)
	cfg := tcpRoute("minor", backend)
	const sleep = 300 * time.Millisecond
	cfg.Mix, cfg.Seed = mixOf(t, "delay", 40, map[string]any{"sleep": sleep.String()}), 7
	s := startServer(t, cfg)
	r := s.Route("minor")
	delayed := 0
	for i := range 20 {
		// The delay may start as soon as the connection is accepted, which
		// can come before Dial returns to a descheduled client.
		start := time.Now()
		c, err := net.Dial("tcp", r.Addr())
		if err != nil {
			t.Fatal(err)
		}
		echoOnce(t, c, byte('a'+i))
		if time.Since(start) >= sleep {
			delayed++
		}
		c.Close()
	}
	waitStats(t, r, "every connection ended", func(st proxy.Stats) bool { return st.Active == 0 })
	if st := r.Stats(); st.Accepted != 20 || st.Faults == 0 || int(st.Faults) != delayed {
		t.Fatalf("stats %+v with %d connections delayed; want 20 accepted, the faults those delayed", st, delayed)
	}
}

// A change of the mix hands a bare connection over to goroutines, which
// carry out the new draw and close the client when the connection ends.
func TestBareConnectionFollowsMixChange(t *testing.T) {
	backend, _ := echoServer(t)
	s := startServer(t, tcpRoute("follow", backend))
	r := s.Route("follow")
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOnce(t, c, 'a')
	r.SetMix(mixOf(t, "delay", 100, map[string]any{"sleep": "150ms"}))
	start := time.Now()
	echoOnce(t, c, 'b')
	if took := time.Since(start); took < 150*time.Millisecond {
		t.Fatalf("echo after the change to a delay of 150ms took %v", took)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the client's end: read %d, %v; want io.EOF", n, err)
	}
	waitStats(t, r, "the connection ended", func(st proxy.Stats) bool { return st.Active == 0 })
}

// A reset_peer drawn by a change of the mix resets a bare connection that
// the poller relays, once its timeout has passed.
func TestBareConnectionResetByMixChange(t *testing.T) {
	backend, _ := echoServer(t)
	s := startServer(t, tcpRoute("reset", backend))
	r := s.Route("reset")
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoOnce(t, c, 'a')
	r.SetMix(mixOf(t, "reset_peer", 100, map[string]any{"timeout": "50ms"}))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after a reset_peer of 50ms: %v, want a reset", err)
	}
	waitStats(t, r, "the connection ended", func(st proxy.Stats) bool { return st.Active == 0 })
}

// Closing the route's connections closes the bare ones the poller relays.
func TestCloseConnectionsClosesBareConnections(t *testing.T) {
	backend, _ := echoServer(t)
	s := startServer(t, tcpRoute("closed", backend))
	r := s.Route("closed")
	var conns []net.Conn
	for i := range 5 {
		c, err := net.Dial("tcp", r.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		echoOnce(t, c, byte('a'+i))
		conns = append(conns, c)
	}
	r.CloseConnections()
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("a connection the route closed: read %d, %v; want io.EOF", n, err)
		}
	}
	waitStats(t, r, "the connections ended", func(st proxy.Stats) bool { return st.Active == 0 })
}

// Out of descriptors, a route that accepts bare sockets backs off rather
// than spinning on the listening socket, and serves the connection that
// waited once descriptors are free again.
func TestBareAcceptBacksOffOutOfDescriptors(t *testing.T) {
	backend, _ := echoServer(t)
	s := startServer(t, tcpRoute("emfile", backend))
	r := s.Route("emfile")
	c, err := net.Dial("tcp", r.Addr()) // the relay's pollers start
	if err != nil {
		t.Fatal(err)
	}
	echoOnce(t, c, 'a')
	c.Close()
	waitStats(t, r, "the first connection ended", func(st proxy.Stats) bool { return st.Active == 0 })

	client, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// No descriptor free below the limit: the holes under the highest
	// one taken are filled.
	low := lim
	low.Cur = uint64(client) + 1
	var fillers []int
	restore := func() {
		unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
		for _, fd := range fillers {
			unix.Close(fd)
		}
		fillers = nil
	}
	defer restore()
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		fillers = append(fillers, fd)
	}
	if err := unix.Connect(client, sockaddr(t, r.Addr())); err != nil {
		restore()
		t.Fatal(err)
	}
	var before, after unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &before)
	window := 300 * time.Millisecond
	time.Sleep(window)
	unix.Getrusage(unix.RUSAGE_SELF, &after)
	restore()
	used := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	if used > window/2 {
		t.Errorf("the process used %v of CPU in %v out of descriptors: the acceptor spins", used, window)
	}
	if st := r.Stats(); st.Accepted != 1 {
		t.Fatalf("accepted %d connections in all, one of them out of descriptors; want the first alone", st.Accepted)
	}
	f := os.NewFile(uintptr(client), "client")
	cc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	echoOnce(t, cc, 'b')
}
