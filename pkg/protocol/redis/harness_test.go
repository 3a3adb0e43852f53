package redis

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(testenv.WithSkipSummary(m))
}

type proxyConfig struct {
	mix    *chaos.Mix
	seed   uint64
	idle   time.Duration
	proto  *Protocol
	listen net.Listener
}

// startProxy serves the redis protocol (New("", 0) unless cfg says) on a
// loopback listener, as the engine will.
func startProxy(t testing.TB, backend string, cfg proxyConfig) *protocoltest.Proxy {
	t.Helper()
	if cfg.proto == nil {
		cfg.proto = New("", 0)
	}
	return protocoltest.Start(t, protocoltest.Config{Protocol: cfg.proto, Backend: backend,
		Mix: cfg.mix, Seed: cfg.seed, Idle: cfg.idle, Listener: cfg.listen})
}

// copyProxy is the baseline of the benchmarks: a plain two-way io.Copy.
func copyProxy(t testing.TB, backend string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, b)
			mu.Unlock()
			wg.Go(func() { copyHalf(b, c) })
			wg.Go(func() { copyHalf(c, b) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func copyHalf(dst, src net.Conn) {
	io.Copy(dst, src)
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// bufCopyProxy is a second baseline: a two-way copy through a 32 KiB
// buffer, read and write calls as the redis protocol makes (io.Copy
// between TCP connections splices, which costs more for small messages).
func bufCopyProxy(t testing.TB, backend string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	pump := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		dst.(*net.TCPConn).CloseWrite()
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, b)
			mu.Unlock()
			wg.Go(func() { pump(b, c) })
			wg.Go(func() { pump(c, b) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// rawClient speaks RESP by hand, to check exact bytes.
type rawClient struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, r: bufio.NewReader(c)}
}

// command encodes args as a RESP array of bulk strings.
func command(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

func (rc *rawClient) write(s string) {
	rc.t.Helper()
	rc.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

func (rc *rawClient) send(args ...string) { rc.t.Helper(); rc.write(command(args...)) }

// read returns the next whole RESP value, as sent.
func (rc *rawClient) read() string {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	v, err := readValue(rc.r)
	if err != nil {
		rc.t.Fatalf("read reply: %v", err)
	}
	return string(v)
}

func (rc *rawClient) expect(want string) {
	rc.t.Helper()
	if got := rc.read(); got != want {
		rc.t.Fatalf("got reply %q, want %q", got, want)
	}
}

// expectSilence checks that nothing arrives for d and that the connection
// stays open.
func (rc *rawClient) expectSilence(d time.Duration) {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(d))
	b, err := rc.r.Peek(1)
	if err == nil {
		rc.t.Fatalf("got %q, want silence", b)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		rc.t.Fatalf("want the connection open and silent, got %v", err)
	}
}

// expectClosed reads until the connection ends and returns how it ended.
func (rc *rawClient) expectClosed() error {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(rc.r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		rc.t.Fatal("the connection stayed open")
	}
	if len(rest) > 0 {
		rc.t.Fatalf("got %q before the close", rest)
	}
	return err
}

// readValue reads one RESP value written independently of the framer under
// test, so that the tests do not check the framer with itself.
func readValue(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return line, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return line, fmt.Errorf("bad line %q", line)
	}
	n := func() int {
		v, err := strconv.Atoi(string(line[1 : len(line)-2]))
		if err != nil {
			return -2
		}
		return v
	}
	out := line
	switch line[0] {
	case '$', '!', '=':
		if l := n(); l >= 0 {
			payload := make([]byte, l+2)
			if _, err := io.ReadFull(r, payload); err != nil {
				return nil, err
			}
			out = append(out, payload...)
		}
	case '*', '~', '>', '%', '|':
		items := n()
		if line[0] == '%' || line[0] == '|' {
			items *= 2
		}
		if line[0] == '|' {
			items++ // the value the attribute annotates
		}
		for range max(items, 0) {
			v, err := readValue(r)
			if err != nil {
				return nil, err
			}
			out = append(out, v...)
		}
	}
	return out, nil
}
