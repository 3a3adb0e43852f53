package memcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func newClient(addr string) *memcache.Client {
	mc := memcache.New(addr)
	mc.Timeout = 10 * time.Second
	mc.MaxIdleConns = 4
	return mc
}

func randomValue(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestGomemcachePassThrough drives every classic command gomemcache has
// through the proxy and checks values byte for byte (1 MB ones included),
// cas conflicts, a 100-key multi-get and the exchange count.
func TestGomemcachePassThrough(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, nil)
	c := newClient(p.Addr)
	r := rand.New(rand.NewPCG(1, 2))
	requests := 0

	// 1 MB values, checked by digest.
	sums := map[string][32]byte{}
	for i := range 5 {
		k := fmt.Sprintf("big%d", i)
		v := randomValue(r, 1<<20+i)
		sums[k] = sha256.Sum256(v)
		if err := c.Set(&memcache.Item{Key: k, Value: v, Flags: uint32(i)}); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
		requests++
	}
	for k, sum := range sums {
		it, err := c.Get(k)
		requests++
		if err != nil {
			t.Fatalf("get %s: %v", k, err)
		}
		if sha256.Sum256(it.Value) != sum {
			t.Fatalf("value of %s changed on the way", k)
		}
	}

	// A multi-get of 100 keys, hits and misses mixed.
	var keys []string
	want := map[string][]byte{}
	for i := range 100 {
		k := fmt.Sprintf("key:%03d", i)
		keys = append(keys, k)
		if i%3 == 0 {
			continue
		}
		v := randomValue(r, 1+r.IntN(3000))
		want[k] = v
		if err := c.Set(&memcache.Item{Key: k, Value: v}); err != nil {
			t.Fatal(err)
		}
		requests++
	}
	got, err := c.GetMulti(keys)
	requests++
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("multi-get returned %d items, want %d", len(got), len(want))
	}
	for k, v := range want {
		if !bytes.Equal(got[k].Value, v) {
			t.Fatalf("multi-get value of %s differs", k)
		}
	}

	// cas: the second writer of the same cas id gets EXISTS.
	it, err := c.Get("key:001")
	requests++
	if err != nil {
		t.Fatal(err)
	}
	it.Value = []byte("first")
	if err := c.CompareAndSwap(it); err != nil {
		t.Fatalf("cas: %v", err)
	}
	it.Value = []byte("second")
	if err := c.CompareAndSwap(it); !errors.Is(err, memcache.ErrCASConflict) {
		t.Fatalf("stale cas: got %v, want ErrCASConflict", err)
	}
	requests += 2

	// The rest of the classic commands.
	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"add existing", func() error { return c.Add(&memcache.Item{Key: "key:001", Value: []byte("x")}) }, memcache.ErrNotStored},
		{"add new", func() error { return c.Add(&memcache.Item{Key: "n", Value: []byte("5")}) }, nil},
		{"replace missing", func() error { return c.Replace(&memcache.Item{Key: "nope", Value: []byte("x")}) }, memcache.ErrNotStored},
		{"append", func() error { return c.Append(&memcache.Item{Key: "n", Value: []byte("0")}) }, nil},
		{"prepend", func() error { return c.Prepend(&memcache.Item{Key: "n", Value: []byte("1")}) }, nil},
		{"incr", func() error {
			v, err := c.Increment("n", 5)
			if err == nil && v != 155 {
				return fmt.Errorf("incr gave %d, want 155", v)
			}
			return err
		}, nil},
		{"decr", func() error {
			v, err := c.Decrement("n", 200)
			if err == nil && v != 0 {
				return fmt.Errorf("decr gave %d, want 0", v)
			}
			return err
		}, nil},
		{"incr missing", func() error { _, err := c.Increment("nope", 1); return err }, memcache.ErrCacheMiss},
		{"touch", func() error { return c.Touch("n", 100) }, nil},
		{"touch missing", func() error { return c.Touch("nope", 100) }, memcache.ErrCacheMiss},
		{"delete", func() error { return c.Delete("n") }, nil},
		{"delete missing", func() error { return c.Delete("n") }, memcache.ErrCacheMiss},
		{"get missing", func() error { _, err := c.Get("n"); return err }, memcache.ErrCacheMiss},
		{"ping", c.Ping, nil},
		{"flush_all", c.FlushAll, nil},
		{"gone after flush", func() error { _, err := c.Get("key:001"); return err }, memcache.ErrCacheMiss},
	}
	for _, s := range steps {
		if err := s.do(); !errors.Is(err, s.want) {
			t.Fatalf("%s: got %v, want %v", s.name, err, s.want)
		}
		requests++
	}
	c.Close()
	p.WaitServed(t)
	if n := p.Exchanges.Load(); n != int64(requests) {
		t.Errorf("Exchanged reported %d times, want %d", n, requests)
	}
	if n := len(p.Drawn()); n != requests {
		t.Errorf("drew %d times, want %d", n, requests)
	}
	if len(p.Errors()) > 0 {
		t.Errorf("Serve returned %v", p.Errors())
	}
	if p.ToBackend.Load() < 5<<20 || p.ToClient.Load() < 5<<20 {
		t.Errorf("relayed %d bytes up and %d down, want at least 5 MiB each", p.ToBackend.Load(), p.ToClient.Load())
	}
}

