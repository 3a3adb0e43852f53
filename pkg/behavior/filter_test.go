package behavior_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// relayTCP sends in through f between real sockets, as the relay does for
// a tcp route: f reads a *net.TCPConn and writes another. It returns what
// the receiving peer got and f's result.
func relayTCP(t *testing.T, f chaos.Filter, in []byte) ([]byte, error) {
	t.Helper()
	sender, src := tcpPair(t)
	dst, receiver := tcpPair(t)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		sender.Write(in) // fails once the filter has closed on purpose
		sender.CloseWrite()
	})
	result := make(chan error, 1)
	wg.Go(func() {
		result <- f.Relay(t.Context(), dst, src)
		// What the relay does after a filter: close what it wrote to, and
		// the source it no longer reads.
		dst.Close()
		src.Close()
	})
	out, err := io.ReadAll(receiver)
	if err != nil {
		t.Fatalf("read what the filter relayed: %v", err)
	}
	return out, <-result
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func filterOf(t testing.TB, name string, opts map[string]any) chaos.Filter {
	t.Helper()
	f := build(t, name, opts).Effect(unit(1)).ToClient
	if f == nil {
		t.Fatalf("%s %v has no to_client filter", name, opts)
	}
	return f
}

func TestErrorReplacesAnswerTCP(t *testing.T) {
	in := bytes.Repeat([]byte("HTTP/1.1 200 OK\r\n"), 300)
	out, err := relayTCP(t, filterOf(t, "error", nil), in)
	if !errors.Is(err, chaos.ErrClose) {
		t.Errorf("Relay = %v, want ErrClose", err)
	}
	if len(out) != 1000 {
		t.Fatalf("client got %d bytes, want 1000 random bytes", len(out))
	}
	if bytes.Contains(out, []byte("HTTP")) {
		t.Errorf("the backend's answer leaked through: %q", out)
	}
}

func TestErrorWithoutAnswerTCP(t *testing.T) {
	for _, inject := range []bool{false, true} {
		out, err := relayTCP(t, filterOf(t, "error", map[string]any{"inject": inject}), nil)
		if err != nil || len(out) != 0 {
			t.Errorf("inject=%v: a silent backend gave %d bytes and %v, want nothing and nil", inject, len(out), err)
		}
	}
}

// checkInjected checks that out is in with 100 bytes inserted at one place.
func checkInjected(t *testing.T, in, out []byte) {
	t.Helper()
	if len(out) != len(in)+100 {
		t.Fatalf("client got %d bytes, want %d + 100", len(out), len(in))
	}
	prefix := 0
	for prefix < len(in) && out[prefix] == in[prefix] {
		prefix++
	}
	suffix := 0
	for suffix < len(in) && out[len(out)-1-suffix] == in[len(in)-1-suffix] {
		suffix++
	}
	if prefix+suffix < len(in) {
		t.Fatalf("the answer is changed beyond one insertion: %d bytes match at the start, %d at the end, of %d", prefix, suffix, len(in))
	}
}

func TestErrorInjectTCP(t *testing.T) {
	in := randomBytes(300<<10, 1)
	out, err := relayTCP(t, filterOf(t, "error", map[string]any{"inject": true}), in)
	if err != nil {
		t.Errorf("Relay = %v, want nil", err)
	}
	checkInjected(t, in, out)
}

func TestErrorInjectMiddleOfFirstChunk(t *testing.T) {
	in := randomBytes(4000, 2)
	var out bytes.Buffer
	f := filterOf(t, "error", map[string]any{"inject": true})
	if err := f.Relay(t.Context(), &out, bytes.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	got := out.Bytes()
	if !bytes.Equal(got[:2000], in[:2000]) || !bytes.Equal(got[2100:], in[2000:]) {
		t.Errorf("the 100 random bytes are not at the middle of the 4000-byte chunk")
	}
}

func TestLimitDataTCP(t *testing.T) {
	in := randomBytes(200<<10, 3)
	tests := []struct {
		limit   int
		in      []byte
		want    []byte
		wantErr error
	}{
		{1000, in, in[:1000], chaos.ErrClose},
		{len(in), in, in, chaos.ErrClose},
		{150 << 10, in, in[:150<<10], chaos.ErrClose},
		{1 << 20, in, in, nil},
		{0, in, nil, chaos.ErrClose},
	}
	for _, tt := range tests {
		out, err := relayTCP(t, filterOf(t, "limit_data", map[string]any{"bytes": tt.limit}), tt.in)
		if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
			t.Errorf("bytes=%d: Relay = %v, want %v", tt.limit, err, tt.wantErr)
		}
		if !bytes.Equal(out, tt.want) {
			t.Errorf("bytes=%d: client got %d bytes, want exactly %d", tt.limit, len(out), len(tt.want))
		}
	}
}

