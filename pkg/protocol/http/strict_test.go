package httpproto

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

// hidden is the request a smuggling attempt hides in a body: any backend
// that frames the body otherwise than the proxy reads it as a request of
// its own, and counts a hit on /hello.
const hidden = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"

// TestRejectsAmbiguousFraming sends requests whose framing a backend could
// read otherwise than the proxy through the proxy to a net/http backend
// that counts the requests it serves: the client gets the proxy's 400 (or
// 505) and the end of the connection, after the answers to the requests
// before it; the backend serves none of a rejected request (a malformed
// chunk that comes with the head is found before the head goes out), and
// never the hidden one; each rejection is counted as refused.
func TestRejectsAmbiguousFraming(t *testing.T) {
	chunked := "POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	tests := []struct {
		name     string
		req      string
		statuses []int // what the client reads, in order, before the end
		hits     int64 // requests the backend serves
	}{
		{"length and chunked", "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden, []int{400}, 0},
		{"a valid request first", hidden + "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello" + hidden, []int{200, 400}, 1},
		{"obs-fold", "GET /hello HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n" + hidden, []int{400}, 0},
		{"chunk size -1", chunked + "-1\r\n" + hidden, []int{400}, 0},
		{"chunk size overflows", chunked + "1ffffffffffffffff\r\n" + hidden, []int{400}, 0},
		{"chunk after valid data", chunked + "5\r\nhello\r\nffffffffffffffff\r\n" + hidden, []int{400}, 0},
		{"trailer without colon", chunked + "0\r\nX\r\n\r\n" + hidden, []int{400}, 0},
		{"http/9.9", "GET /hello HTTP/9.9\r\nHost: x\r\n\r\n", []int{505}, 0},
		{"tls client hello", string(testenv.ClientHello(t)), []int{400}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startGoBackend(t)
			p := startProxy(t, b.Addr(), proxyConfig{})
			resps, bodies := testenv.ExchangeToEnd(t, p.Addr, tc.req)
			var got []int
			for _, r := range resps {
				got = append(got, r.StatusCode)
			}
			if !equalInts(got, tc.statuses) {
				t.Fatalf("the client read statuses %v, want %v and the end of the connection", got, tc.statuses)
			}
			last := len(resps) - 1
			if !resps[last].Close || !strings.Contains(string(bodies[last]), "malformed http message") {
				t.Errorf("the answer (close: %v) says %q; want the proxy's own, closing the connection", resps[last].Close, bodies[last])
			}
			// The proxy dials one backend connection per client connection:
			// once the backend has closed it, it has served all it got.
			protocoltest.WaitFor(t, 10*time.Second, "the connections to end", func() bool {
				return p.Active.Load() == 0 && b.newConns.Load() == 1 && b.closed.Load() == 1
			})
			if h := b.hits.Load(); h != tc.hits {
				t.Errorf("the backend served %d requests, want %d", h, tc.hits)
			}
			if r := p.Refusals.Load(); r != 1 {
				t.Errorf("%d refusals counted, want 1", r)
			}
			noErrors(t, p)
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMalformedChunkAfterResponse sends a bad chunk size after the backend
// has answered the request already: the client keeps that answer, the
// connection ends, and the backend gets nothing after the bad line.
func TestMalformedChunkAfterResponse(t *testing.T) {
	got := make(chan string, 1)
	addr := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			got <- err.Error()
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		rest, _ := io.ReadAll(br)
		got <- string(rest)
	})
	p := startProxy(t, addr, proxyConfig{})
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("%d %q, want the backend's 200 ok", resp.StatusCode, body)
	}
	io.WriteString(conn, "-1\r\n"+hidden)
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the answer: %q, %v; want the end of the connection", rest, err)
	}
	if body := <-got; body != "5\r\nhello\r\n-1\r\n" {
		t.Errorf("the backend got the body %q, want the first chunk and the bad line, then the end", body)
	}
	if r := p.Refusals.Load(); r != 1 {
		t.Errorf("%d refusals counted, want 1", r)
	}
	noErrors(t, p)
}

// TestMalformedChunkWhileBackendWaits sends a bad chunk size while the
// proxy waits for the backend's response to the request, which the backend
// holds back until it has read the body: the client gets the proxy's 400
// in place of that response, after the response to the request before it,
// then the end of the connection, and the backend serves those two
// requests only.
func TestMalformedChunkWhileBackendWaits(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, hidden+"POST /sum HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	// The first response goes out when the proxy turns to wait for the
	// second: the bad chunk comes while it waits.
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	protocoltest.WaitFor(t, 10*time.Second, "the backend to read the body", func() bool { return b.hits.Load() == 2 })
	io.WriteString(conn, "-1\r\n"+hidden)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.HasPrefix(string(body), "malformed http message") {
		t.Errorf("%d %q; want the proxy's 400", resp.StatusCode, body)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after the 400: %q, %v; want the end of the connection", rest, err)
	}
	conn.Close()
	protocoltest.WaitFor(t, 10*time.Second, "the connections to end", func() bool {
		return p.Active.Load() == 0 && b.newConns.Load() == 1 && b.closed.Load() == 1
	})
	if h := b.hits.Load(); h != 2 {
		t.Errorf("the backend served %d requests, want 2", h)
	}
	noErrors(t, p)
}
