package httpproto

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

func client() *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, body
}

func noErrors(t *testing.T, p *protocoltest.Proxy) {
	t.Helper()
	p.Stop()
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("Serve returned errors: %v", errs)
	}
}

func TestKeepAliveOneBackendConnection(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	c := client()
	defer c.CloseIdleConnections()
	const n = 50
	for i := 0; i < n; i++ {
		resp, body := get(t, c, "http://"+p.Addr+"/hello")
		if resp.StatusCode != 200 || string(body) != "hello\n" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if got := b.newConns.Load(); got != 1 {
		t.Errorf("backend saw %d connections, want 1", got)
	}
	if got := p.Conns.Load(); got != 1 {
		t.Errorf("proxy saw %d connections, want 1", got)
	}
	if got := p.Exchanges.Load(); got != n {
		t.Errorf("Exchanged %d times, want %d", got, n)
	}
	c.CloseIdleConnections()
	noErrors(t, p)
}

func TestBodiesByteExact(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	c := client()
	defer c.CloseIdleConnections()
	const size = 10 << 20
	want := payload(42, size)
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("download chunked=%v", chunked), func(t *testing.T) {
			url := fmt.Sprintf("http://%s/bytes?n=%d&seed=42", p.Addr, size)
			if chunked {
				url += "&chunked=1"
			}
			resp, body := get(t, c, url)
			if chunked != (len(resp.TransferEncoding) > 0) {
				t.Errorf("transfer encoding %v", resp.TransferEncoding)
			}
			if sum(body) != sum(want) {
				t.Fatalf("body differs: %d bytes, sha %s", len(body), sum(body))
			}
		})
		t.Run(fmt.Sprintf("upload chunked=%v", chunked), func(t *testing.T) {
			var body io.Reader = bytes.NewReader(want)
			if chunked {
				body = io.MultiReader(body) // unknown length: the client sends chunks
			}
			resp, err := c.Post("http://"+p.Addr+"/sum", "application/octet-stream", body)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if te := resp.Header.Get("X-Transfer-Encoding"); chunked != (te == "chunked") {
				t.Errorf("the backend got transfer encoding %q", te)
			}
			if exp := fmt.Sprintf("%d %s", size, sum(want)); string(got) != exp {
				t.Fatalf("backend got %q, want %q", got, exp)
			}
		})
	}
	c.CloseIdleConnections()
	noErrors(t, p)
	if p.ToBackend.Load() < 2*size || p.ToClient.Load() < 2*size {
		t.Errorf("relayed %d up, %d down; want over %d each", p.ToBackend.Load(), p.ToClient.Load(), 2*size)
	}
}

// rawExchange writes reqs at once on one connection and reads one response
// per request, in order.
func rawExchange(t *testing.T, addr string, reqs string, methods ...string) ([]*http.Response, [][]byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, reqs); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	var resps []*http.Response
	var bodies [][]byte
	for i, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", i, err)
		}
		resps = append(resps, resp)
		bodies = append(bodies, body)
	}
	return resps, bodies
}

