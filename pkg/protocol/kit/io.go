package kit

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

// BufSize is the size of each side's read and write buffers; a request
// head that does not fit is the protocol's to stream or refuse.
const BufSize = 16 << 10

// bulkMin is the size from which the unread part of a body goes socket to
// socket (spliced by the kernel) instead of through the proxy's buffers.
const bulkMin = 64 << 10

var pools sync.Map // buffer size → *sync.Pool

func poolOf(size int) *sync.Pool {
	p, ok := pools.Load(size)
	if !ok {
		p, _ = pools.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, size); return &b }})
	}
	return p.(*sync.Pool)
}

// epoch anchors now: a reading of the monotonic clock fits in 8 bytes where
// a time.Time takes 24.
var epoch = time.Now()

func now() time.Duration { return time.Since(epoch) }

// Reader is one side's buffered input, with bufio.Reader's methods. It
// holds a pooled buffer only while it has bytes or reads: before it waits
// it hands the buffer back, and flushes the other direction's Writer so
// that nothing waits in a buffer while the proxy waits; the read that ends
// the wait is made in the poller's readiness callback, so that a message
// costs the one read(2) a blocking read would. A connection without a
// descriptor (TLS) is read with plain blocking reads.
type Reader struct {
	src    io.Reader
	rc     syscall.RawConn // nil without a descriptor
	base   *sync.Pool      // where buffers come from
	pool   *sync.Pool      // where buf goes back: base, or a larger size's after Grow
	buf    *[]byte         // nil while the Reader is empty, with r and w at 0
	r, w   int
	before *Writer       // the other direction's, flushed and released before a wait
	last   *atomic.Int64 // now() of the last byte read, on the kit's Readers only
	at     time.Duration // now() of the last read: the arrival of what it brought
	// parked says that the Reader waits for its peer; onPark runs as it
	// starts to.
	parked *atomic.Bool
	onPark func()
	// The readiness callback and its state, bound once so that a wait
	// allocates nothing.
	ready   func(fd uintptr) bool
	flushed bool // before was flushed in this wait
	err     error
}

// NewReader reads src through pooled buffers of size bytes, for a
// protocol's tests and fuzz targets.
func NewReader(src io.Reader, size int) *Reader {
	return new(Reader).init(src, size, nil, nil)
}

func (r *Reader) init(src io.Reader, size int, before *Writer, last *atomic.Int64) *Reader {
	p := poolOf(size)
	*r = Reader{src: src, rc: relay.RawConn(src), base: p, pool: p, before: before, last: last}
	r.ready = r.readFD
	return r
}

// Buffered is the number of bytes that can be read without waiting.
func (r *Reader) Buffered() int { return r.w - r.r }

// Size is how many bytes the buffer holds: a head that does not fit must
// be streamed, or is too long.
func (r *Reader) Size() int {
	r.take()
	return len(*r.buf)
}

func (r *Reader) take() {
	if r.buf == nil {
		r.pool = r.base
		r.buf = r.pool.Get().(*[]byte)
	}
}

// Grow moves what is buffered to a buffer of n bytes, for a head longer
// than the usual buffer; it goes back to its pool once empty. It reports
// false when the buffer holds n bytes already.
func (r *Reader) Grow(n int) bool {
	if r.Size() >= n {
		return false
	}
	p := poolOf(n)
	b := p.Get().(*[]byte)
	m := copy(*b, (*r.buf)[r.r:r.w])
	r.pool.Put(r.buf)
	r.pool, r.buf, r.r, r.w = p, b, 0, m
	return true
}

func (r *Reader) release() {
	if r.buf != nil && r.r == r.w {
		r.pool.Put(r.buf)
		r.buf = nil
		r.r, r.w = 0, 0
	}
}

// More reads at least one byte past what is buffered, waiting for it. The
// kit's Readers (with last) clear a read deadline that lands on a read and
// read on: the kit sets them to interrupt a loop's wait at its top, and only
// that wait (await) returns them.
func (r *Reader) More() error {
	for {
		err := r.fill()
		if err == nil || r.last == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		r.src.(net.Conn).SetReadDeadline(time.Time{})
	}
}