// classicScript exercises classic framing: pipelined storage commands,
// noreply ones among them, multi-key gets, cas conflicts, arithmetic,
// invalid lines that memcached answers with errors, and data blocks that
// memcached reads as commands because it rejects the line before them.
var classicScript = lines(
	"set a 1 0 5", "hello",
	"set b 2 0 3 noreply", "bye",
	"add a 0 0 1", "x",
	"append a 0 0 6", " world",
	"prepend b 0 0 1 noreply", ">",
	"get a b c",
	"gets a",
	"cas a 0 0 3 999", "new",
	"cas a 0 0 3 1 noreply", "new",
	"gets a",
	"set n 0 0 2", "10",
	"incr n 5", "decr n 100", "incr n 7 noreply", "get n",
	"incr a 1",
	"touch a 100", "touch zz 1 noreply", "gat 100 a b", "gats 0 zz",
	"delete b", "delete b noreply", "delete b 0", "delete b 5 noreply", "delete b 5",
	"set k 0 0 noreply", "set k 0 0 5 noreply extra", "hello",
	"set "+strings.Repeat("x", 251)+" 0 0 5 noreply", "hello",
	"set big 0 0 4294967301", "12345",
	"set bad 0 0 2", "hiXX",
	"set empty 0 0 0", "",
	"get empty big bad",
	"GET a", "", " ", "x", "bogus command here",
	"verbosity", "verbosity 1", "verbosity 0 noreply",
	"flush_all 0 noreply", "get a",
	"version",
)

// TestClassicByteExact runs the same pipeline against a memcached directly
// and through the proxy (each on a fresh server) and compares every byte.
func TestClassicByteExact(t *testing.T) {
	direct := testenv.Memcached(t)
	behind := testenv.Memcached(t)
	p := startProxy(t, behind.Addr, nil)
	want := script(t, direct.Addr, classicScript)
	got := script(t, p.Addr, classicScript)
	if got != want {
		t.Fatalf("through the proxy:\n%q\ndirect:\n%q", got, want)
	}
	p.WaitServed(t)
	// Every request line is drawn once; "hello" lines that memcached reads
	// as commands are requests too.
	requests := len(p.Drawn())
	if n := p.Exchanges.Load(); n != int64(requests) {
		t.Errorf("Exchanged %d times for %d requests", n, requests)
	}
	if len(p.Errors()) > 0 {
		t.Errorf("Serve returned %v", p.Errors())
	}
	if p.ToBackend.Load() != int64(len(classicScript)) || p.ToClient.Load() != int64(len(want)) {
		t.Errorf("relayed %d up, %d down; want %d, %d", p.ToBackend.Load(), p.ToClient.Load(), len(classicScript), len(want))
	}
}

// metaScript exercises the meta commands, quiet mode among them: quiet
// hits answer, quiet misses and successes do not, failures always do, and
// requests that are not quiet follow quiet ones without an mn between.
var metaScript = lines(
	"ms foo 2 T0 F5", "hi",
	"ms bar 3 q", "bar",
	"ms bar 3 q ME", "bar", // add of an existing key: NS even in quiet mode
	"mg foo v q k",
	"mg nope v q",
	"mg bar s v",
	"md nope q",
	"md bar q",
	"ma cnt q N0 J5",
	"ma cnt v",
	"ma cnt q MD D100",
	"mn",
	"mg foo v q", "mg nope q", "get foo",
	"mg nope q O1", "mg foo t f q O2",
	"ms k 5 b q", "hello",
	"mg k q b",
	"mg nope q", "version",
	"mn",
	"ms x 3 I q", "abc",
	"ms x S3", "abc",
	"mg x v", "md x", "md x q", "mn",
	"me foo", "mx",
	"mg foo q", "mg foo q",
)

