package proxy

import (
	"net"
	"syscall"
	"testing"
)

// An accepted connection has keep-alive probes on, which it takes from the
// listening socket.
func TestAcceptedConnectionKeepsAlive(t *testing.T) {
	r := &Route{name: "keepalive"}
	if err := r.listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer r.ln.Close()
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a, err := r.ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rc, err := a.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	on, gerr := 0, error(nil)
	if err := rc.Control(func(fd uintptr) {
		on, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil || on == 0 {
		t.Fatalf("SO_KEEPALIVE of an accepted connection = %d (%v), want on", on, gerr)
	}
}

// A socket accepted bare has keep-alive probes on and Nagle's delay off,
// which it takes from the listening socket as well, and its ends known.
func TestBareAcceptedSocketTakesListenerOptions(t *testing.T) {
	r := &Route{name: "bare"}
	if err := r.listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer r.ln.Close()
	var a acceptor
	f, err := a.bare.open(r.ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, local, err := a.bare.next(r)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(int(s.bare))
	for _, o := range []struct {
		name         string
		level, which int
	}{{"SO_KEEPALIVE", syscall.SOL_SOCKET, syscall.SO_KEEPALIVE}, {"TCP_NODELAY", syscall.IPPROTO_TCP, syscall.TCP_NODELAY}} {
		if on, err := syscall.GetsockoptInt(int(s.bare), o.level, o.which); err != nil || on == 0 {
			t.Fatalf("%s of a socket accepted bare = %d (%v), want on", o.name, on, err)
		}
	}
	if got, want := s.peer.String(), c.LocalAddr().String(); got != want {
		t.Fatalf("peer of a socket accepted bare: %s, want %s", got, want)
	}
	if got, want := local.String(), c.RemoteAddr().String(); got != want {
		t.Fatalf("local end of a socket accepted bare: %s, want %s", got, want)
	}
}
