package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// countingHTTP is a net/http backend that counts the requests it serves
// and the connections it opens and closes.
type countingHTTP struct {
	addr                 string
	hits, opened, closed atomic.Int64
}

func startCountingHTTP(t *testing.T) *countingHTTP {
	t.Helper()
	b := &countingHTTP{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.hits.Add(1)
			io.WriteString(w, "served "+r.URL.Path+"\n")
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				b.opened.Add(1)
			case http.StateClosed, http.StateHijacked:
				b.closed.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

// The http route frames requests as strictly as RFC 9112 asks of an
// intermediary. Each request whose framing a backend could read otherwise
// than vaurien hides a second request in what vaurien takes for its body;
// sent through the running binary to a net/http backend that counts what
// it serves, the backend serves none of it, never the hidden one; the
// client gets vaurien's 400 (505 for an unknown HTTP version) and the end
// of the connection; vaurien counts each as refused with reason
// bad_request.
func TestHTTPRouteRejectsAmbiguousFraming(t *testing.T) {
	const hidden = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	chunked := "POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	tests := []struct {
		name     string
		req      string
		statuses []int // the responses the client reads before the end of the connection
		hits     int64 // requests the backend serves
		refused  float64
	}{
		{"a valid request (control)", "GET /first HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", []int{200}, 1, 0},
		{"content-length and chunked", "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden, []int{400}, 0, 1},
		{"chunked and content-length", "POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + hidden, []int{400}, 0, 1},
		{"two content-lengths, 5 and 30", "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 30\r\n\r\nhello" + hidden, []int{400}, 0, 1},
		{"content-length 5, 5", "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello" + hidden, []int{400}, 0, 1},
		{"content-length 5 twice", "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello" + hidden, []int{400}, 0, 1},
		{"content-length +5", "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello" + hidden, []int{400}, 0, 1},
		{"transfer-encoding xchunked", "POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + hidden, []int{400}, 0, 1},
		{"chunked not the final coding", "POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + hidden, []int{400}, 0, 1},
		{"transfer-encoding in HTTP/1.0", "POST /first HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden, []int{400}, 0, 1},
		{"whitespace before the colon", "POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + hidden, []int{400}, 0, 1},
		{"obs-fold", "POST /first HTTP/1.1\r\nHost: x\r\nX-A: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden, []int{400}, 0, 1},
		{"header line without a colon", "GET /first HTTP/1.1\r\nHost: x\r\nX-No-Colon\r\n\r\n" + hidden, []int{400}, 0, 1},
		{"NUL in a header", "GET /first HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n" + hidden, []int{400}, 0, 1},
		{"bare CR in a header", "GET /first HTTP/1.1\r\nHost: x\r\nX-A: a\rContent-Length: 35\r\n\r\n" + hidden, []int{400}, 0, 1},
		{"chunk size -1", chunked + "-1\r\n" + hidden, []int{400}, 0, 1},
		{"chunk size ffffffffffffffff", chunked + "ffffffffffffffff\r\n" + hidden, []int{400}, 0, 1},
		{"chunk size 1ffffffffffffffff", chunked + "1ffffffffffffffff\r\n" + hidden, []int{400}, 0, 1},
		{"a valid request, then content-length and chunked", "GET /first HTTP/1.1\r\nHost: x\r\n\r\nPOST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden, []int{200, 400}, 1, 1},
		{"HTTP/9.9", "GET /first HTTP/9.9\r\nHost: x\r\n\r\n", []int{505}, 0, 1},
		{"TLS ClientHello", string(testenv.ClientHello(t)), []int{400}, 0, 1},
	}

	backend := startCountingHTTP(t)
	route, admin := freeAddr(t), freeAddr(t)
	path := filepath.Join(t.TempDir(), "vaurien.hcl")
	writeConfig(t, path, fmt.Sprintf("admin {\n  listen = %q\n}\nlog {\n  level = \"warn\"\n}\n"+
		"route \"web\" {\n  listen   = %q\n  backend  = %q\n  protocol = \"http\"\n}\n", admin, route, backend.addr))
	v := start(t, "", "run", "-c", path)
	if err := waitListening(route); err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hits, opened, refused := backend.hits.Load(), backend.opened.Load(), badRequests(t, admin)
			resps, bodies := testenv.ExchangeToEnd(t, route, tc.req)
			var got []int
			for _, r := range resps {
				got = append(got, r.StatusCode)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.statuses) {
				t.Fatalf("the client read statuses %v, want %v and the end of the connection", got, tc.statuses)
			}
			if last := len(resps) - 1; tc.refused > 0 && !strings.HasPrefix(string(bodies[last]), "malformed http message: ") {
				t.Errorf("the answer says %q, want vaurien's own", bodies[last])
			}
			// vaurien dials one backend connection per client connection:
			// once the backend has closed it, it has served all it got.
			waitFor(t, "the backend connection to close", func() bool {
				n := backend.opened.Load()
				return n > opened && backend.closed.Load() == n
			})
			if h := backend.hits.Load() - hits; h != tc.hits {
				t.Errorf("the backend served %d requests, want %d", h, tc.hits)
			}
			if r := badRequests(t, admin) - refused; r != tc.refused {
				t.Errorf("refused{reason=\"bad_request\"} grew by %v, want %v", r, tc.refused)
			}
		})
	}
	if strings.Contains(v.output(), "panic") {
		t.Fatalf("vaurien crashed:\n%s", v.output())
	}
}

// badRequests reads vaurien_connections_refused_total for route web and
// reason bad_request from the admin server's metrics (0 before the first).
func badRequests(t *testing.T, admin string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	const series = `vaurien_connections_refused_total{reason="bad_request",route="web"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return 0
}
