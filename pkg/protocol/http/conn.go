package httpproto

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/cpu"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

const (
	bufSize  = 8 << 10 // each of the four buffers of a connection
	queueLen = 64      // requests in flight before the client is read no further
)

// linger is how long a client may keep sending once the connection is over
// (after a response that closes it): its bytes are read and dropped, so
// that closing the socket with unread data does not reset the connection
// and destroy the last response before the client reads it.
var linger = 2 * time.Second

// Internal outcomes of the two loops.
var (
	errDone          = errors.New("done")                // the loop is over, nothing to report
	errStopped       = errors.New("connection stopping") // another part ended the connection
	errWoken         = errors.New("woken")               // the response loop must stop waiting on the backend
	errFinish        = errors.New("finish")              // the response just relayed ends the connection
	errRaw           = errors.New("switch to raw relay") // framing stops here
	errBackendClosed = errors.New("backend closed")      // the backend ended between responses
	errRejected      = errors.New("request rejected")    // the request being answered had a malformed body
	errIdle          = relay.ErrIdleTimeout              // no byte moved for the route's timeout
	aLongTimeAgo     = time.Unix(1, 0)                   // a deadline that interrupts a blocked read
)

// epoch anchors mono: one monotonic clock read per call, where time.Now
// reads the wall clock too.
var epoch = time.Now()

func mono() time.Duration { return time.Since(epoch) }

// How a connection ends; the first part to decide wins.
const (
	endRunning int32 = iota
	endFinish        // after a response that closes the connection
	endRaw           // handed over to a raw relay
	endFault         // a fault closed or reset it
	endAbort         // an error, the route's end or the idle timeout
)

// Kinds of exchange the response loop carries out.
const (
	kindRelay  uint8 = iota // relay the backend's response
	kindReply               // write an error reply (error fault)
	kindReject              // write 400, 414, 431 or 505: the request head is not forwarded
	kindAbort               // drop the connection instead of the response (abort fault)
)

// What the response loop needs to know of a request, decided by the
// request loop so that the response loop reads the exchange's first fields
// only.
const (
	flagHead    uint8 = 1 << iota // a HEAD request: the response has no body
	flagConnect                   // a CONNECT request
	flagWaits                     // Upgrade or CONNECT: the client is read no further until the answer
	flagClose                     // the request ends the connection after its response
	flagEffect                    // a behavior acts on it: see effect
)

// exchange is one request on its way through, shared by both loops until
// both release it. Exchanges and their head buffers are recycled, so the
// request of a pass-through exchange allocates nothing. The fields the
// response loop reads come first.
type exchange struct {
	refs   atomic.Int32
	kind   uint8
	flags  uint8
	status int
	start  time.Duration // mono
	req    chaos.Request
	effect chaos.Effect
	why    error // the malformed framing of a rejected request, told in the answer
	head   []byte
	rq     request
	body   bodyKind
}

var exchanges = sync.Pool{New: func() any {
	x := new(exchange)
	x.req.Header = x.header
	return x
}}

// header looks a request header up (the first field of that name). The
// request's head stays the exchange's until the exchange is recycled after
// its response.
func (x *exchange) header(name string) string {
	v, _ := lookup(x.head, x.rq.hdrStart, strings.ToLower(name))
	return string(v)
}

// getExchange returns a blank exchange: the one the connection recycled
// last, else one from the pool.
func (c *conn) getExchange() *exchange {
	x := c.spare.Swap(nil)
	if x == nil {
		x = exchanges.Get().(*exchange)
	}
	if x.flags&flagEffect != 0 {
		x.effect = chaos.Effect{}
	}
	x.kind, x.flags, x.status, x.why = kindRelay, 0, 0, nil
	x.head = x.head[:0]
	return x
}

func (c *conn) release(x *exchange) {
	if x.refs.Add(-1) <= 0 {
		c.free(x)
	}
}

