package relay

import (
	"context"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// A tcp connection draws once, when it is accepted, and carries out that
// draw as the original Vaurien did. When the route's mix changes while it
// is open, the change gives it a new draw (made by the route's change hook,
// or by the connection itself if it reads first), which it carries out from
// its next read on, in either direction:
//
//   - delay holds each next chunk of its direction (before: to the
//     backend, before = false: to the client) for its sleep;
//   - filters (bandwidth, slicer, corrupt, limit_data, error's random
//     bytes) take the next chunk and the rest of the stream;
//   - blackout closes the connection, reset_peer with no timeout resets
//     it, and abort forwards that one chunk to the backend and drops the
//     connection, all at the next read;
//   - hang and timeout hold the traffic: at most one chunk per direction
//     is read and kept, nothing moves, and what was held moves on when the
//     mix changes again (the client leaving ends the connection);
//   - reset_peer and timeout with a timeout count it from the change,
//     whether data moves or not;
//   - down leaves the connection alone, as it leaves open connections
//     alone; dummy relays at full speed again, spliced.
//
// Waits (delays, holds, a filter's pauses) end at the change; a filter's
// context is canceled then. The only cost to a connection whose mix never
// changes is one atomic load of the route's change counter per read.

// errSwitch ends what a direction carries out when the mix changed: the
// direction goes on with the connection's new draw.
var errSwitch = chaos.ErrMixChanged

// errClosed ends a wait of a connection that was closed.
var errClosed = net.ErrClosed

// live is the draw a connection carries out.
type live struct {
	mu       sync.Mutex
	follower chaos.Follower // nil: the connection keeps its first draw
	seen     uint64         // the version of the draw in force
	effect   chaos.Effect
	redrawn  bool          // effect came from a change of the mix
	wake     chan struct{} // made by a wait, closed by the next change
	stops    [2]context.CancelCauseFunc
	strike   *time.Timer // a reset_peer or timeout counting its timeout
	closed   bool        // closeAll ran
	poller   *poller     // relaying the connection: closeAll asks it to close
	ended    bool        // the connection is over
}

// first draws the connection's behavior and, when the session follows the
// route's mix, registers for its changes.
func (p *pair) first(s chaos.Session) chaos.Effect {
	f, ok := s.(chaos.Follower)
	if !ok {
		p.changes = &still
		var d chaos.Drawn
		s.Draw(nil, &d)
		p.live.effect = d.Effect
		return p.live.effect
	}
	l := &p.live
	l.mu.Lock()
	defer l.mu.Unlock()
	l.follower = f
	// A change that lands between Follow and Redraw waits for the lock,
	// then finds the draw made.
	p.changes = f.Follow(p)
	d, v := f.Redraw()
	l.seen, l.effect = v, d.Effect
	p.known = [2]uint64{v, v}
	return l.effect
}

// MixChanged is the route's change hook: the connection draws now, so
// that a timed fault counts from the change and waits end.
func (p *pair) MixChanged() {
	p.live.mu.Lock()
	p.catchUp()
	p.live.mu.Unlock()
}

// current returns the draw direction i carries out now, drawing again if
// the mix changed since the last draw.
func (p *pair) current(i int) (chaos.Effect, bool) {
	l := &p.live
	l.mu.Lock()
	defer l.mu.Unlock()
	p.catchUp()
	p.known[i] = l.seen
	return l.effect, l.redrawn
}

// catchUp draws again when the mix changed since the draw in force. The
// caller holds live.mu.
func (p *pair) catchUp() {
	l := &p.live
	if l.follower == nil || l.ended || l.closed || p.changes.Load() <= l.seen {
		return
	}
	d, v := l.follower.Redraw()
	l.seen, l.effect, l.redrawn = v, d.Effect, true
	if l.effect.Fault == chaos.FaultRefuse {
		l.effect = chaos.Effect{} // down leaves open connections alone
	}
	if l.strike != nil {
		l.strike.Stop()
		l.strike = nil
	}
	l.wakeAll(errSwitch)
	p.arm(&l.effect)
}

// armFirst starts the timeout of the first draw's reset_peer or timeout
// once the backend is connected, unless a change replaced the draw.
func (p *pair) armFirst(e *chaos.Effect) {
	l := &p.live
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.redrawn {
		p.arm(e)
	}
}

// arm starts the timeout of a reset_peer or timeout fault: when it
// expires, while the draw is still in force, the connection is reset or
// closed. The caller holds live.mu.
func (p *pair) arm(e *chaos.Effect) {
	if e.After <= 0 || (e.Fault != chaos.FaultReset && e.Fault != chaos.FaultTimeout) {
		return
	}
	l := &p.live
	v, fault := l.seen, e.Fault
	l.strike = time.AfterFunc(e.After, func() {
		l.mu.Lock()
		current := l.seen == v && !l.ended
		if current && fault == chaos.FaultReset {
			// Under the lock: a bare client's socket is closed only once
			// the connection has ended.
			if p.bare {
				unix.SetsockoptLinger(p.bareFD, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
			} else if c := p.conns[0]; c != nil {
				Reset(c)
			}
		}
		l.mu.Unlock()
		if current {
			p.closeAll()
		}
	})
}

// wakeAll ends the waits and the filters in progress, for cause. The
// caller holds live.mu.
func (l *live) wakeAll(cause error) {
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
	for i, stop := range l.stops {
		if stop != nil {
			stop(cause)
			l.stops[i] = nil
		}
	}
}

// finish marks the connection over: change hooks and timers that come
// later do nothing.
func (p *pair) finish() {
	l := &p.live
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = true
	if l.strike != nil {
		l.strike.Stop()
		l.strike = nil
	}
}

// waitChan returns a channel closed at the next change of the mix or when
// the connection is closed; errSwitch when direction i's draw is already
// replaced.
func (p *pair) waitChan(i int) (<-chan struct{}, error) {
	l := &p.live
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errClosed
	}
	if p.changes.Load() > p.known[i] {
		return nil, errSwitch
	}
	if l.wake == nil {
		l.wake = make(chan struct{})
	}
	return l.wake, nil
}

// wait waits d for direction dir, or until the mix changes (errSwitch),
// the connection is closed or ctx ends.
func (p *pair) wait(ctx context.Context, dir chaos.Direction, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	i := dirIndex(dir)
	wake, err := p.waitChan(i)
	if err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-wake:
		return p.woken(i)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// woken tells why a wait of direction i ended early.
func (p *pair) woken(i int) error {
	l := &p.live
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errClosed
	}
	return errSwitch
}

// stage carries out effect e on one direction until the source ends (nil),
// an error, or a change of the mix (errSwitch). e is the connection's
// first draw, whose delay, hang and abort were carried out before the
// backend was dialed, or a redrawn one.
func (p *pair) stage(ctx context.Context, dir chaos.Direction, dst, src net.Conn, e *chaos.Effect, redrawn bool) error {
	switch {
	case !redrawn && e.Fault == chaos.FaultTimeout:
		return p.drop(dir, src)
	case redrawn && (e.Fault == chaos.FaultHang || e.Fault == chaos.FaultTimeout):
		return p.hold(ctx, dir, src)
	case redrawn && (e.Fault == chaos.FaultClose || e.Fault == chaos.FaultAbort ||
		e.Fault == chaos.FaultReset && e.After <= 0):
		return p.strikeAtRead(dir, dst, src, e.Fault)
	}
	var each time.Duration // a delay per chunk, for a redrawn delay
	switch {
	case !redrawn && dir == chaos.ToClient:
		if err := p.wait(ctx, dir, e.ResponseDelay); err != nil {
			return err
		}
	case redrawn && dir == chaos.ToBackend:
		each = e.Delay
	case redrawn:
		each = e.ResponseDelay
	}
	f := e.Filter(dir)
	if f == nil && each == 0 {
		return p.copy(dir, dst, src)
	}
	r := &reader{p: p, ctx: ctx, dir: dir, src: src, each: each}
	w := &Counter{W: dst, Events: p.ev, Dir: dir}
	if f == nil {
		buf := getStageBuf()
		defer putStageBuf(buf)
		_, err := io.CopyBuffer(w, r, *buf)
		if r.switched {
			return errSwitch
		}
		return err
	}
	fctx, err := p.filterContext(ctx, dirIndex(dir))
	if err != nil {
		return err
	}
	err = f.Relay(fctx, w, r)
	p.endFilter(dirIndex(dir))
	if err == chaos.ErrClose {
		return err // the filter acted: that ends the connection
	}
	if r.switched || context.Cause(fctx) == errSwitch {
		return errSwitch
	}
	return err
}

// filterContext returns a context for a filter of direction i that a
// change of the mix cancels.
func (p *pair) filterContext(ctx context.Context, i int) (context.Context, error) {
	l := &p.live
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errClosed
	}
	if p.changes.Load() > p.known[i] {
		return nil, errSwitch
	}
	fctx, cancel := context.WithCancelCause(ctx)
	l.stops[i] = cancel
	return fctx, nil
}

