package kit

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

// requests is the request loop: it frames each request, draws for it,
// carries out the draw and forwards it, in order, queueing an Exchange for
// the reply loop. It returns when the client leaves, the connection goes
// raw or ends, or parks (errParked).
func (c *conn[R]) requests() (err error) {
	x := &c.req.x
	for {
		if c.end.lingering.Load() {
			return c.dropClient()
		}
		if c.cr.Buffered() == 0 {
			if err := c.settle(); err != nil {
				return c.clientEnded(err)
			}
			if err := c.waitClient(); err != nil {
				if err == errParked {
					return err
				}
				return c.clientEnded(err)
			}
		}
		*x = Exchange[R]{}
		if err := c.f.Request(c.cr, x); err != nil {
			return c.clientEnded(err)
		}
		// A request arrived with the read that brought its last bytes: the
		// delays of pipelined requests run from there, and overlap.
		x.start = c.cr.at
		if x.Then == RawNow {
			return c.goRaw(x)
		}
		if x.Then == RawIfReply && c.q.verdict == nil {
			// Made before x is queued: the reply loop sees it with x.
			c.q.verdict = make(chan bool, 1)
		}
		if x.Drain {
			if err := c.drain(); err != nil {
				return c.clientEnded(err)
			}
		}
		if x.Req != nil {
			d := &c.req.drawn
			if *d = c.s.Draw(x.Req); !d.Effect.IsZero() {
				if stop, err := c.carryOut(x, &d.Effect); stop || err != nil {
					return err
				}
				continue
			}
		}
		if err := c.forward(x, nil); err != nil {
			return c.clientEnded(err)
		}
		if stop, err := c.then(x); stop || err != nil {
			return err
		}
	}
}

// waitClient is the request loop's top wait, for the client's next
// request; errParked when the connection parks (see parking).
func (c *conn[R]) waitClient() error {
	p := &c.park
	for {
		p.reqTop.Store(true)
		err := c.cr.await()
		p.reqTop.Store(false)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			c.stay(true)
			return err
		}
		c.client.SetReadDeadline(time.Time{})
		if c.leave(true) {
			return errParked
		}
	}
}

// forward sends x's request to the backend, through the drawn filter if
// there is one, and queues x.
func (c *conn[R]) forward(x *Exchange[R], f chaos.Filter) error {
	c.q.sending.Store(true)
	defer c.q.sending.Store(false)
	if x.Early && f == nil {
		if err := c.push(x); err != nil {
			return err
		}
		return c.f.Send(c.cr, c.bw, x)
	}
	var err error
	if f == nil {
		err = c.f.Send(c.cr, c.bw, x)
	} else {
		err = c.sendFiltered(x, f)
	}
	if err == ErrStop {
		// What went out of the request may be answered.
		if err := c.push(x); err != nil {
			return err
		}
		return ErrStop
	}
	if err != nil {
		return err
	}
	return c.push(x)
}

// sendFiltered runs the request's bytes through f, straight to the
// backend so that its pacing holds; Send feeds it through a pipe so that a
// large body is still streamed.
func (c *conn[R]) sendFiltered(x *Exchange[R], f chaos.Filter) error {
	if err := c.bw.Flush(); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	sent := make(chan error, 1)
	go func() {
		err := c.f.Send(c.cr, pw, x)
		pw.CloseWithError(err)
		sent <- err
	}()
	ferr := f.Relay(c.ctx, &relay.Counter{W: c.backend, Events: c.s, Dir: chaos.ToBackend}, pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if ferr != nil {
		c.closeAll() // Send may wait for client bytes that no longer matter
	}
	err := <-sent
	if ferr != nil {
		return ferr
	}
	return err
}

// push queues x for the reply loop; before it would block on a full queue
// it flushes, since the answers it waits for may need the requests still
// buffered.
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
	if needsWake(x) {
		c.q.wake()
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

// closing ends the request loop before a Close: the client's input is
// dropped until it leaves or the connection ends.
func (c *conn[R]) closing() error {
	if err := c.bw.Flush(); err != nil {
		return c.clientEnded(err)
	}
	return c.dropClient()
}

// settle lets the framing close what it left open before the loop waits,
// carries out an effect or goes raw.
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
	if err := c.f.Send(c.cr, c.bw, x); err != nil {
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

// goRaw leaves framing before x, which was not framed: x and everything
// after it go to the backend as they are.
func (c *conn[R]) goRaw(x *Exchange[R]) error {
	if err := c.settle(); err != nil {
		return c.clientEnded(err)
	}
	x.op = opRaw
	if err := c.push(x); err != nil {
		return c.clientEnded(err)
	}
	return c.handOver()
}

// handOver sends what the client's Reader holds to the backend before a
// raw relay takes over.
func (c *conn[R]) handOver() error {
	if n := c.cr.Buffered(); n > 0 {
		c.bw.Write(c.cr.bytes())
		c.cr.r = c.cr.w
	}
	c.cr.release()
	if err := c.bw.Flush(); err != nil {
		c.closeAll()
		return quiet(err)
	}
	return nil
}

// clientEnded finishes the request loop when reading or forwarding
// stopped. A client that left has what it sent forwarded, and the backend
// sees the half-close once it has sent what it had for the client, so
// that it ends as it would for the client itself. A backend that stopped reading is the reply
// loop's to see; a lingering connection drops the client's input.
func (c *conn[R]) clientEnded(err error) error {
	switch {
	case c.bw.Failed(), errors.Is(err, errStopped):
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
	if n := c.cr.Buffered(); n > 0 {
		c.bw.Write(c.cr.bytes()) // the client left in the middle of a request
		c.cr.r = c.cr.w
	}
	c.bw.Flush()
	c.end.clientGone.Store(true)
	c.finIfClientGone()
	return nil
}

// dropClient reads and drops what the client sends until it leaves, or
// the connection is closed.
func (c *conn[R]) dropClient() error {
	c.cr.before = nil
	for {
		c.cr.r = c.cr.w
		if err := c.cr.fill(); err != nil {
			c.end.clientGone.Store(true)
			return nil
		}
	}
}
