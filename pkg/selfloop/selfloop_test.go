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