func TestPipelining(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	var reqs strings.Builder
	var methods, want []string
	for i := 0; i < 30; i++ {
		switch i % 3 {
		case 0:
			reqs.WriteString("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
			methods, want = append(methods, "GET"), append(want, "hello\n")
		case 1:
			body := strings.Repeat(fmt.Sprint(i), 1000)
			fmt.Fprintf(&reqs, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			methods, want = append(methods, "POST"), append(want, body)
		case 2:
			body := strings.Repeat("z", i)
			fmt.Fprintf(&reqs, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x;ext=1\r\n%s\r\n0\r\nTrailer-A: b\r\n\r\n", len(body), body)
			methods, want = append(methods, "POST"), append(want, body)
		}
	}
	reqs.WriteString("HEAD /bytes?n=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
	methods, want = append(methods, "HEAD"), append(want, "")
	reqs.WriteString("GET /status/204 HTTP/1.1\r\nHost: x\r\n\r\n")
	methods, want = append(methods, "GET"), append(want, "")
	reqs.WriteString("GET /status/304 HTTP/1.1\r\nHost: x\r\n\r\n")
	methods, want = append(methods, "GET"), append(want, "")
	reqs.WriteString("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	methods, want = append(methods, "GET"), append(want, "hello\n")
	resps, bodies := rawExchange(t, p.Addr, reqs.String(), methods...)
	for i := range resps {
		if string(bodies[i]) != want[i] {
			t.Errorf("response %d: body %q, want %q", i, bodies[i], want[i])
		}
	}
	if resps[30].ContentLength != 1000 {
		t.Errorf("HEAD: Content-Length %d, want 1000", resps[30].ContentLength)
	}
	if resps[31].StatusCode != 204 || resps[32].StatusCode != 304 {
		t.Errorf("statuses %d %d", resps[31].StatusCode, resps[32].StatusCode)
	}
	protocoltest.WaitFor(t, 10*time.Second, "all exchanges", func() bool { return p.Exchanges.Load() == int64(len(methods)) })
	if b.newConns.Load() != 1 {
		t.Errorf("backend saw %d connections", b.newConns.Load())
	}
	noErrors(t, p)
}

// TestDeepPipeline sends more pipelined requests than the queue holds:
// the client is read no further until answers free room, and every
// request is answered in order.
func TestDeepPipeline(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	n := 3 * queueLen
	var reqs strings.Builder
	methods := make([]string, n)
	for i := range n {
		fmt.Fprintf(&reqs, "GET /bytes?n=%d&seed=%d HTTP/1.1\r\nHost: x\r\n\r\n", i, i)
		methods[i] = "GET"
	}
	_, bodies := rawExchange(t, p.Addr, reqs.String(), methods...)
	for i, body := range bodies {
		if !bytes.Equal(body, payload(uint64(i), i)) {
			t.Fatalf("response %d: %d bytes, not the payload", i, len(body))
		}
	}
	noErrors(t, p)
}

// TestPipelinedResponsesSplit has the backend answer pipelined requests in
// pieces cut anywhere: a response that arrives whole with the start of the
// next one, the rest of which comes later, is relayed intact.
func TestPipelinedResponsesSplit(t *testing.T) {
	var all strings.Builder
	var want []string
	var cuts []int // in the first response, and in the head and the body of each next one
	for i := range 4 {
		body := strings.Repeat(string(rune('a'+i)), 100+i*300)
		cuts = append(cuts, all.Len()+1, all.Len()+30)
		fmt.Fprintf(&all, "HTTP/1.1 200 OK\r\nX-N: %d\r\nContent-Length: %d\r\n\r\n", i, len(body))
		cuts = append(cuts, all.Len()+50)
		all.WriteString(body)
		want = append(want, body)
	}
	resps := all.String()
	for _, cut := range cuts {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			backend := rawBackend(t, func(c net.Conn) {
				r := bufio.NewReader(c)
				for range want {
					if _, err := http.ReadRequest(r); err != nil {
						return
					}
				}
				io.WriteString(c, resps[:cut])
				time.Sleep(50 * time.Millisecond)
				io.WriteString(c, resps[cut:])
				io.Copy(io.Discard, c)
			})
			p := startProxy(t, backend, proxyConfig{})
			reqs := strings.Repeat("GET / HTTP/1.1\r\nHost: x\r\n\r\n", len(want))
			_, bodies := rawExchange(t, p.Addr, reqs, "GET", "GET", "GET", "GET")
			for i := range bodies {
				if string(bodies[i]) != want[i] {
					t.Errorf("response %d: %d bytes %.20q..., want %d bytes %.20q...", i, len(bodies[i]), bodies[i], len(want[i]), want[i])
				}
			}
			p.Stop()
		})
	}
}

func TestHTTP10KeepAlive(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	for i := 0; i < 3; i++ {
		io.WriteString(conn, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if string(body) != "hello\n" || resp.Close {
			t.Fatalf("keep-alive response %d: %q close=%v", i, body, resp.Close)
		}
	}
	// Without keep-alive, HTTP/1.0 ends the connection after the response.
	io.WriteString(conn, "GET /hello HTTP/1.0\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "hello\n" {
		t.Fatalf("body %q", body)
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after an HTTP/1.0 response without keep-alive: read %d, %v; want EOF", n, err)
	}
	noErrors(t, p)
}

func TestCloseDelimitedResponse(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	c := client()
	defer c.CloseIdleConnections()
	resp, body := get(t, c, "http://"+p.Addr+"/close10?n=300000")
	if resp.ContentLength != -1 || !bytes.Equal(body, payload(7, 300000)) {
		t.Fatalf("close-delimited body: length %d, %d bytes, equal=%v", resp.ContentLength, len(body), bytes.Equal(body, payload(7, 300000)))
	}
	noErrors(t, p)
}

func TestWebSocketUpgrade(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	// The first frame goes right behind the request: the proxy must not
	// take it for the next request.
	msg := append([]byte("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\n\r\n"), frame([]byte("first"), true)...)
	conn.Write(msg)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) {
		t.Fatalf("upgrade answered %d %v", resp.StatusCode, resp.Header)
	}
	for _, m := range []string{"first", "second", "GET / HTTP/1.1"} {
		if m != "first" {
			conn.Write(frame([]byte(m), true))
		}
		got, err := readFrame(br)
		if err != nil || string(got) != m {
			t.Fatalf("echo of %q: %q, %v", m, got, err)
		}
	}
	conn.Close()
	noErrors(t, p)
}

func TestUpgradeRefusedStaysHTTP(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	reqs := "GET /hello HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n" +
		"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
	_, bodies := rawExchange(t, p.Addr, reqs, "GET", "GET")
	for i, body := range bodies {
		if string(body) != "hello\n" {
			t.Errorf("response %d: %q", i, body)
		}
	}
	noErrors(t, p)
}

func TestErrorFault(t *testing.T) {
	b := startGoBackend(t)
	e := chaos.Effect{Fault: chaos.FaultError, Error: chaos.ErrorSpec{Status: 503, Headers: map[string]string{"Retry-After": "5"}}}
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(e, "/fail")}})
	c := client()
	defer c.CloseIdleConnections()
	resp, body := get(t, c, "http://"+p.Addr+"/fail")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "5" || !resp.Close {
		t.Fatalf("error reply: %d %v close=%v", resp.StatusCode, resp.Header, resp.Close)
	}
	if !strings.Contains(string(body), "503 Service Unavailable") {
		t.Errorf("error page %q", body)
	}
	if b.hits.Load() != 0 {
		t.Errorf("the backend was reached %d times", b.hits.Load())
	}

	// Pipelined: the responses before the error come first, then the
	// error, then the end of the connection.
	hitsBefore := b.hits.Load()
	reqs := "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nPOST /fail HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde" +
		"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
	resps, bodies := rawExchange(t, p.Addr, reqs, "GET", "POST")
	if string(bodies[0]) != "hello\n" || resps[1].StatusCode != 503 {
		t.Fatalf("pipelined: %q then %d", bodies[0], resps[1].StatusCode)
	}
	if got := b.hits.Load() - hitsBefore; got != 1 {
		t.Errorf("the backend got %d requests, want 1", got)
	}
	if p.Faults.Load() != 2 {
		t.Errorf("%d faults drawn, want 2", p.Faults.Load())
	}
	noErrors(t, p)
}

