package httpproto

import (
	"bytes"
	"errors"
	"io"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// requests is the request loop: it reads requests from the client, draws a
// behavior for each, queues what the response loop must do and forwards
// the request. It returns when the client is done or the connection stops.
func (c *conn) requests() error {
	defer func() {
		close(c.queue)
		c.wakeResponses()
	}()
	for {
		if err := c.request(); err != nil {
			if err == errDone {
				return nil
			}
			if c.cside.failed {
				// A client that is gone takes its pending answers with it;
				// one that only ended its stream still gets them.
				c.abort(endAbort)
			}
			return err
		}
	}
}

func (c *conn) request() error {
	in := &c.req.in
	if _, err := in.Peek(1); err != nil {
		return c.badHead(c.getExchange(), err)
	}
	x := c.getExchange()
	parsed := false
	if n := peekRequest(in, &x.rq); n > 0 {
		x.head = append(x.head, in.bytes()[:n]...)
		in.Discard(n)
		x.rq.rebase(x.head)
		parsed = true
	} else {
		head, err := readHead(in, x.head, true)
		x.head = head
		if err != nil {
			c.pendingReq = head
			return c.badHead(x, err)
		}
	}
	c.pendingReq = x.head
	select {
	case <-c.stopc:
		return c.stopping() // x.head may go to a raw relay as pendingReq
	default:
	}
	if !parsed && parseRequest(x.head, &x.rq) != nil {
		c.switchRaw()
		return errDone
	}
	kind, err := x.rq.body()
	if err != nil {
		c.switchRaw()
		return errDone
	}
	x.body = kind
	x.start = mono()
	x.req.Command = method(x.rq.method)
	x.req.Path = c.path(x.rq.target)
	switch string(x.rq.method) {
	case "HEAD":
		x.flags = flagHead
	case "CONNECT":
		x.flags = flagConnect | flagWaits
	}
	if x.rq.upgrade && x.rq.connUpg {
		x.flags |= flagWaits
	}
	if x.rq.wantsClose() {
		x.flags |= flagClose
	}
	d := c.s.Draw(&x.req)
	if d.Effect.IsZero() {
		return c.forward(x)
	}
	x.effect = d.Effect
	x.flags |= flagEffect
	return c.faulty(x)
}

// badHead handles a request head that could not be read whole.
func (c *conn) badHead(x *exchange, err error) error {
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		// The client is done, maybe in the middle of a head: the backend
		// gets what there was and the end of the stream, as without the
		// proxy.
		c.req.out.Write(x.head)
		c.pendingReq = nil
		c.free(x)
		c.clientDone()
		return errDone
	case err == errStopped:
		return c.stopping() // pendingReq goes to the raw relay, if that is what comes
	case err == errLineTooLong || err == errHeadTooLarge:
		c.pendingReq = nil
		x.kind, x.status = kindReject, 431
		if skip := skipBlank(x.head); err == errLineTooLong {
			if i := bytes.IndexByte(x.head[skip:], '\n'); i < 0 || skip+i == len(x.head)-1 {
				x.status = 414 // the request line is the long one
			}
		}
		if err := c.push(x); err != nil {
			return err
		}
		c.release(x)
		return c.drain()
	case errors.As(err, new(syntaxError)):
		c.switchRaw()
		return errDone
	}
	return err
}

// skipBlank returns the offset of the first line of head that is not blank.
func skipBlank(head []byte) int {
	off := 0
	for {
		if off < len(head) && head[off] == '\n' {
			off++
		} else if off+1 < len(head) && head[off] == '\r' && head[off+1] == '\n' {
			off += 2
		} else {
			return off
		}
	}
}

// clientDone passes the client's end of stream on to the backend.
func (c *conn) clientDone() {
	if c.req.out.Flush() == nil {
		closeWrite(c.backend)
	}
}

// stopping is where the request loop goes when the connection stops: after
// a final response it reads and drops what the client still sends, for a
// moment; otherwise it is over.
func (c *conn) stopping() error {
	if c.ending.Load() == endFinish {
		c.pendingReq = nil
		return c.drain()
	}
	return errDone
}

// drain reads and drops the client's bytes until it leaves or the
// connection stops reading it.
func (c *conn) drain() error {
	c.pendingReq = nil
	c.req.out.Flush()
	_, err := io.Copy(io.Discard, &c.req.in)
	if err == nil || err == errStopped || closedByPeer(err) {
		return errDone
	}
	return err
}

// push queues x for the response loop; a full queue holds the client back.
func (c *conn) push(x *exchange) error {
	x.refs.Store(2)
	select {
	case c.queue <- x:
	default:
		// x is left to the garbage collector when it cannot be queued:
		// its head may still go to a raw relay as pendingReq.
		if err := c.req.out.Flush(); err != nil {
			return err
		}
		select {
		case c.queue <- x:
		case <-c.stopc:
			return c.stopping()
		}
	}
	if x.kind != kindRelay {
		c.wakeResponses()
	}
	return nil
}

// forward queues x and sends the request to the backend.
func (c *conn) forward(x *exchange) error {
	waits := x.flags&flagWaits != 0
	if err := c.push(x); err != nil {
		return err
	}
	err := c.send(x)
	c.release(x)
	if err != nil {
		return c.sendFailed(err)
	}
	if waits {
		// Bytes after an Upgrade or CONNECT request belong to the new
		// protocol if the backend agrees: wait for its answer.
		if err := c.req.out.Flush(); err != nil {
			return err
		}
		select {
		case <-c.decided:
		case <-c.stopc:
			return c.stopping()
		}
	}
	return nil
}

