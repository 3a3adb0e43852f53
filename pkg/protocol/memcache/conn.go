package memcache

import (
	"bufio"
	"context"
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

// bufSize sizes each of a connection's four buffers. It is memcached's own
// read buffer size: a request line that does not fit is one memcached
// rejects too (except get and gets, whose long key lists are streamed).
const bufSize = 16 << 10

// queueLen bounds the requests forwarded but not yet answered. A longer
// pipeline waits for answers to drain: back-pressure, never unbounded memory.
const queueLen = 128

// binaryMagic starts every request of memcached's binary protocol.
const binaryMagic = 0x80

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, bufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}

	noop = []byte("mn\r\n")

	errIdle    = errors.New("idle timeout")
	errStopped = errors.New("response side stopped")
	errWoken   = errors.New("woken for a record")

	// longAgo is a read deadline that has passed: setting it interrupts a
	// blocked read at once.
	longAgo = time.Unix(1, 0)
)

// op is what the response side does for one record.
type op uint8

const (
	opOne     op = iota // relay one response
	opNone              // nothing comes back (noreply, or an error swallowed for a noreply request)
	opQuiet             // a quiet meta request: its answer, if any, comes with its run
	opNoop              // the client's mn: relay the run's answers and the MN
	opQuit              // quit: nothing comes back; the backend closes
	opRunEnd            // the proxy's own mn: relay the run's answers, drop the MN
	opReply             // write the record's synthetic error reply
	opHang              // answer nothing from here on
	opAbort             // drop both connections before the answer
	opRaw               // stop framing: the rest of the connection is relayed raw
	opDrained           // every earlier answer has arrived: close the record's done
)

// record is what the reader tells the response side about one request, in
// the order the requests went to the backend.
type record struct {
	op    op
	req   *chaos.Request
	start time.Duration // now() when the request was read
	fx    *effect       // nil when the draw changes nothing on the way back
	done  chan struct{} // for opDrained
}

// epoch anchors now: durations on the monotonic clock fit a record in
// 8 bytes where a time.Time takes 24.
var epoch = time.Now()

func now() time.Duration { return time.Since(epoch) }

// took is how long the request's exchange has lasted.
func (r *record) took() time.Duration { return now() - r.start }

// effect is the response-side part of a drawn Effect.
type effect struct {
	delay    time.Duration // ResponseDelay
	corrupt  bool          // error with inject
	reply    []byte        // the SERVER_ERROR line
	toClient chaos.Filter
}

var opOf = [...]op{kindOne: opOne, kindNone: opNone, kindQuiet: opQuiet, kindNoop: opNoop, kindQuit: opQuit, kindStream: opRaw}

// conn serves one client connection. The reader goroutine owns cr and bw
// (client → backend); the response side owns br and cw (backend → client).
type conn struct {
	ctx     context.Context
	s       chaos.Session
	client  net.Conn
	backend net.Conn
	p       *protocol
	idle    time.Duration
	last    atomic.Int64 // unix nanoseconds of the last byte read from either side

	csrc   *source
	cpoll  poller
	cr     *bufio.Reader // nil while the reader waits for the client in the poller
	bw     *bufio.Writer // likewise
	up     int64         // bytes in bw not yet reported
	run    bool          // quiet requests forwarded and not yet followed by an mn
	atLine bool          // the reader is between requests, where an mn may be slipped in
	q      chan record
	upWait relay.Timer // the request side's delays

	bsrc     *source
	bpoll    poller
	br       *bufio.Reader // nil while the response side waits in the poller
	cw       *bufio.Writer // likewise
	down     int64         // bytes in cw not yet reported
	pending  []record
	downWait relay.Timer // the response side's delays
	hanging  bool
	f        framer

	// The response side waits on the backend while it has no record (see
	// next); parked says it does, woken that the reader queued a record
	// that needs no answer and interrupted that wait.
	parked atomic.Bool
	woken  atomic.Bool

	respDone   chan struct{}
	done       chan struct{}
	strikes    sync.WaitGroup
	closeDelay atomic.Int64
	clientGone atomic.Bool
	closed     atomic.Bool
	closeOnce  sync.Once
}