func TestMetaByteExact(t *testing.T) {
	direct := testenv.Memcached(t)
	behind := testenv.Memcached(t)
	p := startProxy(t, behind.Addr, nil)
	want := script(t, direct.Addr, metaScript)
	got := script(t, p.Addr, metaScript)
	// me reports seconds since last access, which may tick between runs.
	clean := func(s string) string {
		i := strings.Index(s, "ME foo ")
		if i < 0 {
			return s
		}
		j := strings.Index(s[i:], "\r\n")
		return s[:i] + "ME" + s[i+j:]
	}
	if clean(got) != clean(want) {
		t.Fatalf("through the proxy:\n%q\ndirect:\n%q", got, want)
	}
	p.WaitServed(t)
	if n, d := p.Exchanges.Load(), len(p.Drawn()); n != int64(d) {
		t.Errorf("Exchanged %d times for %d requests", n, d)
	}
	if len(p.Errors()) > 0 {
		t.Errorf("Serve returned %v", p.Errors())
	}
}

// TestQuietAnswerWithoutMN checks that a quiet hit reaches a client that
// sends nothing after it: the proxy's own mn makes memcached flush, and its
// MN is not relayed.
func TestQuietAnswerWithoutMN(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, nil)
	l := newLineReader(t, dial(t, p.Addr))
	l.send(lines("ms k 3 q", "abc"))
	l.send(lines("mg k v q"))
	l.expect("VA 3")
	if got := string(l.block(3)); got != "abc" {
		t.Fatalf("got %q", got)
	}
	l.send(lines("mg nope v q"))
	l.silent(100 * time.Millisecond) // a quiet miss answers nothing, and the proxy's MN stays away
	l.send(lines("mn"))
	l.expect("MN")
	l.send(lines("ms k 3 q ME", "abc")) // a quiet failure answers at once
	l.expect("NS")
	l.send(lines("get k"))
	l.expect("VALUE k 0 3", "abc", "END")
	if n := p.Exchanges.Load(); n != 6 {
		t.Errorf("Exchanged %d times, want 6", n)
	}
}

// TestStatsFraming keeps framing in step across the multi-line answers of
// stats and its sub-commands, and the one-line ones.
func TestStatsFraming(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, nil)
	l := newLineReader(t, dial(t, p.Addr))
	l.send(lines("set a 0 0 1", "1"))
	l.expect("STORED")
	for _, cmd := range []string{"stats", "stats slabs", "stats items", "stats settings", "stats sizes", "stats conns", "stats detail dump"} {
		// Pipelined with a version, whose answer must come right after END.
		l.send(lines(cmd, "version"))
		n := 0
		for {
			s := l.line()
			if s == "END\r\n" {
				break
			}
			if !strings.HasPrefix(s, "STAT ") && !strings.HasPrefix(s, "PREFIX ") {
				t.Fatalf("%s: unexpected line %q", cmd, s)
			}
			n++
		}
		if cmd == "stats" && n < 20 {
			t.Fatalf("stats gave %d lines", n)
		}
		if v := l.line(); !strings.HasPrefix(v, "VERSION ") {
			t.Fatalf("after %s: got %q, want VERSION", cmd, v)
		}
	}
	l.send(lines("stats nope", "stats reset", "stats detail on", "stats detail off", "version"))
	l.expect("ERROR", "RESET", "OK", "OK")
	if v := l.line(); !strings.HasPrefix(v, "VERSION ") {
		t.Fatalf("got %q, want VERSION", v)
	}
}

// TestNoreplyThenNormal pipelines many noreply commands and then normal
// ones: nothing is awaited for the noreply ones, so the normal answers
// come at once and in order.
func TestNoreplyThenNormal(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, nil)
	l := newLineReader(t, dial(t, p.Addr))
	var b strings.Builder
	for i := range 200 {
		fmt.Fprintf(&b, "set k%d 0 0 %d noreply\r\n%d\r\n", i, len(fmt.Sprint(i)), i)
	}
	b.WriteString("incr k7 3 noreply\r\ndelete k8 noreply\r\ntouch k9 10 noreply\r\nflush_all 100 noreply\r\n")
	b.WriteString("get k7 k8 k199\r\n")
	l.send(b.String())
	l.expect("VALUE k7 0 2", "10", "VALUE k199 0 3", "199", "END")
	if n := p.Exchanges.Load(); n != 205 {
		t.Errorf("Exchanged %d times, want 205", n)
	}
}