func TestErrorFaultDefaults(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(chaos.Effect{Fault: chaos.FaultError}, "")}})
	c := client()
	defer c.CloseIdleConnections()
	seen := map[int]bool{}
	for i := 0; i < 40; i++ {
		resp, body := get(t, c, "http://"+p.Addr+"/hello")
		if resp.StatusCode < 500 || resp.StatusCode > 503 || !strings.Contains(string(body), "<html>") {
			t.Fatalf("status %d body %q", resp.StatusCode, body)
		}
		seen[resp.StatusCode] = true
	}
	if len(seen) < 2 {
		t.Errorf("40 errors all had the same status: %v", seen)
	}
	req, _ := http.NewRequest("HEAD", "http://"+p.Addr+"/hello", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ContentLength <= 0 {
		t.Errorf("HEAD error reply: Content-Length %d", resp.ContentLength)
	}
	e := chaos.Effect{Fault: chaos.FaultError, Error: chaos.ErrorSpec{Status: 429, Message: "slow down"}}
	p2 := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(e, "")}})
	resp, body := get(t, c, "http://"+p2.Addr+"/hello")
	if resp.StatusCode != 429 || string(body) != "slow down" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("custom error: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if b.hits.Load() != 0 {
		t.Errorf("the backend was reached %d times", b.hits.Load())
	}
}

