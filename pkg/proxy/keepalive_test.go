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