// Bytes past the limit stay in the source: the link died before them.
func TestLimitDataReadsNoFurther(t *testing.T) {
	src := bytes.NewReader(make([]byte, 5000))
	var dst bytes.Buffer
	err := filterOf(t, "limit_data", map[string]any{"bytes": 1234}).Relay(t.Context(), &dst, src)
	if !errors.Is(err, chaos.ErrClose) || dst.Len() != 1234 || src.Len() != 5000-1234 {
		t.Errorf("Relay = %v after writing %d and leaving %d unread; want ErrClose, 1234, %d", err, dst.Len(), src.Len(), 5000-1234)
	}
}

func TestCorruptTCP(t *testing.T) {
	const n = 1 << 20
	in := randomBytes(n, 4)
	tests := []struct {
		p        float64
		min, max float64
	}{
		{0.01, 0.8 * 0.01 * n, 1.2 * 0.01 * n},
		{0.5, 0.45 * n, 0.55 * n},
		{1, n, n},
		{1e-9, 0, 10},
	}
	for _, tt := range tests {
		out, err := relayTCP(t, filterOf(t, "corrupt", map[string]any{"probability": tt.p}), in)
		if err != nil {
			t.Errorf("p=%v: Relay = %v", tt.p, err)
		}
		if len(out) != len(in) {
			t.Fatalf("p=%v: %d bytes out of %d in; corrupt must keep the length", tt.p, len(out), len(in))
		}
		diff := 0
		for i := range in {
			if in[i] != out[i] {
				diff++
			}
		}
		if float64(diff) < tt.min || float64(diff) > tt.max {
			t.Errorf("p=%v: %d of %d bytes changed, want %.0f to %.0f", tt.p, diff, len(in), tt.min, tt.max)
		}
	}
}

// A seeded run must repeat its corruption exactly; another draw differs.
func TestCorruptFollowsSeed(t *testing.T) {
	b := build(t, "corrupt", map[string]any{"probability": 0.05})
	in := randomBytes(64<<10, 5)
	run := func(seq uint64) []byte {
		var out bytes.Buffer
		if err := b.Effect(unit(seq)).ToClient.Relay(t.Context(), &out, bytes.NewReader(in)); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	if !bytes.Equal(run(9), run(9)) {
		t.Error("the same draw corrupted differently")
	}
	if bytes.Equal(run(9), run(10)) {
		t.Error("two draws corrupted identically")
	}
}

// piece is one read by the receiving peer.
type piece struct {
	size int
	at   time.Duration
}

// relayPipe runs f between two net.Pipes inside a synctest bubble, where
// time is fake and exact. The sender writes in with writes of chunk bytes;
// it returns every read the receiver made and f's result.
func relayPipe(ctx context.Context, f chaos.Filter, in []byte, chunk int) ([]piece, []byte, error) {
	sender, src := net.Pipe()
	dst, receiver := net.Pipe()
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() {
		for b := in; len(b) > 0; {
			n, err := sender.Write(b[:min(chunk, len(b))])
			if err != nil {
				return
			}
			b = b[n:]
		}
		sender.Close()
	})
	result := make(chan error, 1)
	wg.Go(func() {
		result <- f.Relay(ctx, dst, src)
		dst.Close()
		src.Close()
	})
	var pieces []piece
	var out []byte
	buf := make([]byte, 1<<20)
	for {
		n, err := receiver.Read(buf)
		if n > 0 {
			pieces = append(pieces, piece{n, time.Since(start)})
			out = append(out, buf[:n]...)
		}
		if err != nil {
			break
		}
	}
	err := <-result
	wg.Wait()
	return pieces, out, err
}

func TestBandwidthRate(t *testing.T) {
	tests := []struct {
		rate, size, chunk   int
		maxPiece, maxPieces int
	}{
		{1 << 20, 5 << 20, 64 << 10, 32 << 10, 160}, // 5 MiB at 1 MiB/s: 5 s
		{100, 1000, 1000, 10, 100},                  // 1000 B at 100 B/s: 10 s, 10 bytes a tenth
		{3000, 3000, 7, 300, 3000/7 + 1},            // small writes: 1 s
		{1 << 40, 1 << 20, 64 << 10, 32 << 10, 32},  // a huge rate still moves full chunks
	}
	for _, tt := range tests {
		synctest.Test(t, func(t *testing.T) {
			in := randomBytes(tt.size, 6)
			f := filterOf(t, "bandwidth", map[string]any{"rate": tt.rate})
			pieces, out, err := relayPipe(t.Context(), f, in, tt.chunk)
			if err != nil {
				t.Fatalf("Relay = %v", err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("%d bytes out of %d in, or changed", len(out), len(in))
			}
			want := time.Duration(float64(tt.size) / float64(tt.rate) * float64(time.Second))
			took := pieces[len(pieces)-1].at
			// Below one burst (100 ms) the credit a link may hold decides.
			if took > want*12/10+100*time.Millisecond || (want > time.Second && took < want*8/10) {
				t.Errorf("rate %d: %d bytes took %v, want %v ± 20%%", tt.rate, tt.size, took, want)
			}
			if len(pieces) > tt.maxPieces {
				t.Errorf("rate %d: %d pieces, want at most %d", tt.rate, len(pieces), tt.maxPieces)
			}
			for _, p := range pieces {
				if p.size > tt.maxPiece {
					t.Fatalf("rate %d: a burst of %d bytes, want at most %d", tt.rate, p.size, tt.maxPiece)
				}
			}
		})
	}
}

// At rate 0 no byte moves and the filter reads nothing, until the
// connection ends.
func TestBandwidthZeroHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		f := filterOf(t, "bandwidth", map[string]any{"rate": 0})
		sender, src := net.Pipe()
		dst, receiver := net.Pipe()
		defer receiver.Close()
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			sender.Write([]byte("hello"))
		}()
		result := make(chan error, 1)
		go func() { result <- f.Relay(ctx, dst, src) }()
		time.Sleep(time.Hour)
		synctest.Wait()
		select {
		case <-sent:
			t.Error("the filter read the sender's bytes")
		case err := <-result:
			t.Errorf("Relay ended while held: %v", err)
		default:
		}
		cancel()
		if err := <-result; !errors.Is(err, context.Canceled) {
			t.Errorf("Relay = %v, want context.Canceled", err)
		}
		src.Close()
		<-sent
		dst.Close()
	})
}

