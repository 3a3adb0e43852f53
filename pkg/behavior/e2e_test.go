package behavior_test

// End-to-end tests: every built-in behavior drawn on a real tcp route, with
// a loopback backend written here, the engine of package proxy, and a client
// on a real socket. Timings are measured deltas: lower bounds are the
// behavior's promise, upper bounds are generous so a loaded machine passes.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/tcp"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// slack is the generous upper margin on top of a behavior's own timing.
const slack = time.Second

// e2eBackend is a loopback server that runs a handler per connection and
// records when each connection began to be served.
type e2eBackend struct {
	*testenv.Backend
	accepted chan time.Time // start times, while there is room
}

func startBackend(t *testing.T, handle func(c *net.TCPConn)) *e2eBackend {
	t.Helper()
	b := &e2eBackend{accepted: make(chan time.Time, 64)}
	b.Backend = testenv.Serve(t, func(c net.Conn) {
		select {
		case b.accepted <- time.Now():
		default:
		}
		handle(c.(*net.TCPConn))
	})
	return b
}

// acceptedAt returns when the backend accepted its next connection.
func (b *e2eBackend) acceptedAt(t *testing.T) time.Time {
	t.Helper()
	select {
	case at := <-b.accepted:
		return at
	case <-time.After(5 * time.Second):
		t.Fatal("the backend saw no connection")
		return time.Time{}
	}
}

// echo sends back what it reads and half-closes when the client does.
func echo(c *net.TCPConn) {
	io.Copy(c, c)
	c.CloseWrite()
}

// arrival is a request line as the backend received it.
type arrival struct {
	line string
	at   time.Time
}

// answer returns a handler that answers each line it reads with reply, and
// reports every line it reads on got, when got is set.
func answer(reply []byte, got chan<- arrival) func(*net.TCPConn) {
	return func(c *net.TCPConn) {
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if line != "" && got != nil {
				select {
				case got <- arrival{line, time.Now()}:
				default:
				}
			}
			if err != nil {
				return
			}
			if _, err := c.Write(reply); err != nil {
				return
			}
		}
	}
}

// send returns a handler that writes data as soon as the connection opens,
// then closes, or with hold waits for the peer to leave first.
func send(data []byte, hold bool) func(*net.TCPConn) {
	return func(c *net.TCPConn) {
		if _, err := c.Write(data); err != nil {
			return
		}
		if hold {
			io.Copy(io.Discard, c)
		}
	}
}

// share builds one entry of a mix.
func share(t testing.TB, name string, percent float64, opts map[string]any) chaos.Entry {
	t.Helper()
	b, v, err := chaos.NewBehavior(name, opts)
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	return chaos.Entry{Name: name, Percent: percent, Options: v, Behavior: b}
}

