// Package relay moves bytes between a client and a backend connection: raw
// both-way relaying with half-close, idle timeout, a lingering close and
// byte accounting that keeps Linux's zero-copy splice path, and the
// carrying out of a drawn behavior's Effect over a whole connection (what
// the tcp protocol, and any protocol that falls back to a raw stream,
// does). A connection that draws
// once follows the changes of its route's mix: at its next read it carries
// out the draw the change gave it (see follow.go). A connection with
// nothing to carry out is relayed by a poller, without goroutines of its
// own (see poll.go).
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

	"golang.org/x/sys/unix"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// chunk bounds each splice call so that byte counters move while a long
// connection is still open, at a cost of one call per chunk.
const chunk = 1 << 20

// Wait waits d, or until ctx ends (then it returns ctx's error).
func Wait(ctx context.Context, d time.Duration) error {
	var t Timer
	return t.Wait(ctx, d)
}

// Timer waits like Wait with one timer, made on the first wait and reused:
// a loop that delays request after request allocates once. It is not safe
// for concurrent use.
type Timer struct{ t *time.Timer }

// Wait waits d, or until ctx ends (then it returns ctx's error).
func (w *Timer) Wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if w.t == nil {
		w.t = time.NewTimer(d)
	} else {
		w.t.Reset(d)
	}
	select {
	case <-w.t.C:
		return nil
	case <-ctx.Done():
		w.t.Stop()
		return ctx.Err()
	}
}

// Raw relays both directions between client and backend until both have
// ended, propagating half-close. It returns the first error that was not a
// normal end of stream.
func Raw(ctx context.Context, s chaos.Session, client, backend net.Conn) error {
	p := newPair(s, client)
	p.changes = &still
	p.bind(backend)
	return p.run(ctx)
}

// ErrIdleTimeout ends a connection that moved no byte for the idle
// timeout; protocols that frame their own traffic return it too.
var ErrIdleTimeout = errors.New("idle timeout")

type pair struct {
	ev      chaos.Events
	idle    time.Duration
	waiting [2]atomic.Bool // per direction: read timed out with nothing moved
	once    sync.Once
	conns   [2]net.Conn // the backend is set, under live.mu, once dialed
	errs    [2]error    // each direction's, indexed by dirIndex
	// For a detached relay: the directions still running, and the session
	// to end when both have ended.
	left     atomic.Int32
	detached chaos.Detacher
	// Per direction, indexed like conns by the direction's source: what
	// waits for and moves its bytes, in the pair's one allocation.
	sides [2]side
	// Following the route's mix: the route's change counter, loaded at
	// every read (still, for connections that never follow); per
	// direction the version of the draw it carries out, and the bytes it
	// read just as a change came, which the next draw relays; and the
	// draw in force.
	changes *atomic.Uint64
	known   [2]uint64
	pend    [2][]byte
	live    live
	// The lingering close: what is known of the connection's end (the
	// linger bits), and the timer that closes it LingerTime after the
	// backend has gone and the client was sent all it said.
	ended  atomic.Uint32
	linger *time.Timer
	// Set while a poller relays the pair (see poll.go), pointing to
	// polled, and what others ask of it.
	pl          *evState
	polled      evState
	closeWanted atomic.Bool
	// A client the session gave bare (see bareClient): its socket, which
	// the pair closes, while no net.Conn holds it (bare, guarded by
	// live.mu), and whether the net.Conn made of it when goroutines took
	// the connection over is the pair's to close too.
	bare      bool
	bareFD    int
	ownClient bool
}

// The linger bits of a pair's ended.
const (
	backendGone   = 1 << iota // a write to the backend failed, or reading it met a reset
	sentAll                   // the client was sent every byte of the backend, and a FIN
	lingerStarted             // the lingering close's timer runs
)

// still is the change counter of connections whose mix never changes.
var still atomic.Uint64

func newPair(s chaos.Session, client net.Conn) *pair {
	return &pair{ev: s, idle: s.IdleTimeout(), conns: [2]net.Conn{client, nil}}
}

// bind gives the pair its backend. It reports false, and closes backend,
// when the connection was closed meanwhile.
func (p *pair) bind(backend net.Conn) bool {
	p.live.mu.Lock()
	defer p.live.mu.Unlock()
	if p.live.closed {
		backend.Close()
		return false
	}
	p.conns[1] = backend
	return true
}