// TestPipelineDeep sends thousands of requests before reading any answer:
// more than the queue holds, so back-pressure must not deadlock.
func TestPipelineDeep(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, nil)
	c := dial(t, p.Addr)
	const n = 5000
	var in, want strings.Builder
	for i := range n {
		fmt.Fprintf(&in, "set p%d 0 0 4\r\n%04d\r\nget p%d\r\nmg p%d v q\r\n", i, i%10000, i, i)
		fmt.Fprintf(&want, "STORED\r\nVALUE p%d 0 4\r\n%04d\r\nEND\r\nVA 4\r\n%04d\r\n", i, i%10000, i%10000)
	}
	in.WriteString("mn\r\n")
	want.WriteString("MN\r\n")
	go func() {
		io.WriteString(c, in.String())
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Fatalf("pipeline answers differ (got %d bytes, want %d)", len(got), want.Len())
	}
	p.WaitServed(t)
	if ex := p.Exchanges.Load(); ex != 3*n+1 {
		t.Errorf("Exchanged %d times, want %d", ex, 3*n+1)
	}
}

// TestLongGetLine streams a get whose key list is longer than the read
// buffer, as memcached allows for get and gets.
func TestLongGetLine(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, nil)
	l := newLineReader(t, dial(t, p.Addr))
	l.send(lines("set k0 0 0 1", "a", "set k9999 0 0 1", "b"))
	l.expect("STORED", "STORED")
	var b strings.Builder
	b.WriteString("get")
	for i := range 10000 {
		fmt.Fprintf(&b, " k%d", i)
	}
	if b.Len() < 2*bufSize {
		t.Fatalf("line of %d bytes is too short for the test", b.Len())
	}
	l.send(lines(b.String(), "version"))
	l.expect("VALUE k0 0 1", "a", "VALUE k9999 0 1", "b", "END")
	if v := l.line(); !strings.HasPrefix(v, "VERSION") {
		t.Fatalf("got %q", v)
	}
}

// TestLongLineGoesRaw: a non-get line longer than the buffer is relayed
// raw; memcached closes such a connection, and so the client's closes.
func TestLongLineGoesRaw(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, nil)
	l := newLineReader(t, dial(t, p.Addr))
	l.send(lines("version"))
	l.line()
	l.send("set " + strings.Repeat("k", 3*bufSize))
	l.closed(5 * time.Second)
	l.c.Close()
	p.WaitServed(t)
}

// TestOverlongGetKeyLosesNothing: memcached answers a get that names a key
// over 250 bytes by dropping the answers it has not sent yet, those of
// earlier pipelined requests included. The proxy forwards such a get only
// once every earlier answer is in, so the client gets them all.
func TestOverlongGetKeyLosesNothing(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, nil)
	long := strings.Repeat("k", 251)
	in := lines("set a 0 0 1", "1", "version", "get a "+long, "mg a v q", "gets a "+long+" b", "version")
	for range 20 {
		l := newLineReader(t, dial(t, p.Addr))
		l.send(in)
		l.expect("STORED")
		if v := l.line(); !strings.HasPrefix(v, "VERSION") {
			t.Fatalf("got %q", v)
		}
		l.expect("CLIENT_ERROR bad command line format", "VA 1", "1", "CLIENT_ERROR bad command line format")
		if v := l.line(); !strings.HasPrefix(v, "VERSION") {
			t.Fatalf("got %q", v)
		}
	}
}

// TestTooLargeValueStreamed: a value over memcached's item size limit is
// streamed through; memcached reads it, then answers that it is too large.
func TestTooLargeValueStreamed(t *testing.T) {
	mc := testenv.Memcached(t) // items up to 16 MB
	p := startProxy(t, mc.Addr, nil)
	l := newLineReader(t, dial(t, p.Addr))
	const n = 20 << 20
	go func() {
		io.WriteString(l.c, fmt.Sprintf("set big 0 0 %d\r\n", n))
		l.c.Write(make([]byte, n))
		io.WriteString(l.c, "\r\nversion\r\n")
	}()
	l.expect("SERVER_ERROR object too large for cache")
	if v := l.line(); !strings.HasPrefix(v, "VERSION") {
		t.Fatalf("got %q", v)
	}
}

// TestHugeClaimNotAllocated: a data block claiming more than the cap goes
// raw and is streamed, never allocated.
func TestHugeClaimNotAllocated(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		received <- n
	}()
	p := startProxy(t, ln.Addr().String(), nil)
	c := dial(t, p.Addr)
	head := "set huge 0 0 2000000000\r\n"
	payload := make([]byte, 8<<20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	io.WriteString(c, head)
	c.Write(payload)
	c.CloseWrite()
	if n := <-received; n != int64(len(head)+len(payload)) {
		t.Fatalf("backend received %d bytes, want %d", n, len(head)+len(payload))
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("allocated %d bytes while streaming 8 MiB", grew)
	}
}

