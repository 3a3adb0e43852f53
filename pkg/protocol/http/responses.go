package httpproto

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// responses is the response loop: for each queued exchange, in order, it
// relays the backend's response or writes the reply the fault calls for.
func (c *conn) responses() error {
	for {
		x, err := c.next()
		if err == nil {
			err = c.respond(x)
			x.release()
		}
		if err != nil {
			return c.endResponses(err)
		}
	}
}

func (c *conn) endResponses(err error) error {
	switch err {
	case errDone:
		if err := c.cw.Flush(); err != nil {
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
	if err := c.cw.Flush(); err != nil {
		return nil, err
	}
	if !c.wake.Load() {
		c.bside.peeking = true
		_, err := c.br.Peek(1)
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
	switch x.kind {
	case kindReply, kindReject:
		return c.reply(x)
	case kindAbort:
		if err := c.cw.Flush(); err != nil {
			return err
		}
		select {
		case <-c.abortc:
		case <-c.stopc:
			return errStopped
		}
		if tc, ok := c.backend.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.abort(endFault)
		return errStopped
	}
	head := string(x.rq.method) == "HEAD"
	connect := string(x.rq.method) == "CONNECT"
	first := true
	for {
		h, err := readHead(c.br, c.rhead, false)
		c.rhead, c.pendingResp = h, h
		switch {
		case err == nil:
			if parseResponse(h, &c.rs) != nil {
				return errRaw
			}
		case len(h) == 0 && err == io.EOF:
			return errBackendClosed
		case err == errStopped || err == errIdle:
			return err
		case err == io.ErrUnexpectedEOF || err == errLineTooLong || err == errHeadTooLarge || errors.As(err, new(syntaxError)):
			return errRaw
		default:
			return err
		}
		if d := x.effect.ResponseDelay; first && d > 0 {
			if err := c.cw.Flush(); err != nil {
				return err
			}
			if c.wait(d) != nil {
				return errStopped
			}
		}
		first = false
		status := c.rs.status
		if status < 200 && status != 101 {
			// Interim (100 Continue, 103 Early Hints): relayed at once, and
			// the final response is still to come.
			n, err := c.cw.Write(h)
			c.pendingResp = nil
			c.down.add(n)
			if err == nil {
				err = c.cw.Flush()
			}
			if err != nil {
				return err
			}
			continue
		}
		kind := c.rs.body(head, connect)
		err = c.relayResponse(x, h, kind)
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
		c.s.Exchanged(&x.req, time.Since(x.start))
		if status == 101 || (connect && status < 300) {
			return errRaw // the 101 or 2xx head is out: the rest is the new protocol
		}
		if x.waits {
			select {
			case c.decided <- struct{}{}:
			default:
			}
		}
		if kind == bodyEOF || c.rs.wantsClose() || x.rq.wantsClose() {
			return errFinish
		}
		return nil
	}
}

// relayResponse relays a final response head and its body.
func (c *conn) relayResponse(x *exchange, h []byte, kind bodyKind) error {
	inject := x.effect.Fault == chaos.FaultError && x.effect.Error.Inject
	c.respBody.reset(c.br, kind, c.rs.length, inject)
	if f := x.effect.ToClient; f != nil {
		c.pendingResp = nil
		return filtered(c.ctx, f, &flushWriter{w: c.cw, cnt: &c.down}, h, &c.respBody)
	}
	n, err := c.cw.Write(h)
	c.pendingResp = nil
	c.down.add(n)
	if err != nil || kind == bodyNone {
		return err
	}
	_, err = c.respBody.WriteTo(c.cw)
	return err
}

// reply writes an error fault's response, or 414/431 for a request head
// over the limits, and ends the connection.
func (c *conn) reply(x *exchange) error {
	if d := x.effect.ResponseDelay; d > 0 {
		if err := c.cw.Flush(); err != nil {
			return err
		}
		if c.wait(d) != nil {
			return errStopped
		}
	}
	var spec *chaos.ErrorSpec
	headOnly := false
	if x.kind == kindReply {
		spec = &x.effect.Error
		headOnly = string(x.rq.method) == "HEAD"
	}
	n, err := c.cw.Write(renderReply(x.status, spec, headOnly))
	c.down.add(n)
	c.down.flush()
	if err != nil {
		return err
	}
	if x.kind == kindReply {
		c.s.Exchanged(&x.req, time.Since(x.start))
	}
	return errFinish
}
