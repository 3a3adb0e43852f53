package redis

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

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

const (
	// queueSize bounds the requests in flight on one connection: a client
	// that pipelines deeper waits until replies drain (back-pressure).
	queueSize = 1024
	// keptBatch is how many records' room the queue keeps while the
	// connection is idle: a common pipeline's, not a burst's.
	keptBatch = 64
)

const execAbort = "EXECABORT Transaction discarded because of previous errors."

var discardRequest = []byte("*1\r\n$7\r\nDISCARD\r\n")

// action tells the reply side what to do for one request.
type action uint8

const (
	actRelay   action = iota // relay the backend's reply
	actPubsub                // relay the replies of the UNSUBSCRIBE family
	actNone                  // no reply is due (CLIENT REPLY OFF or SKIP)
	actError                 // write the synthetic error; the backend was not asked
	actReplace               // drop the backend's reply and write the synthetic error
	actRaw                   // hand the connection to a raw relay
	actHang                  // answer nothing more
	actAbort                 // drop both connections
)

// record is one request in flight, from the request loop to the reply
// loop. Records travel by value in slices that both loops reuse, so the
// pass-through path allocates nothing. Times are readings of now.
type record struct {
	act      action
	exchange bool // report an exchange when done (not for a raw switch on EOF)
	inject   bool
	command  string
	start    time.Duration // when the request's last byte was read
	replies  int32         // for actPubsub, how many messages answer
	// due is when the reply may be written (0: at once); for actHang, when
	// the connection closes (0: never).
	due    time.Duration
	filter chaos.Filter
	msg    string // the error line, for actError and actReplace
}

// kind sorts the commands that change the reply stream.
type kind uint8

const (
	kOther kind = iota
	kEmpty
	kSwitch // SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, MONITOR
	kSync   // SYNC, PSYNC: an RDB payload that is not RESP, then a stream
	kUnsub  // UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE
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
	cr, br          *reader
	cw, bw          *writer
	toBackend       *relay.Counter
	reqDone         chan struct{} // closed when the request loop has returned

	// request loop state
	sc            scan
	names         lastName
	cur           record        // the request being carried out
	req           chaos.Request // what Draw sees
	mode          replyMode
	inMulti       bool
	dirty         bool // an injected error refused a command of the transaction
	pendingSwitch bool // a SUBSCRIBE or MONITOR was queued in the transaction
	resetTimer    *time.Timer
	reqAlarm      relay.Timer
	batch         []record // pushed, not yet published
	batchWakes    bool     // a record of the batch needs no reply from the backend
	seen          int      // requests in flight when last looked, at least

	// reply loop state
	out        []record // taken from in, worked through in order
	outPos     int
	exReq      chaos.Request // what Exchanged sees
	cor        corrupter
	replyAlarm relay.Timer

	// mu guards the queue of records from the request loop to the reply
	// loop, and the hand-shake by which the request loop wakes the reply
	// loop out of a read of the backend that waits for no reply.
	mu          sync.Mutex
	in          []record // pushed, not yet taken
	inflight    int      // pushed and not yet done
	closed      bool     // the request loop has pushed its last record
	roomWait    bool     // the request loop waits on room
	room        chan struct{}
	recWait     bool // the reply loop waits on ready
	ready       chan struct{}
	peeking     bool
	interrupted bool

	closing    atomic.Bool
	closeDelay atomic.Int64
	last       atomic.Int64 // now() of the last byte read, for the idle timeout
	watchMu    sync.Mutex
	watchOff   bool
	idleTimer  *time.Timer // runs checkIdle
}

