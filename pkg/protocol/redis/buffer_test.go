package redis

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

// bufSize is the size of a connection's buffers: a pipeline's batch fits
// many times; larger values stream.
const bufSize = kit.BufSize

// newFixedReader reads src through a buffer of size bytes, never released.
func newFixedReader(src io.Reader, size int, maxBulk int64) *reader {
	return &reader{Reader: kit.NewReader(src, size), maxBulk: maxBulk}
}

// An inline request longer than the pooled buffer grows it, up to redis'
// own 64 KiB limit; a request past that is still redis' to refuse.
func TestInlineGrows(t *testing.T) {
	for _, n := range []int{bufSize - 8, bufSize + 100, 40 << 10, maxInline - 16} {
		arg := strings.Repeat("v", n)
		r := &reader{Reader: kit.NewReader(strings.NewReader("ECHO "+arg+"\r\nPING\r\n"), bufSize), grow: maxInline, maxBulk: DefaultMaxBulkLen}
		var sc scan
		var out bytes.Buffer
		for _, want := range []string{"ECHO", "PING"} {
			complete, err := r.scanRequest(&sc)
			if err != nil || !complete {
				t.Fatalf("%d bytes: complete %v, error %v", n, complete, err)
			}
			if got := request(sc.arg(r.Bytes(), 0)).Command; got != want {
				t.Fatalf("%d bytes: command %q, want %q", n, got, want)
			}
			if err := r.copyRequest(&out, &sc); err != nil {
				t.Fatal(err)
			}
		}
		if out.String() != "ECHO "+arg+"\r\nPING\r\n" {
			t.Fatalf("%d bytes: copied %d bytes", n, out.Len())
		}
	}
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	rc := dialRaw(t, p.Addr)
	arg := strings.Repeat("x", 40<<10)
	rc.write("ECHO " + arg + "\r\nPING\r\n")
	rc.expect(fmt.Sprintf("$%d\r\n%s\r\n", len(arg), arg))
	rc.expect("+PONG\r\n")
}

// The response delays of pipelined requests overlap: each reply is due at
// its request's arrival plus the delay, not at the previous reply plus the
// delay; replies keep their order. The same holds for delays before the
// request is forwarded.
func TestPipelinedDelaysOverlap(t *testing.T) {
	srv := testenv.Redis(t)
	const d = 300 * time.Millisecond
	const n = 8
	for name, e := range map[string]chaos.Effect{
		"before": {Delay: d},
		"after":  {ResponseDelay: d},
	} {
		t.Run(name, func(t *testing.T) {
			p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: e}, "ECHO"))})
			rc := dialRaw(t, p.Addr)
			var batch strings.Builder
			for i := range n {
				batch.WriteString(command("ECHO", fmt.Sprint(i)))
			}
			batch.WriteString(command("PING"))
			start := time.Now()
			rc.write(batch.String())
			for i := range n {
				rc.expect(fmt.Sprintf("$1\r\n%d\r\n", i))
				if i == 0 {
					if took := time.Since(start); took < d {
						t.Fatalf("the first delayed reply came after %v, want at least %v", took, d)
					}
				}
			}
			rc.expect("+PONG\r\n")
			// One after another they would take n*d; overlapping, d and
			// the scheduling of a loaded machine.
			if took := time.Since(start); took >= n*d/2 {
				t.Fatalf("%d delayed replies took %v: the delays did not overlap", n, took)
			}
		})
	}
}

// A connection holds no buffer while it waits, before and after use: the
// heap grows by little more than each connection's bookkeeping.
func TestIdleConnectionsHoldNoBuffer(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	const n = 100
	heap := func() int64 {
		runtime.GC()
		runtime.GC() // a second cycle empties the pools' victim caches
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	value := strings.Repeat("v", 64<<10)
	echo := []byte(command("ECHO", value))
	want := []byte(fmt.Sprintf("$%d\r\n%s\r\n", len(value), value))
	got := make([]byte, len(want))
	base := heap()
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	// Every connection is served, and waits for its client, only once its
	// first request went through: a PING on each, then the last one again.
	for _, c := range conns {
		io.WriteString(c, command("PING"))
		if _, err := io.ReadFull(c, got[:7]); err != nil || string(got[:7]) != "+PONG\r\n" {
			t.Fatalf("PING: %q, %v", got[:7], err)
		}
	}
	perConn := func() int64 { return (heap() - base) / n }
	before := perConn()
	for _, c := range conns {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(echo); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ECHO of 64 KiB: %v", err)
		}
	}
	after := perConn()
	t.Logf("heap per connection: %d bytes idle, %d after 64 KiB each way", before, after)
	// One pooled buffer is 16 KiB; a connection used to hold 128 KiB.
	const limit = 8 << 10
	if before > limit || after > limit {
		t.Fatalf("an idle connection holds %d bytes of heap before use and %d after, want at most %d", before, after, limit)
	}
}

func TestLastName(t *testing.T) {
	var l lastName
	for _, in := range []string{"set", "SET", "set", "get", "", "get", strings.Repeat("x", 30), "get", "NotACommand", "notacommand"} {
		if got, want := l.of([]byte(in)).Command, request([]byte(in)).Command; got != want {
			t.Fatalf("of(%q) = %q, want %q", in, got, want)
		}
	}
}