// free recycles x. It writes as little of x as it can: it may run in the
// response loop, and what it writes the request loop must fetch back.
func (c *conn) free(x *exchange) {
	if cap(x.head) > 64<<10 {
		x.head = nil
	}
	if !c.spare.CompareAndSwap(nil, x) {
		exchanges.Put(x)
	}
}

// conn is one client connection and its backend connection. The request
// loop (the Serve goroutine) owns the fields of its part: req reads the
// client and writes the backend. The response loop owns those of the
// next part: resp reads the backend and writes the client. Padding keeps
// each loop's fields off the cache lines of the other's.
type conn struct {
	ctx     context.Context
	s       chaos.Session
	client  net.Conn
	backend net.Conn
	host    string // the Host rewrite, "" when off
	idle    time.Duration

	queue   chan *exchange
	decided chan struct{} // an Upgrade or CONNECT was answered without switching
	abortc  chan struct{} // an aborted request has been forwarded
	stopc   chan struct{} // closed when the connection is ending
	stopped sync.Once

	stopAt atomic.Int64 // client reads end then (unix ns); 0 while running
	bstop  atomic.Bool  // backend reads end now
	wake   atomic.Bool  // the request side is over or queued a reply: stop waiting on the backend
	ending atomic.Int32

	hanging    atomic.Bool
	closeDelay atomic.Int64
	rejected   atomic.Pointer[exchange] // its body was malformed: answer 400, not its response

	_     cpu.CacheLinePad
	spare atomic.Pointer[exchange] // handed from the loop that frees to the request loop

	// request loop
	_          cpu.CacheLinePad
	req        side
	cside      clientReader
	up         counter
	reqBody    body
	pendingReq []byte // consumed from the client and not forwarded yet
	lastPath   string
	timers     []*time.Timer

	// response loop
	_           cpu.CacheLinePad
	resp        side
	bside       backendReader
	down        counter
	respBody    body
	rhead       []byte
	rs          response
	pendingResp []byte // consumed from the backend and not relayed yet
	_           cpu.CacheLinePad
}

func newConn(ctx context.Context, s chaos.Session, backend net.Conn, host string) *conn {
	c := &conn{
		ctx: ctx, s: s, client: s.Client(), backend: backend, host: host, idle: s.IdleTimeout(),
		queue:   make(chan *exchange, queueLen),
		decided: make(chan struct{}, 1),
		stopc:   make(chan struct{}),
		up:      counter{ev: s, dir: chaos.ToBackend},
		down:    counter{ev: s, dir: chaos.ToClient},
	}
	c.cside.c, c.bside.c = c, c
	c.req.init(c.client, &c.cside, backend)
	c.resp.init(backend, &c.bside, c.client)
	c.reqBody.cnt, c.respBody.cnt = &c.up, &c.down
	_, ctcp := c.client.(*net.TCPConn)
	_, btcp := backend.(*net.TCPConn)
	if ctcp && btcp {
		c.reqBody.bulk, c.respBody.bulk = c.bulkUp, c.bulkDown
	}
	if c.idle > 0 {
		now := int64(mono())
		c.cside.last.Store(now)
		c.bside.last.Store(now)
	}
	return c
}

// close releases what the connection holds; the engine closes the client.
func (c *conn) close() {
	c.backend.Close()
	c.req.drop()
	c.resp.drop()
	if x := c.spare.Swap(nil); x != nil {
		exchanges.Put(x)
	}
}

// serve runs the response loop beside the request loop and decides how the
// connection ends.
func (c *conn) serve() error {
	stop := context.AfterFunc(c.ctx, func() { c.abort(endAbort) })
	defer stop()
	done := make(chan error, 1)
	go func() { done <- c.responses() }()
	reqErr := c.requests()
	respErr := <-done
	// A pending reset_peer or timeout still strikes a raw relay.
	defer func() {
		for _, t := range c.timers {
			t.Stop()
		}
	}()
	switch c.ending.Load() {
	case endRaw:
		return c.handover()
	case endFault:
		return nil
	}
	if c.ctx.Err() != nil {
		return nil
	}
	for _, err := range []error{respErr, reqErr} {
		if err != nil && !closedByPeer(err) {
			return err
		}
	}
	return nil
}