// TestBinaryProtocolRaw: a binary-protocol client is relayed raw.
func TestBinaryProtocolRaw(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, nil)
	c := dial(t, p.Addr)
	// Binary "version" request: magic 0x80, opcode 0x0b, 24-byte header.
	req := make([]byte, 24)
	req[0], req[1] = 0x80, 0x0b
	c.Write(req)
	hdr := make([]byte, 24)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 0x81 || hdr[1] != 0x0b {
		t.Fatalf("binary answer header % x", hdr)
	}
}

// TestQuit: memcached closes on quit, and so does the proxy once the
// answers before it are out.
func TestQuit(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, nil)
	got := script(t, p.Addr, lines("set a 0 0 1", "x", "get a", "quit", "get a"))
	if want := lines("STORED", "VALUE a 0 1", "x", "END"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	p.WaitServed(t)
	if got := p.Commands(); !slices.Equal(got, []string{"set", "get", "quit"}) {
		t.Fatalf("exchanges %v", got)
	}
}

// TestWatchGoesRaw: after watch, memcached streams log lines; the proxy
// relays them raw.
func TestWatchGoesRaw(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, nil)
	l := newLineReader(t, dial(t, p.Addr))
	l.send(lines("watch fetchers"))
	l.expect("OK")
	other := newLineReader(t, dial(t, mc.Addr))
	other.send(lines("get watched"))
	other.expect("END")
	if s := l.line(); !strings.Contains(s, "watched") {
		t.Fatalf("watch line %q", s)
	}
}

// TestCommandNames: the Request handed to Draw names the command as sent.
func TestCommandNames(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, nil)
	script(t, p.Addr, lines("get a", "gets a b", "set a 0 0 1", "x", "mg a v", "ms a 1 q", "x", "mn", "GET a", "stats items", "", "flush_all"))
	want := []string{"get", "gets", "set", "mg", "ms", "mn", "GET", "stats", "", "flush_all"}
	if got := p.Drawn(); !slices.Equal(got, want) {
		t.Fatalf("drawn %q, want %q", got, want)
	}
}

// ---- faults ----

func TestErrorGomemcache(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, on(chaos.Effect{Fault: chaos.FaultError}, "gets"))
	c := newClient(p.Addr)
	defer c.Close()
	if err := c.Set(&memcache.Item{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, err := c.Get("k") // gomemcache sends gets
		if err == nil || !strings.Contains(err.Error(), "SERVER_ERROR vaurien injected fault") {
			t.Fatalf("get: got %v, want the injected SERVER_ERROR", err)
		}
		// The client stays usable.
		if err := c.Set(&memcache.Item{Key: "k", Value: []byte("w")}); err != nil {
			t.Fatalf("set after error: %v", err)
		}
		if err := c.Touch("k", 10); err != nil {
			t.Fatalf("touch after error: %v", err)
		}
	}
}

func TestErrorRaw(t *testing.T) {
	mc := testenv.Memcached(t)
	custom := chaos.Effect{Fault: chaos.FaultError, Error: chaos.ErrorSpec{Message: "out of\r\nmemory"}}
	p := startProxy(t, mc.Addr, on(chaos.Effect{Fault: chaos.FaultError}, "get", "ms", "mg", "set").and(on(custom, "incr")))
	l := newLineReader(t, dial(t, p.Addr))
	// The error reply stands in for the answer; the request never reaches
	// memcached (the set is not stored), and the connection carries on.
	l.send(lines("set k 0 0 1", "x", "add k 0 0 1", "y", "get k", "gets k"))
	l.expect("SERVER_ERROR vaurien injected fault", "STORED", "SERVER_ERROR vaurien injected fault", "VALUE k 0 1 1", "y", "END")
	l.send(lines("incr k 1"))
	l.expect("SERVER_ERROR out of  memory")
	// A noreply request drawn error is swallowed: nothing is sent back.
	l.send(lines("set k 0 0 1 noreply", "z", "gets k"))
	l.expect("VALUE k 0 1 1", "y", "END")
	// Meta: SERVER_ERROR too, for quiet requests as well, in order.
	l.send(lines("ms k 1", "z", "mg k v q", "md k q", "mg k v", "mn"))
	l.expect("SERVER_ERROR vaurien injected fault", "SERVER_ERROR vaurien injected fault",
		"SERVER_ERROR vaurien injected fault", "MN")
	l.send(lines("md k", "md k q", "mn"))
	l.expect("NF", "NF", "MN") // md k q above deleted k
}

