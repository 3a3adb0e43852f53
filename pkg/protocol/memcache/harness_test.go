package memcache

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
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

// rules is a test behavior giving each command a fixed effect; "*" is for
// the commands not named.
type rules map[string]chaos.Effect

func (r rules) Effect(u *chaos.Unit) chaos.Effect {
	if e, ok := r[u.Request.Command]; ok {
		return e
	}
	return r["*"]
}

// on gives e to each of the commands.
func on(e chaos.Effect, commands ...string) rules {
	r := rules{}
	for _, c := range commands {
		r[c] = e
	}
	return r
}

// and merges rule sets.
func (r rules) and(o rules) rules {
	for k, v := range o {
		r[k] = v
	}
	return r
}

type proxyOption func(*protocoltest.Config)

func withIdle(d time.Duration) proxyOption { return func(c *protocoltest.Config) { c.Idle = d } }

// countOnly keeps the sessions from recording command lists, which would
// allocate on every request of a benchmark.
func countOnly(c *protocoltest.Config) { c.CountOnly = true }

// startProxy serves the memcache protocol on a loopback listener, as the
// engine will, with r drawn for every request.
func startProxy(t testing.TB, backend string, r rules, opts ...proxyOption) *protocoltest.Proxy {
	t.Helper()
	var entries []chaos.Entry
	if r != nil {
		entries = append(entries, chaos.Entry{Name: "rules", Percent: 100, Behavior: r})
	}
	cfg := protocoltest.Config{Protocol: New(), Backend: backend, Mix: protocoltest.Mix(t, entries...)}
	for _, o := range opts {
		o(&cfg)
	}
	return protocoltest.Start(t, cfg)
}

// dial opens a raw connection with a generous deadline.
func dial(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

// script sends input, half-closes and returns everything the server sends
// until it closes: the whole answer to a pipeline.
func script(t testing.TB, addr, input string) string {
	t.Helper()
	c := dial(t, addr)
	go func() {
		io.WriteString(c, input)
		c.CloseWrite()
	}()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read answers: %v", err)
	}
	return string(out)
}

// lineReader reads answers from a raw connection.
type lineReader struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func newLineReader(t testing.TB, c net.Conn) *lineReader {
	return &lineReader{t: t, c: c, br: bufio.NewReader(c)}
}

func (l *lineReader) send(s string) {
	l.t.Helper()
	if _, err := io.WriteString(l.c, s); err != nil {
		l.t.Fatalf("send %q: %v", s, err)
	}
}

func (l *lineReader) line() string {
	l.t.Helper()
	s, err := l.br.ReadString('\n')
	if err != nil {
		l.t.Fatalf("read line (got %q): %v", s, err)
	}
	return s
}

func (l *lineReader) expect(lines ...string) {
	l.t.Helper()
	for _, want := range lines {
		if got := l.line(); got != want+"\r\n" {
			l.t.Fatalf("got %q, want %q", got, want+"\r\n")
		}
	}
}

func (l *lineReader) block(n int) []byte {
	l.t.Helper()
	b := make([]byte, n+2)
	if _, err := io.ReadFull(l.br, b); err != nil {
		l.t.Fatalf("read %d byte block: %v", n, err)
	}
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		l.t.Fatalf("block does not end in CRLF")
	}
	return b[:n]
}

// closed asserts the connection ends (EOF or reset) within d.
func (l *lineReader) closed(d time.Duration) error {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(d))
	b, err := l.br.ReadByte()
	if err == nil {
		l.t.Fatalf("read %q, want the connection closed", b)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		l.t.Fatalf("connection still open after %v", d)
	}
	return err
}

// silent asserts nothing arrives for d.
func (l *lineReader) silent(d time.Duration) {
	l.t.Helper()
	l.c.SetReadDeadline(time.Now().Add(d))
	b, err := l.br.ReadByte()
	var ne net.Error
	if err == nil {
		l.t.Fatalf("read %q, want nothing", b)
	}
	if !errors.As(err, &ne) || !ne.Timeout() {
		l.t.Fatalf("connection ended: %v", err)
	}
	l.c.SetReadDeadline(time.Now().Add(20 * time.Second))
}

func lines(s ...string) string { return strings.Join(s, "\r\n") + "\r\n" }