// idleClock is a loop's part of the idle timeout: when it last read a
// byte, and the read deadline it set. A deadline is set again only once it
// has aged an eighth of the timeout, so that reads do not each pay for a
// timer update; one that fires while the other loop still moves bytes is
// set again to when both will have been idle for the timeout.
type idleClock struct {
	last     atomic.Int64  // mono of the last byte read
	deadline time.Time     // the idle deadline set; zero when none
	setAt    time.Duration // mono when it was set
}

// stale reports whether the idle deadline must be set (again).
func (k *idleClock) stale(idle time.Duration) bool {
	return k.deadline.IsZero() || mono()-k.setAt >= idle/8
}

// idleFor is how long neither loop has read a byte.
func (c *conn) idleFor() time.Duration {
	return mono() - time.Duration(max(c.cside.last.Load(), c.bside.last.Load()))
}

// idleDeadline sets k's deadline to when the connection will have been
// idle for the timeout, and returns it.
func (c *conn) idleDeadline(k *idleClock) time.Time {
	k.deadline = time.Now().Add(c.idle - c.idleFor())
	k.setAt = mono()
	return k.deadline
}

// clientReader is the request loop's view of the client: it keeps the idle
// clock and gives up when the connection stops. (Its inbuf flushes the
// requests buffered for the backend before it reads.)
type clientReader struct {
	c *conn
	idleClock
	failed bool // the client broke the connection (or went idle), rather than ending its stream
}

func (r *clientReader) fill(b *inbuf) (int, error) {
	for {
		if err := r.arm(); err != nil {
			return 0, err
		}
		n, err := b.readConn()
		if n > 0 {
			r.moved()
			return n, err
		}
		if err == nil || !isTimeout(err) {
			if err != nil && err != io.EOF {
				r.failed = true
			}
			return n, err
		}
		if err := r.timedOut(); err != nil {
			r.failed = err == errIdle
			return 0, err
		}
	}
}

// arm sets the read deadline for the next read: the idle timeout, or the
// stop time if sooner. It arms the deadline before it looks at stopAt, so
// that a stop setting its own deadline after the look cannot be undone.
func (r *clientReader) arm() error {
	c := r.c
	var dl time.Time
	if c.idle > 0 {
		if c.hanging.Load() {
			if !r.deadline.IsZero() {
				r.deadline = time.Time{}
				c.client.SetReadDeadline(r.deadline)
			}
		} else if r.stale(c.idle) {
			c.client.SetReadDeadline(c.idleDeadline(&r.idleClock))
		}
		dl = r.deadline
	}
	if at := c.stopAt.Load(); at != 0 {
		if time.Now().UnixNano() >= at {
			return errStopped
		}
		if st := time.Unix(0, at); dl.IsZero() || st.Before(dl) {
			c.client.SetReadDeadline(st)
		}
	}
	return nil
}

// timedOut says what a read deadline meant: nil to read again.
func (r *clientReader) timedOut() error {
	c := r.c
	if at := c.stopAt.Load(); at != 0 && time.Now().UnixNano() >= at {
		return errStopped
	}
	if c.idle > 0 && !c.hanging.Load() && c.idleFor() >= c.idle {
		return errIdle
	}
	r.deadline = time.Time{}
	return nil
}

func (r *clientReader) moved() {
	if r.c.idle > 0 {
		r.last.Store(int64(mono()))
	}
}

// backendReader is the response loop's view of the backend, with the same
// duties; while peeking (waiting for the next response with none due) it
// also gives up when woken.
type backendReader struct {
	c *conn
	idleClock
	cur     *exchange // the exchange being answered, nil between exchanges
	peeking bool
	poked   bool // a wake or stop set a deadline that must be cleared
}

