package kit

import (
	"cmp"
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

// errStopped ends the request loop when the reply loop has returned.
var errStopped = errors.New("reply loop stopped")

// conn is one client connection: its lifecycle is here, the request loop
// in requests.go, the reply loop in replies.go, the fault step in fault.go.
type conn[R any] struct {
	ctx             context.Context
	s               chaos.Session
	f               Framing[R]
	client, backend net.Conn
	cr, br          *Reader // client's input, backend's input
	cw, bw          *Writer // to the client, to the backend
	q               queue[R]
	end             ending
	idle            watchdog
	req             side[R] // the request loop's state
	rep             side[R] // the reply loop's state
	inTurn          bool    // Options.ReplyDelayInTurn
	park            parking
	resumeFn        func() // resume, bound once
	reqDone         chan error
	stopCtx         func() bool
	done            func(error) // called once the connection is over
}

// side is one loop's own state: the Exchanges and the draw it works on
// (kept here so that handing them on allocates nothing) and its timer.
type side[R any] struct {
	x       Exchange[R]
	settled Exchange[R]
	drawn   chaos.Drawn
	wait    relay.Timer
	hanging bool
}

// ending is how the connection ends: once, with the longest close delay
// drawn on it, lingering when the backend went first.
type ending struct {
	once       sync.Once
	closed     atomic.Bool
	clientGone atomic.Bool
	lingering  atomic.Bool
	closeDelay atomic.Int64
	// The backend hears that the client has gone (a FIN) once the reply
	// loop waits for it with nothing left to read: redis, for one, drops
	// the replies it has not sent when it reads the end of a client, and a
	// request blocked in it (BLPOP) ends only then.
	backendIdle atomic.Bool
	fin         sync.Once
	mu          sync.Mutex
	strike      *time.Timer // a reset_peer or timeout that acts later
}

func newConn[R any](ctx context.Context, s chaos.Session, f Framing[R], o Options, backend net.Conn) *conn[R] {
	c := &conn[R]{ctx: ctx, s: s, f: f, client: s.Client(), backend: backend, inTurn: o.ReplyDelayInTurn}
	c.idle.d = s.IdleTimeout()
	// The time of the last byte read tells the idle timeout and parking
	// when the connection went quiet.
	last := &c.idle.last
	c.cw = newWriter(c.client, o.BufSize, s, chaos.ToClient)
	c.bw = newWriter(backend, o.BufSize, s, chaos.ToBackend)
	c.cr = newReader(c.client, o.BufSize, c.bw, last)
	c.br = newReader(backend, o.BufSize, c.cw, last)
	c.q.init()
	c.cr.retry, c.br.retry = true, true
	c.br.parked, c.br.onPark = &c.end.backendIdle, c.finIfClientGone
	c.resumeFn = c.resume
	return c
}

// serve passes the opening and starts the two loops, or parks the
// connection until either side speaks; done gets the connection's end.
func (c *conn[R]) serve(done func(error)) {
	c.done = done
	c.stopCtx = context.AfterFunc(c.ctx, c.closeAll)
	c.idle.start(c.expire)
	if st, ok := c.f.(Starter); ok {
		err := cmp.Or(st.Start(&Opening{Client: c.cr, Backend: c.br, ToClient: c.cw, ToBackend: c.bw, Session: c.s, startTLS: c.startTLS}),
			c.bw.Flush(), c.cw.Flush())
		if err == ErrRaw {
			// What Start looked at and left goes on to its peer first.
			if err = c.handOver(); err == nil {
				if _, err = c.toRaw(); err == nil {
					c.finish(c.raw())
					return
				}
			}
		}
		if err != nil {
			c.closeAll()
			c.finish(quiet(err))
			return
		}
	}
	c.reqDone = make(chan error, 1)
	if c.startParking() {
		return
	}
	go c.runRequests()
	c.runReplies()
}

// finish ends a connection served: the buffers go back, and done hears of
// it.
func (c *conn[R]) finish(err error) {
	c.release()
	c.idle.stop()
	c.stopCtx()
	c.done(err)
}

// runRequests runs the request loop in its goroutine, until it ends or
// the connection parks.
func (c *conn[R]) runRequests() {
	err := c.requests()
	if err == errParked {
		return
	}
	c.q.close()
	c.wake()
	c.reqDone <- err
}

// runReplies runs the reply loop in its goroutine, and ends the
// connection when the loop ends, unless the connection parks.
func (c *conn[R]) runReplies() {
	end, err := c.replies()
	if end == endParked {
		return
	}
	c.stopParking()
	c.finish(c.conclude(end, err))
}

// conclude ends the connection the way the reply loop's end calls for, once the
// request loop is over too.
func (c *conn[R]) conclude(end endKind, err error) error {
	reqDone := c.reqDone
	close(c.q.done)
	switch end {
	case endRaw:
		if rerr := <-reqDone; rerr != nil {
			c.closeAll()
			return quiet(rerr)
		}
		return c.raw()
	case endBackend:
		// The backend has gone: what it said reaches the client, then a
		// FIN (held by a close delay), and the client's input is read and
		// dropped until it leaves, at most relay.LingerTime: closing under
		// unread input would make the kernel reset the connection and
		// lose those last words.
		c.hold()
		c.end.lingering.Store(true)
		relay.CloseWrite(c.client)
		t := time.NewTimer(relay.LingerTime)
		select {
		case rerr := <-reqDone:
			reqDone <- rerr
		case <-t.C:
		case <-c.ctx.Done():
		}
		t.Stop()
	default:
		c.cw.Flush()
		c.hold()
	}
	c.closeAll()
	rerr := <-reqDone
	c.end.stopStrike()
	if err = quiet(err); err != nil {
		return err
	}
	return quiet(rerr)
}

// raw relays the rest of the connection: both loops have handed over what
// they buffered.
func (c *conn[R]) raw() error {
	// What either side sent and was read, and not forwarded yet, goes on
	// first; the raw relay has buffers of its own.
	pass(c.cr, c.bw)
	pass(c.br, c.cw)
	c.release()
	c.idle.stop()
	c.stopParking()
	c.end.stopStrike()
	c.client.SetReadDeadline(time.Time{})
	c.backend.SetReadDeadline(time.Time{})
	return relay.Raw(c.ctx, c.s, c.client, c.backend)
}

// release hands every buffer back once neither loop reads or writes.
func (c *conn[R]) release() {
	for _, r := range []*Reader{c.cr, c.br} {
		r.r = r.w
		r.release()
	}
	for _, w := range []*Writer{c.cw, c.bw} {
		w.n = 0
		w.release()
	}
}

// closeAll ends the connection: both sockets close and every wait returns.
func (c *conn[R]) closeAll() {
	c.end.once.Do(func() {
		c.end.closed.Store(true)
		c.stopParking()
		c.client.Close()
		c.backend.Close()
	})
}

// finIfClientGone half-closes the backend once the client has gone and the
// reply loop waits for the backend (see ending.backendIdle); the two loops
// each check after setting their own flag, so one of them sees both.
func (c *conn[R]) finIfClientGone() {
	if c.end.clientGone.Load() && c.end.backendIdle.Load() {
		c.end.fin.Do(func() { relay.CloseWrite(c.backend) })
	}
}

// reset ends the connection with a reset to the client (reset_peer).
func (c *conn[R]) reset() {
	c.stopParking()
	relay.Reset(c.client)
	c.closeAll()
}

// expire ends a connection that moved no byte for the idle timeout.
func (c *conn[R]) expire() {
	c.end.clientGone.Store(true)
	c.closeAll()
}

// holdClose makes the connection's close wait at least d.
func (c *conn[R]) holdClose(d time.Duration) {
	for {
		old := c.end.closeDelay.Load()
		if int64(d) <= old || c.end.closeDelay.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// hold waits out the longest close delay drawn on the connection, unless
// the client has gone or the connection is closed already.
func (c *conn[R]) hold() {
	d := time.Duration(c.end.closeDelay.Load())
	if d > 0 && !c.end.clientGone.Load() && !c.end.closed.Load() {
		relay.Wait(c.ctx, d)
	}
}

// strike runs fn after d unless the connection ends first; only the first
// drawn strikes.
func (e *ending) strikeAfter(d time.Duration, fn func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.strike == nil {
		e.strike = time.AfterFunc(d, fn)
	}
}

func (e *ending) stopStrike() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.strike != nil {
		e.strike.Stop()
	}
}

// quiet keeps the ordinary ends of a connection in a chaos proxy (the
// client or backend leaving, the route stopping, the idle timeout) from
// being reported as failures.
func quiet(err error) error {
	if err == nil || err == errStopped || err == ErrRaw || relay.OrdinaryEnd(err) ||
		errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

// watchdog closes a connection that moved no byte for d: the Readers note
// the time of each read, and the watchdog looks when the timeout could
// next be over. Nothing is done per read but storing the time.
type watchdog struct {
	d       time.Duration
	last    atomic.Int64
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

func (w *watchdog) start(expire func()) {
	if w.d <= 0 {
		return
	}
	w.last.Store(int64(now()))
	w.mu.Lock()
	defer w.mu.Unlock()
	var check func()
	check = func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.stopped {
			return
		}
		since := now() - time.Duration(w.last.Load())
		if since >= w.d {
			w.stopped = true
			go expire()
			return
		}
		w.t.Reset(w.d - since)
	}
	w.t = time.AfterFunc(w.d, check)
}

func (w *watchdog) stop() {
	if w.d <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.t != nil {
		w.t.Stop()
	}
}
