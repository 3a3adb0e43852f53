package redis

import (
	"bufio"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vaurien-go/vaurien/pkg/relay"
)

// The buffers of a connection are held only while there is something to
// read: a side that finds its peer silent hands its read buffer and the
// write buffer of the opposite direction (flushed by then) back to the
// pools before it parks, so an idle connection, before and after use,
// holds no buffer. The wait happens in the read itself, inside the
// poller's readiness callback, so this costs no system call of its own.

const (
	// bufSize sizes every pooled buffer: a pipeline's batch fits many
	// times, and larger values are streamed through.
	bufSize = 16 << 10
	// maxInline is redis' longest inline request (PROTO_INLINE_MAX_SIZE):
	// the client's buffer grows to it for an inline line that does not fit.
	maxInline = 64 << 10
)

var (
	smallBufs  = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}
	inlineBufs = sync.Pool{New: func() any { b := make([]byte, maxInline); return &b }}
)

// epoch anchors now: a reading of the monotonic clock alone, cheaper than
// time.Now, and 8 bytes in a record where a time.Time takes 24.
var epoch = time.Now()

func now() time.Duration { return time.Since(epoch) }

// reader is a buffered side of the connection that frames RESP values.
// Before a read that may block, it flushes before, the writer of the
// opposite direction, so that nothing waits in a buffer while we wait for
// the peer: a pipelining client never deadlocks on its own requests.
type reader struct {
	buf     []byte     // nil while released
	held    *[]byte    // what buf came from, to put back; nil for a fixed buffer
	pool    *sync.Pool // where held goes back
	r, w    int        // buf[r:w] is buffered
	grow    int        // the size an inline line may grow the buffer to; 0 for no growth
	before  *writer
	wait    func() // called before a read that may block
	park    func() // called when a read finds nothing and the goroutine parks
	maxBulk int64

	src     io.Reader       // plain reads, when there is no poller (tests, other conns)
	rc      syscall.RawConn // reads in the poller's readiness callback
	ready   func(fd uintptr) bool
	pending error // an error that came with the bytes last read, due next

	// at is when bytes were last read: the arrival of every request (or
	// reply) buffered then. last, when the idle timeout is on, is shared by
	// both sides.
	at   time.Duration
	last *atomic.Int64

	rerr error // the readiness callback's result
}

// newConnReader reads a connection through pooled buffers, released while
// the connection is silent when it has a poller.
func newConnReader(src io.Reader, before *writer, maxBulk int64, grow int, last *atomic.Int64) *reader {
	r := &reader{src: src, before: before, maxBulk: maxBulk, grow: grow, last: last}
	if sc, ok := src.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			r.rc = rc
			r.ready = r.readable
		}
	}
	return r
}

// Size is the buffer's size: a value or line that does not fit is
// streamed, or too long.
func (r *reader) Size() int {
	if r.buf == nil {
		return bufSize // what acquire takes
	}
	return len(r.buf)
}

// Buffered returns how many bytes can be read without reading.
func (r *reader) Buffered() int { return r.w - r.r }

// Peek returns the next n bytes without consuming them, reading when fewer
// are buffered. With fewer it returns those and the error: ErrBufferFull
// when n exceeds the buffer.
func (r *reader) Peek(n int) ([]byte, error) {
	for r.w-r.r < n {
		if r.buf == nil {
			r.acquire()
		}
		if n > len(r.buf) {
			return r.buf[r.r:r.w], bufio.ErrBufferFull
		}
		if err := r.read(); err != nil {
			return r.buf[r.r:r.w], err
		}
	}
	return r.buf[r.r : r.r+n], nil
}

// Discard drops n buffered bytes.
func (r *reader) Discard(n int) {
	r.r += n
	if r.r == r.w {
		r.r, r.w = 0, 0
	}
}

// fill returns the next n bytes without consuming them, reading when fewer
// are buffered.
func (r *reader) fill(n int) ([]byte, error) { return r.Peek(n) }

// more reads at least one byte past what is buffered.
func (r *reader) more() error {
	_, err := r.Peek(r.Buffered() + 1)
	return err
}

// bytes returns what is buffered.
func (r *reader) bytes() []byte {
	if r.buf == nil {
		return nil
	}
	return r.buf[r.r:r.w]
}

// growInline moves the buffered bytes to a buffer of r.grow bytes, for an
// inline request longer than the pooled buffer. It reports false when the
// buffer cannot grow.
func (r *reader) growInline() bool {
	if r.grow <= len(r.buf) {
		return false
	}
	held := inlineBufs.Get().(*[]byte)
	n := copy(*held, r.buf[r.r:r.w])
	r.put()
	r.held, r.pool, r.buf = held, &inlineBufs, *held
	r.r, r.w = 0, n
	return true
}

