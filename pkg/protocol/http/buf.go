package httpproto

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/vaurien-go/vaurien/pkg/relay"
)

// Buffers. Each loop of a connection reads one socket through an inbuf and
// writes the other through an outbuf. Their memory is one block from a
// pool, taken when the loop reads or writes and given back when the loop
// waits for its socket with both buffers empty, so that a connection
// between requests holds no buffer (as the tcp route's relay holds none).
// A message that the inbuf holds whole goes out from there: the outbuf
// borrows it instead of copying it.

// block is the memory of one loop's two buffers.
type block [2 * bufSize]byte

var blocks = sync.Pool{New: func() any { return new(block) }}

// side is what one loop reads and writes through, and the timer of its
// delays.
type side struct {
	in    inbuf
	blk   *block // nil while given back
	out   outbuf
	timer *time.Timer
}

// init readies s to read src through f and to write dst.
func (s *side) init(src net.Conn, f filler, dst io.Writer) {
	s.in = inbuf{size: bufSize, sd: s, src: f}
	s.in.attach(src)
	s.out = outbuf{size: bufSize, sd: s, w: dst}
}

func (s *side) grab() {
	if s.blk == nil {
		s.blk = blocks.Get().(*block)
		s.in.buf = s.blk[:bufSize:bufSize]
		s.out.buf = s.blk[bufSize:]
	}
}

// release gives the block back if neither buffer holds a byte.
func (s *side) release() {
	if s.blk != nil && s.in.r == s.in.w && s.out.Buffered() == 0 {
		s.drop()
	}
}

// drop gives the block back whatever it holds: the connection is done
// with it.
func (s *side) drop() {
	if s.blk == nil {
		return
	}
	blocks.Put(s.blk)
	s.blk = nil
	s.in.buf, s.in.r, s.in.w = nil, 0, 0
	s.out.buf, s.out.n, s.out.loan = nil, 0, nil
}

// A filler reads more bytes into b.buf[b.w:]: readConn for a connection,
// a plain Read in tests.
type filler interface {
	fill(b *inbuf) (int, error)
}

// inbuf is a read buffer with the methods of a bufio.Reader that the
// framing uses. Slices it returns are valid until the next read. Over a
// connection, it reads in the poller's readiness callback when the
// connection allows it, with a raw system call as the tcp route's relay
// does, and gives its loop's buffers back while the socket has nothing to
// read. The fields that callback reads come first, on one cache line: a
// loop often wakes on another core than the one it slept on.
type inbuf struct {
	buf  []byte // nil while the side's block is given back
	r, w int
	n    int   // what the last raw read got
	rerr error // and its error

	rc    syscall.RawConn // nil: plain reads
	ready func(fd uintptr) bool
	conn  net.Conn
	size  int
	err   error // from the last fill, returned once the buffered bytes are consumed
	sd    *side // where buf comes from; nil when buf is the reader's own
	src   filler
}

func (b *inbuf) grab() {
	if b.buf == nil {
		b.sd.grab()
	}
}

// Buffered returns how many bytes can be read without reading the source.
func (b *inbuf) Buffered() int { return b.w - b.r }

// bytes returns the buffered bytes, without consuming them.
func (b *inbuf) bytes() []byte { return b.buf[b.r:b.w] }

func (b *inbuf) readErr() error {
	err := b.err
	b.err = nil
	return err
}

// fill reads once more from the source, after moving what is buffered to
// the front; the buffer is not full. What the loop wrote goes out first,
// before it waits for its peer and before the buffer moves under a loan.
func (b *inbuf) fill() {
	if b.sd != nil && b.sd.out.Buffered() > 0 {
		if err := b.sd.out.Flush(); err != nil {
			b.err = err
			return
		}
	}
	if b.r > 0 {
		copy(b.buf, b.buf[b.r:b.w])
		b.w -= b.r
		b.r = 0
	}
	for range 100 {
		n, err := b.src.fill(b)
		b.w += n
		if err != nil {
			b.err = err
			return
		}
		if n > 0 {
			return
		}
	}
	b.err = io.ErrNoProgress
}

// Peek returns the next n bytes without consuming them; with fewer, it
// returns the error that stopped it (bufio.ErrBufferFull for an n larger
// than the buffer).
func (b *inbuf) Peek(n int) ([]byte, error) {
	for b.w-b.r < n && b.w-b.r < b.size && b.err == nil {
		b.fill()
	}
	if n > b.size {
		return b.buf[b.r:b.w], bufio.ErrBufferFull
	}
	var err error
	if avail := b.w - b.r; avail < n {
		n = avail
		if err = b.readErr(); err == nil {
			err = bufio.ErrBufferFull
		}
	}
	return b.buf[b.r : b.r+n], err
}

// Discard consumes n buffered bytes.
func (b *inbuf) Discard(n int) { b.r += n }