func TestInjectCorruptsBodyInPlace(t *testing.T) {
	b := startGoBackend(t)
	e := chaos.Effect{Fault: chaos.FaultError, Error: chaos.ErrorSpec{Inject: true}}
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(e, "")}})
	c := client()
	defer c.CloseIdleConnections()
	for _, q := range []string{"", "&chunked=1"} {
		want := payload(3, 100000)
		_, got := get(t, c, "http://"+p.Addr+"/bytes?n=100000&seed=3"+q)
		if len(got) != len(want) {
			t.Fatalf("%s: length %d, want %d", q, len(got), len(want))
		}
		diff := 0
		for i := range got {
			if got[i] != want[i] {
				diff++
			}
		}
		if diff == 0 || diff > injectLen {
			t.Errorf("%s: %d bytes differ, want 1 to %d", q, diff, injectLen)
		}
	}
	if b.newConns.Load() != 1 {
		t.Errorf("the connection did not stay in sync: %d backend connections", b.newConns.Load())
	}
}

func TestDelays(t *testing.T) {
	b := startGoBackend(t)
	const d = 150 * time.Millisecond
	for _, e := range []chaos.Effect{{Delay: d}, {ResponseDelay: d}} {
		p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(e, "/hello")}})
		c := client()
		for i := 0; i < 2; i++ {
			start := time.Now()
			_, body := get(t, c, "http://"+p.Addr+"/hello")
			if took := time.Since(start); took < d || string(body) != "hello\n" {
				t.Errorf("%+v: took %v (want at least %v), body %q", e, took, d, body)
			}
		}
		start := time.Now()
		get(t, c, "http://"+p.Addr+"/bytes?n=10") // not matched: not delayed
		if took := time.Since(start); took >= d {
			t.Logf("an undelayed request took %v", took)
		}
		c.CloseIdleConnections()
		noErrors(t, p)
	}
}

// dialSend opens a connection to addr and sends req.
func dialSend(t *testing.T, addr, req string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	return conn
}

func TestHang(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(chaos.Effect{Fault: chaos.FaultHang}, "/hang")}})
	conn := dialSend(t, p.Addr, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hang HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	const quiet = 300 * time.Millisecond
	conn.SetReadDeadline(time.Now().Add(quiet))
	if n, err := br.Read(make([]byte, 1)); !errors.Is(err, syscall.EAGAIN) && !isTimeout(err) {
		t.Fatalf("a hung request got %d bytes, %v; want a timeout", n, err)
	}
	// The connection stays open: more requests are swallowed too.
	if _, err := io.WriteString(conn, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatalf("write after hang: %v", err)
	}
	if b.hits.Load() != 1 {
		t.Errorf("the backend got %d requests, want 1", b.hits.Load())
	}
	conn.Close()
	noErrors(t, p)
}

func TestTimeoutFaultCloses(t *testing.T) {
	b := startGoBackend(t)
	const after = 200 * time.Millisecond
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(chaos.Effect{Fault: chaos.FaultTimeout, After: after}, "")}})
	start := time.Now()
	conn := dialSend(t, p.Addr, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(make([]byte, 1))
	if took := time.Since(start); n != 0 || err == nil || isTimeout(err) || took < after {
		t.Fatalf("read %d, %v after %v; want the connection closed after %v", n, err, took, after)
	}
	noErrors(t, p)
}