// bindSides readies the sides for the goroutines that relay the pair.
func (p *pair) bindSides() {
	c, b := RawConn(p.conns[0]), RawConn(p.conns[1])
	if c != nil {
		p.sides[0].bind(c, b)
	}
	if b != nil {
		p.sides[1].bind(b, c)
	}
}

func dirIndex(d chaos.Direction) int {
	if d == chaos.ToBackend {
		return 0
	}
	return 1
}

// closeAll unblocks both directions after one failed: it closes both
// connections and ends every wait.
func (p *pair) closeAll() {
	p.once.Do(func() {
		l := &p.live
		l.mu.Lock()
		if q := l.poller; q != nil {
			// The poller alone closes the sockets it relays.
			l.mu.Unlock()
			p.closeWanted.Store(true)
			q.poke(p)
			return
		}
		l.mu.Unlock()
		p.closeNow()
	})
}

// closeNow is closeAll's work, for a pair that goroutines relay.
func (p *pair) closeNow() {
	l := &p.live
	l.mu.Lock()
	l.closed = true
	l.wakeAll(errClosed)
	client, backend := p.conns[0], p.conns[1]
	if p.bare {
		// Not yet the poller's: ended by its events, and closed where
		// they end it, so that the number is not reused meanwhile.
		shutdownNow(p.bareFD, unix.SHUT_RDWR)
	}
	l.mu.Unlock()
	if client != nil {
		client.Close()
	}
	if backend != nil {
		backend.Close()
	}
}

// bothIdle records that dir saw no byte for the idle timeout and reports
// whether the other direction is idle (or finished) too.
func (p *pair) bothIdle(dir chaos.Direction) bool {
	i := dirIndex(dir)
	p.waiting[i].Store(true)
	return p.waiting[1-i].Load()
}

func (p *pair) active(dir chaos.Direction) { p.waiting[dirIndex(dir)].Store(false) }

// run relays both ways until both directions have ended.
func (p *pair) run(ctx context.Context) error {
	p.bindSides()
	// The route shutting down ends blocked reads too, not only waits.
	stop := context.AfterFunc(ctx, p.closeAll)
	defer stop()
	var wg sync.WaitGroup
	wg.Go(func() { p.errs[dirIndex(chaos.ToBackend)] = p.pump(ctx, chaos.ToBackend) })
	p.errs[dirIndex(chaos.ToClient)] = p.pump(ctx, chaos.ToClient)
	wg.Wait()
	p.stopLinger()
	p.finish()
	return p.result()
}

// result is the relay's error once both directions have ended: the first
// that was not a normal end, the client's side first.
func (p *pair) result() error {
	if err := p.errs[dirIndex(chaos.ToClient)]; err != nil {
		return err
	}
	return p.errs[dirIndex(chaos.ToBackend)]
}

// detach relays both ways in goroutines of its own and returns at once;
// d's End gets run's result when both directions have ended. The engine
// ends a detached relay by closing the client.
func (p *pair) detach(ctx context.Context, d chaos.Detacher) {
	p.detached = d
	p.left.Store(2)
	p.bindSides()
	go p.half(ctx, chaos.ToBackend)
	go p.half(ctx, chaos.ToClient)
}

// half runs one direction of a detached relay; the last one to end closes
// the backend and reports.
func (p *pair) half(ctx context.Context, dir chaos.Direction) {
	p.errs[dirIndex(dir)] = p.pump(ctx, dir)
	if p.left.Add(-1) != 0 {
		return
	}
	p.finish()
	p.stopLinger()
	p.conns[1].Close()
	if p.ownClient {
		p.conns[0].Close()
	}
	p.detached.End(p.result())
}

