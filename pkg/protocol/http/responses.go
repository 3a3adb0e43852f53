package httpproto

import (
	"errors"
	"io"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

// responses is the response loop: for each queued exchange, in order, it
// relays the backend's response or writes the reply the fault calls for.
func (c *conn) responses() error {
	for {
		x, err := c.next()
		if err == nil {
			c.bside.cur = x
			err = c.respond(x)
			c.bside.cur = nil
			c.release(x)
		}
		if err != nil {
			return c.endResponses(err)
		}
	}
}

func (c *conn) endResponses(err error) error {
	switch err {
	case errDone:
		if err := c.resp.out.Flush(); err != nil {
			c.abort(endAbort)
			return err
		}
		return nil
	case errBackendClosed:
		if c.hanging.Load() {
			return nil // a hung client keeps its connection
		}
		c.finish()
		return nil
	case errFinish:
		c.finish()
		return nil
	case errStopped:
		return nil
	case errRejected:
		c.abort(endAbort) // the 400 could not replace a response that began
		return nil
	case errRaw:
		c.switchRaw()
		return nil
	case errIdle:
		if c.hanging.Load() {
			return nil
		}
	}
	c.abort(endAbort)
	return err
}

// next returns the next exchange to answer. With none queued it flushes
// the client's buffer and waits on the backend rather than on the queue,
// so that a backend closing an idle connection closes the client's too, and
// bytes it sends unasked hand the connection to a raw relay.
func (c *conn) next() (*exchange, error) {
	select {
	case x, ok := <-c.queue:
		return queued(x, ok)
	default:
	}
	if err := c.resp.out.Flush(); err != nil {
		return nil, err
	}
	if !c.wake.Load() {
		c.bside.peeking = true
		_, err := c.resp.in.Peek(1)
		c.bside.peeking = false
		// A request is queued before it is forwarded, so a response finds
		// its exchange here.
		select {
		case x, ok := <-c.queue:
			if !ok && err == nil {
				return nil, errRaw
			}
			return queued(x, ok)
		default:
		}
		switch {
		case err == nil:
			return nil, errRaw
		case err == io.EOF:
			return nil, errBackendClosed
		case err != errWoken:
			return nil, err
		}
	}
	if c.rejected.Load() != nil {
		// The request whose body was malformed was queued before it was
		// marked: once it is answered, the connection ends.
		select {
		case x, ok := <-c.queue:
			if ok {
				return x, nil
			}
		default:
		}
		return nil, errFinish
	}
	c.resp.release()
	select {
	case x, ok := <-c.queue:
		return queued(x, ok)
	case <-c.stopc:
		return nil, errStopped
	}
}

func queued(x *exchange, ok bool) (*exchange, error) {
	if !ok {
		return nil, errDone
	}
	return x, nil
}

// respond answers one exchange.
func (c *conn) respond(x *exchange) error {
	if c.rejected.Load() == x {
		return c.reply(x)
	}
	switch x.kind {
	case kindReply, kindReject:
		return c.reply(x)
	case kindAbort:
		if err := c.resp.out.Flush(); err != nil {
			return err
		}
		select {
		case <-c.abortc:
		case <-c.stopc:
			return errStopped
		}
		relay.Reset(c.backend)
		c.abort(endFault)
		return errStopped
	}
	head := x.flags&flagHead != 0
	connect := x.flags&flagConnect != 0
	first := true
	for {
		h, inPlace, err := c.responseHead()
		switch {
		case err == nil:
		case len(h) == 0 && err == io.EOF:
			return errBackendClosed
		case err == errStopped || err == errIdle:
			return err
		case err == errRejected:
			return c.reply(x)
		case err == errMalformed || err == io.ErrUnexpectedEOF || err == errLineTooLong || err == errHeadTooLarge || errors.As(err, new(syntaxError)):
			return errRaw
		default:
			return err
		}
		if first && x.flags&flagEffect != 0 && x.effect.ResponseDelay > 0 {
			if err := c.resp.out.Flush(); err != nil {
				return err
			}
			if c.wait(&c.resp, x.effect.ResponseDelay) != nil {
				return errStopped
			}
		}
		first = false
		status := c.rs.status
		if status < 200 && status != 101 {
			// Interim (100 Continue, 103 Early Hints): relayed at once, and
			// the final response is still to come.
			n, err := c.resp.out.Write(h)
			c.consumed(h, inPlace)
			c.down.add(n)
			if err == nil {
				err = c.resp.out.Flush()
			}
			if err != nil {
				return err
			}
			continue
		}
		kind := c.rs.body(head, connect)
		err = c.relayResponse(x, h, inPlace, kind)
		c.down.flush()
		switch {
		case err == nil:
		case err == io.ErrUnexpectedEOF:
			return errBackendClosed // a truncated body: the client sees the end where it came
		case err == errLineTooLong || err == errHeadTooLarge || errors.As(err, new(syntaxError)):
			return errRaw
		default:
			return err
		}
		c.s.Exchanged(&x.req, mono()-x.start)
		if status == 101 || (connect && status < 300) {
			return errRaw // the 101 or 2xx head is out: the rest is the new protocol
		}
		if x.flags&flagWaits != 0 {
			select {
			case c.decided <- struct{}{}:
			default:
			}
		}
		if kind == bodyEOF || c.rs.wantsClose() || x.flags&flagClose != 0 {
			return errFinish
		}
		return nil
	}
}

// errMalformed is a response head that was read whole and cannot be
// framed.
var errMalformed = errors.New("malformed response head")

// responseHead reads the next response head and parses it into c.rs. When
// the buffer holds the head whole, it is parsed where it is and left
// there (inPlace) until consumed; otherwise it is gathered into c.rhead,
// which pendingResp holds until it is relayed.
func (c *conn) responseHead() (h []byte, inPlace bool, err error) {
	in := &c.resp.in
	if _, err := in.Peek(1); err != nil {
		return nil, false, err
	}
	if n := peekResponse(in, &c.rs); n > 0 {
		return in.bytes()[:n], true, nil
	}
	h, err = readHead(in, c.rhead, false)
	c.rhead, c.pendingResp = h, h
	if err == nil && parseResponse(h, &c.rs) != nil {
		err = errMalformed
	}
	return h, false, err
}

// consumed records that head h went out.
func (c *conn) consumed(h []byte, inPlace bool) {
	if inPlace {
		c.resp.in.Discard(len(h))
	}
	c.pendingResp = nil
}

// relayResponse relays a final response head and its body.
func (c *conn) relayResponse(x *exchange, h []byte, inPlace bool, kind bodyKind) error {
	in := &c.resp.in
	var e *chaos.Effect
	if x.flags&flagEffect != 0 {
		e = &x.effect
	}
	inject := e != nil && e.Fault == chaos.FaultError && e.Error.Inject
	if e != nil && e.ToClient != nil {
		if inPlace {
			// The filter reads the head while the body is read into the
			// same buffer.
			c.rhead = append(c.rhead[:0], h...)
			c.consumed(h, true)
			h = c.rhead
		}
		c.pendingResp = nil
		c.respBody.reset(in, kind, c.rs.length, inject)
		return filtered(c.ctx, e.ToClient, &relay.Counter{W: flushing{&c.resp.out}, Events: c.s, Dir: chaos.ToClient}, h, &c.respBody)
	}
	if out := &c.resp.out; inPlace && kind == bodyLength && !inject && out.Buffered() == 0 &&
		int64(in.Buffered()-len(h)) >= c.rs.length {
		// The whole response is buffered and nothing is before it: it
		// goes out from where it is, without a copy.
		n := len(h) + int(c.rs.length)
		out.lend(in.bytes()[:n])
		in.Discard(n)
		c.pendingResp = nil
		c.down.add(n)
		return nil
	}
	n, err := c.resp.out.Write(h)
	c.consumed(h, inPlace)
	c.down.add(n)
	if err != nil || kind == bodyNone {
		return err
	}
	c.respBody.reset(in, kind, c.rs.length, inject)
	_, err = c.respBody.WriteTo(&c.resp.out)
	return err
}

// reply writes an error fault's response, or the answer to a request the
// proxy rejected, and ends the connection.
func (c *conn) reply(x *exchange) error {
	if d := x.effect.ResponseDelay; d > 0 {
		if err := c.resp.out.Flush(); err != nil {
			return err
		}
		if c.wait(&c.resp, d) != nil {
			return errStopped
		}
	}
	var spec *chaos.ErrorSpec
	headOnly := false
	switch {
	case x.kind == kindReply:
		spec = &x.effect.Error
		headOnly = x.flags&flagHead != 0
	case x.why != nil:
		spec = &chaos.ErrorSpec{Message: x.why.Error() + "\n"}
		headOnly = x.flags&flagHead != 0
	}
	n, err := c.resp.out.Write(renderReply(x.status, spec, headOnly))
	c.down.add(n)
	c.down.flush()
	if err != nil {
		return err
	}
	if x.kind == kindReply {
		c.s.Exchanged(&x.req, mono()-x.start)
	}
	return errFinish
}