func mixOf(t testing.TB, entries ...chaos.Entry) *chaos.Mix {
	t.Helper()
	m, err := chaos.NewMix(entries)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// only is a mix that draws one behavior for every connection.
func only(t testing.TB, name string, opts map[string]any) *chaos.Mix {
	t.Helper()
	return mixOf(t, share(t, name, 100, opts))
}

// startRoute runs a tcp route to backend with mix on its own server; obs
// and seed may be zero.
func startRoute(t *testing.T, backend string, mix *chaos.Mix, obs proxy.Observer, seed uint64) *proxy.Route {
	t.Helper()
	s := proxy.New(obs, time.Second)
	err := s.Apply([]proxy.RouteConfig{{
		Name: "e2e", Listen: "127.0.0.1:0", Backend: backend, Protocol: "tcp", Mix: mix, Seed: seed,
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s.Route("e2e")
}

// dial connects a client to addr; every read and write of the connection
// fails after 15 s rather than hang the test.
func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := dialConn(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialConn(addr string) (*net.TCPConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(15 * time.Second))
	return c.(*net.TCPConn), nil
}

// ping sends one request line and reads the answer "pong\n".
func ping(c net.Conn) error {
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if string(got) != "pong\n" {
		return errors.New("answer " + string(got) + ", want pong")
	}
	return nil
}

// request sends one request line, half-closes and reads the whole answer.
func request(c *net.TCPConn) ([]byte, error) {
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return nil, err
	}
	if err := c.CloseWrite(); err != nil {
		return nil, err
	}
	return io.ReadAll(c)
}

func payload(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// inserted reports whether out is in with 100 bytes inserted at one place.
func inserted(in, out []byte) bool {
	if len(out) != len(in)+100 {
		return false
	}
	prefix := 0
	for prefix < len(in) && out[prefix] == in[prefix] {
		prefix++
	}
	return bytes.Equal(out[prefix+100:], in[prefix:])
}

// recorder is a proxy.Observer that records, in order, the behaviors the
// engine reports as injected.
type recorder struct {
	mu       sync.Mutex
	injected []string
}

var (
	_ proxy.Observer      = (*recorder)(nil)
	_ proxy.RouteObserver = (*recorder)(nil)
)

func (r *recorder) Route(string, string) proxy.RouteObserver { return r }
func (r *recorder) Injected(b string, _ *chaos.Request) {
	r.mu.Lock()
	r.injected = append(r.injected, b)
	r.mu.Unlock()
}

// since returns the behaviors injected after the first n.
func (r *recorder) since(n int) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.injected[n:])
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.injected)
}

func (r *recorder) Accepted(net.Addr)                       {}
func (r *recorder) Closed(net.Addr, time.Duration, error)   {}
func (r *recorder) Refused(string)                          {}
func (r *recorder) DialFailed(string, error)                {}
func (r *recorder) Relayed(chaos.Direction, int64)          {}
func (r *recorder) Exchanged(*chaos.Request, time.Duration) {}
func (r *recorder) MixChanged(*chaos.Mix)                   {}
func (r *recorder) Stopped()                                {}

// readsClose checks that the next read on c sees the connection end with no
// data, and returns the error that ended it.
func readsClose(t *testing.T, c net.Conn) error {
	t.Helper()
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n != 0 || err == nil {
		t.Fatalf("read %q, %v; want the connection closed without data", buf[:n], err)
	}
	if isTimeout(err) {
		t.Fatalf("read timed out; want the connection closed")
	}
	return err
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func TestE2EDelayBefore(t *testing.T) {
	t.Parallel()
	const sleep = 300 * time.Millisecond
	b := startBackend(t, answer([]byte("pong\n"), nil))
	plain := startRoute(t, b.Addr, nil, nil, 0)
	delayed := startRoute(t, b.Addr, only(t, "delay", map[string]any{"sleep": sleep}), nil, 0)

	start := time.Now()
	if err := ping(dial(t, plain.Addr())); err != nil {
		t.Fatal(err)
	}
	base := time.Since(start)
	b.acceptedAt(t)

	start = time.Now()
	c := dial(t, delayed.Addr())
	if err := ping(c); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if dialed := b.acceptedAt(t).Sub(start); dialed < sleep {
		t.Errorf("the backend was dialed %v after the client connected, want at least %v", dialed, sleep)
	}
	if took < sleep || took-base > sleep+slack {
		t.Errorf("first request took %v (%v without delay), want %v more, give or take %v", took, base, sleep, slack)
	}
	// On tcp the unit is the connection: only its start waits.
	start = time.Now()
	if err := ping(c); err != nil {
		t.Fatal(err)
	}
	if again := time.Since(start); again >= sleep {
		t.Errorf("second request on the same connection took %v, want no delay", again)
	}
	t.Logf("without delay %v, with delay %v", base, took)
}

func TestE2EDelayAfter(t *testing.T) {
	t.Parallel()
	const sleep = 600 * time.Millisecond
	got := make(chan arrival, 1)
	b := startBackend(t, answer([]byte("pong\n"), got))
	r := startRoute(t, b.Addr, only(t, "delay", map[string]any{"sleep": sleep, "before": false}), nil, 0)

	start := time.Now()
	if err := ping(dial(t, r.Addr())); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	req := <-got
	if seen := req.at.Sub(start); seen >= sleep/2 {
		t.Errorf("the backend got the request %v after the client connected, want it at once", seen)
	}
	if took < sleep || took > sleep+slack {
		t.Errorf("the answer came %v after the client connected, want %v (+%v at most)", took, sleep, slack)
	}
}

func TestE2EDelayJitter(t *testing.T) {
	t.Parallel()
	const (
		sleep  = 200 * time.Millisecond
		jitter = 150 * time.Millisecond
		n      = 16
	)
	b := startBackend(t, answer([]byte("pong\n"), nil))
	r := startRoute(t, b.Addr, only(t, "delay", map[string]any{"sleep": sleep, "jitter": jitter}), nil, 1)

	took := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			start := time.Now()
			c, err := dialConn(r.Addr())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			if err := ping(c); err != nil {
				t.Error(err)
				return
			}
			took[i] = time.Since(start)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	lo, hi := slices.Min(took), slices.Max(took)
	if lo < sleep-jitter || hi > sleep+jitter+slack {
		t.Errorf("delays range over %v..%v, want them within %v ± %v", lo, hi, sleep, jitter)
	}
	if hi-lo < jitter/2 {
		t.Errorf("delays range over %v..%v only, want them spread over %v ± %v", lo, hi, sleep, jitter)
	}
	t.Logf("%d delays between %v and %v", n, lo, hi)
}

// TestE2EErrorCounts checks warmup and agitate, connection by connection:
// P is the real answer, F is error's 1000 random bytes and a close.
func TestE2EErrorCounts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		behavior string
		opts     map[string]any
		want     string
	}{
		{"error", map[string]any{"warmup": 3}, "PPPFFF"},
		{"error", nil, "FFF"},
		{"transient", map[string]any{"agitate": 2}, "FFPPP"},
		{"transient", map[string]any{"warmup": 1, "agitate": 2}, "PFFPP"},
		{"transient", map[string]any{"agitate": 0}, "PPP"},
	}
	b := startBackend(t, answer([]byte("pong\n"), nil))
	for _, tt := range tests {
		r := startRoute(t, b.Addr, only(t, tt.behavior, tt.opts), nil, 0)
		got := ""
		for range tt.want {
			out, err := request(dial(t, r.Addr()))
			switch {
			case err != nil:
				t.Fatalf("%s %v: %v after %q", tt.behavior, tt.opts, err, got)
			case string(out) == "pong\n":
				got += "P"
			case len(out) == 1000 && !bytes.Contains(out, []byte("pong")):
				got += "F"
			default:
				t.Fatalf("%s %v: got %d bytes %q after %q, want the answer or 1000 random bytes", tt.behavior, tt.opts, len(out), out, got)
			}
		}
		if got != tt.want {
			t.Errorf("%s %v: connections went %s, want %s", tt.behavior, tt.opts, got, tt.want)
		}
		if faults := r.Stats().Faults; faults != int64(bytes.Count([]byte(tt.want), []byte("F"))) {
			t.Errorf("%s %v: Stats().Faults = %d for %s", tt.behavior, tt.opts, faults, tt.want)
		}
	}
}

