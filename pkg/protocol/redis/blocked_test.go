package redis

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

// A client that leaves while its BLPOP waits in redis does not leave the
// route holding the connection: redis sees the end the client sent, frees
// the blocked client and closes, and the connection is over, whether the
// client closed or reset.
func TestBlockedClientLeaves(t *testing.T) {
	srv := testenv.Redis(t)
	admin, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ar := bufio.NewReader(admin)
	blocked := func() string {
		admin.SetDeadline(time.Now().Add(5 * time.Second))
		admin.Write([]byte(command("INFO", "clients")))
		v, err := readValue(ar)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(v), "\r\n") {
			if n, ok := strings.CutPrefix(line, "blocked_clients:"); ok {
				return n
			}
		}
		t.Fatalf("INFO clients has no blocked_clients: %q", v)
		return ""
	}
	for _, reset := range []bool{false, true} {
		p := startProxy(t, srv.Addr, proxyConfig{})
		rc := dialRaw(t, p.Addr)
		rc.send("BLPOP", "kit-blocked-list", "0")
		protocoltest.WaitFor(t, 5*time.Second, "BLPOP to block in redis", func() bool { return blocked() == "1" })
		if reset {
			rc.c.(*net.TCPConn).SetLinger(0)
		}
		rc.c.Close()
		p.WaitServed(t)
		protocoltest.WaitFor(t, 5*time.Second, "redis to free the blocked client", func() bool { return blocked() == "0" })
		if errs := p.Errors(); len(errs) > 0 {
			t.Errorf("Serve returned %v", errs)
		}
	}
}
