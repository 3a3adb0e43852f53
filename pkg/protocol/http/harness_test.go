package httpproto

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(testenv.WithSkipSummary(m))
}

// always returns a mix entry giving e to every request whose path is path
// ("" for all).
func always(e chaos.Effect, path string) chaos.Entry {
	en := chaos.Entry{Name: "test", Percent: 100, Behavior: &protocoltest.Fixed{E: e}}
	if path != "" {
		en.Match = func(r *chaos.Request) bool { return r.Path == path }
	}
	return en
}

type proxyConfig struct {
	entries []chaos.Entry
	options map[string]any
	idle    time.Duration
	record  bool // keep "METHOD path" of each exchange (see Requests)
}

// startProxy serves the http protocol, with its options, on a loopback
// listener as the engine will.
func startProxy(t testing.TB, backend string, cfg proxyConfig) *protocoltest.Proxy {
	t.Helper()
	proto, _, err := chaos.NewProtocol("http", cfg.options)
	if err != nil {
		t.Fatal(err)
	}
	return protocoltest.Start(t, protocoltest.Config{Protocol: proto, Backend: backend,
		Mix: protocoltest.Mix(t, cfg.entries...), Idle: cfg.idle, CountOnly: !cfg.record})
}

// payload returns n deterministic pseudo-random bytes for seed.
func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], r.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// goBackend is a net/http server with the handlers the tests need, counting
// the connections it accepts.
type goBackend struct {
	*httptest.Server
	newConns atomic.Int64
	closed   atomic.Int64 // connections closed or hijacked
	hits     atomic.Int64
}

func startGoBackend(t testing.TB, configure ...func(*http.Server)) *goBackend {
	t.Helper()
	b := &goBackend{}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		io.WriteString(w, "hello\n")
	})
	// /bytes?n=N&seed=S[&chunked=1]: N deterministic bytes, with a length
	// or chunked.
	mux.HandleFunc("/bytes", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		seed, _ := strconv.ParseUint(r.URL.Query().Get("seed"), 10, 64)
		data := payload(seed, n)
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
			w.Write(data)
			return
		}
		for len(data) > 0 {
			k := min(len(data), 10000+rand.IntN(50000))
			w.Write(data[:k])
			w.(http.Flusher).Flush()
			data = data[k:]
		}
	})
	// /sum: the size and sha256 of the request body.
	mux.HandleFunc("/sum", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Header().Set("X-Transfer-Encoding", strings.Join(r.TransferEncoding, ","))
		fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		data, _ := io.ReadAll(r.Body)
		w.Write(data)
	})
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		io.WriteString(w, r.Host)
	})
	mux.HandleFunc("/status/", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		code, _ := strconv.Atoi(r.URL.Path[len("/status/"):])
		w.WriteHeader(code)
	})
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
		}
		io.WriteString(w, "waited\n")
	})
	// /drip?n=N&every=D: a chunked body of N chunks, one every D.
	mux.HandleFunc("/drip", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		every, _ := time.ParseDuration(r.URL.Query().Get("every"))
		for range n {
			time.Sleep(every)
			io.WriteString(w, "drip\n")
			w.(http.Flusher).Flush()
		}
	})
	// /close10: an HTTP/1.0 response delimited by the end of the connection.
	mux.HandleFunc("/close10", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
		buf.Write(payload(7, n))
		buf.Flush()
	})
	// /ws: a minimal WebSocket echo (RFC 6455), written by hand.
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want websocket", 400)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + wsAccept(r.Header.Get("Sec-WebSocket-Key")) + "\r\n\r\n")
		buf.Flush()
		for {
			payload, err := readFrame(buf.Reader)
			if err != nil {
				return
			}
			if _, err := conn.Write(frame(payload, false)); err != nil {
				return
			}
		}
	})
	b.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "CONNECT" {
			mux.ServeHTTP(w, r)
			return
		}
		// CONNECT: a tunnel to an echo service, or 403 for "denied" hosts.
		b.hits.Add(1)
		if strings.HasPrefix(r.Host, "denied") {
			http.Error(w, "denied", http.StatusForbidden)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
		buf.Flush()
		io.Copy(conn, buf)
	}))
	b.Server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			b.newConns.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.closed.Add(1)
		}
	}
	for _, f := range configure {
		f(b.Server.Config)
	}
	b.Server.Start()
	t.Cleanup(b.Server.Close)
	return b
}

// rawBackend serves each connection with handle, for backends that
// misbehave in ways no real server library allows.
func rawBackend(t testing.TB, handle func(net.Conn)) string {
	return testenv.Serve(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(20 * time.Second))
		handle(c)
	}).Addr
}

func (b *goBackend) Addr() string { return b.Listener.Addr().String() }

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B65"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// frame builds a final text frame, masked as clients must send it.
func frame(p []byte, masked bool) []byte {
	if len(p) > 125 {
		panic("test frames are short")
	}
	f := []byte{0x81, byte(len(p))}
	if !masked {
		return append(f, p...)
	}
	f[1] |= 0x80
	mask := [4]byte{1, 2, 3, 4}
	f = append(f, mask[:]...)
	for i, c := range p {
		f = append(f, c^mask[i%4])
	}
	return f
}

func readFrame(r io.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := int(h[1] & 0x7f)
	if n > 125 {
		return nil, fmt.Errorf("long frames not supported")
	}
	var mask [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return nil, err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, err
	}
	if masked {
		for i := range p {
			p[i] ^= mask[i%4]
		}
	}
	return p, nil
}

// queueLen is how many requests the kit's queue holds in flight.
const queueLen = 64

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// errIdle is what Serve may report for a connection the idle timeout ended.
var errIdle = relay.ErrIdleTimeout
