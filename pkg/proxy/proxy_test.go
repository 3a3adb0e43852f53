package proxy_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
	_ "github.com/vaurien-go/vaurien/pkg/behavior"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/tcp"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer accepts connections and echoes them; when a client half-closes
// it finishes echoing and half-closes back.
func echoServer(t testing.TB) (addr string, stop func()) {
	b := testenv.Echo(t)
	return b.Addr, b.Stop
}

func startServer(t testing.TB, cfgs ...proxy.RouteConfig) *proxy.Server {
	t.Helper()
	return startObserved(t, nil, cfgs...)
}

func tcpRoute(name, backend string) proxy.RouteConfig {
	return proxy.RouteConfig{Name: name, Listen: "127.0.0.1:0", Backend: backend, Protocol: "tcp"}
}

// block fills b with the content of block i of a test stream: a random base
// stamped with i, so a lost, duplicated or reordered block is detected.
func block(b, base []byte, i uint64) {
	copy(b, base)
	binary.LittleEndian.PutUint64(b, i)
}

// roundTrip sends n blocks of size len(base) through c and checks that the
// echo brings every byte back in order.
func roundTrip(c net.Conn, base []byte, n uint64) error {
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, len(base))
		for i := uint64(0); i < n; i++ {
			block(buf, base, i)
			if _, err := c.Write(buf); err != nil {
				errc <- err
				return
			}
		}
		errc <- c.(*net.TCPConn).CloseWrite()
	}()
	got := make([]byte, len(base))
	want := make([]byte, len(base))
	for i := uint64(0); i < n; i++ {
		if _, err := io.ReadFull(c, got); err != nil {
			return fmt.Errorf("block %d: %w", i, err)
		}
		block(want, base, i)
		if !bytes.Equal(got, want) {
			return fmt.Errorf("block %d differs", i)
		}
	}
	if n, err := c.Read(got); n != 0 || err != io.EOF {
		return fmt.Errorf("after the stream: read %d bytes, %v; want EOF", n, err)
	}
	return <-errc
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestRelayIsByteExactBothWays1GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 GiB")
	}
	backend, _ := echoServer(t)
	s := startServer(t, tcpRoute("big", backend))
	c, err := net.Dial("tcp", s.Route("big").Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base := randomBytes(1<<20, 1)
	if err := roundTrip(c, base, 1024); err != nil {
		t.Fatal(err)
	}
	st := s.Route("big").Stats()
	if st.BytesToBack != 1<<30 || st.BytesToCli != 1<<30 {
		t.Fatalf("counted %d bytes to backend and %d to client, want %d each", st.BytesToBack, st.BytesToCli, 1<<30)
	}
}