func TestSlicerPieces(t *testing.T) {
	tests := []struct {
		avg, vary int
		delay     time.Duration
	}{
		{64, 0, 0},
		{16, 8, 5 * time.Millisecond},
		{1, 0, time.Millisecond},
		{100, 99, 0},
	}
	const size, chunk = 64 << 10, 4 << 10
	for _, tt := range tests {
		synctest.Test(t, func(t *testing.T) {
			in := randomBytes(size, 7)
			f := filterOf(t, "slicer", map[string]any{
				"average_size": tt.avg, "size_variation": tt.vary, "delay": tt.delay.String(),
			})
			pieces, out, err := relayPipe(t.Context(), f, in, chunk)
			if err != nil {
				t.Fatalf("Relay = %v", err)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("%d bytes out of %d in, or changed", len(out), len(in))
			}
			short := 0
			for _, p := range pieces {
				if p.size > tt.avg+tt.vary {
					t.Fatalf("a piece of %d bytes, want at most %d", p.size, tt.avg+tt.vary)
				}
				if p.size < tt.avg-tt.vary {
					short++ // the tail of a chunk
				}
			}
			if short > size/chunk {
				t.Errorf("%d pieces below %d bytes; only the %d chunk tails may be", short, tt.avg-tt.vary, size/chunk)
			}
			avg := float64(size) / float64(len(pieces))
			if avg < 0.85*float64(tt.avg) || avg > 1.05*float64(tt.avg) {
				t.Errorf("pieces average %.1f bytes, want about %d", avg, tt.avg)
			}
			// In fake time the only wait is the delay between pieces of a chunk.
			want := time.Duration(len(pieces)-size/chunk) * tt.delay
			if took := pieces[len(pieces)-1].at; took != want {
				t.Errorf("took %v, want %v (%d pieces, %d chunks)", took, want, len(pieces), size/chunk)
			}
		})
	}
}

func TestSlicerStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		f := filterOf(t, "slicer", map[string]any{"average_size": 10, "delay": "1h"})
		time.AfterFunc(time.Minute, cancel)
		start := time.Now()
		in := payload(100, 7)
		pieces, out, err := relayPipe(ctx, f, in, 100)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Relay = %v, want context.Canceled", err)
		}
		// The cancel (a change of the route's mix, or the end) sends the
		// rest of the chunk whole: nothing the slicer read is lost.
		if len(pieces) != 2 || pieces[0].size != 10 || pieces[1].at != time.Minute || !bytes.Equal(out, in) {
			t.Errorf("%d pieces %v, %d bytes; want 10 bytes, then the other 90 at the cancel (1m)", len(pieces), pieces, len(out))
		}
		if took := time.Since(start); took != time.Minute {
			t.Errorf("the slicer ended after %v, want at the cancel (1m)", took)
		}
	})
}

// chunkReader hands out its data in reads of at most 4 KiB, like a socket.
type chunkReader struct{ data []byte }

func (r *chunkReader) Read(b []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), 4<<10)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// Filters reuse their one buffer: relaying 256 chunks must cost no
// allocation per chunk.
func TestFiltersDoNotAllocatePerChunk(t *testing.T) {
	in := make([]byte, 1<<20)
	tests := []struct {
		name string
		opts map[string]any
	}{
		{"bandwidth", map[string]any{"rate": 1 << 40}},
		{"slicer", map[string]any{"average_size": 1024}},
		{"corrupt", map[string]any{"probability": 0.001}},
		{"limit_data", map[string]any{"bytes": 1 << 30}},
		{"error", map[string]any{"inject": true}},
	}
	for _, tt := range tests {
		f := filterOf(t, tt.name, tt.opts)
		allocs := testing.AllocsPerRun(20, func() {
			if err := f.Relay(t.Context(), io.Discard, &chunkReader{data: in}); err != nil {
				t.Fatal(err)
			}
		})
		// The chunkReader itself is one allocation.
		if allocs > 3 {
			t.Errorf("%s: %v allocations to relay 256 chunks", tt.name, allocs)
		}
	}
}
