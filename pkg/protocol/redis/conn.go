package redis

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

const (
	// queueSize bounds the requests in flight on one connection: a client
	// that pipelines deeper waits until replies drain (back-pressure).
	queueSize = 1024
	// clientBufSize holds redis' longest inline request (64 KiB).
	clientBufSize  = 64 << 10
	backendBufSize = 32 << 10
	writeBufSize   = 16 << 10
)

const execAbort = "EXECABORT Transaction discarded because of previous errors."

var discardRequest = []byte("*1\r\n$7\r\nDISCARD\r\n")

// action tells the reply side what to do for one request.
type action uint8

const (
	actRelay   action = iota // relay the backend's reply
	actNone                  // no reply is due (CLIENT REPLY OFF or SKIP)
	actError                 // write the synthetic error; the backend was not asked
	actReplace               // drop the backend's reply and write the synthetic error
	actRaw                   // hand the connection to a raw relay
	actHang                  // answer nothing more
	actAbort                 // drop both connections
)

// record is one request in flight, from the request loop to the reply
// loop. Records are recycled, so the pass-through path allocates nothing.
type record struct {
	act       action
	exchange  bool // report an exchange when done (not for a raw switch on EOF)
	inject    bool
	req       chaos.Request
	start     time.Time
	respDelay time.Duration
	filter    chaos.Filter
	msg       string    // the error line, for actError and actReplace
	closeAt   time.Time // for actHang: when to close; zero is never
}

// kind sorts the commands that change the reply stream.
type kind uint8

const (
	kOther kind = iota
	kEmpty
	kSwitch // SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, MONITOR
	kMulti
	kExec
	kDiscard
	kReset
	kReplyOn
	kReplyOff
	kReplySkip
)

type replyMode uint8

const (
	replyOn replyMode = iota
	replyOff
	replySkip // the next command gets no reply
)

// errStop ends the request loop once the reply loop has taken over (a raw
// switch, hang, abort) or the connection is being closed.
var errStop = errors.New("request loop stopped")

// aLongTimeAgo is a read deadline that has passed: it interrupts a read.
var aLongTimeAgo = time.Unix(1, 0)

type conn struct {
	p               *Protocol
	s               chaos.Session
	ctx             context.Context
	cancel          context.CancelFunc
	client, backend net.Conn
	cr, br          reader
	cw, bw          *bufio.Writer
	toBackend       *counter

	queue     chan *record
	free      chan *record
	allocated int
	reqDone   chan struct{} // closed when the request loop has returned

	// request loop state
	sc            scan
	mode          replyMode
	inMulti       bool
	dirty         bool // an injected error refused a command of the transaction
	pendingSwitch bool // a SUBSCRIBE or MONITOR was queued in the transaction
	resetTimer    *time.Timer

	// reply loop state
	cor corrupter

	// mu guards the hand-shake by which the request loop wakes the reply
	// loop out of a read of the backend that waits for no reply.
	mu          sync.Mutex
	peeking     bool
	interrupted bool

	closing    atomic.Bool
	closeDelay atomic.Int64
	last       atomic.Int64 // unix nanoseconds of the last byte read, for the idle timeout
	watchOnce  sync.Once
	watchStop  chan struct{}
}

