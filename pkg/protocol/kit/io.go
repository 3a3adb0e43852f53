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

// DefaultBufSize is the size of each side's read and write buffers when
// Options leaves it unset.
const DefaultBufSize = 16 << 10

// bulkMin is the size from which the part of a body or value that has not
// been read yet goes socket to socket (spliced by the kernel) instead of
// through the proxy's buffers.
const bulkMin = 64 << 10

// pools holds one buffer pool per size in use.
var pools sync.Map // int → *sync.Pool

func poolOf(size int) *sync.Pool {
	if p, ok := pools.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := pools.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, size); return &b }})
	return p.(*sync.Pool)
}

// epoch anchors now: a reading of the monotonic clock fits in 8 bytes where
// a time.Time takes 24.
var epoch = time.Now()

func now() time.Duration { return time.Since(epoch) }

// Reader is one side's buffered input, with bufio.Reader's methods. It
// holds a pooled buffer only while it has bytes or reads: before it waits
// for its peer it hands the buffer back (and flushes the other direction's
// Writer, so that nothing waits in a buffer while the proxy waits), and the
// read that ends the wait is made in the poller's readiness callback: a
// silent connection holds no buffer, and a message costs the one read(2) a
// blocking read would make. A connection without a descriptor (a
// *tls.Conn) is read with plain blocking reads.
type Reader struct {
	nc   net.Conn
	rc   syscall.RawConn // nil without a descriptor
	pool *sync.Pool
	buf  *[]byte // nil while the Reader is empty and waits
	r, w int
	// before flushes the other direction before the Reader waits.
	before func() error
	last   *atomic.Int64 // now() of the last byte read; nil without an idle timeout
	// woken, on the backend's Reader, clears a deadline that the request
	// loop set to interrupt the reply loop's wait (see queue.wake): a read
	// it lands on later goes on. Only the reply loop's own wait (await)
	// returns it.
	woken    func()
	awaiting bool
	// The readiness callback's state, bound once so that a wait allocates
	// nothing.
	ready     func(fd uintptr) bool
	flushed   bool // before ran for this wait
	needFlush bool
	err       error
}

func newReader(nc net.Conn, size int, before func() error, last *atomic.Int64) *Reader {
	r := &Reader{nc: nc, pool: poolOf(size), before: before, last: last}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			r.rc = rc
		}
	}
	r.ready = r.readFD
	return r
}

// Buffered is the number of bytes that can be read without waiting.
func (r *Reader) Buffered() int { return r.w - r.r }

func (r *Reader) cap() int {
	if r.buf == nil {
		r.take()
	}
	return len(*r.buf)
}

func (r *Reader) take() {
	r.buf = r.pool.Get().(*[]byte)
	r.r, r.w = 0, 0
}

// release hands an empty buffer back.
func (r *Reader) release() {
	if r.buf != nil && r.r == r.w {
		r.pool.Put(r.buf)
		r.buf = nil
		r.r, r.w = 0, 0
	}
}

// fill reads at least one more byte, waiting for it.
func (r *Reader) fill() error {
	for {
		err := r.fill1()
		if err == nil || r.woken == nil || r.awaiting || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		r.woken()
	}
}

func (r *Reader) fill1() error {
	if r.buf == nil {
		r.take()
	}
	if r.r > 0 {
		copy(*r.buf, (*r.buf)[r.r:r.w])
		r.w -= r.r
		r.r = 0
	}
	if r.w == len(*r.buf) {
		return bufio.ErrBufferFull
	}
	if r.rc == nil {
		return r.fillPlain()
	}
	r.flushed = r.before == nil
	for {
		r.err = nil
		err := r.rc.Read(r.ready)
		if r.buf == nil {
			// Woken without data (a deadline, a close).
			if err == nil {
				err = r.err
			}
			return err
		}
		if err != nil {
			r.release()
			return err
		}
		if r.needFlush {
			r.needFlush, r.flushed = false, true
			if err := r.before(); err != nil {
				return err
			}
			continue
		}
		return r.err
	}
}