func TestAbort(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(chaos.Effect{Fault: chaos.FaultAbort}, "/wait")}})
	conn := dialSend(t, p.Addr, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /wait?d=10ms HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the response before the aborted request: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	if _, err := http.ReadResponse(br, nil); err == nil {
		t.Fatal("the aborted request got a response")
	}
	protocoltest.WaitFor(t, 10*time.Second, "the backend to get the aborted request", func() bool { return b.hits.Load() == 2 })
	noErrors(t, p)
}

func TestCloseAndRefuse(t *testing.T) {
	b := startGoBackend(t)
	for _, f := range []chaos.Fault{chaos.FaultClose, chaos.FaultRefuse} {
		p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(chaos.Effect{Fault: f}, "")}})
		conn := dialSend(t, p.Addr, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := conn.Read(make([]byte, 1)); n != 0 || err == nil || isTimeout(err) {
			t.Errorf("%v: read %d, %v; want the connection closed", f, n, err)
		}
		noErrors(t, p)
		if f == chaos.FaultRefuse && p.Refusals.Load() != 1 {
			t.Errorf("Refused called %d times", p.Refusals.Load())
		}
	}
	if b.hits.Load() != 0 {
		t.Errorf("the backend got %d requests", b.hits.Load())
	}
}

func TestReset(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(chaos.Effect{Fault: chaos.FaultReset}, "")}})
	conn := dialSend(t, p.Addr, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("read: %v; want a connection reset", err)
	}
	noErrors(t, p)
}

func TestHostRewrite(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{options: map[string]any{"overwrite_host_header": true}})
	c := client()
	defer c.CloseIdleConnections()
	_, body := get(t, c, "http://"+p.Addr+"/host")
	if string(body) != b.Addr() {
		t.Errorf("backend saw Host %q, want %q", body, b.Addr())
	}
	_, bodies := rawExchange(t, p.Addr, "GET /host HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /host HTTP/1.1\r\nhOsT:  other:1 \r\nX: y\r\n\r\n", "GET", "GET")
	for i, body := range bodies {
		if string(body) != b.Addr() {
			t.Errorf("request %d: backend saw Host %q", i, body)
		}
	}
	noErrors(t, p)
}

func TestHeadTooLarge(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	for _, tc := range []struct {
		req    string
		status int
	}{
		{"GET /" + strings.Repeat("a", maxLine+10) + " HTTP/1.1\r\n\r\n", 414},
		{"GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxLine+10) + "\r\n\r\n", 431},
		{"GET / HTTP/1.1\r\n" + strings.Repeat("X-Many: "+strings.Repeat("b", 1000)+"\r\n", 1100) + "\r\n", 431},
	} {
		resps, _ := rawExchange(t, p.Addr, tc.req, "GET")
		if resps[0].StatusCode != tc.status || !resps[0].Close {
			t.Errorf("status %d close=%v; want %d", resps[0].StatusCode, resps[0].Close, tc.status)
		}
	}
	if b.hits.Load() != 0 {
		t.Errorf("the backend got %d requests", b.hits.Load())
	}
	noErrors(t, p)
}

func TestExpectContinueNetHTTP(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	tr := &http.Transport{ExpectContinueTimeout: 20 * time.Second}
	defer tr.CloseIdleConnections()
	data := payload(5, 4096)
	req, _ := http.NewRequest("POST", "http://"+p.Addr+"/sum", bytes.NewReader(data))
	req.Header.Set("Expect", "100-continue")
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v: the 100 Continue did not come through", took)
	}
	h := sha256.Sum256(data)
	if string(got) != fmt.Sprintf("4096 %x", h) {
		t.Errorf("backend got %q", got)
	}
	noErrors(t, p)
}

func TestIdleTimeout(t *testing.T) {
	b := startGoBackend(t)
	const idle = 200 * time.Millisecond
	p := startProxy(t, b.Addr(), proxyConfig{idle: idle})
	conn := dialSend(t, p.Addr, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	start := time.Now()
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Fatalf("idle connection: %v", err)
	}
	if took := time.Since(start); took < idle/2 {
		t.Errorf("closed after %v, idle timeout %v", took, idle)
	}
	p.Stop()
	for _, err := range p.Errors() {
		if err != errIdle {
			t.Errorf("Serve: %v", err)
		}
	}
}

