package kit

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vaurien-go/vaurien/pkg/relay"
)

// parkAfter is how long a connection stays quiet before it parks: a busy
// connection pays one look per parkAfter, nothing per request.
const parkAfter = time.Second

// errParked ends a loop's goroutine: the connection parked, and the loop
// resumes at its top in a goroutine of its own.
var errParked = errors.New("parked")

// parking is how an idle connection leaves its goroutines. When both loops
// wait at their tops (the request loop for the client with nothing
// buffered, the reply loop for the backend with nothing queued) and no
// byte came for parkAfter, a look (lookIdle) asks both to leave and
// interrupts their waits with a read deadline; once both are out, the
// relay's poller watches the two sockets, and the first that is readable,
// ends or fails resumes both loops in fresh goroutines. A loop that finds
// anything else than the interruption calls the park off, and brings the
// other back if it left. A connection also starts parked, past its opening.
//
// A parked connection's descriptors belong to the poller: whatever closes
// the connection stops the watch first (stopParking), and the loops resume
// to see the end.
type parking struct {
	mu sync.Mutex
	t  *time.Timer // the next look, while the loops run
	// want asks both loops to leave; written under mu.
	want atomic.Bool
	// A loop waits at its top. A look sets want before it reads them, and
	// a loop clears its own before it reads want: one sees the other.
	reqTop, repTop atomic.Bool
	out            int             // loops that left; 2: the poller has them
	w              *relay.Watching // the poller's watch while parked
	off            bool            // the connection ends or goes raw
}

// startParking parks the connection past its opening (true), and looks for
// quiet from then on. A connection never parks when a side has no
// descriptor (TLS), or when the session cannot let the kit close the client
// (CloseWith), whose descriptor must leave the poller first.
func (c *conn[R]) startParking() bool {
	cl, ok := c.parks()
	if !ok {
		return false
	}
	p := &c.park
	cl.CloseWith(c)
	if c.ctx.Err() != nil { // the route stopped before it could close with c
		c.closeAll()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off {
		return false
	}
	c.idle.last.Store(int64(now()))
	if c.toPoller() {
		return true
	}
	p.t = time.AfterFunc(parkAfter, c.lookIdle)
	return false
}

// toPoller hands the connection to the poller's watch, under p.mu, unless a
// loop holds something (a Writer may hold what a loop that left before its
// wait's flush wrote).
func (c *conn[R]) toPoller() bool {
	p := &c.park
	if c.loops != nil && (c.cr.Buffered() > 0 || c.br.Buffered() > 0 || c.cw.n > 0 || c.bw.n > 0 || c.q.n.Load() > 0) {
		return false
	}
	if p.w = relay.Watch(c.client, c.backend, c.resumeFn); p.w == nil {
		return false
	}
	p.out, p.t = 2, nil // p.t is not pending: the look that asked fired, or none was set
	if c.loops != nil {
		c.release()
		c.loops = nil
	}
	return true
}

func (c *conn[R]) parks() (interface{ CloseWith(io.Closer) }, bool) {
	cl, ok := c.s.(interface{ CloseWith(io.Closer) })
	_, fd1 := c.client.(syscall.Conn)
	_, fd2 := c.backend.(syscall.Conn)
	return cl, ok && fd1 && fd2
}

// Close is the engine's close of the client: the connection resumes if
// parked, and its client closes as it would otherwise; when the route
// stops (its context ended), the whole connection closes.
func (c *conn[R]) Close() error {
	if c.ctx.Err() != nil {
		c.closeAll()
	} else {
		c.stopParking()
		c.client.Close()
	}
	return nil
}

// lookIdle asks both loops to leave when the connection has been quiet for
// parkAfter, and looks again later otherwise.
func (c *conn[R]) lookIdle() {
	p := &c.park
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.off || p.w != nil || p.want.Load() {
		return // the resume or the called-off park looks again
	}
	quiet := now() - time.Duration(c.idle.last.Load())
	if quiet < parkAfter {
		p.t.Reset(parkAfter - quiet)
		return
	}
	p.want.Store(true)
	if !p.reqTop.Load() || !p.repTop.Load() {
		p.want.Store(false)
		p.t.Reset(parkAfter)
		return
	}
	c.client.SetReadDeadline(aLongTimeAgo)
	c.backend.SetReadDeadline(aLongTimeAgo)
}

// leave takes the calling loop out of its goroutine when a park is asked;
// the last one out hands the connection to the poller. false: the loop
// stays, and the other is back if it had left.
func (c *conn[R]) leave(req bool) bool {
	p := &c.park
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.want.Load() {
		return false
	}
	if p.out == 0 && !p.off {
		p.out = 1
		return true
	}
	p.want.Store(false)
	if p.out == 1 && !p.off && c.toPoller() {
		return true
	}
	c.rejoin(req)
	return false
}

// stay calls off a park asked of a loop that found something else than the
// interruption at its top.
func (c *conn[R]) stay(req bool) {
	p := &c.park
	if !p.want.Load() {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.want.Load() {
		return
	}
	p.want.Store(false)
	// A read past its top now (a body spliced) must not find the look's
	// deadlines.
	c.client.SetReadDeadline(time.Time{})
	c.backend.SetReadDeadline(time.Time{})
	c.rejoin(req)
}

// resume brings both loops back, from the poller, unless the watch was
// stopped meanwhile.
func (c *conn[R]) resume() {
	p := &c.park
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w == nil {
		return
	}
	c.client.SetReadDeadline(time.Time{})
	c.backend.SetReadDeadline(time.Time{})
	c.rejoin(true)
}

// stopParking parks the connection no more, and resumes it if parked.
func (c *conn[R]) stopParking() {
	p := &c.park
	p.mu.Lock()
	defer p.mu.Unlock()
	p.off = true
	if p.t != nil {
		p.t.Stop()
	}
	if p.w != nil && p.w.Stop() { // otherwise resume, on its way, does it
		c.rejoin(true)
	}
}

// rejoin brings back the loops that left, under p.mu: the one other than
// the caller (req: the request loop), or both when the poller had them.
func (c *conn[R]) rejoin(req bool) {
	p := &c.park
	if p.out == 2 {
		c.takeLoops()
	}
	if p.out == 2 || p.out == 1 && !req {
		go c.runRequests()
	}
	if p.out == 2 || p.out == 1 && req {
		go c.runReplies()
	}
	p.w, p.out = nil, 0
	switch {
	case p.off:
	case p.t == nil:
		p.t = time.AfterFunc(parkAfter, c.lookIdle)
	default:
		p.t.Reset(parkAfter)
	}
}
