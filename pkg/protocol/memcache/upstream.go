package memcache

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

// The reader's side: client → backend.

// flushBackend sends the buffered requests and reports their bytes.
func (c *conn) flushBackend() error {
	if c.bw.Buffered() > 0 {
		if err := c.bw.Flush(); err != nil {
			return err
		}
	}
	if c.up > 0 {
		c.s.Relayed(chaos.ToBackend, c.up)
		c.up = 0
	}
	return nil
}

// beforeClientRead runs when the reader needs more client bytes. Between
// requests it first ends an open run of quiet requests with an mn of the
// proxy's own, so that their answers are delimited before the proxy waits.
func (c *conn) beforeClientRead() error {
	if c.atLine && c.run {
		if err := c.endRun(); err != nil {
			return err
		}
	}
	return c.flushBackend()
}

// endRun sends the proxy's own mn after a run of quiet requests. memcached
// answers quiet requests only when they fail (or, for mg, hit) and mn
// always, in order: every answer before that MN belongs to the run.
func (c *conn) endRun() error {
	c.run = false
	c.bw.Write(noop)
	return c.push(record{op: opRunEnd})
}

// push queues a record for the response side; before it would block on a
// full queue it flushes, since the answers it waits for may need the
// requests still in bw.
func (c *conn) push(r record) error {
	select {
	case c.q <- r:
	default:
		if err := c.flushBackend(); err != nil {
			return err
		}
		select {
		case c.q <- r:
		case <-c.respDone:
			return errStopped
		}
	}
	switch r.op {
	case opOne, opNoop, opRunEnd, opQuiet:
		// Its answer (or its run's) wakes the response side.
	default:
		c.wake()
	}
	return nil
}

// readLoop parses requests, draws for each and forwards them. raw reports
// that it handed the connection over to a raw relay.
func (c *conn) readLoop() (raw bool, err error) {
	defer func() {
		close(c.q)
		c.wake()
	}()
	// A connection that has not spoken yet holds no buffer either.
	if err := c.waitClient(); err != nil {
		return false, c.clientEnded(err)
	}
	first, err := c.cr.Peek(1)
	if err != nil {
		return false, c.clientEnded(err)
	}
	if first[0] == binaryMagic {
		return true, c.goRaw(nil, nil)
	}
	for {
		if c.cr.Buffered() == 0 {
			// Between requests with nothing pipelined: end a quiet run and
			// send what is buffered, then wait for the client's next bytes.
			if err := c.leaveRun(); err != nil {
				return false, err
			}
			if err := c.flushBackend(); err != nil {
				return false, c.clientEnded(err)
			}
			if err := c.waitClient(); err != nil {
				return false, c.clientEnded(err)
			}
		}
		c.atLine = true
		line, err := c.cr.ReadSlice('\n')
		c.atLine = false
		long := false
		switch {
		case err == bufio.ErrBufferFull:
			if !isLongGet(line) {
				return true, c.goRaw(line, nil)
			}
			long = true
		case err != nil:
			if len(line) > 0 { // the client left in the middle of a line
				c.bw.Write(line)
				c.up += int64(len(line))
			}
			return false, c.clientEnded(err)
		}
		r := parseRequest(line)
		if r.data > maxData {
			return true, c.goRaw(line, r.cmd.req)
		}
		if r.drain || long {
			if err := c.drain(); err != nil {
				return false, err
			}
		}
		d := c.s.Draw(r.cmd.req)
		if d.Effect.IsZero() {
			// The common case, kept free of allocation.
			if c.run && r.kind != kindQuiet && r.kind != kindNone && r.kind != kindNoop {
				if err := c.endRun(); err != nil {
					return false, err
				}
			}
			start := now()
			if err := c.forward(c.bw, line, r, long); err != nil {
				return false, c.clientEnded(err)
			}
			switch r.kind {
			case kindQuiet:
				c.run = true
			case kindNoop:
				c.run = false
			case kindStream:
				return true, c.goRaw(nil, r.cmd.req)
			}
			if r.kind == kindNone {
				// Nothing comes back: the exchange is over once it is sent.
				c.s.Exchanged(r.cmd.req, now()-start)
				continue
			}
			if err := c.push(record{op: opOf[r.kind], req: r.cmd.req, start: start}); err != nil {
				return false, err
			}
			if r.kind == kindQuit {
				return false, c.flushBackend()
			}
			continue
		}
		stop, err := c.affect(line, r, long, &d.Effect)
		if stop || err != nil {
			return false, err
		}
	}
}