func TestErrorInject(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, on(chaos.Effect{Fault: chaos.FaultError, Error: chaos.ErrorSpec{Inject: true}}, "get", "mg", "delete", "incr"))
	l := newLineReader(t, dial(t, p.Addr))
	value := bytes.Repeat([]byte("a"), 1000)
	l.send(fmt.Sprintf("set k 0 0 %d\r\n%s\r\nset s 0 0 3\r\nabc\r\n", len(value), value))
	l.expect("STORED", "STORED")
	l.send(lines("get k s", "version"))
	l.expect("VALUE k 0 1000")
	got := l.block(1000)
	changed := 0
	for i := range got {
		if got[i] != 'a' {
			changed++
			if i < 450 || i >= 550 {
				t.Fatalf("byte %d changed, outside the middle 100", i)
			}
		}
	}
	if changed == 0 {
		t.Fatal("value not corrupted")
	}
	l.expect("VALUE s 0 3", "abc", "END") // only the first value is hit
	if v := l.line(); !strings.HasPrefix(v, "VERSION") {
		t.Fatalf("got %q", v)
	}
	// Answers without a value are replaced, though the request ran.
	l.send(lines("get nope", "delete s", "get s", "incr n 1", "mg k v q", "mg s v q", "mn"))
	l.expect("SERVER_ERROR vaurien injected fault", "SERVER_ERROR vaurien injected fault", "SERVER_ERROR vaurien injected fault", "SERVER_ERROR vaurien injected fault")
	l.expect("VA 1000")
	if bytes.Equal(l.block(1000), value) {
		t.Fatal("quiet value not corrupted")
	}
	l.expect("SERVER_ERROR vaurien injected fault", "MN")
}

func TestDelays(t *testing.T) {
	mc := testenv.Memcached(t)
	const d = 150 * time.Millisecond
	p := startProxy(t, mc.Addr, on(chaos.Effect{Delay: d}, "get").and(on(chaos.Effect{ResponseDelay: d}, "version")))
	l := newLineReader(t, dial(t, p.Addr))
	l.send(lines("set k 0 0 1", "x"))
	l.expect("STORED")
	for _, cmd := range []string{"get k", "version"} {
		start := time.Now()
		l.send(lines(cmd))
		l.line()
		if cmd == "get k" {
			l.expect("x", "END")
		}
		if took := time.Since(start); took < d {
			t.Fatalf("%s answered after %v, want at least %v", cmd, took, d)
		}
	}
}

func TestHang(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, on(chaos.Effect{Fault: chaos.FaultHang}, "get"))
	c := dial(t, p.Addr)
	l := newLineReader(t, c)
	l.send(lines("set k 0 0 1", "x", "get k", "version"))
	l.expect("STORED")
	l.silent(300 * time.Millisecond)
	c.Close()
	p.WaitServed(t)
	// The hung get and what followed never reached memcached.
	direct := newLineReader(t, dial(t, mc.Addr))
	direct.send(lines("stats"))
	for {
		s := direct.line()
		if strings.HasPrefix(s, "STAT cmd_get ") && s != "STAT cmd_get 0\r\n" {
			t.Fatalf("memcached saw a get: %q", s)
		}
		if s == "END\r\n" {
			break
		}
	}
}

func TestTimeout(t *testing.T) {
	mc := testenv.Memcached(t)
	const after = 200 * time.Millisecond
	p := startProxy(t, mc.Addr, on(chaos.Effect{Fault: chaos.FaultTimeout, After: after}, "get"))
	l := newLineReader(t, dial(t, p.Addr))
	start := time.Now()
	l.send(lines("version", "get k"))
	l.line()
	l.closed(5 * time.Second)
	if took := time.Since(start); took < after {
		t.Fatalf("closed after %v, want at least %v", took, after)
	}
}

func TestAbort(t *testing.T) {
	mc := testenv.Memcached(t)
	p := startProxy(t, mc.Addr, on(chaos.Effect{Fault: chaos.FaultAbort}, "get", "gets"))
	l := newLineReader(t, dial(t, p.Addr))
	l.send(lines("set k 0 0 1", "x", "get k", "version"))
	l.expect("STORED")
	l.closed(5 * time.Second)
	// gomemcache sees an error, not a value.
	c := newClient(p.Addr)
	defer c.Close()
	if _, err := c.Get("k"); err == nil {
		t.Fatal("get through abort succeeded")
	}
}