func (r *Reader) fill() error {
	r.take()
	if r.r > 0 {
		copy(*r.buf, (*r.buf)[r.r:r.w])
		r.w -= r.r
		r.r = 0
	}
	if r.w == len(*r.buf) {
		return bufio.ErrBufferFull
	}
	if r.rc != nil {
		r.flushed = r.before == nil
		r.err = nil
		err := r.rc.Read(r.ready)
		r.unpark()
		if err != nil { // a deadline or a close
			r.release()
			return err
		}
		return r.err
	}
	if r.before != nil && r.w == r.r {
		if err := r.before.Flush(); err != nil {
			return err
		}
		r.before.release()
	}
	for range 100 {
		r.park()
		n, err := r.src.Read((*r.buf)[r.w:])
		r.unpark()
		r.w += n
		if n > 0 {
			r.touch()
			return nil
		}
		if err != nil {
			r.release()
			return err
		}
	}
	return io.ErrNoProgress
}

// readFD reads in the poller's callback, into a buffer taken for the read;
// with nothing to read, it flushes the other direction and gives the
// buffers back before the goroutine parks.
func (r *Reader) readFD(fd uintptr) bool {
	r.take()
	n, err := relay.ReadReady(fd, (*r.buf)[r.w:])
	if err == relay.ErrNotReady {
		if !r.flushed {
			// Flushed inside the wait: the answer the flush brings raises
			// the readiness this wait sees (armed by the read that found
			// nothing), so no read is spent looking for it.
			r.flushed = true
			if ferr := r.before.Flush(); ferr != nil {
				r.err = ferr
				return true
			}
		}
		if r.before != nil {
			r.before.release()
		}
		r.release()
		r.park()
		return false
	}
	r.w += n
	if n > 0 {
		r.touch()
	}
	r.err = err
	return true
}

func (r *Reader) park() {
	if r.parked != nil {
		r.parked.Store(true)
		r.onPark()
	}
}

func (r *Reader) unpark() {
	if r.parked != nil {
		r.parked.Store(false)
	}
}

func (r *Reader) touch() {
	r.at = now()
	if r.last != nil {
		r.last.Store(int64(r.at))
	}
}

// await waits, at a loop's top, until the peer sends more or ends, holding
// no buffer while it waits when the Reader is empty. A read deadline
// interrupts it.
func (r *Reader) await() error {
	if r.Buffered() > 0 {
		return nil
	}
	return r.fill()
}

// Peek returns the next n bytes without consuming them, waiting for them.
// With fewer it returns those and the error: bufio.ErrBufferFull when n is
// more than the buffer holds.
func (r *Reader) Peek(n int) ([]byte, error) {
	for r.Buffered() < n {
		if n > r.Size() {
			return r.Bytes(), bufio.ErrBufferFull
		}
		if err := r.More(); err != nil {
			return r.Bytes(), err
		}
	}
	return r.Bytes()[:n], nil
}

// Bytes returns what is buffered, without reading.
func (r *Reader) Bytes() []byte {
	if r.buf == nil {
		return nil
	}
	return (*r.buf)[r.r:r.w]
}

// Discard skips the next n bytes, waiting for them.
func (r *Reader) Discard(n int) (int, error) {
	for done := 0; ; {
		k := min(r.Buffered(), n-done)
		r.r += k
		if done += k; done == n {
			return done, nil
		}
		if err := r.More(); err != nil {
			return done, err
		}
	}
}

// PeekSlice returns the bytes up to and including delim without consuming
// them, waiting for them; bufio.ErrBufferFull with the whole buffer when
// delim does not come within it.
func (r *Reader) PeekSlice(delim byte) ([]byte, error) {
	scanned := 0
	for {
		b := r.Bytes()
		if i := bytes.IndexByte(b[scanned:], delim); i >= 0 {
			return b[:scanned+i+1], nil
		}
		scanned = len(b)
		if err := r.More(); err != nil {
			return r.Bytes(), err
		}
	}
}

