package kit

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

// requests is the request loop: it frames each request, draws for it,
// carries out the draw and forwards it, queueing an Exchange for the reply
// loop. It returns when the client leaves, the connection goes raw or ends,
// or parks (errParked).
func (c *conn[R]) requests() (err error) {
	x := &c.req.x
	for {
		if c.end.lingering.Load() {
			return c.dropClient()
		}
		// The wait for the next request, which a park interrupts.
		for c.cr.Buffered() == 0 {
			if err := c.settle(); err != nil {
				return c.clientEnded(err)
			}
			c.park.reqTop.Store(true)
			err := c.cr.await()
			c.park.reqTop.Store(false)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.client.SetReadDeadline(time.Time{})
				if c.leave(true) {
					return errParked
				}
				continue
			}
			c.stay(true)
			if err != nil {
				return c.clientEnded(err)
			}
		}
		*x = Exchange[R]{}
		if err := c.f.Request(&c.cr, x); err != nil {
			return c.clientEnded(err)
		}
		// A request arrived with the read that brought its last bytes: the
		// delays of pipelined requests run from there, and overlap.
		x.start = c.cr.at
		if x.Then == RawNow {
			x.op = opRaw
			if err := c.settle(); err != nil {
				return c.clientEnded(err)
			}
			if err := c.push(x); err != nil {
				return c.clientEnded(err)
			}
			return c.handOver()
		}
		if x.Then == RawIfReply && c.q.verdict == nil {
			c.q.verdict = make(chan bool, 1) // before x is queued: the reply loop sees it with x
		}
		if x.Drain {
			if err := c.drain(); err != nil {
				return c.clientEnded(err)
			}
		}
		if x.Req != nil && c.s.Draw(x.Req, &c.req.drawn) {
			if stop, err := c.carryOut(x, &c.req.drawn.Effect); stop || err != nil {
				return err
			}
			continue
		}
		if err := c.forward(x, nil); err != nil {
			return c.clientEnded(err)
		}
		if stop, err := c.then(x); stop || err != nil {
			return err
		}
	}
}

// forward sends x's request to the backend, through f if drawn, and queues x.
func (c *conn[R]) forward(x *Exchange[R], f chaos.Filter) error {
	c.q.sending.Store(true)
	defer c.q.sending.Store(false)
	early := x.Early && f == nil
	if early {
		if err := c.push(x); err != nil {
			return err
		}
	}
	var err error
	if f == nil {
		err = c.f.Send(&c.cr, &c.bw, x)
	} else if err = c.bw.Flush(); err == nil {
		err = c.filter(f, c.backend, chaos.ToBackend, func(w io.Writer) error { return c.f.Send(&c.cr, w, x) })
	}
	if early || err != nil && err != ErrStop {
		return err
	}
	// After ErrStop, what went out of the request may be answered.
	return cmp.Or(c.push(x), err)
}

// filter runs a message through f straight to dst, so that its pacing
// holds; frame writes the message to a pipe, so that a large body is still
// streamed. An error of f's closes the connection and wins over frame's.
func (c *conn[R]) filter(f chaos.Filter, dst net.Conn, dir chaos.Direction, frame func(io.Writer) error) error {
	pr, pw := io.Pipe()
	framed := make(chan error, 1)
	go func() {
		err := frame(pw)
		pw.CloseWithError(err)
		framed <- err
	}()
	ferr := f.Relay(c.ctx, &relay.Counter{W: dst, Events: c.s, Dir: dir}, pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if ferr != nil {
		c.closeAll() // frame may wait for bytes that no longer matter
	}
	return cmp.Or(ferr, <-framed)
}

// push queues x for the reply loop. Before it waits on a full queue it
// flushes: the answers it waits for may need the requests still buffered.
func (c *conn[R]) push(x *Exchange[R]) error {
	if !c.q.put(x, false) {
		if err := c.bw.Flush(); err != nil {
			return err
		}
		for !c.q.put(x, true) {
			select {
			case <-c.q.room:
			case <-c.q.done:
				return errStopped
			}
		}
	}
	if x.op != opRelay || x.Reply != ReplyOne {
		c.wake() // the reply loop needs no backend bytes for x
	}
	return nil
}

// then acts on x.Then once x is queued.
func (c *conn[R]) then(x *Exchange[R]) (stop bool, err error) {
	switch x.Then {
	case RawAfter:
		return true, c.handOver()
	case RawIfReply:
		if err := c.bw.Flush(); err != nil {
			return true, c.clientEnded(err)
		}
		select {
		case raw := <-c.q.verdict:
			if raw {
				return true, c.handOver()
			}
		case <-c.q.done:
			return true, nil
		}
	case Close:
		return true, c.closing()
	}
	return false, nil
}

// closing ends the request loop before a Close.
func (c *conn[R]) closing() error {
	if err := c.bw.Flush(); err != nil {
		return c.clientEnded(err)
	}
	return c.dropClient()
}

// settle lets a Settler close what it left open.
func (c *conn[R]) settle() error {
	s, ok := c.f.(Settler[R])
	if !ok {
		return nil
	}
	x := &c.req.settled
	*x = Exchange[R]{}
	if !s.Settle(x) {
		return nil
	}
	x.start = now()
	if err := c.f.Send(&c.cr, &c.bw, x); err != nil {
		return err
	}
	return c.push(x)
}

// drain waits until every request forwarded so far is answered.
func (c *conn[R]) drain() error {
	if err := c.settle(); err != nil {
		return err
	}
	if c.q.barrier == nil {
		c.q.barrier = make(chan struct{}, 1)
	}
	if err := c.push(&Exchange[R]{op: opBarrier}); err != nil {
		return err
	}
	if err := c.bw.Flush(); err != nil {
		return err
	}
	select {
	case <-c.q.barrier:
		return nil
	case <-c.q.done:
		return errStopped
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

// handOver passes what the client's Reader holds on before a raw relay.
func (c *conn[R]) handOver() error {
	if err := pass(&c.cr, &c.bw); err != nil {
		c.closeAll()
		return quiet(err)
	}
	return nil
}

// pass sends what r holds on through w, and hands r's buffer back.
func pass(r *Reader, w *Writer) error {
	if r.Buffered() > 0 {
		w.Write(r.Bytes())
		r.r = r.w
	}
	r.release()
	return w.Flush()
}

// clientEnded finishes the request loop when reading or forwarding
// stopped. A client that left has what it sent forwarded, and the backend
// gets its end once it has answered (finIfClientGone), as it would from the
// client itself. A backend that stopped reading is the reply loop's to see.
func (c *conn[R]) clientEnded(err error) error {
	switch {
	case c.bw.err != nil, errors.Is(err, errStopped):
		if c.end.lingering.Load() {
			return c.dropClient()
		}
		return nil
	case c.end.closed.Load(), errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, chaos.ErrClose):
		c.closeAll()
		return nil
	case err == ErrStop:
		c.bw.Flush()
		relay.CloseWrite(c.backend)
		return c.dropClient()
	case err != io.EOF && !relay.OrdinaryEnd(err):
		c.closeAll()
		return err
	}
	pass(&c.cr, &c.bw) // the client may have left in the middle of a request
	c.end.clientGone.Store(true)
	c.finIfClientGone()
	return nil
}

// dropClient reads and drops what the client sends until it leaves or the
// connection closes.
func (c *conn[R]) dropClient() error {
	c.cr.before = nil
	for {
		c.cr.r = c.cr.w
		if err := c.cr.More(); err != nil {
			c.end.clientGone.Store(true)
			return nil
		}
	}
}