func TestCloseFaults(t *testing.T) {
	mc := testenv.Memcached(t)
	for _, tc := range []struct {
		name     string
		e        chaos.Effect
		reset    bool
		refuse   bool
		answered bool
	}{
		{"blackout", chaos.Effect{Fault: chaos.FaultClose}, false, false, false},
		{"down", chaos.Effect{Fault: chaos.FaultRefuse}, false, true, false},
		{"reset_peer", chaos.Effect{Fault: chaos.FaultReset}, true, false, false},
		{"reset_peer after", chaos.Effect{Fault: chaos.FaultReset, After: 100 * time.Millisecond}, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, mc.Addr, on(tc.e, "get"))
			l := newLineReader(t, dial(t, p.Addr))
			l.send(lines("version"))
			l.line()
			start := time.Now()
			l.send(lines("get k"))
			if tc.answered {
				l.expect("END")
			}
			err := l.closed(5 * time.Second)
			if took := time.Since(start); took < tc.e.After {
				t.Fatalf("closed after %v, want at least %v", took, tc.e.After)
			}
			if tc.reset != errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("connection ended with %v; reset wanted: %v", err, tc.reset)
			}
			p.WaitServed(t)
			if tc.refuse != (p.Refusals.Load() == 1) {
				t.Fatalf("Refused called %d times", p.Refusals.Load())
			}
		})
	}
}

// TestRefuseBeforeDelay: a stacked effect refuses or closes first, as on
// every route; the delay drawn with it is never waited.
func TestRefuseBeforeDelay(t *testing.T) {
	mc := testenv.Memcached(t)
	const delay = 5 * time.Second
	for _, f := range []chaos.Fault{chaos.FaultRefuse, chaos.FaultClose} {
		t.Run(f.String(), func(t *testing.T) {
			p := startProxy(t, mc.Addr, on(chaos.Effect{Fault: f, Delay: delay}, "get"))
			l := newLineReader(t, dial(t, p.Addr))
			start := time.Now()
			l.send(lines("get k"))
			l.closed(delay)
			if took := time.Since(start); took >= delay/2 {
				t.Fatalf("closed after %v: the delay was waited before the %v", took, f)
			}
		})
	}
}

func TestSlowClose(t *testing.T) {
	mc := testenv.Memcached(t)
	const d = 200 * time.Millisecond
	p := startProxy(t, mc.Addr, on(chaos.Effect{CloseDelay: d}, "quit"))
	l := newLineReader(t, dial(t, p.Addr))
	start := time.Now()
	l.send(lines("quit"))
	l.closed(5 * time.Second)
	if took := time.Since(start); took < d {
		t.Fatalf("closed after %v, want at least %v", took, d)
	}
}

// byteAtATime is a ToClient/ToBackend filter that writes one byte per
// write, like slicer.
type byteAtATime struct{ writes *atomic.Int64 }