// drain waits until every request forwarded so far is answered. memcached
// drops the answers it has not sent yet when a get names an overlong key;
// once they have all arrived there is nothing left for it to drop.
func (c *conn) drain() error {
	if err := c.leaveRun(); err != nil {
		return err
	}
	done := make(chan struct{})
	if err := c.push(record{op: opDrained, done: done}); err != nil {
		return err
	}
	if err := c.flushBackend(); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-c.respDone:
		return errStopped
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

// leaveRun ends the run of quiet requests, if one is open.
func (c *conn) leaveRun() error {
	if !c.run {
		return nil
	}
	return c.endRun()
}

// holdClose makes the connection's close wait at least d.
func (c *conn) holdClose(d time.Duration) {
	for {
		old := c.closeDelay.Load()
		if int64(d) <= old || c.closeDelay.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// isLongGet reports whether a line that overflowed the buffer is a get or
// gets, the only commands memcached lets grow past its read buffer.
func isLongGet(line []byte) bool {
	line = bytes.TrimLeft(line, " ")
	return bytes.HasPrefix(line, []byte("get ")) || bytes.HasPrefix(line, []byte("gets "))
}

// affect carries out a drawn effect on one request, step by step in the
// order chaos lays it out. stop ends the reader.
func (c *conn) affect(line []byte, r request, long bool, e *chaos.Effect) (stop bool, err error) {
	start := now() // the exchange's time includes the injected delays
	steps := e.Steps()
	var fail, abort bool
	for _, st := range steps.List() {
		switch st.Kind {
		case chaos.StepRefuse:
			c.s.Refused("down")
			c.closeBoth()
			return true, nil
		case chaos.StepClose:
			c.holdClose(st.D)
			c.hold()
			c.closeBoth()
			return true, nil
		}
		// An affected request is answered on its own, never inside a run.
		if err := c.leaveRun(); err != nil {
			return true, err
		}
		switch st.Kind {
		case chaos.StepWait:
			if err := c.flushBackend(); err != nil {
				return true, err
			}
			if err := c.upWait.Wait(c.ctx, st.D); err != nil {
				return true, err
			}
		case chaos.StepReset:
			if st.D <= 0 {
				relay.Reset(c.client)
				c.closeBoth()
				return true, nil
			}
			c.strike(st.D, func() {
				relay.Reset(c.client)
				c.closeBoth()
			})
		case chaos.StepHang, chaos.StepTimeout:
			if err := c.push(record{op: opHang}); err != nil {
				return true, err
			}
			if err := c.flushBackend(); err != nil {
				return true, err
			}
			if st.D > 0 {
				c.strike(st.D, c.closeBoth)
			}
			// Swallow this request and whatever follows until the client leaves.
			_, err := io.Copy(io.Discard, c.cr)
			return true, c.clientEnded(err)
		case chaos.StepError:
			fail = !e.Error.Inject
		case chaos.StepAbort:
			abort = true
		case chaos.StepCloseDelay:
			c.holdClose(st.D)
		}
	}
	if err := c.leaveRun(); err != nil {
		return true, err
	}
	switch {
	case abort:
		if err := c.forward(c.bw, line, r, long); err != nil {
			return true, c.clientEnded(err)
		}
		if err := c.flushBackend(); err != nil {
			return true, c.clientEnded(err)
		}
		return true, c.push(record{op: opAbort})
	case fail:
		// The request is read from the client and never reaches the backend.
		if err := c.forward(io.Discard, line, r, long); err != nil {
			return true, c.clientEnded(err)
		}
		if r.kind == kindNone {
			return false, c.push(record{op: opNone, req: r.cmd.req, start: start})
		}
		return false, c.push(record{op: opReply, req: r.cmd.req, start: start,
			fx: &effect{delay: e.ResponseDelay, reply: c.p.reply(e.Error.Message)}})
	}
	var fx *effect
	if e.ResponseDelay > 0 || e.ToClient != nil || (e.Fault == chaos.FaultError && e.Error.Inject) {
		fx = &effect{delay: e.ResponseDelay, toClient: e.ToClient}
		if e.Fault == chaos.FaultError {
			fx.corrupt = true
			fx.reply = c.p.reply(e.Error.Message)
		}
	}
	if e.ToBackend != nil {
		err = c.filterRequest(e.ToBackend, line, r, long)
	} else {
		err = c.forward(c.bw, line, r, long)
	}
	if err != nil {
		if errors.Is(err, chaos.ErrClose) {
			c.closeBoth()
			return true, nil
		}
		return true, c.clientEnded(err)
	}
	switch r.kind {
	case kindStream:
		return true, c.goRaw(nil, r.cmd.req)
	case kindQuit:
		if err := c.push(record{op: opQuit, req: r.cmd.req, start: start}); err != nil {
			return true, err
		}
		return true, c.flushBackend()
	}
	if err := c.push(record{op: opOf[r.kind], req: r.cmd.req, start: start, fx: fx}); err != nil {
		return true, err
	}
	if r.kind == kindQuiet {
		c.run = true
		return false, c.endRun()
	}
	return false, nil
}

// forward writes a request to w: its line, then the rest of an overlong
// get line or the data block with its CRLF, streamed from the client.
func (c *conn) forward(w io.Writer, line []byte, r request, long bool) error {
	n, err := w.Write(line)
	if err != nil {
		return err
	}
	total := int64(n)
	switch {
	case long:
		for {
			chunk, err := c.cr.ReadSlice('\n')
			m, werr := w.Write(chunk)
			total += int64(m)
			if werr != nil {
				return werr
			}
			if err == nil {
				break
			}
			if err != bufio.ErrBufferFull {
				return err
			}
		}
	case r.data >= 0:
		n := r.data + 2
		if w == c.bw && n-int64(c.cr.Buffered()) >= bulkMin {
			head := int64(c.cr.Buffered())
			m, err := copyN(w, c.cr, head)
			total += m
			if err != nil {
				return err
			}
			if err := c.bw.Flush(); err != nil {
				return err
			}
			m, ok, err := c.bulk(c.backend, c.client, n-head)
			total += m
			if err != nil {
				return err
			}
			if ok {
				break
			}
			n -= head
		}
		m, err := copyN(w, c.cr, n)
		total += m
		if err != nil {
			return err
		}
	}
	if w == c.bw {
		c.up += total
	}
	return nil
}

// filterRequest passes one request's bytes through a ToBackend filter,
// straight to the backend so that its pacing holds.
func (c *conn) filterRequest(f chaos.Filter, line []byte, r request, long bool) error {
	if err := c.flushBackend(); err != nil {
		return err
	}
	// The line lives in cr's buffer, which the rest of the request reuses.
	head := bytes.NewReader(bytes.Clone(line))
	var src io.Reader = head
	switch {
	case long:
		src = io.MultiReader(head, &lineRest{br: c.cr})
	case r.data >= 0:
		src = io.MultiReader(head, io.LimitReader(c.cr, r.data+2))
	}
	return f.Relay(c.ctx, &relay.Counter{W: c.backend, Events: c.s, Dir: chaos.ToBackend}, src)
}

// lineRest reads the rest of a line, through its "\n", from br.
type lineRest struct {
	br   *bufio.Reader
	done bool
}

func (l *lineRest) Read(p []byte) (int, error) {
	if l.done {
		return 0, io.EOF
	}
	if l.br.Buffered() == 0 {
		if _, err := l.br.Peek(1); err != nil {
			return 0, err
		}
	}
	b, _ := l.br.Peek(min(len(p), l.br.Buffered()))
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
		l.done = true
	}
	n := copy(p, b)
	l.br.Discard(n)
	return n, nil
}

// clientEnded finishes the reader when reading stopped. When the client
// stopped sending, what was forwarded is flushed and the backend sees the
// half-close, so it answers what it has and closes, as it would for the
// client itself. A failed write is the backend's end, which the response
// side sees too; an idle connection is closed.
func (c *conn) clientEnded(err error) error {
	var ne *net.OpError
	switch {
	case errors.As(err, &ne) && ne.Op == "write":
		return normalEnd(err)
	case errors.Is(err, errIdle):
		c.clientGone.Store(true)
		c.closeBoth()
		return nil
	case errors.Is(err, errStopped):
		return nil
	}
	// An open run of quiet requests was ended before the read that failed
	// (beforeClientRead); an mn now could land inside a partial request.
	c.flushBackend()
	if tc, ok := c.backend.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	c.clientGone.Store(true)
	return normalEnd(err)
}

// goRaw stops framing: line (the bytes read and not yet forwarded) and
// whatever the client has buffered go to the backend, and the response
// side, once it has relayed every answer still due, hands the connection to
// a raw relay.
func (c *conn) goRaw(line []byte, req *chaos.Request) error {
	if err := c.leaveRun(); err != nil {
		return err
	}
	if len(line) > 0 {
		c.bw.Write(line)
		c.up += int64(len(line))
	}
	if n := c.cr.Buffered(); n > 0 {
		b, _ := c.cr.Peek(n)
		c.bw.Write(b)
		c.up += int64(n)
		c.cr.Discard(n)
	}
	if err := c.flushBackend(); err != nil {
		return normalEnd(err)
	}
	return c.push(record{op: opRaw, req: req, start: now()})
}
