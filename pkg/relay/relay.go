// Package relay moves bytes between a client and a backend connection: raw
// both-way relaying with half-close, idle timeout and byte accounting that
// keeps Linux's zero-copy splice path, and the carrying out of a drawn
// behavior's Effect over a whole connection (what the tcp protocol, and any
// protocol that falls back to a raw stream, does).
package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// chunk bounds each splice call so that byte counters move while a long
// connection is still open, at a cost of one call per chunk.
const chunk = 1 << 20

// Wait waits d, or until ctx ends (then it returns ctx's error).
func Wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Raw relays both directions between client and backend until both have
// ended, propagating half-close. It returns the first error that was not a
// normal end of stream.
func Raw(ctx context.Context, s chaos.Session, client, backend net.Conn) error {
	return run(ctx, s, client, backend, nil)
}

// ErrIdleTimeout ends a connection that moved no byte for the idle
// timeout; protocols that frame their own traffic return it too.
var ErrIdleTimeout = errors.New("idle timeout")

type pair struct {
	ev      chaos.Events
	idle    time.Duration
	waiting [2]atomic.Bool // per direction: read timed out with nothing moved
	once    sync.Once
	conns   [2]net.Conn
	cancel  context.CancelFunc // ends the filters' waits
}

func dirIndex(d chaos.Direction) int {
	if d == chaos.ToBackend {
		return 0
	}
	return 1
}

// closeAll unblocks both directions after one failed.
func (p *pair) closeAll() {
	p.once.Do(func() {
		p.cancel()
		p.conns[0].Close()
		p.conns[1].Close()
	})
}

// bothIdle records that dir saw no byte for the idle timeout and reports
// whether the other direction is idle (or finished) too.
func (p *pair) bothIdle(dir chaos.Direction) bool {
	i := dirIndex(dir)
	p.waiting[i].Store(true)
	return p.waiting[1-i].Load()
}

func (p *pair) active(dir chaos.Direction) { p.waiting[dirIndex(dir)].Store(false) }

// run relays both ways; e, when set, supplies filters, a response delay and
// a close delay.
func run(ctx context.Context, s chaos.Session, client, backend net.Conn, e *chaos.Effect) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p := &pair{ev: s, idle: s.IdleTimeout(), conns: [2]net.Conn{client, backend}, cancel: cancel}
	// The route shutting down ends blocked reads too, not only waits.
	stop := context.AfterFunc(ctx, p.closeAll)
	defer stop()
	var wg sync.WaitGroup
	var errUp error
	wg.Go(func() { errUp = p.pump(ctx, chaos.ToBackend, backend, client, e) })
	errDown := p.pump(ctx, chaos.ToClient, client, backend, e)
	wg.Wait()
	if errDown != nil {
		return errDown
	}
	return errUp
}

// pump relays src to dst in one direction. On src's end it half-closes dst
// (after the effect's close delay); on an error it closes both connections.
func (p *pair) pump(ctx context.Context, dir chaos.Direction, dst, src net.Conn, e *chaos.Effect) error {
	var f chaos.Filter
	if e != nil {
		f = e.Filter(dir)
		if dir == chaos.ToClient && e.ResponseDelay > 0 {
			if err := Wait(ctx, e.ResponseDelay); err != nil {
				p.closeAll()
				return err
			}
		}
	}
	var err error
	if f != nil {
		err = f.Relay(ctx, &counter{w: dst, ev: p.ev, dir: dir}, &idleReader{p: p, dir: dir, c: src})
	} else {
		err = p.copy(dir, dst, src)
	}
	if err != nil {
		p.waiting[dirIndex(dir)].Store(true)
		p.closeAll()
		if isClosedByPeer(err) {
			return nil
		}
		return err
	}
	if e != nil && dir == chaos.ToClient && e.CloseDelay > 0 {
		if err := Wait(ctx, e.CloseDelay); err != nil {
			p.closeAll()
			return err
		}
	}
	// A finished direction never moves a byte again: it counts as idle.
	p.waiting[dirIndex(dir)].Store(true)
	closeWrite(dst)
	return nil
}