func TestE2EErrorReplaces(t *testing.T) {
	t.Parallel()
	reply := payload(64<<10, 1)
	got := make(chan arrival, 1)
	b := startBackend(t, answer(reply, got))
	r := startRoute(t, b.Addr, only(t, "error", nil), nil, 0)

	out, err := request(dial(t, r.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1000 || bytes.Contains(reply, out[:64]) {
		t.Errorf("client got %d bytes, want 1000 random bytes in place of the answer", len(out))
	}
	if req := <-got; req.line != "ping\n" {
		t.Errorf("backend got %q, want the request", req.line)
	}
}

func TestE2EErrorInject(t *testing.T) {
	t.Parallel()
	reply := payload(4096, 2)
	b := startBackend(t, answer(reply, nil))
	r := startRoute(t, b.Addr, only(t, "error", map[string]any{"inject": true}), nil, 0)

	out, err := request(dial(t, r.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if !inserted(reply, out) {
		t.Errorf("client got %d bytes, want the %d-byte answer with 100 bytes inserted at one place", len(out), len(reply))
	}
}

func TestE2EBlackout(t *testing.T) {
	t.Parallel()
	b := startBackend(t, echo)
	r := startRoute(t, b.Addr, only(t, "blackout", nil), nil, 0)

	start := time.Now()
	c := dial(t, r.Addr())
	if err := readsClose(t, c); err != io.EOF {
		t.Errorf("client saw %v, want a close (EOF)", err)
	}
	if took := time.Since(start); took > slack {
		t.Errorf("the close came after %v, want it at once", took)
	}
	if n := b.Accepted.Load(); n != 0 {
		t.Errorf("the backend saw %d connections, want none", n)
	}
}

func TestE2EHang(t *testing.T) {
	t.Parallel()
	const bound = 500 * time.Millisecond
	b := startBackend(t, echo)
	r := startRoute(t, b.Addr, only(t, "hang", nil), nil, 0)

	c := dial(t, r.Addr())
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(bound))
	if n, err := c.Read(make([]byte, 64)); n != 0 || !isTimeout(err) {
		t.Errorf("read %d bytes, %v; want no answer and the connection open after %v", n, err, bound)
	}
	if n := b.Accepted.Load(); n != 0 {
		t.Errorf("the backend saw %d connections, want none", n)
	}
}

func TestE2EAbort(t *testing.T) {
	t.Parallel()
	got := make(chan arrival, 1)
	b := startBackend(t, answer([]byte("pong\n"), got))
	r := startRoute(t, b.Addr, only(t, "abort", nil), nil, 0)

	c := dial(t, r.Addr())
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if err := readsClose(t, c); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("client saw %v, want the connection dropped", err)
	}
	select {
	case req := <-got:
		if req.line != "ping\n" {
			t.Errorf("backend got %q, want the request", req.line)
		}
	case <-time.After(5 * time.Second):
		t.Error("the request never reached the backend")
	}
}

func TestE2EBandwidth(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 5 s of real time")
	}
	t.Parallel()
	const rate = 1 << 20
	data := payload(5*rate, 4)
	b := startBackend(t, send(data, false))
	r := startRoute(t, b.Addr, only(t, "bandwidth", map[string]any{"rate": rate}), nil, 0)

	start := time.Now()
	out, err := io.ReadAll(dial(t, r.Addr()))
	took := time.Since(start)
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("client got %d bytes, %v; want the %d bytes sent", len(out), err, len(data))
	}
	if took < 4*time.Second || took > 6*time.Second {
		t.Errorf("5 MiB at 1 MiB/s took %v, want 5 s ± 20%%", took)
	}
}

