package testenv

import (
	"net"
	"testing"
)

// Ports handed out are distinct, bindable, and out of the kernel's
// ephemeral range, where a ":0" listener of another test process could
// take them before the server binds.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	_, first := belowEphemeral()
	seen := map[int]bool{}
	for range 200 {
		p := FreePort(t)
		if p >= first || p < 1024 {
			t.Fatalf("port %d: want one in 1024-%d", p, first-1)
		}
		if seen[p] {
			t.Fatalf("port %d given twice", p)
		}
		seen[p] = true
	}
	// Many ephemeral listeners never land on a port handed out.
	for range 200 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if p := l.Addr().(*net.TCPAddr).Port; seen[p] {
			t.Fatalf("an ephemeral listener got port %d, handed out by FreePort", p)
		}
	}
}
