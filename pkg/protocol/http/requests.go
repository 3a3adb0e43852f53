package httpproto

import (
	"bytes"
	"errors"
	"io"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/relay"
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
		if err := c.awaitRequestLine(); err != nil {
			return c.reject(x, err)
		}
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
	if !parsed {
		if err := parseRequest(x.head, &x.rq); err != nil {
			return c.reject(x, err)
		}
	}
	kind, err := x.rq.body()
	if err == nil && kind == bodyChunked {
		err = checkChunks(in.bytes())
	}
	if err != nil {
		return c.reject(x, err)
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
		status := 431
		if skip := skipBlank(x.head); err == errLineTooLong {
			if i := bytes.IndexByte(x.head[skip:], '\n'); i < 0 || skip+i == len(x.head)-1 {
				status = 414 // the request line is the long one
			}
		}
		return c.refuse(x, status, nil)
	case errors.As(err, new(syntaxError)):
		return c.reject(x, err)
	}
	return err
}

// refusedBadRequest is the reason a request the proxy will not forward is
// counted under (proxy.RefusedBadRequest).
const refusedBadRequest = "bad_request"

// reject answers a request head that the proxy will not forward because
// its framing is malformed or ambiguous: 505 for an HTTP major version
// other than 1, else 400, after the responses to the requests before it.
// The connection then closes (RFC 9112 section 6.3), and nothing of the
// request reaches the backend.
func (c *conn) reject(x *exchange, why error) error {
	status := 400
	if why == errVersion {
		status = 505
	}
	return c.refuse(x, status, why)
}

// refuse queues the answer status to x in place of the backend's, then
// reads and drops what the client still sends until the connection ends.
// why, when set, is the answer's text; else it is the status's page.
func (c *conn) refuse(x *exchange, status int, why error) error {
	c.pendingReq = nil
	x.kind, x.status, x.why = kindReject, status, why
	c.s.Refused(refusedBadRequest)
	if err := c.push(x); err != nil {
		return err
	}
	c.release(x)
	return c.drain()
}

// awaitRequestLine checks the request line as its bytes come
// (checkRequestStart) until its end is buffered, so that a client that does
// not speak HTTP/1 is answered without waiting for a head it never sends.
// A read error is left for readHead to meet again.
func (c *conn) awaitRequestLine() error {
	in := &c.req.in
	for {
		b := in.bytes()
		b = b[skipBlank(b):]
		end := bytes.IndexByte(b, '\n')
		line := b
		if end >= 0 {
			line = b[:end]
		}
		if err := checkRequestStart(line); err != nil {
			return err
		}
		if end >= 0 || in.Buffered() >= in.size {
			return nil
		}
		if _, err := in.Peek(in.Buffered() + 1); err != nil {
			return nil
		}
	}
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
		relay.CloseWrite(c.backend)
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
	if err := c.send(x); err != nil {
		return c.sendFailed(x, err)
	}
	c.release(x)
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
		err := filtered(c.ctx, f, &relay.Counter{W: flushing{&c.req.out}, Events: c.s, Dir: chaos.ToBackend}, head, &c.reqBody)
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

// sendFailed decides what a failed send of x means, and releases x.
func (c *conn) sendFailed(x *exchange, err error) error {
	if errors.Is(err, errLineTooLong) || errors.Is(err, errHeadTooLarge) || errors.As(err, new(syntaxError)) {
		c.rejectBody(x, err)
		c.release(x)
		return c.drain()
	}
	c.release(x)
	switch {
	case err == errStopped:
		return c.stopping()
	case err == io.ErrUnexpectedEOF:
		c.clientDone() // the client left in the middle of a body
		return errDone
	case err == chaos.ErrClose:
		c.abort(endFault)
		return errDone
	}
	return err
}

// rejectBody ends a request whose chunked body turned out malformed after
// its head went out: the backend gets nothing after the malformed line,
// then the end of the stream, so that no byte of the client's can be read
// as a request of its own. The response loop answers 400 in place of the
// backend's response, unless that response already began (then the
// connection is closed), and the connection ends.
func (c *conn) rejectBody(x *exchange, why error) {
	x.status, x.why = 400, why
	c.rejected.Store(x)
	c.s.Refused(refusedBadRequest)
	c.pendingReq = nil
	// Stop a response loop that waits on the backend for x's response,
	// before the backend gets what makes it answer.
	c.wake.Store(true)
	c.backend.SetReadDeadline(aLongTimeAgo)
	c.clientDone()
}

// faulty carries out a drawn effect on x, step by step in the order chaos
// lays it out. The reply delay is the response loop's (see responses).
func (c *conn) faulty(x *exchange) error {
	e := &x.effect
	steps := e.Steps()
	for _, st := range steps.List() {
		switch st.Kind {
		case chaos.StepRefuse, chaos.StepClose:
			if st.Kind == chaos.StepRefuse {
				c.s.Refused("down")
			}
			c.pendingReq = nil
			c.free(x)
			if st.D > 0 {
				c.req.out.Flush()
				if c.wait(&c.req, st.D) != nil {
					return c.stopping()
				}
			}
			c.abort(endFault)
			return errDone
		case chaos.StepWait:
			if err := c.req.out.Flush(); err != nil {
				return err
			}
			if err := c.wait(&c.req, st.D); err != nil {
				return c.stopping() // x.head may go to a raw relay as pendingReq
			}
		case chaos.StepHang, chaos.StepTimeout:
			if st.D > 0 {
				c.timers = append(c.timers, time.AfterFunc(st.D, func() { c.abort(endFault) }))
			}
			c.pendingReq = nil
			c.free(x)
			c.hanging.Store(true)
			return c.drain()
		case chaos.StepReset:
			if st.D <= 0 {
				c.pendingReq = nil
				c.free(x)
				c.reset()
				return errDone
			}
			if len(c.timers) == 0 {
				c.timers = append(c.timers, time.AfterFunc(st.D, c.reset))
			}
		case chaos.StepError:
			if !e.Error.Inject {
				x.kind = kindReply
				x.status = errorStatus(&e.Error)
			}
		case chaos.StepAbort:
			x.kind = kindAbort
		case chaos.StepCloseDelay:
			if st.D > time.Duration(c.closeDelay.Load()) {
				c.closeDelay.Store(int64(st.D))
			}
		}
	}
	switch x.kind {
	case kindReply:
		c.pendingReq = nil
		if err := c.push(x); err != nil {
			return err
		}
		c.release(x)
		return c.drain()
	case kindAbort:
		c.abortc = make(chan struct{})
		if err := c.push(x); err != nil {
			return err
		}
		err := c.send(x)
		c.req.out.Flush()
		close(c.abortc)
		if err != nil {
			return c.sendFailed(x, err)
		}
		c.release(x)
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