func TestE2ESlicer(t *testing.T) {
	// Not parallel: with the timing tests around, the client could fall
	// behind and read two pieces at once.
	const avg = 64
	data := payload(16<<10, 5)
	b := startBackend(t, send(data, false))
	r := startRoute(t, b.Addr, only(t, "slicer",
		map[string]any{"average_size": avg, "size_variation": 16, "delay": "1ms"}), nil, 0)

	c := dial(t, r.Addr())
	var out []byte
	buf := make([]byte, 64<<10)
	reads := 0
	for {
		n, err := c.Read(buf)
		if n > 0 {
			reads++
			out = append(out, buf[:n]...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out, data) {
		t.Fatalf("client got %d bytes, want the %d sent", len(out), len(data))
	}
	if mean := float64(len(out)) / float64(reads); mean < 0.75*avg || mean > 1.5*avg {
		t.Errorf("%d reads of %.1f bytes on average, want about %d", reads, mean, avg)
	}
}

func TestE2ELimitData(t *testing.T) {
	t.Parallel()
	const limit = 1000
	t.Run("to_client", func(t *testing.T) {
		t.Parallel()
		data := payload(10000, 6)
		b := startBackend(t, send(data, true))
		r := startRoute(t, b.Addr, only(t, "limit_data", map[string]any{"bytes": limit}), nil, 0)
		out, err := io.ReadAll(dial(t, r.Addr()))
		if err != nil || !bytes.Equal(out, data[:limit]) {
			t.Errorf("client got %d bytes, %v; want the first %d then a close", len(out), err, limit)
		}
	})
	t.Run("to_backend", func(t *testing.T) {
		t.Parallel()
		got := make(chan int64, 1)
		b := startBackend(t, func(c *net.TCPConn) {
			n, _ := io.Copy(io.Discard, c)
			got <- n
		})
		r := startRoute(t, b.Addr, only(t, "limit_data", map[string]any{"bytes": limit, "direction": "to_backend"}), nil, 0)
		c := dial(t, r.Addr())
		c.Write(payload(10000, 7)) // cut off by the route: the error is expected
		readsClose(t, c)
		if n := <-got; n != limit {
			t.Errorf("backend got %d bytes, want %d", n, limit)
		}
	})
}

func TestE2EResetPeer(t *testing.T) {
	t.Parallel()
	t.Run("after timeout", func(t *testing.T) {
		t.Parallel()
		const timeout = 300 * time.Millisecond
		b := startBackend(t, echo)
		r := startRoute(t, b.Addr, only(t, "reset_peer", map[string]any{"timeout": timeout}), nil, 0)
		start := time.Now()
		c := dial(t, r.Addr())
		// Until the reset, traffic flows.
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
			t.Fatalf("echo before the reset: %v", err)
		}
		err := readsClose(t, c)
		took := time.Since(start)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("client saw %v, want ECONNRESET", err)
		}
		if took < timeout || took > timeout+slack {
			t.Errorf("the reset came %v after connecting, want %v", took, timeout)
		}
	})
	t.Run("at once", func(t *testing.T) {
		t.Parallel()
		b := startBackend(t, echo)
		r := startRoute(t, b.Addr, only(t, "reset_peer", nil), nil, 0)
		// The RST may beat the dial's own checks: then the dial reports it.
		c, err := dialConn(r.Addr())
		if err == nil {
			defer c.Close()
			err = readsClose(t, c)
		}
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("client saw %v, want ECONNRESET", err)
		}
		if n := b.Accepted.Load(); n != 0 {
			t.Errorf("the backend saw %d connections, want none", n)
		}
	})
}