func newConn(ctx context.Context, p *Protocol, s chaos.Session, client, backend net.Conn) *conn {
	c := &conn{
		p: p, s: s, client: client, backend: backend,
		queue:     make(chan *record, queueSize),
		free:      make(chan *record, queueSize),
		reqDone:   make(chan struct{}),
		watchStop: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	var cin, bin io.Reader = client, backend
	if s.IdleTimeout() > 0 {
		cin, bin = &activity{c: client, last: &c.last}, &activity{c: backend, last: &c.last}
	}
	c.toBackend = &counter{w: backend, ev: s, dir: chaos.ToBackend}
	c.bw = bufio.NewWriterSize(c.toBackend, writeBufSize)
	c.cw = bufio.NewWriterSize(&counter{w: client, ev: s, dir: chaos.ToClient}, writeBufSize)
	c.cr = reader{Reader: bufio.NewReaderSize(cin, clientBufSize), before: c.bw, maxBulk: p.maxBulk}
	c.br = reader{Reader: bufio.NewReaderSize(bin, backendBufSize), before: c.cw, maxBulk: p.maxBulk}
	return c
}

func (c *conn) run() error {
	stop := context.AfterFunc(c.ctx, func() {
		c.client.Close()
		c.backend.Close()
	})
	defer stop()
	var watcher sync.WaitGroup
	if idle := c.s.IdleTimeout(); idle > 0 {
		c.last.Store(time.Now().UnixNano())
		watcher.Go(func() { c.watchIdle(idle) })
	}
	go func() {
		defer close(c.reqDone)
		c.requests()
	}()
	err := c.replies()
	c.closeAll()
	<-c.reqDone
	c.stopWatch()
	watcher.Wait()
	if c.resetTimer != nil {
		c.resetTimer.Stop()
	}
	c.backend.Close()
	if err != nil && !isOrdinaryEnd(err) {
		return err
	}
	return nil
}

// closeAll ends the connection: both sockets close and every wait returns.
func (c *conn) closeAll() {
	c.closing.Store(true)
	c.cancel()
}

// ---- request loop ----

func (c *conn) requests() {
	defer func() {
		close(c.queue)
		c.wake()
	}()
	for {
		err := c.request()
		if err == nil {
			continue
		}
		switch {
		case err == errStop:
		case c.toBackend.failed.Load():
			// The backend stopped reading (it closed after QUIT, say): what
			// it sent is still delivered, and the client's further requests
			// go nowhere until it leaves.
			io.Copy(io.Discard, c.cr)
		case err == io.EOF || err == io.ErrUnexpectedEOF || isProtocolError(err):
			// The rest of the client's stream goes raw: after a half-close
			// the FIN, after bytes that are not RESP those bytes, so that
			// redis answers them itself.
			if c.bw.Flush() == nil {
				c.pushRaw()
				return
			}
			c.closeAll()
		default:
			c.closeAll()
		}
		return
	}
}

func (c *conn) pushRaw() {
	rec, err := c.acquire()
	if err != nil {
		return
	}
	rec.act = actRaw
	c.push(rec)
}

// request frames, draws for and carries out one client request.
func (c *conn) request() error {
	complete, err := c.cr.scanRequest(&c.sc)
	if err != nil {
		return err
	}
	b, _ := c.cr.Peek(c.sc.pos)
	if c.sc.argc == 0 {
		// An empty request runs no command and gets no reply, but redis
		// still ends a CLIENT REPLY SKIP with it.
		c.track(kEmpty)
		c.bw.Write(b)
		c.cr.Discard(len(b))
		return nil
	}
	var name string
	if c.sc.nargs > 0 {
		name = commandName(c.sc.arg(b, 0))
	}
	k := classify(name, &c.sc, b)
	rec, err := c.acquire()
	if err != nil {
		return err
	}
	rec.req.Command = name
	rec.start = time.Now()
	rec.exchange = true
	d := c.s.Draw(&rec.req)
	return c.carryOut(rec, &d.Effect, k, complete)
}

// equalFold compares an argument with an upper-case ASCII word.
func equalFold(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

func classify(name string, sc *scan, b []byte) kind {
	switch name {
	case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR":
		return kSwitch
	case "MULTI":
		return kMulti
	case "EXEC":
		return kExec
	case "DISCARD":
		return kDiscard
	case "RESET":
		return kReset
	case "CLIENT":
		if sc.argc != 3 || sc.nargs != 3 || !equalFold(sc.arg(b, 1), "REPLY") {
			return kOther
		}
		switch arg := sc.arg(b, 2); {
		case equalFold(arg, "ON"):
			return kReplyOn
		case equalFold(arg, "OFF"):
			return kReplyOff
		case equalFold(arg, "SKIP"):
			return kReplySkip
		}
	}
	return kOther
}

// expectsReply says whether redis will answer a command of kind k, given
// the CLIENT REPLY mode.
func (c *conn) expectsReply(k kind) bool {
	if c.inMulti && (k == kReplyOn || k == kReplyOff || k == kReplySkip) {
		k = kOther // queued, answered +QUEUED
	}
	switch c.mode {
	case replyOff:
		return k == kReplyOn || k == kReset
	case replySkip:
		return k == kReplyOn
	}
	return k != kReplyOff && k != kReplySkip
}

// track updates the connection state for a command of kind k that reached
// redis, mirroring what redis does with its client flags.
func (c *conn) track(k kind) {
	wasSkip := c.mode == replySkip
	switch k {
	case kReset:
		c.mode, c.inMulti, c.dirty, c.pendingSwitch = replyOn, false, false, false
		return
	case kReplyOn:
		if !c.inMulti {
			c.mode = replyOn
			return
		}
	case kReplyOff:
		if !c.inMulti {
			c.mode = replyOff
			return
		}
	case kReplySkip:
		if !c.inMulti {
			if c.mode != replyOff {
				c.mode = replySkip
			}
			return
		}
	case kMulti:
		c.inMulti = true
	case kExec, kDiscard:
		c.inMulti, c.dirty, c.pendingSwitch = false, false, false
	case kSwitch:
		if c.inMulti {
			c.pendingSwitch = true
		}
	}
	if wasSkip {
		c.mode = replyOn
	}
}

// carryOut acts on the drawn effect for the request just framed.
func (c *conn) carryOut(rec *record, e *chaos.Effect, k kind, complete bool) error {
	if e.CloseDelay > 0 {
		if d := int64(e.CloseDelay); d > c.closeDelay.Load() {
			c.closeDelay.Store(d)
		}
	}
	switch e.Fault {
	case chaos.FaultRefuse:
		c.s.Refused("down")
		c.closeAll()
		return errStop
	case chaos.FaultClose:
		c.bw.Flush()
		relay.Wait(c.ctx, e.CloseDelay)
		c.closeAll()
		return errStop
	}
	if e.Delay > 0 {
		if err := c.bw.Flush(); err != nil {
			return err
		}
		if err := relay.Wait(c.ctx, e.Delay); err != nil {
			return errStop
		}
	}
	switch e.Fault {
	case chaos.FaultHang, chaos.FaultTimeout:
		rec.act, rec.exchange = actHang, false
		if e.Fault == chaos.FaultTimeout && e.After > 0 {
			rec.closeAt = time.Now().Add(e.After)
		}
		if err := c.push(rec); err != nil {
			return err
		}
		c.bw.Flush()
		io.Copy(io.Discard, c.cr) // swallow everything until the client leaves
		return errStop
	case chaos.FaultReset:
		if e.After <= 0 {
			resetConn(c.client)
			c.closeAll()
			return errStop
		}
		if c.resetTimer == nil {
			c.resetTimer = time.AfterFunc(e.After, func() {
				resetConn(c.client)
				c.closeAll()
			})
		}
	}

	expects := c.expectsReply(k)
	rec.respDelay, rec.filter = e.ResponseDelay, e.ToClient
	if e.Fault == chaos.FaultError && expects {
		if e.Error.Inject {
			rec.inject = true
		} else {
			rec.msg = c.p.errMsg
			if e.Error.Message != "" {
				rec.msg = errorLine(e.Error.Message)
			}
			if c.inMulti && (k == kExec || k == kDiscard) {
				return c.discardInstead(rec, true, complete)
			}
			if c.inMulti && k != kMulti {
				c.dirty = true
			}
			rec.act = actError
			if err := c.push(rec); err != nil {
				return err
			}
			return c.copyRequest(io.Discard, complete)
		}
	}
	if k == kExec && c.inMulti && c.dirty {
		rec.msg = execAbort
		return c.discardInstead(rec, expects, complete)
	}

	rec.act = actNone
	if expects {
		rec.act = actRelay
	}
	switchNow := (k == kSwitch && !c.inMulti) || (k == kExec && c.inMulti && c.pendingSwitch)
	c.track(k)
	if switchNow {
		rec.act = actRaw
	}
	if e.Fault == chaos.FaultAbort {
		rec.act, rec.exchange = actAbort, false
	}
	if err := c.push(rec); err != nil {
		return err
	}
	if err := c.forward(complete, e.ToBackend); err != nil {
		return err
	}
	if rec.act == actRaw || rec.act == actAbort {
		if err := c.bw.Flush(); err != nil {
			return err
		}
		return errStop
	}
	return nil
}

// discardInstead ends the transaction with DISCARD instead of the EXEC or
// DISCARD the client sent, and answers rec.msg in place of its reply.
func (c *conn) discardInstead(rec *record, expects, complete bool) error {
	c.track(kDiscard)
	rec.act = actReplace
	if !expects {
		rec.act = actNone
	}
	if err := c.push(rec); err != nil {
		return err
	}
	if err := c.copyRequest(io.Discard, complete); err != nil {
		return err
	}
	_, err := c.bw.Write(discardRequest)
	return err
}

// forward sends the framed request to the backend, through the drawn
// to_backend filter if there is one.
func (c *conn) forward(complete bool, f chaos.Filter) error {
	if f == nil {
		return c.copyRequest(c.bw, complete)
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	return c.filter(f, c.toBackend, func(w io.Writer) error {
		return c.copyRequest(w, complete)
	})
}

// copyRequest moves the framed request from the client's buffer to w.
func (c *conn) copyRequest(w io.Writer, complete bool) error {
	return c.cr.copyRequest(w, &c.sc, complete)
}

// acquire returns a free record, waiting for the reply loop to free one
// when queueSize requests are in flight.
func (c *conn) acquire() (*record, error) {
	var rec *record
	select {
	case rec = <-c.free:
	default:
		if c.allocated < queueSize {
			c.allocated++
			return new(record), nil
		}
		if err := c.bw.Flush(); err != nil {
			return nil, err
		}
		select {
		case rec = <-c.free:
		case <-c.ctx.Done():
			return nil, errStop
		}
	}
	*rec = record{}
	return rec, nil
}

// push queues rec for the reply loop. It is called before the request is
// forwarded, so a reply from the backend always finds its record queued.
func (c *conn) push(rec *record) error {
	select {
	case c.queue <- rec:
	default: // cannot happen: there are never more records than room
		select {
		case c.queue <- rec:
		case <-c.ctx.Done():
			return errStop
		}
	}
	if rec.act != actRelay && rec.act != actReplace {
		c.wake()
	}
	return nil
}

// wake interrupts the reply loop if it is waiting on the backend with no
// reply due: the record just queued needs no backend bytes.
func (c *conn) wake() {
	c.mu.Lock()
	if c.peeking && !c.interrupted {
		c.interrupted = true
		c.backend.SetReadDeadline(aLongTimeAgo)
	}
	c.mu.Unlock()
}

// ---- reply loop ----

func (c *conn) replies() error {
	for {
		rec, ok, err := c.next()
		if err != nil {
			return c.backendEnded(err)
		}
		if !ok {
			return c.cw.Flush()
		}
		switch rec.act {
		case actNone:
		case actRelay:
			err = c.reply(rec, c.cw)
		case actError:
			if err = c.responseDelay(rec); err == nil {
				err = c.writeError(rec.msg)
			}
		case actReplace:
			if err = c.reply(rec, io.Discard); err == nil {
				err = c.writeError(rec.msg)
			}
		case actRaw:
			return c.switchRaw(rec)
		case actHang:
			return c.hang(rec)
		case actAbort:
			c.cw.Flush()
			resetConn(c.backend)
			c.closeAll()
			return nil
		}
		if err != nil {
			return c.backendEnded(err)
		}
		if rec.exchange {
			c.s.Exchanged(&rec.req, time.Since(rec.start))
		}
		c.free <- rec
	}
}

// next returns the next record, relaying what the backend sends out of
// band (pushes) while no record is queued.
func (c *conn) next() (*record, bool, error) {
	select {
	case rec, ok := <-c.queue:
		return rec, ok, nil
	default:
	}
	if err := c.cw.Flush(); err != nil {
		return nil, false, err
	}
	for {
		c.setPeeking(true)
		select {
		case rec, ok := <-c.queue:
			c.setPeeking(false)
			return rec, ok, nil
		default:
		}
		b, err := c.br.Peek(1)
		interrupted := c.setPeeking(false)
		if err != nil {
			if interrupted && isTimeout(err) {
				continue
			}
			return nil, false, err
		}
		if b[0] != '>' {
			select {
			case rec, ok := <-c.queue:
				return rec, ok, nil
			default:
			}
		}
		// A push, or a value no request asked for (such as the error redis
		// sends before closing a connection over maxclients): relay it.
		if err := c.br.walk(c.cw, 1, nil); err != nil {
			return nil, false, err
		}
		if err := c.cw.Flush(); err != nil {
			return nil, false, err
		}
	}
}

// setPeeking marks whether the reply loop is reading the backend with no
// reply due. Unmarking clears a pending interruption and reports it.
func (c *conn) setPeeking(on bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peeking = on
	was := c.interrupted
	if !on && was {
		c.interrupted = false
		c.backend.SetReadDeadline(time.Time{})
	}
	return was
}

// reply relays the backend's reply to rec, the pushes before it, and the
// attributes that belong to it, writing the reply itself to dst.
func (c *conn) reply(rec *record, dst io.Writer) error {
	if err := c.responseDelay(rec); err != nil {
		return err
	}
	for {
		b, err := c.br.fill(1)
		if err != nil {
			return eofIsUnexpected(err)
		}
		switch b[0] {
		case '>':
			if err := c.br.walk(c.cw, 1, nil); err != nil {
				return err
			}
			continue
		case '|':
			n, err := c.br.header(dst)
			if err != nil {
				return err
			}
			if n < 0 {
				return protoErr("attribute count %d out of range", n)
			}
			if err := c.br.walk(dst, 2*n, nil); err != nil {
				return err
			}
			continue
		}
		break
	}
	var cor *corrupter
	if rec.inject {
		c.cor.done = false
		cor = &c.cor
	}
	if rec.filter == nil || dst != io.Writer(c.cw) {
		return c.br.walk(dst, 1, cor)
	}
	if err := c.cw.Flush(); err != nil {
		return err
	}
	br := c.br
	br.before = nil // the filter writes to the client itself
	return c.filter(rec.filter, &counter{w: c.client, ev: c.s, dir: chaos.ToClient}, func(w io.Writer) error {
		return br.walk(w, 1, cor)
	})
}

func (c *conn) responseDelay(rec *record) error {
	if rec.respDelay <= 0 {
		return nil
	}
	if err := c.cw.Flush(); err != nil {
		return err
	}
	return relay.Wait(c.ctx, rec.respDelay)
}

func (c *conn) writeError(msg string) error {
	c.cw.WriteByte('-')
	c.cw.WriteString(msg)
	_, err := c.cw.WriteString("\r\n")
	return err
}

// backendEnded handles the end of the reply stream. When the backend
// closed, the client gets every byte it sent and then a FIN (held by
// slow_close), and the connection lasts until the client leaves, as a raw
// relay's half-close would. Bytes that are not RESP close both sides.
func (c *conn) backendEnded(err error) error {
	if c.closing.Load() {
		return nil
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		if c.cw.Flush() != nil {
			return nil
		}
		if d := time.Duration(c.closeDelay.Load()); d > 0 {
			relay.Wait(c.ctx, d)
		}
		if cw, ok := c.client.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		for rec := range c.queue {
			c.free <- rec
		}
		return nil
	}
	c.cw.Flush()
	return err
}

// switchRaw hands the connection to a raw relay once the request loop has
// stopped, after moving the bytes the framers had buffered.
func (c *conn) switchRaw(rec *record) error {
	if err := c.cw.Flush(); err != nil {
		return nil
	}
	select {
	case <-c.reqDone:
	case <-c.ctx.Done():
		return nil
	}
	c.stopWatch()
	if rec.exchange {
		c.s.Exchanged(&rec.req, time.Since(rec.start))
	}
	if n := c.cr.Buffered(); n > 0 {
		b, _ := c.cr.Peek(n)
		if _, err := c.bw.Write(b); err != nil {
			return err
		}
	}
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		if _, err := c.cw.Write(b); err != nil {
			return err
		}
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	if err := c.cw.Flush(); err != nil {
		return err
	}
	return relay.Raw(c.ctx, c.s, c.client, c.backend)
}

// hang answers nothing more: the request loop swallows the client's bytes
// until it leaves, and the connection closes then, or at rec.closeAt.
func (c *conn) hang(rec *record) error {
	c.cw.Flush()
	var expired <-chan time.Time
	if !rec.closeAt.IsZero() {
		t := time.NewTimer(time.Until(rec.closeAt))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-c.reqDone:
	case <-expired:
	case <-c.ctx.Done():
	}
	return nil
}

// filter runs the bytes that produce writes through f to dst, using a pipe
// so that a large value is still streamed.
func (c *conn) filter(f chaos.Filter, dst io.Writer, produce func(io.Writer) error) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := produce(pw)
		pw.CloseWithError(err)
		done <- err
	}()
	ferr := f.Relay(c.ctx, dst, pr)
	if ferr != nil {
		c.closeAll() // the producer may be waiting for its peer
	}
	pr.CloseWithError(io.ErrClosedPipe)
	perr := <-done
	if ferr != nil {
		return errStop
	}
	if perr != nil {
		return perr
	}
	return nil
}

// ---- idle timeout ----

// watchIdle closes the connection once no byte was read from either side
// for idle.
func (c *conn) watchIdle(idle time.Duration) {
	t := time.NewTimer(idle)
	defer t.Stop()
	for {
		select {
		case <-c.watchStop:
			return
		case <-c.ctx.Done():
			return
		case <-t.C:
			quiet := time.Duration(time.Now().UnixNano() - c.last.Load())
			if quiet >= idle {
				c.closeAll()
				return
			}
			t.Reset(idle - quiet)
		}
	}
}

func (c *conn) stopWatch() {
	c.watchOnce.Do(func() { close(c.watchStop) })
}

// activity records when bytes were last read.
type activity struct {
	c    net.Conn
	last *atomic.Int64
}

func (a *activity) Read(p []byte) (int, error) {
	n, err := a.c.Read(p)
	if n > 0 {
		a.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// counter reports the bytes written through it.
type counter struct {
	w      io.Writer
	ev     chaos.Events
	dir    chaos.Direction
	failed atomic.Bool
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if n > 0 {
		c.ev.Relayed(c.dir, int64(n))
	}
	if err != nil {
		c.failed.Store(true)
	}
	return n, err
}

// resetConn closes c with a TCP RST instead of a FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// isOrdinaryEnd reports the ends of a connection that are events in a
// chaos proxy, not failures.
func isOrdinaryEnd(err error) bool {
	return err == errStop || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, chaos.ErrClose) ||
		errors.Is(err, context.Canceled) || errors.Is(err, io.ErrClosedPipe)
}