// source is the reader under a connection's bufio.Reader. Before it can
// block on the network it flushes what its goroutine has buffered for the
// other side, so a request or answer never waits in a buffer while the
// proxy waits for more. It enforces the idle timeout and, on the backend
// side, lets the reader interrupt the response side's wait (see next).
// Inside the poller's readiness callback (polling) it is instead a single
// read(2) that never waits.
type source struct {
	c       *conn
	nc      net.Conn
	client  bool
	polling bool
	fd      uintptr // the descriptor while polling
}

func (s *source) Read(p []byte) (int, error) {
	c := s.c
	if s.polling {
		return s.readNow(p)
	}
	var err error
	if s.client {
		err = c.beforeClientRead()
	} else {
		err = c.flushClient()
	}
	if err != nil {
		return 0, err
	}
	for {
		if c.idle > 0 {
			s.nc.SetReadDeadline(time.Now().Add(c.idle))
		}
		// Checked after the deadline is set: a wake-up that came before
		// is seen here, one that comes after interrupts the read.
		if !s.client && c.consumeWake() {
			return 0, errWoken
		}
		n, err := s.nc.Read(p)
		if n > 0 || err == nil {
			if c.idle > 0 {
				c.last.Store(time.Now().UnixNano())
			}
			return n, err
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		if !s.client && c.consumeWake() {
			s.nc.SetReadDeadline(time.Time{})
			return 0, errWoken
		}
		if c.idle > 0 {
			if time.Since(time.Unix(0, c.last.Load())) >= c.idle {
				return 0, errIdle
			}
			continue
		}
		if s.client {
			return n, err
		}
		// A wake-up deadline that arrived after the wait was over.
		s.nc.SetReadDeadline(time.Time{})
	}
}

// readNow reads what has arrived; relay.ErrNotReady when nothing has.
func (s *source) readNow(p []byte) (int, error) {
	n, err := relay.ReadReady(s.fd, p)
	if n > 0 && s.c.idle > 0 {
		s.c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// consumeWake reports, once, that the reader woke the waiting response side.
func (c *conn) consumeWake() bool {
	return c.parked.Load() && c.woken.Load() && c.woken.CompareAndSwap(true, false)
}

// wake interrupts the response side's wait on the backend, for a record
// that needs no answer from it. The flag is set before the deadline, and
// the waiting side checks it after setting its own deadline: one of them
// sees the other.
func (c *conn) wake() {
	c.woken.Store(true)
	if c.parked.Load() {
		c.backend.SetReadDeadline(longAgo)
	}
}

func newConn(ctx context.Context, p *protocol, s chaos.Session, client, backend net.Conn) *conn {
	c := &conn{
		ctx: ctx, s: s, client: client, backend: backend, p: p,
		idle:     s.IdleTimeout(),
		q:        make(chan record, queueLen),
		respDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.last.Store(time.Now().UnixNano())
	c.csrc = &source{c: c, nc: client, client: true}
	c.bsrc = &source{c: c, nc: backend}
	c.cpoll.init(client, c.csrc, &c.cr, c.acquireReader, c.releaseReader)
	c.bpoll.init(backend, c.bsrc, &c.br, c.acquireResponder, c.releaseResponder)
	c.acquireReader()
	c.acquireResponder()
	c.f.bulk = c.toClient
	return c
}

// The buffers (64 KiB a connection) are held only while there is
// something to read: each side hands its pair back to the pools when it
// finds nothing to read and waits in the poller for an idle peer, and takes
// a pair again for the read that ends the wait, so an idle connection costs
// its two sockets and little more.

func (c *conn) acquireReader() {
	c.cr = readers.Get().(*bufio.Reader)
	c.cr.Reset(c.csrc)
	c.bw = writers.Get().(*bufio.Writer)
	c.bw.Reset(c.backend)
}

func (c *conn) releaseReader() {
	put(&c.cr, &c.bw)
}

func (c *conn) acquireResponder() {
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(c.bsrc)
	c.cw = writers.Get().(*bufio.Writer)
	c.cw.Reset(c.client)
	c.f.br = c.br
}

func (c *conn) releaseResponder() {
	put(&c.br, &c.cw)
	c.f.br = nil
}

func put(r **bufio.Reader, w **bufio.Writer) {
	if *r != nil {
		(*r).Reset(nil)
		readers.Put(*r)
		*r = nil
	}
	if *w != nil {
		(*w).Reset(nil)
		writers.Put(*w)
		*w = nil
	}
}

// release returns the buffers to their pools once both loops are over.
func (c *conn) release() {
	c.releaseReader()
	c.releaseResponder()
}

// poller waits for a connection to be readable, holding no buffer, and
// reads what has arrived in the readiness callback itself, into the side's
// reader: ending a wait costs the one read(2) that a blocking read would
// make, with no peek before it.
type poller struct {
	rc      syscall.RawConn // nil when the connection has no descriptor: then there is no waiting here
	src     *source
	r       **bufio.Reader // the side's reader, nil while its buffers are in the pools
	acquire func()
	release func()
	err     error
	ready   func(fd uintptr) bool // bound once, so that a wait allocates nothing
}

func (p *poller) init(nc net.Conn, src *source, r **bufio.Reader, acquire, release func()) {
	p.src, p.r, p.acquire, p.release = src, r, acquire, release
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			p.rc = rc
		}
	}
	p.ready = p.check
}

// check reads into the reader, which is empty whenever a side waits. With
// nothing to read the buffers go back to the pools before the goroutine
// parks; the next call takes them again.
func (p *poller) check(fd uintptr) bool {
	if *p.r == nil {
		p.acquire()
	}
	p.src.polling, p.src.fd = true, fd
	_, err := (*p.r).Peek(1)
	p.src.polling = false
	if err == relay.ErrNotReady {
		p.release()
		return false
	}
	p.err = err // nil with data, else the end of the stream or an error
	return true
}

// wait returns once something was read, with the end of the stream, the
// read's error or the poller's (a deadline, a close). The side holds its
// buffers again when it returns.
func (p *poller) wait() error {
	p.err = nil
	err := p.rc.Read(p.ready)
	if *p.r == nil {
		p.acquire()
	}
	if err != nil {
		return err
	}
	return p.err
}

// waitClient waits, holding no buffer, until the client sends more or
// leaves, under the idle timeout. With a descriptor, what the client sent
// is in cr when it returns nil.
func (c *conn) waitClient() error {
	if c.cpoll.rc == nil {
		return nil
	}
	for {
		if c.idle > 0 {
			c.client.SetReadDeadline(time.Now().Add(c.idle))
		}
		err := c.cpoll.wait()
		if c.idle == 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if time.Since(time.Unix(0, c.last.Load())) >= c.idle {
			return errIdle
		}
	}
}

// waitBackend waits, holding no buffer, until the backend sends more or
// ends, under the idle timeout; errWoken when the reader interrupts it.
// It returns nil once br holds some of the answer.
func (c *conn) waitBackend() error {
	if c.br.Buffered() > 0 {
		return nil
	}
	if c.bpoll.rc == nil {
		_, err := c.br.Peek(1)
		return err
	}
	for {
		if c.idle > 0 {
			c.backend.SetReadDeadline(time.Now().Add(c.idle))
		}
		if c.consumeWake() {
			return errWoken
		}
		err := c.bpoll.wait()
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if c.consumeWake() {
			if c.idle == 0 {
				c.backend.SetReadDeadline(time.Time{})
			}
			return errWoken
		}
		if c.idle > 0 {
			if time.Since(time.Unix(0, c.last.Load())) >= c.idle {
				return errIdle
			}
			continue
		}
		c.backend.SetReadDeadline(time.Time{}) // a wake-up that came after the wait
	}
}

// serve runs the two loops and, when framing gave up, the raw relay.
func (c *conn) serve() error {
	stop := context.AfterFunc(c.ctx, c.closeBoth)
	defer stop()
	type result struct {
		raw bool
		err error
	}
	readDone := make(chan result, 1)
	go func() {
		raw, err := c.readLoop()
		readDone <- result{raw, err}
	}()
	drained, raw, werr := c.writeLoop()
	close(c.respDone)
	if !drained && !raw {
		// The answers ended first (backend gone, abort, client unwritable):
		// end the connection, which also stops the reader.
		c.hold()
		c.closeBoth()
	}
	r := <-readDone
	close(c.done)
	c.strikes.Wait()
	if raw && r.raw {
		c.client.SetReadDeadline(time.Time{})
		c.backend.SetReadDeadline(time.Time{})
		return relay.Raw(c.ctx, c.s, c.client, c.backend)
	}
	if drained {
		c.hold()
	}
	if werr != nil && !errors.Is(werr, errStopped) {
		return werr
	}
	return normalEnd(r.err)
}

// hold waits out the longest close delay drawn on the connection, unless
// the client has already gone.
func (c *conn) hold() {
	if d := time.Duration(c.closeDelay.Load()); d > 0 && !c.clientGone.Load() && !c.closed.Load() {
		relay.Wait(c.ctx, d)
	}
}

func (c *conn) closeBoth() {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.client.Close()
		c.backend.Close()
	})
}