// endFilter releases the context of direction i's filter.
func (p *pair) endFilter(i int) {
	l := &p.live
	l.mu.Lock()
	defer l.mu.Unlock()
	if stop := l.stops[i]; stop != nil {
		stop(context.Canceled)
		l.stops[i] = nil
	}
}

// drop reads what src sends and drops it: the first draw's timeout. The end
// of either side ends the connection.
func (p *pair) drop(dir chaos.Direction, src net.Conn) error {
	buf := getStageBuf()
	defer putStageBuf(buf)
	r := reader{p: p, dir: dir, src: src}
	for {
		if _, err := r.Read(*buf); r.switched {
			return errSwitch
		} else if err != nil {
			p.closeAll()
			return nil
		}
	}
}

// hold moves nothing: it reads one chunk at most and keeps it for the next
// draw, until the mix changes. The client's end ends the connection, as a
// hung connection's would.
func (p *pair) hold(ctx context.Context, dir chaos.Direction, src net.Conn) error {
	i := dirIndex(dir)
	if len(p.pend[i]) == 0 {
		buf := getStageBuf()
		r := reader{p: p, dir: dir, src: src}
		n, err := r.Read(*buf)
		if n > 0 {
			p.pend[i] = append(p.pend[i], (*buf)[:n]...)
		}
		putStageBuf(buf)
		switch {
		case r.switched:
			return errSwitch
		case err == io.EOF && dir == chaos.ToBackend:
			return chaos.ErrClose
		case err != nil && err != io.EOF:
			return err
		}
	}
	wake, err := p.waitChan(i)
	if err != nil {
		return err
	}
	select {
	case <-wake:
		return p.woken(i)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// strikeAtRead carries out a redrawn blackout, reset_peer or abort at the
// next chunk src sends.
func (p *pair) strikeAtRead(dir chaos.Direction, dst, src net.Conn, fault chaos.Fault) error {
	buf := getStageBuf()
	defer putStageBuf(buf)
	r := reader{p: p, dir: dir, src: src}
	n, err := r.Read(*buf)
	if r.switched {
		return errSwitch
	}
	if err != nil && err != io.EOF {
		return err
	}
	switch fault {
	case chaos.FaultReset:
		Reset(p.conns[0])
	case chaos.FaultAbort:
		if dir == chaos.ToBackend && n > 0 {
			if m, _ := dst.Write((*buf)[:n]); m > 0 {
				p.ev.Relayed(dir, int64(m))
			}
		}
		Reset(p.conns[1])
	}
	return chaos.ErrClose
}

// reader is a direction's source as filters and waits see it: bytes kept
// from the previous draw first, then src, with the idle rule of the splice
// path and an optional delay per chunk. When the mix changes, it keeps what
// it read for the next draw and gives end of stream, with switched set.
type reader struct {
	p        *pair
	ctx      context.Context // for the delay per chunk
	dir      chaos.Direction
	src      net.Conn
	each     time.Duration // hold each chunk this long
	switched bool
}

func (r *reader) Read(b []byte) (int, error) {
	p, i := r.p, dirIndex(r.dir)
	if r.switched {
		return 0, io.EOF
	}
	if pend := p.pend[i]; len(pend) > 0 {
		if err := r.delay(nil); err != nil {
			return 0, err
		}
		n := copy(b, pend)
		p.pend[i] = pend[:copy(pend, pend[n:])]
		return n, nil
	}
	for {
		if p.idle > 0 {
			r.src.SetReadDeadline(time.Now().Add(p.idle))
		}
		n, err := r.src.Read(b)
		if n > 0 {
			p.active(r.dir)
			if p.changes.Load() > p.known[i] {
				p.pend[i] = append(p.pend[i], b[:n]...)
				r.switched = true
				return 0, io.EOF
			}
			if err := r.delay(b[:n]); err != nil {
				return 0, err
			}
			return n, nil
		}
		if err != nil && isTimeout(err) {
			if p.bothIdle(r.dir) {
				return 0, ErrIdleTimeout
			}
			continue
		}
		return n, err
	}
}

// delay holds the chunk got (nil: the pending bytes) for r.each. A change
// during the wait keeps the chunk for the next draw.
func (r *reader) delay(got []byte) error {
	if r.each <= 0 {
		return nil
	}
	err := r.p.wait(r.ctx, r.dir, r.each)
	if err == errSwitch {
		i := dirIndex(r.dir)
		r.p.pend[i] = append(r.p.pend[i], got...)
		r.switched = true
		return io.EOF
	}
	return err
}

// stageBufs lend a buffer to a direction that relays through user space
// under a behavior.
var stageBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func getStageBuf() *[]byte  { return stageBufs.Get().(*[]byte) }
func putStageBuf(b *[]byte) { stageBufs.Put(b) }
