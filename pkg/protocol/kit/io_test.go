package kit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// The Reader frames like bufio.Reader: slices up to a delimiter, consumed
// or not, ErrBufferFull past its size, and the end of the stream.
func TestReaderFrames(t *testing.T) {
	r := NewReader(strings.NewReader("one\ntwo\n"+strings.Repeat("x", 20)+"\nend"), 16)
	if b, err := r.PeekSlice('\n'); err != nil || string(b) != "one\n" {
		t.Fatalf("PeekSlice = %q, %v", b, err)
	}
	if b, err := r.ReadSlice('\n'); err != nil || string(b) != "one\n" {
		t.Fatalf("ReadSlice = %q, %v", b, err)
	}
	if b, err := r.Peek(3); err != nil || string(b) != "two" {
		t.Fatalf("Peek = %q, %v", b, err)
	}
	if n, err := r.Discard(4); n != 4 || err != nil {
		t.Fatalf("Discard = %d, %v", n, err)
	}
	b, err := r.ReadSlice('\n')
	if err != bufio.ErrBufferFull || len(b) != 16 {
		t.Fatalf("a line longer than the buffer: %q, %v; want the full buffer and ErrBufferFull", b, err)
	}
	if b, err := r.ReadSlice('\n'); err != nil || string(b) != "xxxx\n" {
		t.Fatalf("the rest of the line: %q, %v", b, err)
	}
	if _, err := r.Peek(17); err != bufio.ErrBufferFull {
		t.Fatalf("Peek past the size: %v, want ErrBufferFull", err)
	}
	if b, err := r.ReadSlice('\n'); err != io.EOF || string(b) != "end" {
		t.Fatalf("at the end: %q, %v; want the rest and EOF", b, err)
	}
	if !r.Grow(64) || r.Size() != 64 || r.Grow(32) {
		t.Fatalf("Grow: size %d", r.Size())
	}
}

// counter is the Events a Writer reports to.
type counter struct{ n atomic.Int64 }

func (c *counter) Relayed(_ chaos.Direction, n int64)      { c.n.Add(n) }
func (c *counter) Exchanged(*chaos.Request, time.Duration) {}
func (c *counter) Refused(string)                          {}

// CopyN moves a large body socket to socket, every byte counted, and a
// small one through the buffer.
func TestCopyNSplices(t *testing.T) {
	for _, size := range []int64{100, 3 << 20} {
		src, feed := tcpPair(t)
		dst, drain := tcpPair(t)
		body := make([]byte, size+5)
		rng := rand.New(rand.NewPCG(1, uint64(size)))
		for i := range body {
			body[i] = byte(rng.Uint32())
		}
		go func() {
			feed.Write(body)
			feed.Close()
		}()
		got := make(chan [32]byte, 1)
		go func() {
			h := sha256.New()
			io.Copy(h, drain)
			var sum [32]byte
			copy(sum[:], h.Sum(nil))
			got <- sum
		}()
		var ev counter
		r := new(Reader).init(src, BufSize, nil, nil)
		w := new(Writer).init(dst, BufSize, &ev, chaos.ToClient)
		if n, err := r.CopyN(w, size); n != size || err != nil {
			t.Fatalf("CopyN(%d) = %d, %v", size, n, err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		dst.Close()
		if sum := <-got; sum != sha256.Sum256(body[:size]) {
			t.Fatalf("%d bytes arrived changed", size)
		}
		if ev.n.Load() != size {
			t.Fatalf("%d bytes reported, want %d", ev.n.Load(), size)
		}
		if rest, err := io.ReadAll(r); err != nil || len(rest) != 5 {
			t.Fatalf("after CopyN: %d bytes, %v; want the 5 that followed", len(rest), err)
		}
	}
}

// Read makes the Reader an io.Reader for the test above.
func (r *Reader) Read(p []byte) (int, error) {
	if r.Buffered() == 0 {
		if err := r.More(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.Bytes())
	r.r += n
	return n, nil
}

func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return b.(*net.TCPConn), a.(*net.TCPConn)
}

// failAfter accepts n bytes, then fails.
type failAfter struct {
	n   int
	out bytes.Buffer
}

var errBroken = errors.New("broken")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		f.out.Write(p[:f.n])
		n := f.n
		f.n = 0
		return n, errBroken
	}
	f.n -= len(p)
	return f.out.Write(p)
}

// The pooled Writer keeps the order of small and large writes, and a write
// error sticks, as with bufio.Writer.
func TestWriter(t *testing.T) {
	var out bytes.Buffer
	w := NewWriter(&out, BufSize)
	var want bytes.Buffer
	for i, n := range []int{3, BufSize, 10, BufSize - 5, 2 * BufSize, 1} {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		w.Write(p)
		want.Write(p)
		w.Write([]byte(".--"))
		want.WriteString(".--")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want.Bytes()) {
		t.Fatalf("wrote %d bytes, want %d in order", out.Len(), want.Len())
	}
	w.release()
	if w.buf != nil {
		t.Fatal("a flushed writer kept its buffer")
	}

	f := &failAfter{n: 5}
	w = NewWriter(f, BufSize)
	w.Write([]byte("0123456789"))
	if err := w.Flush(); err != errBroken {
		t.Fatalf("Flush = %v, want %v", err, errBroken)
	}
	if _, err := w.Write([]byte("x")); err != errBroken {
		t.Fatalf("a write after the error returned %v", err)
	}
	if f.out.String() != "01234" {
		t.Fatalf("wrote %q", f.out.String())
	}
}
