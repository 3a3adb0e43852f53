package testenv

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// NamedHTTP serves HTTP, answering every request with name, so that a test
// sees which backend a route reached; it returns its address.
func NamedHTTP(t testing.TB, name string) string {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(s.Close)
	return s.Listener.Addr().String()
}

// Fetch makes one request through a route on a fresh connection and returns
// the body of the answer.
func Fetch(addr string) (string, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// ExchangeToEnd writes req, raw bytes, on a new connection to addr, then
// reads HTTP responses until the connection ends, which must come within a
// generous bound; the test fails when none came.
func ExchangeToEnd(t testing.TB, addr, req string) ([]*http.Response, [][]byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading to the end of the connection: %v (read %q)", err, all)
	}
	br := bufio.NewReader(bytes.NewReader(all))
	var resps []*http.Response
	var bodies [][]byte
	for {
		if _, err := br.Peek(1); err == io.EOF {
			break
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v in %q", len(resps), err, all)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", len(resps), err)
		}
		resps = append(resps, resp)
		bodies = append(bodies, body)
	}
	if len(resps) == 0 {
		t.Fatal("the connection ended without a response")
	}
	return resps, bodies
}

// ClientHello returns the first record crypto/tls sends, a ClientHello:
// what a TLS client sends to a plain-text listener.
func ClientHello(t testing.TB) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer b.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tls.Client(a, &tls.Config{ServerName: "example.com"}).Handshake()
	}()
	defer func() {
		a.Close()
		<-done
	}()
	var hdr [5]byte
	if _, err := io.ReadFull(b, hdr[:]); err != nil {
		t.Fatal(err)
	}
	rec := make([]byte, 5+int(hdr[3])<<8|int(hdr[4]))
	copy(rec, hdr[:])
	if _, err := io.ReadFull(b, rec[5:]); err != nil {
		t.Fatal(err)
	}
	return rec
}