// pump relays one direction, from the source of dir to the other side,
// carrying out the draw in force and, when the mix changes, the next one.
// On the source's end it half-closes the destination (after the draw's
// close delay); on an error it closes both connections.
func (p *pair) pump(ctx context.Context, dir chaos.Direction) error {
	i := dirIndex(dir)
	src, dst := p.conns[i], p.conns[1-i]
	for {
		e, redrawn := p.current(i)
		err := p.stage(ctx, dir, dst, src, &e, redrawn)
		if err == errSwitch {
			continue
		}
		wrote := err != nil && isWriteError(err)
		switch {
		case err == nil:
		case dir == chaos.ToBackend && wrote:
			// The backend has gone, perhaps after an answer still on its
			// way to the client (an error before it closed): the client is
			// not closed under what it still sends, which would make the
			// kernel reset the connection and lose that answer.
			p.startLinger(backendGone)
			err = p.drain(dir, src)
		case dir == chaos.ToClient && !wrote && errors.Is(err, syscall.ECONNRESET):
			// The backend reset the connection after its last words: they
			// end the client's stream as a close would.
			p.ended.Or(backendGone)
			err = nil
		}
		if err != nil {
			p.waiting[i].Store(true)
			p.closeAll()
			if OrdinaryEnd(err) {
				return nil
			}
			return err
		}
		if dir == chaos.ToClient && e.CloseDelay > 0 {
			if err := Wait(ctx, e.CloseDelay); err != nil {
				p.closeAll()
				return err
			}
		}
		// A finished direction never moves a byte again: it counts as idle.
		p.waiting[i].Store(true)
		CloseWrite(dst)
		if dir == chaos.ToClient {
			p.startLinger(sentAll)
		}
		return nil
	}
}

// LingerTime bounds a lingering close. When the backend has gone while
// the client still sends, the client's input is read and dropped rather
// than left unread, since closing a socket with unread input makes the
// kernel send a reset, which destroys what the client has not read yet:
// the backend's last words. Once the client has been sent everything, and
// a FIN, the connection closes when the client does, or LingerTime later.
const LingerTime = 2 * time.Second

// startLinger records what is known of the end, and arms the lingering
// close once the backend has gone and the client has been sent all it
// said.
func (p *pair) startLinger(known uint32) {
	for {
		old := p.ended.Load()
		now := old | known
		if now&(backendGone|sentAll) == backendGone|sentAll {
			now |= lingerStarted
		}
		if p.ended.CompareAndSwap(old, now) {
			if now&lingerStarted != 0 && old&lingerStarted == 0 {
				p.linger = time.AfterFunc(LingerTime, p.closeAll)
			}
			return
		}
	}
}

// stopLinger disarms the lingering close of a relay that has ended.
func (p *pair) stopLinger() {
	if p.linger != nil {
		p.linger.Stop()
	}
}

// drain reads and drops what src sends until it ends, or until the
// lingering close or the idle timeout closes the connection.
func (p *pair) drain(dir chaos.Direction, src net.Conn) error {
	buf := bufs.Get().(*[]byte)
	defer bufs.Put(buf)
	for {
		if p.idle > 0 {
			src.SetReadDeadline(time.Now().Add(p.idle))
		}
		_, err := src.Read(*buf)
		switch {
		case err == nil:
		case err == io.EOF:
			return nil
		case isTimeout(err):
			if p.bothIdle(dir) {
				return ErrIdleTimeout
			}
		default:
			return err
		}
	}
}

// writeError is a failed write to a relay's destination, as opposed to a
// failed read of its source.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// isWriteError reports whether err is a *writeError. It is a function of
// its own so that the target errors.As needs is allocated only for a
// relay that failed.
func isWriteError(err error) bool {
	var w *writeError
	return errors.As(err, &w)
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
	i := dirIndex(dir)
	w := &p.sides[i]
	bulk := w.in == nil
	if pend := p.pend[i]; len(pend) > 0 {
		// Read as the previous draw ended: this draw relays it.
		p.pend[i] = pend[:0]
		if _, err := dst.Write(pend); err != nil {
			return &writeError{err}
		}
		p.ev.Relayed(dir, int64(len(pend)))
	}
	for {
		if p.idle > 0 {
			src.SetReadDeadline(time.Now().Add(p.idle))
		}
		var err error
		if bulk {
			var end bool
			if bulk, end, err = p.bulk(dir, dst, src); end {
				return nil
			}
		} else {
			var buf *[]byte
			var n int
			if buf, n, err = w.read(); err == nil {
				if n == 0 {
					bufs.Put(buf)
					return nil // end of stream
				}
				p.active(dir)
				if p.changes.Load() > p.known[i] {
					// The mix changed: the next draw relays these bytes.
					p.pend[i] = append(p.pend[i], (*buf)[:n]...)
					bufs.Put(buf)
					return errSwitch
				}
				_, err = dst.Write((*buf)[:n])
				bufs.Put(buf)
				if err != nil {
					return &writeError{err}
				}
				p.ev.Relayed(dir, int64(n))
				bulk = n == smallMessage
				continue
			}
		}
		switch {
		case err == nil:
		case isTimeout(err):
			if p.bothIdle(dir) {
				return ErrIdleTimeout
			}
		default:
			return err
		}
	}
}