// copy moves src to dst. Small messages (a request, a reply) are read in
// the poller's readiness callback into a pooled buffer and written out:
// three system calls per message, as a plain copy loop makes. When a read
// fills the buffer, a bulk transfer is under way and the rest moves by
// splice, bounded by what has arrived (SIOCINQ) so that the splice never
// waits for data: a splice that waits holds a pipe (two descriptors) for as
// long as the connection is idle, and idle connections must cost their two
// sockets only. Neither path holds a buffer or a pipe while it waits. Each
// splice is bounded by chunk so that byte counters move while a long
// transfer is still running.
func (p *pair) copy(dir chaos.Direction, dst, src net.Conn) error {
	var w *waiter
	if rc := rawConn(src); rc != nil {
		w = newWaiter(rc)
	}
	// One limited reader per direction: a *net.TCPConn reading from an
	// *io.LimitedReader over a *net.TCPConn still splices.
	lr := &io.LimitedReader{R: src}
	bulk := w == nil
	for {
		if p.idle > 0 {
			src.SetReadDeadline(time.Now().Add(p.idle))
		}
		if !bulk {
			buf, n, err := w.read()
			if err != nil {
				if !isTimeout(err) {
					return err
				}
				if p.bothIdle(dir) {
					return ErrIdleTimeout
				}
				continue
			}
			if n == 0 {
				return nil // end of stream
			}
			p.active(dir)
			_, err = dst.Write((*buf)[:n])
			full := n == len(*buf)
			bufs.Put(buf)
			if err != nil {
				return err
			}
			p.ev.Relayed(dir, int64(n))
			bulk = full
			continue
		}
		limit := int64(chunk)
		if w != nil {
			avail, err := w.wait()
			if err != nil {
				if !isTimeout(err) {
					return err
				}
				if p.bothIdle(dir) {
					return ErrIdleTimeout
				}
				continue
			}
			p.active(dir)
			// avail is 0 at end of stream: a one-byte copy then reads EOF.
			limit = min(max(avail, 1), chunk)
			// Back to message mode once the transfer has drained.
			bulk = avail >= smallMessage
		}
		lr.N = limit
		n, err := io.Copy(dst, lr)
		if err == nil && n < limit {
			err = io.EOF
		}
		if n > 0 {
			p.active(dir)
			p.ev.Relayed(dir, n)
		}
		switch {
		case err == nil:
		case err == io.EOF:
			return nil
		case isTimeout(err) && n == 0:
			if p.bothIdle(dir) {
				return ErrIdleTimeout
			}
		case isTimeout(err):
		default:
			return err
		}
	}
}

// smallMessage is the size of the message buffers: what fits is copied
// through user space, more is spliced.
const smallMessage = 4 << 10

var bufs = sync.Pool{New: func() any { b := make([]byte, smallMessage); return &b }}

func rawConn(c net.Conn) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// waiter waits, in the poller and without reading, until a socket has data
// or is at end of stream. Its check function is bound once, so a wait
// allocates nothing.
type waiter struct {
	rc       syscall.RawConn
	check    func(fd uintptr) bool
	readNow  func(fd uintptr) bool
	avail    int32
	err      error
	peek     [1]byte
	buf      *[]byte
	received int
}

func newWaiter(rc syscall.RawConn) *waiter {
	w := &waiter{rc: rc}
	w.check, w.readNow = w.poll, w.pollRead
	return w
}

// read waits for data and reads what has arrived into a pooled buffer,
// which the caller puts back. n is 0 at end of stream.
func (w *waiter) read() (buf *[]byte, n int, err error) {
	w.received, w.err = 0, nil
	if err := w.rc.Read(w.readNow); err != nil {
		return nil, 0, err
	}
	buf, w.buf = w.buf, nil
	if w.err != nil {
		if buf != nil {
			bufs.Put(buf)
		}
		return nil, 0, w.err
	}
	return buf, w.received, nil
}

// pollRead takes a buffer only for the read itself: a connection waiting
// for data holds none.
func (w *waiter) pollRead(fd uintptr) bool {
	w.buf = bufs.Get().(*[]byte)
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&(*w.buf)[0])), uintptr(len(*w.buf)))
		switch e {
		case 0:
			w.received = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			bufs.Put(w.buf)
			w.buf = nil
			return false
		}
		w.err = e
		return true
	}
}

// wait returns how many bytes are waiting; 0 means end of stream.
func (w *waiter) wait() (int64, error) {
	w.avail, w.err = 0, nil
	if err := w.rc.Read(w.check); err != nil {
		return 0, err
	}
	return int64(w.avail), w.err
}

func (w *waiter) poll(fd uintptr) bool {
	if _, _, e := unix.RawSyscall(unix.SYS_IOCTL, fd, unix.SIOCINQ, uintptr(unsafe.Pointer(&w.avail))); e != 0 {
		w.err = e
		return true
	}
	if w.avail > 0 {
		return true
	}
	// Nothing queued: either end of stream (readable, zero bytes) or
	// nothing yet.
	_, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&w.peek[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	if e != 0 {
		w.err = e
	}
	return true
}

// idleReader gives filters the same idle rule as the splice path.
type idleReader struct {
	p   *pair
	dir chaos.Direction
	c   net.Conn
}

func (r *idleReader) Read(b []byte) (int, error) {
	for {
		if r.p.idle > 0 {
			r.c.SetReadDeadline(time.Now().Add(r.p.idle))
		}
		n, err := r.c.Read(b)
		if n > 0 {
			r.p.active(r.dir)
			return n, nil
		}
		if err != nil && isTimeout(err) {
			if r.p.bothIdle(r.dir) {
				return 0, ErrIdleTimeout
			}
			continue
		}
		return n, err
	}
}

// counter reports bytes written through a filter.
type counter struct {
	w   io.Writer
	ev  chaos.Events
	dir chaos.Direction
}

func (c *counter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	if n > 0 {
		c.ev.Relayed(c.dir, int64(n))
	}
	return n, err
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// isClosedByPeer reports the ordinary ends of a connection in a chaos proxy:
// resets, broken pipes and closes; they are events, not failures.
func isClosedByPeer(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, chaos.ErrClose)
}