func TestE2ETimeout(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	b := startBackend(t, func(c *net.TCPConn) {
		c.Write([]byte("hello\n"))
		echo(c)
	})
	r := startRoute(t, b.Addr, only(t, "timeout", map[string]any{"timeout": timeout}), nil, 0)

	start := time.Now()
	c := dial(t, r.Addr())
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(c)
	took := time.Since(start)
	if err != nil || len(out) != 0 {
		t.Errorf("client got %q, %v; want no data, then a close", out, err)
	}
	if took < timeout || took > timeout+slack {
		t.Errorf("the close came %v after connecting, want %v", took, timeout)
	}
	if n := b.Accepted.Load(); n != 1 {
		t.Errorf("the backend saw %d connections, want 1", n)
	}
}

func TestE2ESlowClose(t *testing.T) {
	t.Parallel()
	const delay = 400 * time.Millisecond
	closed := make(chan time.Time, 1)
	b := startBackend(t, func(c *net.TCPConn) {
		c.Write([]byte("bye\n"))
		closed <- time.Now() // taken before the close, so it is a lower bound
		c.Close()
	})
	r := startRoute(t, b.Addr, only(t, "slow_close", map[string]any{"delay": delay}), nil, 0)

	c := dial(t, r.Addr())
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	data := time.Now()
	if err := readsClose(t, c); err != io.EOF {
		t.Errorf("client saw %v, want EOF", err)
	}
	end := time.Now()
	backendClosed := <-closed
	if held := end.Sub(backendClosed); held < delay || held > delay+slack {
		t.Errorf("the close reached the client %v after the backend closed, want %v", held, delay)
	}
	if data.Sub(backendClosed) >= delay/2 {
		t.Errorf("the data came %v after the backend closed, want it at once: only the close is held", data.Sub(backendClosed))
	}
}