// send writes the request head (Host rewritten if asked) and streams its body.
func (c *conn) send(x *exchange) error {
	if f := x.effect.ToBackend; f != nil {
		c.reqBody.reset(&c.req.in, x.body, x.rq.length, false)
		head := c.rewriteHost(x)
		c.pendingReq = nil
		err := filtered(c.ctx, f, &flushWriter{w: &c.req.out, cnt: &c.up}, head, &c.reqBody)
		c.up.flush()
		return err
	}
	n, err := c.writeHead(x)
	c.pendingReq = nil
	c.up.add(n)
	if err == nil && x.body != bodyNone {
		c.reqBody.reset(&c.req.in, x.body, x.rq.length, false)
		_, err = c.reqBody.WriteTo(&c.req.out)
	}
	c.up.flush()
	return err
}

func (c *conn) writeHead(x *exchange) (int, error) {
	if c.host == "" {
		return c.req.out.Write(x.head)
	}
	a, mid, b := c.headParts(x)
	c.req.out.Write(a)
	c.req.out.WriteString(mid)
	n, err := c.req.out.Write(b)
	return len(a) + len(mid) + n, err
}

// headParts splits the request head around its Host value, or around the
// place where a Host field is added when it has none.
func (c *conn) headParts(x *exchange) (before []byte, host string, after []byte) {
	h := x.head
	if x.rq.hostStart >= 0 {
		return h[:x.rq.hostStart], c.host, h[x.rq.hostEnd:]
	}
	return h[:x.rq.hdrEnd], "Host: " + c.host + "\r\n", h[x.rq.hdrEnd:]
}

// rewriteHost returns the head as it goes to the backend.
func (c *conn) rewriteHost(x *exchange) []byte {
	if c.host == "" {
		return x.head
	}
	a, mid, b := c.headParts(x)
	return append(append(append([]byte(nil), a...), mid...), b...)
}

// sendFailed decides what a failed send means.
func (c *conn) sendFailed(err error) error {
	switch {
	case err == errStopped:
		return c.stopping()
	case err == io.ErrUnexpectedEOF:
		c.clientDone() // the client left in the middle of a body
		return errDone
	case err == errLineTooLong || err == errHeadTooLarge || errors.As(err, new(syntaxError)):
		c.switchRaw() // a malformed chunked body: what was read went out
		return errDone
	case err == chaos.ErrClose:
		c.abort(endFault)
		return errDone
	}
	return err
}

// faulty carries out a drawn effect on x.
func (c *conn) faulty(x *exchange) error {
	e := &x.effect
	switch e.Fault {
	case chaos.FaultRefuse:
		c.s.Refused("down")
		fallthrough
	case chaos.FaultClose:
		c.pendingReq = nil
		c.free(x)
		c.abort(endFault)
		return errDone
	}
	if e.CloseDelay > time.Duration(c.closeDelay.Load()) {
		c.closeDelay.Store(int64(e.CloseDelay))
	}
	if e.Delay > 0 {
		if err := c.req.out.Flush(); err != nil {
			return err
		}
		if err := c.wait(&c.req, e.Delay); err != nil {
			return c.stopping() // x.head may go to a raw relay as pendingReq
		}
	}
	switch e.Fault {
	case chaos.FaultHang, chaos.FaultTimeout:
		if e.Fault == chaos.FaultTimeout && e.After > 0 {
			c.timers = append(c.timers, time.AfterFunc(e.After, func() { c.abort(endFault) }))
		}
		c.pendingReq = nil
		c.free(x)
		c.hanging.Store(true)
		return c.drain()
	case chaos.FaultReset:
		if e.After <= 0 {
			c.pendingReq = nil
			c.free(x)
			c.reset()
			return errDone
		}
		if len(c.timers) == 0 {
			c.timers = append(c.timers, time.AfterFunc(e.After, c.reset))
		}
	case chaos.FaultError:
		if !e.Error.Inject {
			x.kind = kindReply
			x.status = errorStatus(&e.Error)
			c.pendingReq = nil
			if err := c.push(x); err != nil {
				return err
			}
			c.release(x)
			return c.drain()
		}
	case chaos.FaultAbort:
		c.abortc = make(chan struct{})
		x.kind = kindAbort
		if err := c.push(x); err != nil {
			return err
		}
		err := c.send(x)
		c.release(x)
		c.req.out.Flush()
		close(c.abortc)
		if err != nil {
			return c.sendFailed(err)
		}
		return errDone
	}
	return c.forward(x)
}

// method returns the request method as a string, without allocating for
// the registered methods.
func method(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "HEAD":
		return "HEAD"
	case "DELETE":
		return "DELETE"
	case "OPTIONS":
		return "OPTIONS"
	case "PATCH":
		return "PATCH"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return string(bytes.ToUpper(m))
}

// path returns the path of a request target (without the query), reusing
// the previous request's string when it is the same path.
func (c *conn) path(target []byte) string {
	p := target
	if len(p) > 0 && p[0] != '/' && p[0] != '*' {
		// absolute-form: skip scheme and authority
		if i := bytes.Index(p, []byte("://")); i > 0 {
			p = p[i+3:]
			if j := bytes.IndexByte(p, '/'); j >= 0 {
				p = p[j:]
			} else {
				p = []byte("/")
			}
		}
		// authority-form (CONNECT host:port) stays whole
	}
	for i, ch := range p {
		if ch == '?' || ch == '#' {
			p = p[:i]
			break
		}
	}
	if string(p) != c.lastPath {
		c.lastPath = string(p)
	}
	return c.lastPath
}