func TestRelay200ConcurrentConnections(t *testing.T) {
	backend, _ := echoServer(t)
	s := startServer(t, tcpRoute("many", backend))
	addr := s.Route("many").Addr()
	base := randomBytes(64<<10, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			if err := roundTrip(c, base, 16); err != nil { // 16 × 64 KiB = 1 MiB each way
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestHalfCloseFromBackendKeepsUpstreamFlowing(t *testing.T) {
	// The backend says hello and closes its write side at once, then reads
	// everything the client sends and answers with the byte count.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("hello"))
		c.(*net.TCPConn).CloseWrite()
		n, _ := io.Copy(io.Discard, c)
		t.Logf("backend read %d bytes after its half-close", n)
	}()
	s := startServer(t, tcpRoute("hc", ln.Addr().String()))
	c, err := net.Dial("tcp", s.Route("hc").Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := io.ReadAll(io.LimitReader(c, 5))
	if err != nil || string(got) != "hello" {
		t.Fatalf("read %q, %v", got, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after the backend's half-close: %d bytes, %v; want EOF", n, err)
	}
	// The client can still send after receiving FIN.
	payload := randomBytes(1<<20, 3)
	if _, err := c.Write(payload); err != nil {
		t.Fatalf("write after FIN from backend: %v", err)
	}
	c.(*net.TCPConn).CloseWrite()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("backend never saw the client's EOF")
	}
	if up := s.Route("hc").Stats().BytesToBack; up != int64(len(payload)) {
		t.Fatalf("relayed %d bytes to the backend after its half-close, want %d", up, len(payload))
	}
}

func TestHalfCloseFromClientKeepsDownstreamFlowing(t *testing.T) {
	// roundTrip half-closes the client side and then reads the whole echo.
	backend, _ := echoServer(t)
	s := startServer(t, tcpRoute("hc2", backend))
	c, err := net.Dial("tcp", s.Route("hc2").Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Send everything and half-close before reading anything back.
	payload := randomBytes(256<<10, 4)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo after half-close: %d bytes, %v; want %d bytes", len(got), err, len(payload))
	}
}

// A backend that reads nothing fills the proxy's socket to it, and every
// buffer back to the client: what the client sent meanwhile, and what it
// sends once the backend reads again, all reaches the backend in order,
// and a short message after it too.
func TestFullBackendTakesEverythingOnceItReads(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := startServer(t, tcpRoute("full", ln.Addr().String()))
	c, err := net.Dial("tcp", s.Route("full").Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// More than every buffer on the way can hold (a socket's receive
	// buffer may grow to 32 MiB): the write stops, and its deadline ends
	// it, with the proxy's destination full.
	const blocks = 256
	base := randomBytes(1<<20, 5)
	buf := make([]byte, len(base))
	c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	sent, part := uint64(0), 0
	for ; sent < blocks; sent++ {
		block(buf, base, sent)
		n, err := c.Write(buf)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal(err)
			}
			part = n
			break
		}
	}
	if sent == blocks {
		t.Fatalf("wrote %d MiB with nobody reading them", blocks)
	}
	c.SetWriteDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		if _, err := c.Write(buf[part:]); err != nil {
			errc <- err
			return
		}
		for i := sent + 1; i < blocks; i++ {
			block(buf, base, i)
			if _, err := c.Write(buf); err != nil {
				errc <- err
				return
			}
		}
		_, err := c.Write([]byte("ping"))
		errc <- err
	}()
	b.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, want := make([]byte, len(base)), make([]byte, len(base))
	for i := uint64(0); i < blocks; i++ {
		if _, err := io.ReadFull(b, got); err != nil {
			t.Fatalf("block %d of %d (%d sent before the backend read): %v", i, blocks, sent, err)
		}
		block(want, base, i)
		if !bytes.Equal(got, want) {
			t.Fatalf("block %d differs", i)
		}
	}
	if _, err := io.ReadFull(b, got[:4]); err != nil || string(got[:4]) != "ping" {
		t.Fatalf("after the stream: %q, %v; want ping", got[:4], err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestDeadBackendClosesPromptlyAndRecovers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	s := startServer(t, tcpRoute("dead", addr))
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", s.Route("dead").Addr())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(make([]byte, 1))
		c.Close()
		if n != 0 || (err != io.EOF && !errors.Is(err, net.ErrClosed) && !isReset(err)) {
			t.Fatalf("read from a route with a dead backend: %d bytes, %v; want a close", n, err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("close took %v, want prompt", took)
		}
	}
	if got := s.Route("dead").Stats().DialErrors; got != 3 {
		t.Fatalf("dial errors = %d, want 3", got)
	}
	// The backend comes back on the same address: traffic flows again.
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot rebind %s: %v", addr, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln2.Close()
	wg.Go(func() {
		c, err := ln2.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	})
	c, err := net.Dial("tcp", s.Route("dead").Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("back"))
	got := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "back" {
		t.Fatalf("after the backend came back: %q, %v", got, err)
	}
}

func isReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }

func TestBlackholedBackendDoesNotStallOthers(t *testing.T) {
	good, _ := echoServer(t)
	hole := proxy.RouteConfig{Name: "hole", Listen: "127.0.0.1:0", Backend: blackhole(t), Protocol: "tcp", DialTimeout: 300 * time.Millisecond}
	s := startServer(t, hole, tcpRoute("good", good))
	var stuck []net.Conn
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", s.Route("hole").Addr())
		if err != nil {
			t.Fatal(err)
		}
		stuck = append(stuck, c)
	}
	start := time.Now()
	c, err := net.Dial("tcp", s.Route("good").Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("ping"))
	got := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if took := time.Since(start); took > time.Second {
		t.Fatalf("a good route took %v while another's backend was blackholed", took)
	}
	for _, c := range stuck {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(make([]byte, 1))
		c.Close()
	}
	if st := s.Route("hole").Stats(); st.DialErrors != 20 {
		t.Fatalf("dial errors = %d, want 20 timeouts", st.DialErrors)
	}
}

// blackhole returns a loopback address whose listener never accepts and
// whose accept queue is full, so the kernel drops new SYNs: dials to it hang
// until they time out.
func blackhole(t *testing.T) string {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for i := 0; i < 2; i++ { // fill the accept queue
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Skip("the kernel completed a handshake on a full accept queue; cannot blackhole here")
	}
	return addr
}

func TestMaxConnectionsRefusesAtOnce(t *testing.T) {
	backend, _ := echoServer(t)
	cfg := tcpRoute("limited", backend)
	cfg.MaxConnections = 2
	s := startServer(t, cfg)
	addr := s.Route("limited").Addr()
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("x"))
		io.ReadFull(c, make([]byte, 1))
		held = append(held, c)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := c.Read(make([]byte, 1))
	c.Close()
	if n != 0 || time.Since(start) > 2*time.Second {
		t.Fatalf("third connection over max_connections=2: read %d bytes after %v; want a prompt close", n, time.Since(start))
	}
	if got := s.Route("limited").Stats().Refused; got != 1 {
		t.Fatalf("refused = %d, want 1", got)
	}
	for _, c := range held {
		c.Close()
	}
}

