package memcache

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// A backend that answers and closes while the client is still sending:
// its last words reach the client, then the end of the stream, instead of
// being destroyed by a reset (the proxy closing a socket with unread input
// makes the kernel send one). The connection closes lingering: the
// client's input is read and dropped meanwhile.
func TestBackendLastWordsReachAClientStillSending(t *testing.T) {
	b := testenv.Serve(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "SERVER_ERROR going away\r\n")
	})
	p := startProxy(t, b.Addr, nil)
	c := dial(t, p.Addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		// Requests keep coming after the backend has gone.
		chunk := strings.Repeat("get k\r\n", 1<<12)
		for range 64 {
			if _, err := io.WriteString(c, chunk); err != nil {
				return
			}
		}
	}()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "SERVER_ERROR going away\r\n" {
		t.Fatalf("the client read %q, %v; want the backend's last words, then the end", got, err)
	}
	c.Close()
	p.WaitServed(t)
}
