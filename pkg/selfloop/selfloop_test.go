package selfloop_test

import (
	"net"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/selfloop"
)

func TestFind(t *testing.T) {
	listeners := []string{"127.0.0.1:6380", "0.0.0.0:7000", ":7001", "[::1]:7002", "localhost:7003", "127.0.0.1:0", "[::]:7004"}
	tests := []struct {
		backend string
		want    int
	}{
		{"127.0.0.1:6380", 0},
		{"localhost:6380", 0},
		{"0.0.0.0:6380", 0},
		{"127.0.0.2:6380", -1}, // another loopback address: not where it listens
		{"127.0.0.1:6381", -1},
		{"127.0.0.1:7000", 1}, // all IPv4 interfaces
		{"127.9.9.9:7000", 1},
		{"[::1]:7000", -1}, // 0.0.0.0 is IPv4 only
		{"[::1]:7001", 2},  // all interfaces, both families
		{"localhost:7001", 2},
		{"[::1]:7002", 3},
		{"127.0.0.1:7002", -1},
		{"127.0.0.1:7003", 4}, // a listener named by host name
		{"127.0.0.1:0", -1},   // port 0 is never dialed
		{"[::ffff:127.0.0.1]:7004", 6},
		{"192.0.2.1:7000", -1}, // TEST-NET: not this machine
		{"no-such-host.invalid:6380", -1},
		{"not an address", -1},
	}
	for _, tt := range tests {
		if got := selfloop.Find(tt.backend, listeners); got != tt.want {
			t.Errorf("Find(%q) = %d, want %d", tt.backend, got, tt.want)
		}
	}
}

// A machine address other than loopback reaches a listener on all
// interfaces.
func TestFindThroughAnInterfaceAddress(t *testing.T) {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.IsLoopback() || n.IP.To4() == nil {
			continue
		}
		backend := net.JoinHostPort(n.IP.String(), "7000")
		if got := selfloop.Find(backend, []string{"0.0.0.0:7000"}); got != 0 {
			t.Errorf("Find(%q) = %d; want the wildcard listener", backend, got)
		}
		if got := selfloop.Find(backend, []string{"127.0.0.1:7000"}); got != -1 {
			t.Errorf("Find(%q) against a loopback listener = %d, want -1", backend, got)
		}
		return
	}
	t.Skip("no IPv4 address besides loopback")
}

// A connection the process dials to one of its own listeners is seen from
// both ends, whichever records first; another connection between the same
// addresses is not, nor is the loop once forgotten.
func TestRegistryCatchesOwnConnections(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Logf("%s: %v", addr, err)
			continue
		}
		defer ln.Close()
		dial := func() (out, in net.Conn) {
			out, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			in, err = ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			return out, in
		}
		out, in := dial()
		defer out.Close()
		defer in.Close()
		other, otherIn := dial()
		defer other.Close()
		defer otherIn.Close()

		d, loop := selfloop.Dialed(out)
		if loop || d.IsZero() {
			t.Fatalf("%s: dialed first: loop %v, pair zero %v", addr, loop, d.IsZero())
		}
		o, loop := selfloop.Accepted(otherIn)
		if loop {
			t.Errorf("%s: another connection between the same addresses seen as the dialed one", addr)
		}
		selfloop.ForgetAccepted(o)
		a, loop := selfloop.Accepted(in)
		if !loop {
			t.Errorf("%s: the accepted end of a dialed connection not seen", addr)
		}
		selfloop.ForgetDialed(d)
		selfloop.ForgetAccepted(a)

		// The other way round: accepted first.
		a, loop = selfloop.Accepted(in)
		if loop {
			t.Errorf("%s: a forgotten dial still seen", addr)
		}
		d, loop = selfloop.Dialed(out)
		if !loop {
			t.Errorf("%s: the dialed end of an accepted connection not seen", addr)
		}
		selfloop.ForgetDialed(d)
		selfloop.ForgetAccepted(a)
	}
}