func TestIdleTimeoutClosesQuietConnections(t *testing.T) {
	backend, _ := echoServer(t)
	cfg := tcpRoute("idle", backend)
	cfg.IdleTimeout = 300 * time.Millisecond
	s := startServer(t, cfg)
	c, err := net.Dial("tcp", s.Route("idle").Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Traffic every 100 ms keeps it open past the timeout...
	buf := make([]byte, 1)
	for i := 0; i < 8; i++ {
		c.Write([]byte("x"))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("active connection closed after %d round trips: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// ...silence closes it.
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(buf)
	if err == nil || time.Since(start) < 150*time.Millisecond || time.Since(start) > 3*time.Second {
		t.Fatalf("idle connection: read returned %v after %v; want a close after about 300ms", err, time.Since(start))
	}
}

func TestMixDrawsDelayAndSeedRepeats(t *testing.T) {
	backend, _ := echoServer(t)
	delayB, _, err := chaos.NewBehavior("delay", map[string]any{"sleep": "200ms"})
	if err != nil {
		t.Fatal(err)
	}
	mix, err := chaos.NewMix([]chaos.Entry{{Name: "delay", Percent: 50, Behavior: delayB}})
	if err != nil {
		t.Fatal(err)
	}
	run := func() []bool {
		cfg := tcpRoute("mix", backend)
		cfg.Mix, cfg.Seed = mix, 42
		s := proxy.New(nil, time.Second)
		if err := s.Apply([]proxy.RouteConfig{cfg}); err != nil {
			t.Fatal(err)
		}
		defer s.Shutdown(context.Background())
		var delayed []bool
		for i := 0; i < 20; i++ {
			start := time.Now()
			c, err := net.Dial("tcp", s.Route("mix").Addr())
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte("x"))
			io.ReadFull(c, make([]byte, 1))
			c.Close()
			delayed = append(delayed, time.Since(start) >= 200*time.Millisecond)
		}
		return delayed
	}
	first, second := run(), run()
	n := 0
	for i := range first {
		if first[i] {
			n++
		}
		if first[i] != second[i] {
			t.Fatalf("seeded runs differ at connection %d: %v vs %v", i, first, second)
		}
	}
	if n < 3 || n > 17 {
		t.Fatalf("%d of 20 connections delayed with a 50%% mix", n)
	}
}

func TestApplyUpdatesInPlaceAddsAndRemoves(t *testing.T) {
	backend, _ := echoServer(t)
	s := startServer(t, tcpRoute("a", backend), tcpRoute("b", backend))
	aAddr := s.Route("a").Addr()
	// A live connection on a survives a reload that changes its mix.
	c, err := net.Dial("tcp", aAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("1"))
	io.ReadFull(c, make([]byte, 1))
	a := tcpRoute("a", backend)
	a.Listen = aAddr
	if err := s.Apply([]proxy.RouteConfig{a, tcpRoute("c", backend)}); err != nil {
		t.Fatal(err)
	}
	if s.Route("b") != nil || s.Route("c") == nil {
		t.Fatalf("after reload: routes b=%v c=%v; want b gone, c present", s.Route("b"), s.Route("c"))
	}
	c.Write([]byte("2"))
	got := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || got[0] != '2' {
		t.Fatalf("connection on an unchanged route after reload: %q, %v", got, err)
	}
}

func TestShutdownDrainsThenCloses(t *testing.T) {
	backend, _ := echoServer(t)
	s := proxy.New(nil, time.Second)
	if err := s.Apply([]proxy.RouteConfig{tcpRoute("d", backend)}); err != nil {
		t.Fatal(err)
	}
	addr := s.Route("d").Addr()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	s.Shutdown(ctx)
	if took := time.Since(start); took < 250*time.Millisecond || took > 3*time.Second {
		t.Fatalf("shutdown with a live idle connection took %v, want the drain period", took)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("route still accepts after shutdown")
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("live connection still open after the drain period")
	}
}

// An idle proxied tcp connection holds no goroutine: a poller relays the
// connections that carry out no behavior, so a thousand idle ones cost
// their sockets and not two goroutine stacks each.
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	// A backend that holds what it accepts, without a goroutine each.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	})
	defer func() {
		ln.Close()
		wg.Wait()
		for _, c := range held {
			c.Close()
		}
	}()
	s := startServer(t, tcpRoute("idle", ln.Addr().String()))
	r := s.Route("idle")
	const n = 500
	before := runtime.NumGoroutine()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", r.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := len(held)
		mu.Unlock()
		if got == n && r.Stats().Active == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections dialed to the backend, %d active, want %d", got, r.Stats().Active, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The goroutines that served the accepts end once their connection is
	// handed to the poller.
	var grew int
	for {
		grew = runtime.NumGoroutine() - before
		if grew <= runtime.GOMAXPROCS(0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if grew > runtime.GOMAXPROCS(0) {
		t.Fatalf("%d idle connections hold %d more goroutines, want at most one poller per CPU", n, grew)
	}
	// And every one of them still relays, both ways.
	for i, c := range conns {
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	backs := held
	mu.Unlock()
	for _, b := range backs {
		b.SetReadDeadline(time.Now().Add(5 * time.Second))
		one := make([]byte, 1)
		if _, err := io.ReadFull(b, one); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Write(one); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		one := make([]byte, 1)
		if _, err := io.ReadFull(c, one); err != nil || one[0] != byte(i) {
			t.Fatalf("connection %d read %d, %v; want its byte back", i, one[0], err)
		}
	}
}