// ReadSlice is bufio.Reader's: the bytes up to and including delim,
// consumed; with bufio.ErrBufferFull, the whole buffer.
func (r *Reader) ReadSlice(delim byte) ([]byte, error) {
	b, err := r.PeekSlice(delim)
	r.r += len(b)
	return b, err
}

// CopyN moves n bytes to w: through the buffer, or socket to socket for a
// large unread part when w is the other side's Writer. On a short read the
// error is io.ErrUnexpectedEOF.
func (r *Reader) CopyN(w io.Writer, n int64) (int64, error) {
	var done int64
	for done < n {
		if r.Buffered() == 0 {
			if out, ok := w.(*Writer); ok && n-done >= bulkMin {
				m, ok, err := r.splice(out, n-done)
				done += m
				if ok || err != nil {
					return done, err
				}
			}
			if err := r.More(); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return done, err
			}
		}
		k := int(min(int64(r.Buffered()), n-done))
		m, err := w.Write((*r.buf)[r.r : r.r+k])
		r.r += m
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// splice moves n bytes from r's connection to out's with the kernel's
// splice, in chunks that keep the idle clock and byte counts moving. ok is
// false, with nothing moved, when the connections are not TCP.
func (r *Reader) splice(out *Writer, n int64) (moved int64, ok bool, err error) {
	to, ok1 := out.dst.(*net.TCPConn)
	_, ok2 := r.src.(*net.TCPConn)
	if !ok1 || !ok2 {
		return 0, false, nil
	}
	if err := out.Flush(); err != nil {
		return 0, true, err
	}
	r.release()
	for moved < n {
		chunk := min(n-moved, 1<<20)
		m, err := to.ReadFrom(&io.LimitedReader{R: r.src, N: chunk})
		moved += m
		if m > 0 {
			r.touch()
			out.relayed(m)
		}
		if err != nil {
			return moved, true, err
		}
		if m < chunk {
			return moved, true, io.ErrUnexpectedEOF
		}
	}
	return moved, true, nil
}

// Writer is one side's buffered output. It reports the bytes it sends as
// relayed, and holds a pooled buffer only while it has bytes to send. A
// write error sticks, as bufio.Writer's does.
type Writer struct {
	dst  io.Writer
	size int
	pool *sync.Pool
	buf  *[]byte
	n    int
	ev   chaos.Events // nil: nothing reported
	dir  chaos.Direction
	err  error
}

// NewWriter buffers writes to dst through pooled buffers of size bytes, for
// a protocol's tests.
func NewWriter(dst io.Writer, size int) *Writer {
	return new(Writer).init(dst, size, nil, 0)
}

func (w *Writer) init(dst io.Writer, size int, ev chaos.Events, dir chaos.Direction) *Writer {
	*w = Writer{dst: dst, size: size, pool: poolOf(size), ev: ev, dir: dir}
	return w
}

// Write buffers p, sending what was buffered first when p does not fit; a
// p as large as the buffer goes out at once.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.buf != nil && len(p) > len(*w.buf)-w.n {
		if err := w.Flush(); err != nil {
			return 0, err
		}
	}
	if w.n == 0 && len(p) >= w.size {
		return w.send(p)
	}
	if w.buf == nil {
		w.buf = w.pool.Get().(*[]byte)
	}
	w.n += copy((*w.buf)[w.n:], p)
	return len(p), nil
}

// Flush sends what is buffered. The buffer is kept for the next writes
// until the Reader of the other direction waits.
func (w *Writer) Flush() error {
	if w.n > 0 && w.err == nil {
		w.send((*w.buf)[:w.n])
	}
	w.n = 0
	return w.err
}

func (w *Writer) release() {
	if w.buf != nil && w.n == 0 {
		w.pool.Put(w.buf)
		w.buf = nil
	}
}

func (w *Writer) send(p []byte) (int, error) {
	n, err := w.dst.Write(p)
	if n < len(p) && err == nil {
		err = io.ErrShortWrite
	}
	w.relayed(int64(n))
	w.err = err // nil until now: Write and Flush send nothing after an error
	return n, err
}

func (w *Writer) relayed(n int64) {
	if n > 0 && w.ev != nil {
		w.ev.Relayed(w.dir, n)
	}
}