func TestE2EDown(t *testing.T) {
	t.Parallel()
	b := startBackend(t, echo)
	r := startRoute(t, b.Addr, nil, nil, 0)

	live := dial(t, r.Addr())
	echoes := func(what string) {
		t.Helper()
		if _, err := live.Write([]byte(what)); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(what))
		if _, err := io.ReadFull(live, got); err != nil || string(got) != what {
			t.Fatalf("live connection: got %q, %v; want %q", got, err, what)
		}
	}
	echoes("before")

	r.SetMix(only(t, "down", nil))
	const tries = 5
	for range tries {
		start := time.Now()
		if err := readsClose(t, dial(t, r.Addr())); err != io.EOF {
			t.Errorf("new connection saw %v, want a close", err)
		}
		if took := time.Since(start); took > slack {
			t.Errorf("the close came after %v, want it at once", took)
		}
	}
	if s := r.Stats(); s.Refused != tries {
		t.Errorf("Stats().Refused = %d, want %d", s.Refused, tries)
	}
	if n := b.Accepted.Load(); n != 1 {
		t.Errorf("the backend saw %d connections, want only the live one", n)
	}
	echoes("while down")

	r.SetMix(mixOf(t))
	c := dial(t, r.Addr())
	if _, err := c.Write([]byte("up")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 2)); err != nil {
		t.Errorf("new connection once the route is up again: %v", err)
	}
}

func TestE2ECorrupt(t *testing.T) {
	t.Parallel()
	const p = 0.05
	data := payload(200_000, 8)
	b := startBackend(t, send(data, false))
	r := startRoute(t, b.Addr, only(t, "corrupt", map[string]any{"probability": p}), nil, 0)

	out, err := io.ReadAll(dial(t, r.Addr()))
	if err != nil || len(out) != len(data) {
		t.Fatalf("client got %d bytes, %v; want %d", len(out), err, len(data))
	}
	diff := 0
	for i := range out {
		if out[i] != data[i] {
			diff++
		}
	}
	// The standard deviation of the fraction is 0.0005 here.
	if frac := float64(diff) / float64(len(data)); frac < p-0.01 || frac > p+0.01 {
		t.Errorf("%.4f of the bytes differ, want about %v", frac, p)
	}
}

func TestE2ESlowOpen(t *testing.T) {
	t.Parallel()
	const delay = 400 * time.Millisecond
	b := startBackend(t, echo)
	r := startRoute(t, b.Addr, only(t, "slow_open", map[string]any{"delay": delay}), nil, 0)

	start := time.Now()
	c := dial(t, r.Addr())
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if opened := b.acceptedAt(t).Sub(start); opened < delay || opened > delay+slack {
		t.Errorf("the backend saw the connection %v after the client connected, want %v", opened, delay)
	}
	if took < delay {
		t.Errorf("the echo came after %v, want at least %v", took, delay)
	}
}

// visit opens a connection, half-closes it and reads until the route or the
// backend closes it.
func visit(addr string) error {
	c, err := dialConn(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.CloseWrite(); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, c)
	return err
}