func (r *reader) acquire() {
	r.held = smallBufs.Get().(*[]byte)
	r.pool, r.buf = &smallBufs, *r.held
	r.r, r.w = 0, 0
}

// put hands the buffer back to its pool; buffered bytes are lost.
func (r *reader) put() {
	if r.held != nil {
		r.pool.Put(r.held)
	}
	r.held, r.pool, r.buf = nil, nil, nil
	r.r, r.w = 0, 0
}

// release hands the buffer back when nothing is buffered in it.
func (r *reader) release() {
	if r.held != nil && r.r == r.w {
		r.put()
	}
}

// read reads once into the room after the buffered bytes.
func (r *reader) read() error {
	if err := r.pending; err != nil {
		r.pending = nil
		return err
	}
	if r.before != nil && r.before.Buffered() > 0 {
		if err := r.before.Flush(); err != nil {
			return err
		}
	}
	if r.wait != nil {
		r.wait()
	}
	if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	if r.rc != nil {
		r.rerr = nil
		if err := r.rc.Read(r.ready); err != nil {
			return err
		}
		return r.rerr
	}
	for range 100 {
		n, err := r.src.Read(r.buf[r.w:])
		if n > 0 {
			r.w += n
			r.pending = err
			r.arrived()
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

func (r *reader) arrived() {
	r.at = now()
	if r.last != nil {
		r.last.Store(int64(r.at))
	}
}

// readable is the poller's callback: it reads what has come, or, when
// nothing has, releases both buffers if they are empty and lets the poller
// park the goroutine.
func (r *reader) readable(fd uintptr) bool {
	if r.buf == nil {
		r.acquire()
	}
	n, err := relay.ReadReady(fd, r.buf[r.w:])
	switch err {
	case nil:
		r.w += n
		r.arrived()
	case relay.ErrNotReady:
		if r.before != nil {
			r.before.release()
		}
		r.release()
		if r.park != nil {
			r.park()
		}
		return false
	default:
		r.rerr = err
	}
	return true
}

// discardAll consumes everything until the stream ends.
func (r *reader) discardAll() {
	for {
		r.Discard(r.Buffered())
		if err := r.more(); err != nil {
			return
		}
	}
}

// writer is a buffered writer whose buffer is taken from the pool on the
// first write and handed back by release once flushed. A write error
// sticks, as bufio.Writer's does.
type writer struct {
	w    io.Writer
	held *[]byte
	buf  []byte // nil while released
	n    int
	err  error
}

func newWriter(w io.Writer) *writer { return &writer{w: w} }

// Buffered returns how many bytes wait to be flushed.
func (b *writer) Buffered() int { return b.n }

// release hands the buffer back when nothing waits in it.
func (b *writer) release() {
	if b.n == 0 {
		b.put()
	}
}

// put hands the buffer back; unflushed bytes are lost.
func (b *writer) put() {
	if b.held != nil {
		smallBufs.Put(b.held)
	}
	b.held, b.buf, b.n = nil, nil, 0
}

func (b *writer) room() []byte {
	if b.buf == nil {
		b.held = smallBufs.Get().(*[]byte)
		b.buf = *b.held
	}
	return b.buf[b.n:]
}

// Flush writes the buffered bytes.
func (b *writer) Flush() error {
	if b.err != nil {
		return b.err
	}
	if b.n == 0 {
		return nil
	}
	b.n, b.err = relay.WriteBuffered(b.w, b.buf[:b.n])
	return b.err
}

// Write buffers p; what does not fit is flushed, and a large p meeting an
// empty buffer is written through.
func (b *writer) Write(p []byte) (int, error) {
	nn := 0
	for b.err == nil && len(p) > 0 {
		if b.n == 0 && len(p) >= bufSize {
			n, err := b.w.Write(p)
			if n < len(p) && err == nil {
				err = io.ErrShortWrite
			}
			b.err = err
			return nn + n, err
		}
		n := copy(b.room(), p)
		b.n += n
		nn += n
		p = p[n:]
		if len(p) == 0 {
			return nn, nil
		}
		b.Flush()
	}
	return nn, b.err
}

// WriteString buffers s.
func (b *writer) WriteString(s string) (int, error) {
	nn := 0
	for b.err == nil {
		n := copy(b.room(), s)
		b.n += n
		nn += n
		s = s[n:]
		if len(s) == 0 {
			return nn, nil
		}
		b.Flush()
	}
	return nn, b.err
}

// WriteByte buffers c.
func (b *writer) WriteByte(c byte) error {
	if b.err != nil {
		return b.err
	}
	if len(b.room()) == 0 && b.Flush() != nil {
		return b.err
	}
	b.room()[0] = c
	b.n++
	return nil
}