// strike runs fn after d unless the connection ends first.
func (c *conn) strike(d time.Duration, fn func()) {
	c.strikes.Go(func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			fn()
		case <-c.done:
		case <-c.ctx.Done():
		}
	})
}

// bulk moves n bytes from src to dst, both TCP connections, with the
// kernel's splice where it has it: the unbuffered part of a large data
// block needs no copy through the proxy. ok is false, with nothing moved,
// when the connections are not TCP. Each chunk renews the idle deadline; a
// stale wake-up deadline on the backend is cleared and the copy goes on.
func (c *conn) bulk(dst, src net.Conn, n int64) (moved int64, ok bool, err error) {
	to, ok1 := dst.(*net.TCPConn)
	_, ok2 := src.(*net.TCPConn)
	if !ok1 || !ok2 {
		return 0, false, nil
	}
	for moved < n {
		chunk := min(n-moved, 1<<20)
		if c.idle > 0 {
			src.SetReadDeadline(time.Now().Add(c.idle))
		}
		m, err := to.ReadFrom(&io.LimitedReader{R: src, N: chunk})
		moved += m
		if m > 0 && c.idle > 0 {
			c.last.Store(time.Now().UnixNano())
		}
		switch {
		case err == nil && m < chunk:
			return moved, true, io.ErrUnexpectedEOF
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			if c.idle > 0 && m == 0 && time.Since(time.Unix(0, c.last.Load())) >= c.idle {
				return moved, true, errIdle
			}
			if c.idle == 0 {
				src.SetReadDeadline(time.Time{})
			}
		default:
			return moved, true, err
		}
	}
	return moved, true, nil
}

// toClient is the framer's bulk path for answers written to the client's
// buffer: it is flushed, then the block goes straight from backend to client.
func (c *conn) toClient(w io.Writer, n int64) (int64, bool, error) {
	if w != io.Writer(c.cw) {
		return 0, false, nil
	}
	if err := c.cw.Flush(); err != nil {
		return 0, true, err
	}
	return c.bulk(c.client, c.backend, n)
}

// normalEnd maps the ordinary ends of a connection in a chaos proxy to nil.
func normalEnd(err error) error {
	if err == nil || errors.Is(err, errStopped) || errors.Is(err, errIdle) || relay.OrdinaryEnd(err) {
		return nil
	}
	return err
}
