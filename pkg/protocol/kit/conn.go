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

// conn is one client connection. What only its loops use is in loops,
// which a parked connection drops.
type conn[R any] struct {
	*loops[R]
	ctx             context.Context
	s               chaos.Session
	f               Framing[R]
	client, backend net.Conn
	end             ending
	idle            watchdog
	inTurn          bool // Options.ReplyDelayInTurn
	park            parking
	resumeFn        func() // resume, bound once
	stopCtx         func() bool
	done            func(error)
}

// loops is the state of the two loops, taken when they start (or resume)
// and dropped, empty, when the connection parks: a parked connection holds
// no buffer, queue or Exchange.
type loops[R any] struct {
	cr, br   Reader // the client's input, the backend's input
	cw, bw   Writer // to the client, to the backend
	q        queue[R]
	req, rep side[R]
	reqDone  chan error
}

// side is one loop's own state, kept here so that handing Exchanges on
// allocates nothing.
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
	once                          sync.Once
	closed, clientGone, lingering atomic.Bool
	closeDelay                    atomic.Int64 // written by the request loop only
	// The backend gets the client's FIN only once the reply loop waits for
	// it with nothing left to read: redis drops the replies it has not
	// sent when it reads the end of a client, and a BLPOP ends only then.
	backendIdle atomic.Bool
	fin         sync.Once
	// A reset_peer or timeout that acts later: set by the request loop,
	// stopped once it is over.
	strike *time.Timer
}

func (c *conn[R]) takeLoops() {
	l := new(loops[R])
	last := &c.idle.last // the idle timeout's and parking's clock
	l.cw.init(c.client, BufSize, c.s, chaos.ToClient)
	l.bw.init(c.backend, BufSize, c.s, chaos.ToBackend)
	l.cr.init(c.client, BufSize, &l.bw, last)
	l.br.init(c.backend, BufSize, &l.cw, last)
	l.br.parked, l.br.onPark = &c.end.backendIdle, c.finIfClientGone
	l.q.init(&c.park.reqTop)
	l.reqDone = make(chan error, 1)
	c.loops = l
	if p, ok := c.f.(Parker); ok {
		p.Resume()
	}
}

// serve passes the opening and starts the two loops, or parks the
// connection until either side speaks; done gets the connection's end.
func (c *conn[R]) serve(done func(error)) {
	c.done = done
	// The engine closes a detached connection when its route stops, after
	// the context ended (Close): one that parks from the start needs no
	// watch of its own on the context, which would cost it memory.
	st, starts := c.f.(Starter)
	_, detached := c.s.(chaos.Detacher)
	if _, parks := c.parks(); starts || !detached || !parks {
		c.stopCtx = context.AfterFunc(c.ctx, c.closeAll)
	}
	c.idle.start(func() { // no byte moved for the idle timeout
		c.end.clientGone.Store(true)
		c.closeAll()
	})
	if starts {
		c.takeLoops()
		err := cmp.Or(st.Start(&Opening{Client: &c.cr, Backend: &c.br, ToClient: &c.cw, ToBackend: &c.bw, Session: c.s, startTLS: c.startTLS}),
			c.bw.Flush(), c.cw.Flush())
		if err == ErrRaw {
			c.finish(c.raw())
			return
		}
		if err != nil {
			c.closeAll()
			c.finish(quiet(err))
			return
		}
	}
	if c.startParking() {
		return
	}
	if c.loops == nil {
		c.takeLoops()
	}
	go c.runRequests()
	c.runReplies()
}

func (c *conn[R]) finish(err error) {
	c.release()
	c.idle.stop()
	if c.stopCtx != nil {
		c.stopCtx()
	}
	c.backend.Close()
	c.done(err)
}

func (c *conn[R]) runRequests() {
	err := c.requests()
	if err == errParked {
		return
	}
	c.q.close()
	c.wake()
	c.reqDone <- err
}

// runReplies ends the connection when the reply loop ends, unless it parks.
func (c *conn[R]) runReplies() {
	end, err := c.replies()
	if end == endParked {
		return
	}
	c.stopParking()
	c.finish(c.conclude(end, err))
}

// conclude ends the connection the way the reply loop's end calls for, once
// the request loop is over too.
func (c *conn[R]) conclude(end endKind, err error) error {
	close(c.q.done)
	switch end {
	case endRaw:
		if rerr := <-c.reqDone; rerr != nil {
			c.closeAll()
			return quiet(rerr)
		}
		return c.raw()
	case endBackend:
		// What the backend said reaches the client, then a FIN (after any
		// close delay), and the client's input is dropped until it leaves,
		// for relay.LingerTime at most: closing under unread input would
		// make the kernel reset the connection and lose those last words.
		c.hold()
		c.end.lingering.Store(true)
		relay.CloseWrite(c.client)
		select {
		case rerr := <-c.reqDone:
			c.reqDone <- rerr
		case <-time.After(relay.LingerTime): // collected unfired since Go 1.23
		case <-c.ctx.Done():
		}
	default:
		c.cw.Flush()
		c.hold()
	}
	c.closeAll()
	rerr := <-c.reqDone
	c.end.stopStrike()
	return cmp.Or(quiet(err), quiet(rerr))
}

// raw relays the rest of the connection, once what either side's Reader
// holds (what Start or the loops looked at and left) has gone on to its
// peer; the raw relay has buffers of its own.
func (c *conn[R]) raw() error {
	err := cmp.Or(pass(&c.cr, &c.bw), pass(&c.br, &c.cw))
	c.release()
	c.idle.stop()
	c.stopParking()
	c.end.stopStrike()
	if err != nil {
		c.closeAll()
		return quiet(err)
	}
	c.client.SetReadDeadline(time.Time{})
	c.backend.SetReadDeadline(time.Time{})
	return relay.Raw(c.ctx, c.s, c.client, c.backend)
}

// release hands every buffer back once neither loop reads or writes.
func (c *conn[R]) release() {
	for _, r := range []*Reader{&c.cr, &c.br} {
		r.r = r.w
		r.release()
	}
	for _, w := range []*Writer{&c.cw, &c.bw} {
		w.n = 0
		w.release()
	}
	if p, ok := c.f.(Parker); ok {
		p.Park()
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
// reply loop waits for the backend: each loop checks after setting its own
// flag, so one of them sees both.
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

func (c *conn[R]) holdClose(d time.Duration) {
	if int64(d) > c.end.closeDelay.Load() {
		c.end.closeDelay.Store(int64(d))
	}
}

// hold waits out the longest close delay drawn on the connection.
func (c *conn[R]) hold() {
	d := time.Duration(c.end.closeDelay.Load())
	if d > 0 && !c.end.clientGone.Load() && !c.end.closed.Load() {
		relay.Wait(c.ctx, d)
	}
}

// strikeAfter runs fn after d unless the connection ends first; only the
// first drawn strikes.
func (e *ending) strikeAfter(d time.Duration, fn func()) {
	if e.strike == nil {
		e.strike = time.AfterFunc(d, fn)
	}
}

func (e *ending) stopStrike() {
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

// watchdog closes a connection that moved no byte for d: the Readers store
// the time of each read, and the watchdog looks when the timeout could
// next be over.
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
	w.t = time.AfterFunc(w.d, func() {
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
	})
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.t != nil {
		w.t.Stop()
	}
}