func (r *Reader) fillPlain() error {
	if r.before != nil && r.w == r.r {
		if err := r.before(); err != nil {
			return err
		}
	}
	for {
		n, err := r.nc.Read((*r.buf)[r.w:])
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
}

// readFD reads in the poller's callback, into a buffer taken for the read:
// with nothing to read it first asks for the other direction's flush, then
// gives the buffer back before the goroutine parks.
func (r *Reader) readFD(fd uintptr) bool {
	if r.buf == nil {
		r.take()
	}
	n, err := relay.ReadReady(fd, (*r.buf)[r.w:])
	if err == relay.ErrNotReady {
		if !r.flushed {
			r.needFlush = true
			return true
		}
		r.release()
		return false
	}
	r.w += n
	if n > 0 {
		r.touch()
	}
	r.err = err
	return true
}

func (r *Reader) touch() {
	if r.last != nil {
		r.last.Store(int64(now()))
	}
}

// Wait waits until the peer sends more or ends, holding no buffer while it
// waits when the Reader is empty.
func (r *Reader) Wait() error {
	if r.Buffered() > 0 {
		return nil
	}
	return r.fill()
}

// await is Wait for the reply loop, which a wake-up interrupts.
func (r *Reader) await() error {
	r.awaiting = true
	defer func() { r.awaiting = false }()
	return r.Wait()
}

// Peek returns the next n bytes without consuming them, waiting for them.
// With fewer it returns those and the error: bufio.ErrBufferFull when n is
// more than the buffer holds.
func (r *Reader) Peek(n int) ([]byte, error) {
	for r.Buffered() < n {
		if n > r.cap() {
			return r.bytes(), bufio.ErrBufferFull
		}
		if err := r.fill(); err != nil {
			return r.bytes(), err
		}
	}
	return (*r.buf)[r.r : r.r+n], nil
}

func (r *Reader) bytes() []byte {
	if r.buf == nil {
		return nil
	}
	return (*r.buf)[r.r:r.w]
}

// Discard skips the next n bytes, waiting for them.
func (r *Reader) Discard(n int) (int, error) {
	done := 0
	for done < n {
		if r.Buffered() == 0 {
			if err := r.fill(); err != nil {
				return done, err
			}
		}
		k := min(r.Buffered(), n-done)
		r.r += k
		done += k
	}
	return done, nil
}

// PeekSlice returns the bytes up to and including delim without consuming
// them, waiting for them; bufio.ErrBufferFull with the whole buffer when
// delim does not come within it.
func (r *Reader) PeekSlice(delim byte) ([]byte, error) {
	scanned := 0
	for {
		b := r.bytes()
		if i := bytes.IndexByte(b[scanned:], delim); i >= 0 {
			return b[:scanned+i+1], nil
		}
		scanned = len(b)
		if err := r.fill(); err != nil {
			return r.bytes(), err
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

// CopyN moves n bytes to w, through the buffer, or socket to socket for
// what has not been read yet when w is the other side's Writer and it is
// large. On a short read the error is io.ErrUnexpectedEOF.
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
			if err := r.fill(); err != nil {
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
	to, ok1 := out.nc.(*net.TCPConn)
	_, ok2 := r.nc.(*net.TCPConn)
	if !ok1 || !ok2 {
		return 0, false, nil
	}
	if err := out.Flush(); err != nil {
		return 0, true, err
	}
	r.release()
	for moved < n {
		chunk := min(n-moved, 1<<20)
		m, err := to.ReadFrom(&io.LimitedReader{R: r.nc, N: chunk})
		moved += m
		if m > 0 {
			r.touch()
			out.ev.Relayed(out.dir, m)
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
// relayed, and holds a pooled buffer only while it has bytes to send.
type Writer struct {
	nc     net.Conn
	pool   *sync.Pool
	buf    *[]byte
	n      int
	ev     chaos.Events
	dir    chaos.Direction
	failed atomic.Bool
}

func newWriter(nc net.Conn, size int, ev chaos.Events, dir chaos.Direction) *Writer {
	return &Writer{nc: nc, pool: poolOf(size), ev: ev, dir: dir}
}

// Write buffers p, sending what was buffered first when p does not fit; a
// p as large as the buffer goes out at once.
func (w *Writer) Write(p []byte) (int, error) {
	if w.buf != nil && len(p) > len(*w.buf)-w.n {
		if err := w.Flush(); err != nil {
			return 0, err
		}
	}
	if w.buf == nil {
		w.buf = w.pool.Get().(*[]byte)
		if len(p) >= len(*w.buf) {
			w.pool.Put(w.buf)
			w.buf = nil
			return w.send(p)
		}
	}
	w.n += copy((*w.buf)[w.n:], p)
	return len(p), nil
}

// Flush sends what is buffered and hands the buffer back.
func (w *Writer) Flush() error {
	if w.buf == nil {
		return nil
	}
	var err error
	if w.n > 0 {
		_, err = w.send((*w.buf)[:w.n])
	}
	w.pool.Put(w.buf)
	w.buf, w.n = nil, 0
	return err
}

func (w *Writer) send(p []byte) (int, error) {
	n, err := w.nc.Write(p)
	if n > 0 {
		w.ev.Relayed(w.dir, int64(n))
	}
	if err != nil {
		w.failed.Store(true)
	}
	return n, err
}

// Failed reports whether a write failed: the peer stopped reading.
func (w *Writer) Failed() bool { return w.failed.Load() }
