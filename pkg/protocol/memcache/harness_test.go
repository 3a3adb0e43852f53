package memcache

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
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

// stats counts what the sessions of a test proxy report.
type stats struct {
	up, down  atomic.Int64
	exchanged atomic.Int64
	refused   atomic.Int64
	mu        sync.Mutex
	counts    atomic.Bool // count only: no lists (benchmarks)
	commands  []string    // commands in Exchanged order
	drawn     []string    // commands in Draw order
	errs      []error     // what Serve returned, when not nil
}

func (st *stats) commandList() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.commands)
}

func (st *stats) drawnList() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.drawn)
}

// session is a fake chaos.Session over an accepted test connection.
type session struct {
	client  net.Conn
	backend string
	mix     *chaos.Mix
	src     *chaos.Source
	idle    time.Duration
	st      *stats
}

func (s *session) Client() net.Conn { return s.client }
func (s *session) Backend() string  { return s.backend }
func (s *session) Dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	return d.DialContext(ctx, "tcp", s.backend)
}
func (s *session) Draw(req *chaos.Request) chaos.Drawn {
	if !s.st.counts.Load() {
		s.st.mu.Lock()
		s.st.drawn = append(s.st.drawn, req.Command)
		s.st.mu.Unlock()
	}
	return s.mix.Draw(s.src, req)
}
func (s *session) IdleTimeout() time.Duration { return s.idle }
func (s *session) Relayed(d chaos.Direction, n int64) {
	if d == chaos.ToBackend {
		s.st.up.Add(n)
	} else {
		s.st.down.Add(n)
	}
}
func (s *session) Exchanged(req *chaos.Request, took time.Duration) {
	s.st.exchanged.Add(1)
	if s.st.counts.Load() {
		return
	}
	s.st.mu.Lock()
	s.st.commands = append(s.st.commands, req.Command)
	s.st.mu.Unlock()
}
func (s *session) Refused(string) { s.st.refused.Add(1) }

// proxy is a test listener that serves each connection with the memcache
// protocol and a fixed mix.
type proxy struct {
	addr   string
	st     *stats
	ln     net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
	active atomic.Int64
}

type proxyOption func(*session)

func withIdle(d time.Duration) proxyOption { return func(s *session) { s.idle = d } }

// countOnly keeps the sessions from recording command lists, which would
// allocate on every request of a benchmark.
func countOnly(s *session) { s.st.counts.Store(true) }

func startProxy(t testing.TB, backend string, r rules, opts ...proxyOption) *proxy {
	t.Helper()
	var entries []chaos.Entry
	if r != nil {
		entries = append(entries, chaos.Entry{Name: "rules", Percent: 100, Behavior: r})
	}
	mix, err := chaos.NewMix(entries)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proxy{addr: ln.Addr().String(), st: &stats{}, ln: ln, cancel: cancel}
	src := chaos.NewSource(1)
	proto := New()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s := &session{client: c, backend: backend, mix: mix, src: src, st: p.st}
			for _, o := range opts {
				o(s)
			}
			p.active.Add(1)
			p.wg.Go(func() {
				defer p.active.Add(-1)
				err := proto.Serve(ctx, s)
				c.Close()
				if err != nil {
					p.st.mu.Lock()
					p.st.errs = append(p.st.errs, err)
					p.st.mu.Unlock()
				}
			})
		}
	})
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) stop() {
	p.cancel()
	p.ln.Close()
	p.wg.Wait()
}

// waitIdle waits until every connection the proxy accepted is served.
func (p *proxy) waitIdle(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.active.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still being served", p.active.Load())
		}
		<-time.After(5 * time.Millisecond)
	}
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
