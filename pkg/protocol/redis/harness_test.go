package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
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

// fixed is a test behavior that always returns the same effect and counts
// the draws it won.
type fixed struct {
	e     chaos.Effect
	calls atomic.Int64
}

func (f *fixed) Effect(*chaos.Unit) chaos.Effect {
	f.calls.Add(1)
	return f.e
}

// entry builds a mix entry for a fixed effect; commands, when given, limit
// it to those commands.
func entry(percent float64, f *fixed, commands ...string) chaos.Entry {
	e := chaos.Entry{Name: "test", Percent: percent, Behavior: f}
	if len(commands) > 0 {
		e.Match = func(r *chaos.Request) bool {
			for _, c := range commands {
				if r.Command == c {
					return true
				}
			}
			return false
		}
	}
	return e
}

func mixOf(t testing.TB, entries ...chaos.Entry) *chaos.Mix {
	t.Helper()
	m, err := chaos.NewMix(entries)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// stats gathers the events of every session of a test proxy.
type stats struct {
	toBackend, toClient atomic.Int64
	exchanged           atomic.Int64
	refused             atomic.Int64
	draws               atomic.Int64
	mu                  sync.Mutex
	commands            map[string]int // exchanges per command
	errs                []error        // what Serve returned, when not nil
}

func (s *stats) count(cmd string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commands[cmd]
}

func (s *stats) serveErrors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// session is the test's chaos.Session: it dials the real backend and draws
// from a seeded mix.
type session struct {
	client  net.Conn
	backend string
	mix     *chaos.Mix
	src     *chaos.Source
	idle    time.Duration
	st      *stats
}

func (s *session) Relayed(d chaos.Direction, n int64) {
	if d == chaos.ToBackend {
		s.st.toBackend.Add(n)
	} else {
		s.st.toClient.Add(n)
	}
}

func (s *session) Exchanged(req *chaos.Request, took time.Duration) {
	s.st.exchanged.Add(1)
	s.st.mu.Lock()
	s.st.commands[req.Command]++
	s.st.mu.Unlock()
}

func (s *session) Refused(string) { s.st.refused.Add(1) }

func (s *session) Client() net.Conn { return s.client }

func (s *session) Backend() string { return s.backend }

func (s *session) Dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	return d.DialContext(ctx, "tcp", s.backend)
}

func (s *session) Draw(req *chaos.Request) chaos.Drawn {
	s.st.draws.Add(1)
	return s.mix.Draw(s.src, req)
}

func (s *session) IdleTimeout() time.Duration { return s.idle }

// proxy is a loopback listener that serves each connection with the redis
// protocol, as the engine will.
type proxy struct {
	Addr string
	st   *stats
}

type proxyConfig struct {
	mix    *chaos.Mix
	seed   uint64
	idle   time.Duration
	proto  *Protocol
	listen net.Listener
}

func startProxy(t testing.TB, backend string, cfg proxyConfig) *proxy {
	t.Helper()
	ln := cfg.listen
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.mix == nil {
		cfg.mix = mixOf(t)
	}
	if cfg.seed == 0 {
		cfg.seed = 1
	}
	if cfg.proto == nil {
		cfg.proto = New("", 0)
	}
	st := &stats{commands: map[string]int{}}
	src := chaos.NewSource(cfg.seed)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				s := &session{client: c, backend: backend, mix: cfg.mix, src: src, idle: cfg.idle, st: st}
				if err := cfg.proto.Serve(ctx, s); err != nil {
					st.mu.Lock()
					st.errs = append(st.errs, err)
					st.mu.Unlock()
				}
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	return &proxy{Addr: ln.Addr().String(), st: st}
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

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
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