func newConn(ctx context.Context, p *Protocol, s chaos.Session, client, backend net.Conn) *conn {
	c := &conn{
		p: p, s: s, client: client, backend: backend,
		reqDone: make(chan struct{}),
		room:    make(chan struct{}, 1),
		ready:   make(chan struct{}, 1),
	}
	c.ctx, c.cancel = context.WithCancel(ctx)
	var last *atomic.Int64
	if s.IdleTimeout() > 0 {
		last = &c.last
	}
	c.toBackend = &relay.Counter{W: backend, Events: s, Dir: chaos.ToBackend, Before: c.publish}
	c.bw = newWriter(c.toBackend)
	c.cw = newWriter(&relay.Counter{W: client, Events: s, Dir: chaos.ToClient})
	c.cr = newConnReader(client, c.bw, p.maxBulk, maxInline, last)
	c.hookRequests()
	c.br = newConnReader(backend, c.cw, p.maxBulk, 0, last)
	return c
}

func (c *conn) run() error {
	stop := context.AfterFunc(c.ctx, func() {
		c.client.Close()
		c.backend.Close()
	})
	defer stop()
	if idle := c.s.IdleTimeout(); idle > 0 {
		c.last.Store(int64(now()))
		c.watchMu.Lock()
		c.idleTimer = time.AfterFunc(idle, func() { c.checkIdle(idle) })
		c.watchMu.Unlock()
	}
	go func() {
		defer close(c.reqDone)
		c.requests()
	}()
	err := c.replies()
	c.closeAll()
	<-c.reqDone
	c.stopWatch()
	if c.resetTimer != nil {
		c.resetTimer.Stop()
	}
	c.backend.Close()
	c.putBuffers()
	if err != nil && err != errStop && !relay.OrdinaryEnd(err) {
		return err
	}
	return nil
}

// putBuffers hands every buffer back, whatever it holds, once neither
// loop reads or writes any more.
func (c *conn) putBuffers() {
	c.cr.put()
	c.br.put()
	c.bw.put()
	c.cw.put()
}

// closeAll ends the connection: both sockets close and every wait returns.
func (c *conn) closeAll() {
	c.closing.Store(true)
	c.cancel()
}

// ---- request loop ----