// ReadSlice reads up to and including delim, as bufio.Reader.ReadSlice
// does: a full buffer without delim is bufio.ErrBufferFull with the whole
// buffer, and an error returns what was buffered.
func (b *inbuf) ReadSlice(delim byte) ([]byte, error) {
	seen := 0
	for {
		if i := bytes.IndexByte(b.buf[b.r+seen:b.w], delim); i >= 0 {
			line := b.buf[b.r : b.r+seen+i+1]
			b.r += seen + i + 1
			return line, nil
		}
		if b.err != nil {
			line := b.buf[b.r:b.w]
			b.r = b.w
			return line, b.readErr()
		}
		if b.w-b.r >= b.size {
			line := b.buf[b.r:b.w]
			b.r = b.w
			return line, bufio.ErrBufferFull
		}
		seen = b.w - b.r
		b.fill()
	}
}

// Read reads what is buffered, or fills the buffer once when it is empty.
func (b *inbuf) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if b.err != nil {
			return 0, b.readErr()
		}
		b.fill()
		if b.r == b.w {
			return 0, b.readErr()
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	return n, nil
}

// attach makes conn what readConn reads. Raw reads are for plain TCP
// sockets only: they would bypass the Read of a connection that wraps one.
func (b *inbuf) attach(conn net.Conn) {
	b.conn = conn
	if tc, ok := conn.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			b.rc = rc
			b.ready = b.readReady
		}
	}
}

// readConn reads what has arrived from the connection, waiting for
// something if need be; io.EOF at the end of the stream.
func (b *inbuf) readConn() (int, error) {
	if b.rc == nil {
		b.grab()
		return b.conn.Read(b.buf[b.w:])
	}
	b.n, b.rerr = 0, nil
	if err := b.rc.Read(b.ready); err != nil {
		return 0, err
	}
	if b.rerr != nil {
		return 0, b.rerr
	}
	if b.n == 0 {
		return 0, io.EOF
	}
	return b.n, nil
}

// readReady is the poller's callback: it takes the block for the read
// only, and gives it back when the socket has nothing and nothing is
// buffered.
func (b *inbuf) readReady(fd uintptr) bool {
	b.grab()
	n, err := relay.ReadReady(fd, b.buf[b.w:])
	switch err {
	case nil:
		b.n = n
	case io.EOF:
	case relay.ErrNotReady:
		if b.r == b.w {
			b.sd.release()
		}
		return false
	default:
		b.rerr = err
	}
	return true
}

// outbuf is a write buffer with the methods of a bufio.Writer that the
// framing uses; a write error sticks.
type outbuf struct {
	buf  []byte
	n    int
	loan []byte // lent bytes, written at the next flush; buf is empty meanwhile
	size int
	err  error
	sd   *side
	w    io.Writer
}

func (b *outbuf) Buffered() int { return b.n + len(b.loan) }

// lend queues p without copying it. p must be bytes of the same side's
// inbuf: that buffer is refilled (and moved) only after its loop has
// flushed this one, so p stays as it is until it goes out. Only an empty
// outbuf lends.
func (b *outbuf) lend(p []byte) { b.loan = p }

// settle copies a loan into the buffer, so that what follows is written
// after it.
func (b *outbuf) settle() {
	p := b.loan
	b.loan = nil
	b.Write(p)
}

func (b *outbuf) grab() {
	if b.buf == nil {
		b.sd.grab()
	}
}

func (b *outbuf) Flush() error {
	if b.err != nil {
		return b.err
	}
	if b.loan != nil {
		p := b.loan
		b.loan = nil
		n, err := b.w.Write(p)
		if n < len(p) && err == nil {
			err = io.ErrShortWrite
		}
		b.err = err
		return err
	}
	if b.n == 0 {
		return nil
	}
	b.n, b.err = relay.WriteBuffered(b.w, b.buf[:b.n])
	return b.err
}

func (b *outbuf) Write(p []byte) (int, error) {
	if b.loan != nil {
		b.settle()
	}
	nn := 0
	for len(p) > b.size-b.n && b.err == nil {
		var n int
		if b.n == 0 {
			// Larger than the buffer and nothing buffered: straight out.
			n, b.err = b.w.Write(p)
		} else {
			n = copy(b.buf[b.n:], p)
			b.n += n
			b.Flush()
		}
		nn += n
		p = p[n:]
	}
	if b.err != nil {
		return nn, b.err
	}
	if len(p) > 0 {
		b.grab()
		n := copy(b.buf[b.n:], p)
		b.n += n
		nn += n
	}
	return nn, nil
}

func (b *outbuf) WriteString(s string) (int, error) {
	if b.loan != nil {
		b.settle()
	}
	nn := 0
	for len(s) > 0 && b.err == nil {
		if b.n == b.size {
			b.Flush()
			continue
		}
		b.grab()
		n := copy(b.buf[b.n:], s)
		b.n += n
		nn += n
		s = s[n:]
	}
	return nn, b.err
}