// TestIdleTimeoutEitherWay checks that bytes moving either way keep a
// connection open past the idle timeout, and that it closes the timeout
// after the last of them, not later.
func TestIdleTimeoutEitherWay(t *testing.T) {
	const idle = 300 * time.Millisecond
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{idle: idle})
	defer p.Stop()
	for _, tc := range []struct {
		name string
		send func(c net.Conn) error
		want string
	}{
		{"response", func(c net.Conn) error {
			_, err := io.WriteString(c, "GET /drip?n=6&every=150ms HTTP/1.1\r\nHost: x\r\n\r\n")
			return err
		}, strings.Repeat("drip\n", 6)},
		{"request", func(c net.Conn) error {
			if _, err := io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n"); err != nil {
				return err
			}
			for i := range 6 {
				time.Sleep(150 * time.Millisecond)
				if _, err := c.Write([]byte{'a' + byte(i)}); err != nil {
					return err
				}
			}
			return nil
		}, "abcdef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", p.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if err := tc.send(conn); err != nil {
				t.Fatalf("send: %v", err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != tc.want {
				t.Fatalf("body %q, %v", body, err)
			}
			last := time.Now()
			if _, err := br.ReadByte(); err == nil || isTimeout(err) {
				t.Fatalf("idle connection: %v", err)
			}
			if took := time.Since(last); took < idle/2 || took > idle+idle/2 {
				t.Errorf("closed %v after the last byte, idle timeout %v", took, idle)
			}
		})
	}
}

func TestBackendClosingIdleClosesClient(t *testing.T) {
	b := startGoBackend(t, func(s *http.Server) { s.IdleTimeout = 100 * time.Millisecond })
	p := startProxy(t, b.Addr(), proxyConfig{})
	conn := dialSend(t, p.Addr, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the backend closed the idle connection: %v, want EOF", err)
	}
	noErrors(t, p)
}

// chopFilter relays in small writes, as the slicer behavior does.
var chopFilter = chaos.FilterFunc(func(_ context.Context, dst io.Writer, src io.Reader) error {
	buf := make([]byte, 7)
	_, err := io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, buf)
	return err
})

func TestFilters(t *testing.T) {
	b := startGoBackend(t)
	e := chaos.Effect{ToBackend: chopFilter, ToClient: chopFilter}
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(e, "")}})
	c := client()
	defer c.CloseIdleConnections()
	data := payload(9, 50000)
	for i := 0; i < 3; i++ {
		resp, err := c.Post("http://"+p.Addr+"/echo", "x", io.MultiReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("filtered echo differs: %d bytes", len(got))
		}
	}
	if b.newConns.Load() != 1 {
		t.Errorf("%d backend connections", b.newConns.Load())
	}
	c.CloseIdleConnections()
	noErrors(t, p)
}

func TestRequestFields(t *testing.T) {
	b := startGoBackend(t)
	e := chaos.Effect{Fault: chaos.FaultError, Error: chaos.ErrorSpec{Status: 500}}
	en := chaos.Entry{Name: "test", Percent: 100, Behavior: &protocoltest.Fixed{E: e}, Match: func(r *chaos.Request) bool {
		return r.Command == "POST" && r.Header("x-chaos") == "yes"
	}}
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{en}, record: true})
	reqs := "GET /hello?x=1 HTTP/1.1\r\nHost: x\r\nX-Chaos: yes\r\n\r\n" +
		"POST /echo HTTP/1.1\r\nHost: x\r\nX-Chaos: no\r\nContent-Length: 2\r\n\r\nhi" +
		"GET http://example.com/sum HTTP/1.1\r\nHost: x\r\n\r\n" +
		"POST /hello HTTP/1.1\r\nHost: x\r\nX-CHAOS:   yes \r\nContent-Length: 2\r\n\r\nhi"
	resps, _ := rawExchange(t, p.Addr, reqs, "GET", "POST", "GET", "POST")
	if got := []int{resps[0].StatusCode, resps[1].StatusCode, resps[2].StatusCode, resps[3].StatusCode}; fmt.Sprint(got) != "[200 200 200 500]" {
		t.Errorf("statuses %v", got)
	}
	noErrors(t, p)
	want := "[GET /hello POST /echo GET /sum POST /hello]"
	if got := fmt.Sprint(p.Requests()); got != want {
		t.Errorf("exchanges %s, want %s", got, want)
	}
}