// bulk moves what src has queued, up to chunk, and reports whether a bulk
// transfer is still under way and whether src is at its end. It is a
// function of its own so that the message path, where connections wait,
// keeps a small frame: the stack a goroutine reaches, it keeps.
//
//go:noinline
func (p *pair) bulk(dir chaos.Direction, dst, src net.Conn) (more, end bool, err error) {
	w := &p.sides[dirIndex(dir)]
	limit := int64(chunk)
	if w.in != nil {
		avail, err := w.queued()
		if err != nil {
			return true, false, err
		}
		if avail == 0 {
			return false, true, nil
		}
		p.active(dir)
		if p.changes.Load() > p.known[dirIndex(dir)] {
			return false, false, errSwitch // the next draw moves them
		}
		limit = min(avail, chunk)
		more = avail >= smallMessage
		if w.out != nil {
			var k int
			var ok bool
			if k, ok, err = w.splice(int(limit)); ok {
				p.moved(dir, int64(k))
				return more, k == 0 && err == nil, err
			}
		}
	} else {
		return p.plain(dir, dst, src)
	}
	var n int64
	if w.out == nil {
		// dst wraps its socket (TLS): io.CopyN would allocate a buffer
		// per call, since neither side can hand the copy to the other.
		n, err = copyBuffered(dst, src, limit)
	} else {
		// A *net.TCPConn reading from an *io.LimitedReader over a
		// *net.TCPConn still splices.
		n, err = io.CopyN(dst, src, limit)
	}
	p.moved(dir, n)
	switch {
	case err == io.EOF:
		return false, true, nil
	case n > 0 && isTimeout(err):
		err = nil // not idle: bytes moved
	}
	return more, false, err
}

// plain moves one read of a source that has no descriptor of its own, a
// TLS connection: its reads block in its own Read, so it is read plainly,
// one record at a time, and each read is counted and follows a change of
// the mix as a message read does. Such a connection holds a buffer while
// it waits, as its TLS state does anyway.
func (p *pair) plain(dir chaos.Direction, dst, src net.Conn) (more, end bool, err error) {
	i := dirIndex(dir)
	if p.changes.Load() > p.known[i] {
		return false, false, errSwitch
	}
	buf := records.Get().(*[]byte)
	defer records.Put(buf)
	n, err := src.Read(*buf)
	if n > 0 {
		p.active(dir)
		if p.changes.Load() > p.known[i] {
			p.pend[i] = append(p.pend[i], (*buf)[:n]...)
			return false, false, errSwitch
		}
		if _, werr := dst.Write((*buf)[:n]); werr != nil {
			return false, false, &writeError{werr}
		}
		p.ev.Relayed(dir, int64(n))
	}
	switch {
	case err == io.EOF:
		return false, true, nil
	case n > 0 && isTimeout(err):
		err = nil // not idle: bytes moved
	}
	return true, false, err
}

// copyBuffered copies up to limit bytes, which src has queued, through a
// pooled buffer.
func copyBuffered(dst io.Writer, src io.Reader, limit int64) (int64, error) {
	buf := records.Get().(*[]byte)
	defer records.Put(buf)
	var done int64
	for done < limit {
		n, err := src.Read((*buf)[:min(int64(len(*buf)), limit-done)])
		if n > 0 {
			if _, werr := dst.Write((*buf)[:n]); werr != nil {
				return done, &writeError{werr}
			}
			done += int64(n)
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// records are the buffers of connections that wrap their socket: one TLS
// record's plaintext (2^14 bytes) each.
var records = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

func (p *pair) moved(dir chaos.Direction, n int64) {
	if n > 0 {
		p.active(dir)
		p.ev.Relayed(dir, n)
	}
}

// smallMessage is the size of the message buffers: what fits is copied
// through user space, more is spliced.
const smallMessage = 4 << 10

var bufs = sync.Pool{New: func() any { b := make([]byte, smallMessage); return &b }}

// RawConn is c's descriptor access, or nil when c has no descriptor (TLS,
// a pipe).
func RawConn(c any) syscall.RawConn {
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

// CloseWrite half-closes c: the peer reads the end of the stream and may
// still send. A connection that cannot half-close is closed.
func CloseWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