func (r *backendReader) fill(b *inbuf) (int, error) {
	for {
		if err := r.arm(); err != nil {
			return 0, err
		}
		n, err := b.readConn()
		if n > 0 {
			r.moved()
			return n, err
		}
		if err == nil || !isTimeout(err) {
			return n, err
		}
		if err := r.timedOut(); err != nil {
			return 0, err
		}
	}
}

func (r *backendReader) arm() error {
	c := r.c
	if c.idle > 0 {
		if r.poked || r.stale(c.idle) {
			c.backend.SetReadDeadline(c.idleDeadline(&r.idleClock))
			r.poked = false
		}
	} else if r.poked {
		c.backend.SetReadDeadline(time.Time{})
		r.poked = false
	}
	if c.bstop.Load() {
		return errStopped
	}
	if r.peeking && c.wake.Load() {
		return errWoken
	}
	if r.cur != nil && c.rejected.Load() == r.cur {
		return errRejected
	}
	return nil
}

func (r *backendReader) timedOut() error {
	r.poked = true
	if r.c.idle > 0 && r.c.idleFor() >= r.c.idle {
		return errIdle
	}
	return nil
}

func (r *backendReader) moved() {
	if r.c.idle > 0 {
		r.last.Store(int64(mono()))
	}
}

// wakeResponses makes a response loop that waits on the backend look at
// the queue again; used when no backend byte will announce what was queued.
func (c *conn) wakeResponses() {
	if !c.wake.Swap(true) {
		c.backend.SetReadDeadline(aLongTimeAgo)
	}
}

// stopClientReads makes client reads give up at t (unix ns), or earlier if
// already set so.
func (c *conn) stopClientReads(t int64) {
	for {
		old := c.stopAt.Load()
		if old != 0 && old <= t {
			return
		}
		if c.stopAt.CompareAndSwap(old, t) {
			break
		}
	}
	c.client.SetReadDeadline(time.Unix(0, t))
}

func (c *conn) closeStop() { c.stopped.Do(func() { close(c.stopc) }) }

// switchRaw ends the framing: both loops stop where they are, and serve
// hands what they hold to a raw relay.
func (c *conn) switchRaw() {
	if !c.ending.CompareAndSwap(endRunning, endRaw) {
		return
	}
	c.closeStop()
	c.stopClientReads(aLongTimeAgo.UnixNano())
	c.bstop.Store(true)
	c.backend.SetReadDeadline(aLongTimeAgo)
}

// abort closes both connections at once.
func (c *conn) abort(end int32) {
	c.ending.CompareAndSwap(endRunning, end)
	c.closeStop()
	c.client.Close()
	c.backend.Close()
}

// reset closes the client with a TCP RST (reset_peer).
func (c *conn) reset() {
	c.ending.CompareAndSwap(endRunning, endFault)
	c.closeStop()
	relay.Reset(c.client)
	c.backend.Close()
}

// finish ends the connection after a response that closes it: the client
// gets its FIN (after any slow_close delay) and a moment to leave.
func (c *conn) finish() {
	if err := c.resp.out.Flush(); err != nil {
		c.abort(endAbort)
		return
	}
	if d := time.Duration(c.closeDelay.Load()); d > 0 {
		if c.wait(&c.resp, d) != nil {
			return
		}
	}
	if !c.ending.CompareAndSwap(endRunning, endFinish) {
		return
	}
	relay.CloseWrite(c.client)
	c.stopClientReads(time.Now().Add(linger).UnixNano())
	c.closeStop()
}

// wait waits d, or until the connection stops (which the route's end
// does too), for the loop whose side is s: the loop's buffers go back to
// the pool meanwhile if they are empty, and its timer, made on its first
// wait, is reset for the next, so that a delay allocates nothing.
func (c *conn) wait(s *side, d time.Duration) error {
	s.release()
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	select {
	case <-s.timer.C:
		return nil
	case <-c.stopc:
		s.timer.Stop()
		return errStopped
	}
}