func TestConnect(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	// Refused: the connection stays HTTP.
	_, bodies := rawExchange(t, p.Addr, "CONNECT denied:443 HTTP/1.1\r\nHost: denied:443\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n", "CONNECT", "GET")
	if string(bodies[1]) != "hello\n" {
		t.Errorf("after a refused CONNECT: %q", bodies[1])
	}
	// Accepted: the rest is a tunnel, even bytes sent right behind the request.
	conn := dialSend(t, p.Addr, "CONNECT echo:443 HTTP/1.1\r\nHost: echo:443\r\n\r\nGET /not-http HTTP/1.1\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	conn.Write([]byte("\x16\x03\x01binary"))
	conn.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(br)
	if err != nil || string(got) != "GET /not-http HTTP/1.1\r\n\r\n\x16\x03\x01binary" {
		t.Errorf("tunnel echoed %q, %v", got, err)
	}
	noErrors(t, p)
}

func TestClientHalfClose(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	conn := dialSend(t, p.Addr, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil || bytes.Count(got, []byte("hello\n")) != 2 {
		t.Errorf("after a half-close: %q, %v", got, err)
	}
	noErrors(t, p)
}

func TestResetAfter(t *testing.T) {
	b := startGoBackend(t)
	const after = 150 * time.Millisecond
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(chaos.Effect{Fault: chaos.FaultReset, After: after}, "")}})
	start := time.Now()
	conn := dialSend(t, p.Addr, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the request before the reset: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	_, err = br.ReadByte()
	if took := time.Since(start); !errors.Is(err, syscall.ECONNRESET) || took < after {
		t.Errorf("after %v: %v; want a reset after %v", took, err, after)
	}
	noErrors(t, p)
}

func TestCloseDelay(t *testing.T) {
	b := startGoBackend(t)
	const hold = 200 * time.Millisecond
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(chaos.Effect{CloseDelay: hold}, "")}})
	conn := dialSend(t, p.Addr, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	start := time.Now()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("read: %v, want EOF", err)
	}
	if took := time.Since(start); took < hold/2 {
		t.Errorf("closed %v after the response, want about %v", took, hold)
	}
	noErrors(t, p)
}

func TestResponseDelayKeepsOrder(t *testing.T) {
	b := startGoBackend(t)
	const d = 100 * time.Millisecond
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(chaos.Effect{ResponseDelay: d}, "/hello")}})
	start := time.Now()
	reqs := "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /host HTTP/1.1\r\nHost: second\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
	_, bodies := rawExchange(t, p.Addr, reqs, "GET", "GET", "GET")
	if fmt.Sprintf("%q", bodies) != `["hello\n" "second" "hello\n"]` {
		t.Errorf("bodies %q", bodies)
	}
	if took := time.Since(start); took < 2*d {
		t.Errorf("took %v, want at least %v", took, 2*d)
	}
	noErrors(t, p)
}

func TestErrorFaultWithContinue(t *testing.T) {
	b := startGoBackend(t)
	e := chaos.Effect{Fault: chaos.FaultError, Error: chaos.ErrorSpec{Status: 502}}
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(e, "")}})
	data := payload(1, 3000)
	path := t.TempDir() + "/body"
	if err := writeFile(path, data); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, _ := curl(t, nil, "-H", "Expect: 100-continue", "--expect100-timeout", "20", "-w", "%{http_code}", "-o", "/dev/null",
		"--data-binary", "@"+path, "http://"+p.Addr+"/sum")
	if string(out) != "502" {
		t.Errorf("curl got %q", out)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v", took)
	}
	noErrors(t, p)
}