func (f byteAtATime) Relay(ctx context.Context, dst io.Writer, src io.Reader) error {
	var b [1]byte
	for {
		n, err := src.Read(b[:])
		if n > 0 {
			f.writes.Add(1)
			if _, err := dst.Write(b[:n]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// limit closes the connection after n bytes, like limit_data.
type limit int

func (l limit) Relay(ctx context.Context, dst io.Writer, src io.Reader) error {
	n, err := io.CopyN(dst, src, int64(l))
	if err == io.EOF || (err == nil && n == int64(l)) {
		return chaos.ErrClose
	}
	return err
}

func TestFilters(t *testing.T) {
	mc := testenv.Memcached(t)
	var up, down atomic.Int64
	p := startProxy(t, mc.Addr, on(chaos.Effect{ToBackend: byteAtATime{&up}}, "set").
		and(on(chaos.Effect{ToClient: byteAtATime{&down}}, "get")).
		and(on(chaos.Effect{ToClient: limit(10)}, "gets")))
	l := newLineReader(t, dial(t, p.Addr))
	l.send(lines("set k 0 0 5", "hello", "get k", "version"))
	l.expect("STORED", "VALUE k 0 5", "hello", "END")
	if v := l.line(); !strings.HasPrefix(v, "VERSION") {
		t.Fatalf("got %q", v)
	}
	if n := up.Load(); n != int64(len("set k 0 0 5\r\nhello\r\n")) {
		t.Errorf("to-backend filter wrote %d bytes", n)
	}
	if n := down.Load(); n != int64(len("VALUE k 0 5\r\nhello\r\nEND\r\n")) {
		t.Errorf("to-client filter wrote %d bytes", n)
	}
	l.send(lines("gets k"))
	buf := make([]byte, 100)
	n, _ := io.ReadFull(l.br, buf)
	if n != 10 {
		t.Fatalf("limit let %d bytes through, want 10", n)
	}
	p.WaitServed(t)
}

func TestIdleTimeout(t *testing.T) {
	mc := testenv.Memcached(t)
	const idle = 200 * time.Millisecond
	p := startProxy(t, mc.Addr, nil, withIdle(idle))
	l := newLineReader(t, dial(t, p.Addr))
	start := time.Now() // before the last byte the proxy moves
	l.send(lines("version"))
	l.line()
	l.closed(5 * time.Second)
	if took := time.Since(start); took < idle {
		t.Fatalf("closed after %v, want at least %v", took, idle)
	}
}

func TestBackendDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := startProxy(t, addr, nil)
	l := newLineReader(t, dial(t, p.Addr))
	l.closed(5 * time.Second)
	p.WaitServed(t)
	if len(p.Errors()) != 1 {
		t.Fatalf("Serve returned %v, want the dial error", p.Errors())
	}
}

// TestBackendCloses: a backend that goes away mid-answer closes the client.
func TestBackendCloses(t *testing.T) {
	b := testenv.Serve(t, func(c net.Conn) {
		buf := make([]byte, 100)
		c.Read(buf)
		io.WriteString(c, "VALUE k 0 10\r\nabc")
	})
	p := startProxy(t, b.Addr, nil)
	c := dial(t, p.Addr)
	io.WriteString(c, lines("get k"))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "VALUE k 0 10\r\nabc" {
		t.Fatalf("got %q, %v", got, err)
	}
}

// TestIdleConnectionsHoldNoBuffers: between requests, and before the
// first, both sides wait in the poller with their buffers back in the
// pools, so idle connections are cheap.
func TestIdleConnectionsHoldNoBuffers(t *testing.T) {
	const n = 200
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	perConn := func(t *testing.T, before uint64) {
		t.Helper()
		// The proxy's goroutines park a moment after the last read.
		var per uint64
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			after := heap()
			per = 0
			if after > before {
				per = (after - before) / n
			}
			if per < 24<<10 {
				return
			}
			<-time.After(20 * time.Millisecond)
		}
		t.Fatalf("%d bytes of heap per idle connection; holding the four 16 KiB buffers would be about 64 KiB", per)
	}
	t.Run("after a request", func(t *testing.T) {
		mc := testenv.Memcached(t)
		p := startProxy(t, mc.Addr, nil, countOnly)
		before := heap()
		for range n {
			l := newLineReader(t, dial(t, p.Addr))
			l.send(lines("version"))
			l.line()
		}
		perConn(t, before)
	})
	t.Run("before the first", func(t *testing.T) {
		// A backend that only accepts, so that the test knows when the
		// proxy has dialed for every client.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		accepted := make(chan net.Conn, n)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				accepted <- c
			}
		}()
		p := startProxy(t, ln.Addr().String(), nil, countOnly)
		before := heap()
		for range n {
			dial(t, p.Addr)
		}
		for range n {
			c := <-accepted
			defer c.Close()
		}
		perConn(t, before)
	})
}

// TestBackendClosesIdle: a backend that closes a connection with nothing
// pending (memcached's idle_timeout, a restart) closes the client's at once,
// without waiting for its next request.
func TestBackendClosesIdle(t *testing.T) {
	b := testenv.Serve(t, func(c net.Conn) {
		buf := make([]byte, 100)
		c.Read(buf)
		io.WriteString(c, "VERSION 1.6.18\r\n")
	})
	p := startProxy(t, b.Addr, nil)
	l := newLineReader(t, dial(t, p.Addr))
	l.send(lines("version"))
	l.expect("VERSION 1.6.18")
	l.closed(5 * time.Second)
	p.WaitServed(t)
}

// TestGarbageBackend: an answer that is not memcache closes the connection
// with a framing error.
func TestGarbageBackend(t *testing.T) {
	b := testenv.Serve(t, func(c net.Conn) {
		buf := make([]byte, 100)
		c.Read(buf)
		io.WriteString(c, "VALUE k 0 lots\r\n")
		c.Read(buf)
	})
	p := startProxy(t, b.Addr, nil)
	l := newLineReader(t, dial(t, p.Addr))
	l.send(lines("get k"))
	l.closed(5 * time.Second)
	p.WaitServed(t)
	var fe *FramingError
	if len(p.Errors()) != 1 || !errors.As(p.Errors()[0], &fe) {
		t.Fatalf("Serve returned %v, want a FramingError", p.Errors())
	}
}

func TestRegistered(t *testing.T) {
	spec, ok := chaos.LookupProtocol("memcache")
	if !ok {
		t.Fatal("memcache is not registered")
	}
	if _, ok := spec.Options.Lookup("buffer"); !ok {
		t.Fatal("no buffer option")
	}
	if _, _, err := chaos.NewProtocol("memcache", map[string]any{"buffer": 4096}); err != nil {
		t.Fatal(err)
	}
}