// tally counts each drawn behavior over n connections to r, visited by a
// few clients at once; rec must be r's observer and record nothing else.
func tally(t *testing.T, r *proxy.Route, rec *recorder, n int) map[string]int {
	t.Helper()
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := visit(r.Addr()); err != nil {
					t.Errorf("connection %d: %v", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	counts := map[string]int{}
	for _, name := range rec.since(0) {
		counts[name]++
	}
	counts["dummy"] = n - rec.len()
	return counts
}

func TestE2EMixShares(t *testing.T) {
	// Not parallel: its thousands of connections would starve the
	// timing tests.
	const n = 3000
	rec := &recorder{}
	b := startBackend(t, echo)
	// 20 blackout, 30 down, and the 50 left is dummy. The seed makes the
	// outcome repeatable; over 3000 draws one standard deviation is under
	// one point, so ± 3 holds for nearly every seed.
	mix := mixOf(t, share(t, "blackout", 20, nil), share(t, "down", 30, nil))
	r := startRoute(t, b.Addr, mix, rec, 20240601)
	counts := tally(t, r, rec, n)
	for name, want := range map[string]float64{"blackout": 20, "down": 30, "dummy": 50} {
		if got := 100 * float64(counts[name]) / n; got < want-3 || got > want+3 {
			t.Errorf("%s drawn for %.1f%% of %d connections, want %v%% ± 3", name, got, n, want)
		}
	}
	if s := r.Stats(); s.Refused != int64(counts["down"]) || s.Accepted != n {
		t.Errorf("Stats() = %+v, want %d accepted, %d refused", s, n, counts["down"])
	}
	if got := b.Accepted.Load(); got != int64(counts["dummy"]) {
		t.Errorf("the backend saw %d connections, want the %d dummy ones", got, counts["dummy"])
	}
	t.Logf("%v", counts)
}

func TestE2ESeededSequence(t *testing.T) {
	// Not parallel: its hundreds of connections would starve the timing
	// tests.
	const n = 300
	b := startBackend(t, echo)
	run := func(seed uint64) []string {
		rec := &recorder{}
		mix := mixOf(t, share(t, "blackout", 20, nil), share(t, "down", 30, nil))
		r := startRoute(t, b.Addr, mix, rec, seed)
		seq := make([]string, 0, n)
		for i := range n {
			before := rec.len()
			// The draw of a connection is reported before the client can see
			// its end, and the next one is not drawn before it connects.
			if err := visit(r.Addr()); err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			switch got := rec.since(before); len(got) {
			case 0:
				seq = append(seq, "dummy")
			case 1:
				seq = append(seq, got[0])
			default:
				t.Fatalf("connection %d drew %v", i, got)
			}
		}
		return seq
	}
	first, again, other := run(42), run(42), run(43)
	if !slices.Equal(first, again) {
		t.Errorf("seed 42 drew different sequences:\n%v\n%v", first, again)
	}
	if slices.Equal(first, other) {
		t.Errorf("seeds 42 and 43 drew the same %d behaviors", n)
	}
}

// TestE2EZeroPercent checks that a behavior at 0% never acts (Toxiproxy's
// bug #603 applied a toxic at toxicity 0).
func TestE2EZeroPercent(t *testing.T) {
	// Not parallel: its thousands of connections would starve the
	// timing tests.
	const n = 1000
	rec := &recorder{}
	b := startBackend(t, echo)
	r := startRoute(t, b.Addr, mixOf(t, share(t, "reset_peer", 0, nil)), rec, 0)
	const workers = 8
	var wg sync.WaitGroup
	var clean atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				c, err := dialConn(r.Addr())
				if err != nil {
					t.Error(err)
					return
				}
				_, err = c.Write([]byte("ping"))
				if err == nil {
					err = c.CloseWrite()
				}
				var out []byte
				if err == nil {
					out, err = io.ReadAll(c)
				}
				c.Close()
				if err != nil || string(out) != "ping" {
					t.Errorf("connection %d: got %q, %v; want the echo", i, out, err)
					return
				}
				clean.Add(1)
			}
		})
	}
	wg.Wait()
	if got := clean.Load(); got != n {
		t.Errorf("%d of %d connections were clean", got, n)
	}
	if got := rec.since(0); len(got) != 0 {
		t.Errorf("%d behaviors injected at 0%%: %v...", len(got), got[:min(len(got), 5)])
	}
	if s := r.Stats(); s.Faults != 0 {
		t.Errorf("Stats().Faults = %d, want 0", s.Faults)
	}
}