func TestUnsolicitedBackendBytes(t *testing.T) {
	// A backend that times the connection out before any request, as
	// some servers do with a 408: the client gets it and the end.
	addr := rawBackend(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
	})
	p := startProxy(t, addr, proxyConfig{})
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil || !strings.HasPrefix(string(got), "HTTP/1.1 408") {
		t.Errorf("client got %q, %v", got, err)
	}
	noErrors(t, p)
}

func TestMalformedResponseFallsBackToRaw(t *testing.T) {
	const answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA BYTES\r\n\x00\x01"
	addr := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for i := 0; i < 2; i++ {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
		}
		io.WriteString(c, answer)
	})
	p := startProxy(t, addr, proxyConfig{})
	conn := dialSend(t, p.Addr, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil || string(got) != answer {
		t.Errorf("client got %q, %v; want every byte the backend sent", got, err)
	}
	noErrors(t, p)
}

func TestLargeHeaderWithinLimits(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	big := strings.Repeat("v", maxLine-100)
	_, bodies := rawExchange(t, p.Addr, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: "+big+"\r\n\r\n", "GET")
	if string(bodies[0]) != "hello\n" {
		t.Errorf("got %q", bodies[0])
	}
	noErrors(t, p)
}

func writeFile(path string, data []byte) error { return os.WriteFile(path, data, 0o644) }

func TestClientLeavesMidBody(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	conn := dialSend(t, p.Addr, "POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nonly a little")
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Errorf("read: %v; want the connection to end", err)
	}
	noErrors(t, p)
}

// limitFilter relays n bytes, then ends the connection like limit_data.
func limitFilter(n int64) chaos.Filter {
	return chaos.FilterFunc(func(_ context.Context, dst io.Writer, src io.Reader) error {
		if _, err := io.CopyN(dst, src, n); err != nil {
			return err
		}
		return chaos.ErrClose
	})
}

func TestFilterEndsConnection(t *testing.T) {
	b := startGoBackend(t)
	for _, e := range []chaos.Effect{{ToBackend: limitFilter(20)}, {ToClient: limitFilter(20)}} {
		p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(e, "")}})
		conn := dialSend(t, p.Addr, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n"+strings.Repeat("a", 50))
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(conn)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("read: %v", err)
		}
		if e.ToClient != nil && string(got) != "HTTP/1.1 200 OK\r\nDat" {
			t.Errorf("to_client limit: client got %q", got)
		}
		if e.ToBackend != nil && len(got) != 0 {
			t.Errorf("to_backend limit: client got %q", got)
		}
		noErrors(t, p)
	}
}

func TestFilterWithHostRewrite(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{
		entries: []chaos.Entry{always(chaos.Effect{ToBackend: chopFilter}, "")},
		options: map[string]any{"overwrite_host_header": true},
	})
	_, bodies := rawExchange(t, p.Addr, "GET /host HTTP/1.1\r\nHost: x\r\n\r\nGET /host HTTP/1.1\r\nHost: y\r\n\r\n", "GET", "GET")
	for _, body := range bodies {
		if string(body) != b.Addr() {
			t.Errorf("backend saw Host %q", body)
		}
	}
	noErrors(t, p)
}

func TestDelayInterruptedByShutdown(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{entries: []chaos.Entry{always(chaos.Effect{Delay: time.Hour}, "")}})
	conn := dialSend(t, p.Addr, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
	protocoltest.WaitFor(t, 10*time.Second, "the request to be drawn", func() bool { return p.Conns.Load() == 1 })
	start := time.Now()
	p.Stop() // the route ends: the hour-long wait must not hold the connection
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v", took)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("read after shutdown: %v", err)
	}
}

func TestClientResetEndsWait(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	conn := dialSend(t, p.Addr, "GET /wait?d=1h HTTP/1.1\r\nHost: x\r\n\r\n")
	protocoltest.WaitFor(t, 10*time.Second, "the backend to get the request", func() bool { return b.hits.Load() == 1 })
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	// Serve returns without waiting for the hour-long answer.
	protocoltest.WaitFor(t, 10*time.Second, "Serve to return", func() bool { return p.Active.Load() == 0 })
	noErrors(t, p)
}