func (c *conn) requests() {
	defer c.closeQueue()
	for {
		err := c.request()
		if err == nil {
			continue
		}
		switch {
		case err == errStop:
		case c.toBackend.Failed():
			// The backend stopped reading (it closed after QUIT, say): what
			// it sent is still delivered, and the client's further requests
			// go nowhere until it leaves.
			c.cr.discardAll()
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
	c.cur = record{act: actRaw}
	c.push(&c.cur)
}

// request frames, draws for and carries out one client request.
func (c *conn) request() error {
	complete, err := c.cr.scanRequest(&c.sc)
	if err != nil {
		return err
	}
	b := c.cr.bytes()[:c.sc.pos]
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
		name = c.names.of(c.sc.arg(b, 0))
	}
	k := classify(name, &c.sc, b)
	c.cur = record{command: name, start: c.cr.at, exchange: true}
	c.req.Command = name
	d := c.s.Draw(&c.req)
	return c.carryOut(&c.cur, &d.Effect, k, complete)
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
	case "SYNC", "PSYNC":
		return kSync
	case "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE":
		return kUnsub
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
	if k == kUnsub && !c.inMulti {
		return true // pub/sub messages come whatever CLIENT REPLY says
	}
	if c.inMulti && (k == kReplyOn || k == kReplyOff || k == kReplySkip || k == kUnsub) {
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

// carryOut acts on the drawn effect for the request just framed, step by
// step in the order chaos lays it out.
func (c *conn) carryOut(rec *record, e *chaos.Effect, k kind, complete bool) error {
	steps := e.Steps()
	var fail, abort bool
	for _, st := range steps.List() {
		switch st.Kind {
		case chaos.StepRefuse:
			c.s.Refused("down")
			c.closeAll()
			return errStop
		case chaos.StepClose:
			c.bw.Flush()
			c.publish()
			relay.Wait(c.ctx, st.D)
			c.closeAll()
			return errStop
		case chaos.StepWait:
			// Held until its arrival plus the delay, not for the delay from
			// now: requests of a pipeline delayed in turn overlap their waits.
			if d := rec.start + st.D - now(); d > 0 {
				if err := c.bw.Flush(); err != nil {
					return err
				}
				c.publish()
				if err := c.reqAlarm.Wait(c.ctx, d); err != nil {
					return errStop
				}
			}
		case chaos.StepHang, chaos.StepTimeout:
			rec.act, rec.exchange = actHang, false
			if st.D > 0 {
				rec.due = now() + st.D
			}
			if err := c.push(rec); err != nil {
				return err
			}
			c.bw.Flush()
			c.cr.discardAll() // swallow everything until the client leaves
			return errStop
		case chaos.StepReset:
			if st.D <= 0 {
				relay.Reset(c.client)
				c.closeAll()
				return errStop
			}
			if c.resetTimer == nil {
				c.resetTimer = time.AfterFunc(st.D, func() {
					relay.Reset(c.client)
					c.closeAll()
				})
			}
		case chaos.StepError:
			fail = true
		case chaos.StepAbort:
			abort = true
		case chaos.StepReplyDelay:
			rec.due = rec.start + e.Delay + st.D
		case chaos.StepCloseDelay:
			if d := int64(st.D); d > c.closeDelay.Load() {
				c.closeDelay.Store(d)
			}
		}
	}
	return c.exchange(rec, e, k, complete, fail, abort)
}

// exchange sends the request on, or answers it in place of the backend
// when the effect's error replaces the reply.
func (c *conn) exchange(rec *record, e *chaos.Effect, k kind, complete, fail, abort bool) error {
	expects := c.expectsReply(k)
	rec.filter = e.ToClient
	if fail && expects {
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
	if k == kUnsub && !c.inMulti {
		// One message per channel named, or one when none is: a push in
		// RESP3, the command's only answer.
		rec.act, rec.replies = actPubsub, int32(min(max(c.sc.argc-1, 1), queueSize))
	}
	// SYNC and PSYNC are refused inside MULTI (redis flags them no-multi),
	// so only SUBSCRIBE and MONITOR wait for EXEC.
	switchNow := ((k == kSwitch || k == kSync) && !c.inMulti) || (k == kExec && c.inMulti && c.pendingSwitch)
	c.track(k)
	if switchNow {
		rec.act = actRaw
	}
	if abort {
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
	// The filter writes to the backend itself, while another goroutine
	// reads the client: the reader's hooks, which belong to this loop, are
	// off meanwhile.
	c.publish()
	c.cr.before, c.cr.wait, c.cr.park = nil, nil, nil
	defer c.hookRequests()
	return c.filter(f, c.toBackend, func(w io.Writer) error {
		return c.copyRequest(w, complete)
	})
}

// copyRequest moves the framed request from the client's buffer to w.
func (c *conn) copyRequest(w io.Writer, complete bool) error {
	return c.cr.copyRequest(w, &c.sc, complete)
}

// push queues a copy of rec for the reply loop. Records are published
// in batches: before any byte goes to the backend, so that a reply always
// finds its record queued, and before the request loop waits, so that a
// record that needs no reply is answered. At most queueSize requests are
// in flight: a deeper pipeline waits for room.
func (c *conn) push(rec *record) error {
	if len(c.batch)+c.seen >= queueSize {
		if err := c.makeRoom(); err != nil {
			return err
		}
	}
	c.batch = append(c.batch, *rec)
	if rec.act != actRelay && rec.act != actReplace && rec.act != actPubsub {
		c.batchWakes = true
	}
	return nil
}

// publish hands the records pushed since the last time to the reply loop.
func (c *conn) publish() {
	if len(c.batch) == 0 {
		return
	}
	c.mu.Lock()
	c.inflight += len(c.batch)
	if len(c.in) == 0 {
		c.in, c.batch = c.batch, c.in[:0]
	} else {
		c.in = append(c.in, c.batch...)
		c.batch = c.batch[:0]
	}
	c.seen = c.inflight
	if c.batchWakes {
		c.batchWakes = false
		c.wakeLocked()
	}
	c.signalLocked()
	c.mu.Unlock()
}

// hookRequests has the client's reader flush the requests forwarded and
// publish their records before it may wait.
func (c *conn) hookRequests() {
	c.cr.before, c.cr.wait, c.cr.park = c.bw, c.publish, c.parkRequests
}

// parkRequests runs when the request loop waits for a silent client: the
// batch's room beyond a common pipeline's is let go.
func (c *conn) parkRequests() {
	if len(c.batch) == 0 && cap(c.batch) > keptBatch {
		c.batch = nil
	}
}

// makeRoom waits until fewer than queueSize requests are in flight.
func (c *conn) makeRoom() error {
	c.publish()
	for {
		c.mu.Lock()
		c.seen = c.inflight + len(c.batch)
		if c.seen < queueSize {
			c.mu.Unlock()
			return nil
		}
		c.roomWait = true
		c.mu.Unlock()
		if err := c.bw.Flush(); err != nil {
			return err
		}
		select {
		case <-c.room:
		case <-c.ctx.Done():
			return errStop
		}
	}
}

// closeQueue tells the reply loop that no record will follow.
func (c *conn) closeQueue() {
	c.publish()
	c.mu.Lock()
	c.closed = true
	c.wakeLocked()
	c.signalLocked()
	c.mu.Unlock()
}

// signalLocked wakes the reply loop if it waits for a record.
func (c *conn) signalLocked() {
	if c.recWait {
		c.recWait = false
		select {
		case c.ready <- struct{}{}:
		default:
		}
	}
}

// wakeLocked interrupts the reply loop if it is waiting on the backend
// with no reply due: the record just queued needs no backend bytes.
func (c *conn) wakeLocked() {
	if c.peeking && !c.interrupted {
		c.interrupted = true
		c.backend.SetReadDeadline(aLongTimeAgo)
	}
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
			_, err = c.reply(rec, c.cw)
		case actPubsub:
			err = c.pubsubReplies(rec)
		case actError:
			if err = c.hold(rec); err == nil {
				err = c.writeError(rec.msg)
			}
		case actReplace:
			if _, err = c.reply(rec, io.Discard); err == nil {
				err = c.writeError(rec.msg)
			}
		case actRaw:
			return c.switchRaw(rec)
		case actHang:
			return c.hang(rec)
		case actAbort:
			c.cw.Flush()
			relay.Reset(c.backend)
			c.closeAll()
			return nil
		}
		if err != nil {
			return c.backendEnded(err)
		}
		if rec.exchange {
			c.exchanged(rec)
		}
	}
}

// exchanged reports rec's exchange. A plain reply ends when the backend
// read that brought it: one reading of the clock for a whole batch.
func (c *conn) exchanged(rec *record) {
	end := c.br.at
	if rec.act != actRelay || rec.filter != nil || rec.due != 0 || end < rec.start {
		end = now()
	}
	c.exReq.Command = rec.command
	c.s.Exchanged(&c.exReq, end-rec.start)
}

// take moves the records pushed since the last take to out, and returns
// the room of the ones done to the request loop. It reports whether there
// are records to work through, and whether the request loop has pushed
// its last one.
func (c *conn) take() (got, closed bool) {
	c.mu.Lock()
	got, closed = c.takeLocked()
	c.mu.Unlock()
	return got, closed
}

func (c *conn) takeLocked() (got, closed bool) {
	c.inflight -= len(c.out)
	if c.roomWait && c.inflight < queueSize {
		c.roomWait = false
		select {
		case c.room <- struct{}{}:
		default:
		}
	}
	c.out, c.in = c.in, c.out[:0]
	c.outPos = 0
	return len(c.out) > 0, c.closed
}

// pop returns the next record taken.
func (c *conn) pop() *record {
	rec := &c.out[c.outPos]
	c.outPos++
	return rec
}

// next returns the next record, relaying what the backend sends out of
// band (pushes) while no record is queued.
func (c *conn) next() (*record, bool, error) {
	if c.outPos < len(c.out) {
		return c.pop(), true, nil
	}
	if got, closed := c.take(); got {
		return c.pop(), true, nil
	} else if closed {
		return nil, false, nil
	}
	if err := c.cw.Flush(); err != nil {
		return nil, false, err
	}
	for {
		c.mu.Lock()
		got, closed := c.takeLocked()
		if !got && !closed {
			c.peeking = true
			c.shrinkLocked()
		}
		c.mu.Unlock()
		if got {
			return c.pop(), true, nil
		}
		if closed {
			return nil, false, nil
		}
		b, err := c.br.Peek(1)
		interrupted := c.stopPeeking()
		if err != nil {
			if interrupted && isTimeout(err) {
				continue
			}
			return nil, false, err
		}
		// Bytes came: for a request queued meanwhile (its reply, or a push
		// that reply relays ahead of it, or that is the reply), or not.
		if got, closed := c.take(); got {
			return c.pop(), true, nil
		} else if closed && b[0] != '>' {
			return nil, false, nil
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

// shrinkLocked lets go of the queue's room beyond keptBatch records while
// the connection waits with nothing in flight.
func (c *conn) shrinkLocked() {
	if cap(c.out) > keptBatch {
		c.out = nil
	}
	if cap(c.in) > keptBatch {
		c.in = nil
	}
}

// waitRecord waits until a record is pushed or the request loop is done.
func (c *conn) waitRecord() {
	c.mu.Lock()
	if len(c.in) > 0 || c.closed {
		c.mu.Unlock()
		return
	}
	c.recWait = true
	c.mu.Unlock()
	select {
	case <-c.ready:
	case <-c.ctx.Done():
	}
}

// stopPeeking clears the mark that the reply loop is reading the backend
// with no reply due, and a pending interruption, which it reports.
func (c *conn) stopPeeking() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peeking = false
	was := c.interrupted
	if was {
		c.interrupted = false
		c.backend.SetReadDeadline(time.Time{})
	}
	return was
}

// pubsubReplies relays the messages that answer a request of the
// UNSUBSCRIBE family, which come whatever CLIENT REPLY says: arrays in
// RESP2, pushes of the command's own kind in RESP3 (pushes of another
// kind, such as invalidations, are relayed out of band). A reply of another
// type (an error: NOAUTH, say) is the only one.
func (c *conn) pubsubReplies(rec *record) error {
	for range rec.replies {
		t, err := c.reply(rec, c.cw)
		if err != nil || (t != '*' && t != '>') {
			return err
		}
		rec.inject = false // the first message is the one damaged
	}
	return nil
}

// reply relays the backend's reply to rec, the pushes before it, and the
// attributes that belong to it, writing the reply itself to dst. It
// returns the reply's type byte.
func (c *conn) reply(rec *record, dst io.Writer) (byte, error) {
	if err := c.hold(rec); err != nil {
		return 0, err
	}
	var t byte
head:
	for {
		b, err := c.br.fill(1)
		if err != nil {
			return 0, eofIsUnexpected(err)
		}
		switch t = b[0]; t {
		case '>':
			if rec.act == actPubsub {
				kind, err := c.br.pushKind()
				if err != nil {
					return 0, err
				}
				if equalFold(kind, rec.command) {
					break head // the push is the reply
				}
			}
			if err := c.br.walk(c.cw, 1, nil); err != nil {
				return 0, err
			}
		case '|':
			n, err := c.br.header(dst)
			if err != nil {
				return 0, err
			}
			if n < 0 {
				return 0, protoErr("attribute count %d out of range", n)
			}
			if err := c.br.walk(dst, 2*n, nil); err != nil {
				return 0, err
			}
		default:
			break head
		}
	}
	var cor *corrupter
	if rec.inject {
		c.cor.done = false
		cor = &c.cor
	}
	if rec.filter == nil || dst != io.Writer(c.cw) {
		return t, c.br.walk(dst, 1, cor)
	}
	if err := c.cw.Flush(); err != nil {
		return t, err
	}
	c.br.before = nil // the filter writes to the client itself
	defer func() { c.br.before = c.cw }()
	return t, c.filter(rec.filter, &relay.Counter{W: c.client, Events: c.s, Dir: chaos.ToClient}, func(w io.Writer) error {
		return c.br.walk(w, 1, cor)
	})
}

// hold keeps rec's reply until it is due: its request's arrival plus the
// delay, not the delay from now, so that the delays of pipelined requests
// overlap; replies still leave in order, none before the one ahead of it.
func (c *conn) hold(rec *record) error {
	if rec.due == 0 {
		return nil
	}
	d := rec.due - now()
	if d <= 0 {
		return nil
	}
	if err := c.cw.Flush(); err != nil {
		return err
	}
	return c.replyAlarm.Wait(c.ctx, d)
}

func (c *conn) writeError(msg string) error {
	c.cw.WriteByte('-')
	c.cw.WriteString(msg)
	_, err := c.cw.WriteString("\r\n")
	return err
}

// backendEnded handles the end of the reply stream. When the backend
// closed (or reset the connection), the client gets every byte it sent
// and then a FIN (held by slow_close): the connection then lasts until the
// client leaves, at most relay.LingerTime, while what the client still
// sends is read and dropped (a lingering close: the client's socket is not
// closed under unread input, which would make the kernel reset it and
// lose the backend's last words). Bytes that are not RESP close both
// sides.
func (c *conn) backendEnded(err error) error {
	if c.closing.Load() {
		return nil
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF || errors.Is(err, syscall.ECONNRESET) {
		if c.cw.Flush() != nil {
			return nil
		}
		if d := time.Duration(c.closeDelay.Load()); d > 0 {
			relay.Wait(c.ctx, d)
		}
		if cw, ok := c.client.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		c.br.put()
		c.cw.put()
		linger := time.AfterFunc(relay.LingerTime, c.closeAll)
		defer linger.Stop()
		// Records still come until the client leaves: drop them, so that
		// the request loop never waits for room.
		for {
			if got, closed := c.take(); !got {
				if closed || c.ctx.Err() != nil {
					return nil
				}
				c.waitRecord()
			}
		}
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
		c.exchanged(rec)
	}
	// A backend that has gone fails the write of the client's bytes; the
	// raw relay then still brings its last words to the client, with a
	// lingering close.
	c.bw.Write(c.cr.bytes())
	c.bw.Flush()
	if _, err := c.cw.Write(c.br.bytes()); err != nil {
		return err
	}
	if err := c.cw.Flush(); err != nil {
		return err
	}
	c.putBuffers() // the raw relay has buffers of its own
	return relay.Raw(c.ctx, c.s, c.client, c.backend)
}

// hang answers nothing more: the request loop swallows the client's bytes
// until it leaves, and the connection closes then, or at rec.due.
func (c *conn) hang(rec *record) error {
	c.cw.Flush()
	c.br.put()
	c.cw.put()
	var expired <-chan time.Time
	if rec.due != 0 {
		t := time.NewTimer(rec.due - now())
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

// checkIdle runs when the idle timeout may have passed: it closes the
// connection if no byte was read from either side for idle, and looks
// again when that could next be so otherwise.
func (c *conn) checkIdle(idle time.Duration) {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.watchOff {
		return
	}
	quiet := now() - time.Duration(c.last.Load())
	if quiet >= idle {
		c.closeAll()
		return
	}
	c.idleTimer.Reset(idle - quiet)
}

func (c *conn) stopWatch() {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	c.watchOff = true
	if c.idleTimer != nil {
		c.idleTimer.Stop()
	}
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