// handover writes out what both loops read and did not relay yet, in
// order, and relays the rest of the connection raw.
func (c *conn) handover() error {
	c.client.SetReadDeadline(time.Time{})
	c.backend.SetReadDeadline(time.Time{})
	if err := c.req.out.Flush(); err != nil {
		return nil
	}
	if err := c.resp.out.Flush(); err != nil {
		return nil
	}
	if !c.flushRaw(c.backend, chaos.ToBackend, c.pendingReq, &c.req.in) ||
		!c.flushRaw(c.client, chaos.ToClient, c.pendingResp, &c.resp.in) {
		return nil
	}
	c.pendingReq, c.pendingResp = nil, nil
	c.req.drop()
	c.resp.drop()
	err := relay.Raw(c.ctx, c.s, c.client, c.backend)
	if err != nil && closedByPeer(err) {
		return nil
	}
	return err
}

func (c *conn) flushRaw(dst net.Conn, dir chaos.Direction, pending []byte, r *inbuf) bool {
	buffered := r.bytes()
	var n int64
	for _, b := range [][]byte{pending, buffered} {
		if len(b) == 0 {
			continue
		}
		m, err := dst.Write(b)
		n += int64(m)
		if err != nil {
			c.s.Relayed(dir, n)
			return false
		}
	}
	if n > 0 {
		c.s.Relayed(dir, n)
	}
	return true
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// closedByPeer reports the ordinary ends of a connection in a chaos proxy.
func closedByPeer(err error) bool {
	return err == errStopped || err == errDone || relay.OrdinaryEnd(err)
}

// flushing writes through to the connection at once, so that a filter's
// timing (bandwidth, slicer) reaches the wire.
type flushing struct{ *outbuf }

func (f flushing) Write(p []byte) (int, error) {
	n, err := f.outbuf.Write(p)
	if err == nil {
		err = f.Flush()
	}
	return n, err
}

// bulkMin is the body size from which data moves from socket to socket
// without passing through user space (splice on Linux).
const bulkMin = 64 << 10

// reader is the deadline side of clientReader and backendReader.
type reader interface {
	arm() error
	timedOut() error
	moved()
}

// splice copies up to n bytes from src to dst in the kernel, under the same
// idle and stop rules as reads, and io.EOF if src ends first. Callers flush
// what they buffered for dst first.
func (c *conn) splice(dst, src *net.TCPConn, r reader, n int64) (int64, error) {
	var total int64
	for total < n {
		if err := r.arm(); err != nil {
			return total, err
		}
		k := min(n-total, 1<<20)
		m, err := dst.ReadFrom(&io.LimitedReader{R: src, N: k})
		total += m
		if m > 0 {
			r.moved()
		}
		if err != nil {
			if !isTimeout(err) {
				return total, err
			}
			if err := r.timedOut(); err != nil {
				return total, err
			}
			continue
		}
		if m < k {
			return total, io.EOF
		}
	}
	return total, nil
}

// bulkUp and bulkDown move large request and response bodies with splice
// when both connections are TCP.
func (c *conn) bulkUp(n int64) (int64, error) {
	if err := c.req.out.Flush(); err != nil {
		return 0, err
	}
	return c.splice(c.backend.(*net.TCPConn), c.client.(*net.TCPConn), &c.cside, n)
}

func (c *conn) bulkDown(n int64) (int64, error) {
	if err := c.resp.out.Flush(); err != nil {
		return 0, err
	}
	return c.splice(c.client.(*net.TCPConn), c.backend.(*net.TCPConn), &c.bside, n)
}

// filtered relays head and body through a behavior's filter.
func filtered(ctx context.Context, f chaos.Filter, w io.Writer, head []byte, b *body) error {
	src := io.MultiReader(bytes.NewReader(head), b)
	if err := f.Relay(ctx, w, src); err != nil {
		return err
	}
	if b.kind != bodyNone && !b.done {
		return chaos.ErrClose // the filter stopped early: the framing is lost
	}
	return nil
}
