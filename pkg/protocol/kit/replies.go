package kit

import (
	"errors"
	"io"
	"os"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

// How the reply loop ended.
type endKind uint8

const (
	endDrained endKind = iota // the request loop finished and every answer was relayed
	endRaw                    // the connection goes raw
	endBackend                // the backend ended, or an answer closes: the lingering close
	endClosed                 // the connection ends at once (abort, a failure, a close)
	endParked                 // the connection parked: the loop resumes later
)

// replies is the reply loop: it answers the queued Exchanges in order.
func (c *conn[R]) replies() (endKind, error) {
	x := &c.rep.x
	for {
		ok, err := c.next()
		if err == errParked {
			return endParked, nil
		}
		if err != nil {
			return c.backendEnded(err)
		}
		if !ok {
			return endDrained, c.cw.Flush()
		}
		if c.rep.hanging && x.op != opBarrier {
			continue
		}
		switch x.op {
		case opRelay:
			if x.Reply != ReplyNone {
				err = c.answer(x)
			}
			if err != nil && err != ErrRaw {
				return c.backendEnded(err)
			}
			c.exchanged(x)
			if x.Then == RawIfReply {
				c.q.verdict <- err == ErrRaw
			}
			if err == ErrRaw || x.Then == RawAfter {
				return endRaw, nil
			}
		case opError:
			if err := c.due(x); err != nil {
				return endClosed, err
			}
			if _, err := c.cw.Write(x.fx.reply); err != nil {
				return endClosed, err
			}
			c.exchanged(x)
		case opHang:
			c.rep.hanging = true
		case opAbort:
			c.cw.Flush()
			relay.Reset(c.backend)
			return endClosed, nil
		case opRaw:
			c.exchanged(x)
			return endRaw, nil
		case opBarrier:
			c.q.barrier <- struct{}{}
		}
		if x.Then == Close {
			return endBackend, c.cw.Flush()
		}
	}
}

func (c *conn[R]) exchanged(x *Exchange[R]) {
	if x.Req == nil {
		return
	}
	// An answer relayed as it came ended with the read that brought its
	// last bytes, as its request started with its own: no clock is read
	// per request of a pipeline.
	end := c.br.at
	if x.op != opRelay || x.Reply == ReplyNone || x.fx != nil || end < x.start {
		end = now()
	}
	c.s.Exchanged(x.Req, end-x.start)
}

// next takes the next Exchange into c.rep.x; ok is false once the request
// loop is done and every Exchange was answered. With none queued it waits
// on the backend (see queue).
func (c *conn[R]) next() (ok bool, err error) {
	x := &c.rep.x
	if ok, closed := c.q.take(x, false); ok || closed {
		return ok, nil
	}
	if err := c.cw.Flush(); err != nil {
		return false, err
	}
	// Once hanging, nothing is forwarded: only the request loop's end
	// matters.
	for !c.rep.hanging {
		c.q.parked.Store(true)
		if ok, closed := c.q.take(x, false); ok || closed {
			c.q.parked.Store(false)
			return ok, nil
		}
		c.park.repTop.Store(true)
		err := c.br.await()
		c.park.repTop.Store(false)
		c.q.parked.Store(false)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The request loop's wake-up, taken once; or one that came
			// after the wait, or a park.
			c.backend.SetReadDeadline(time.Time{})
			if c.q.woken.CompareAndSwap(true, false) {
				c.stay(false)
			} else if c.leave(false) {
				return false, errParked
			}
			continue
		}
		c.stay(false)
		if err != nil {
			return false, err
		}
		u, isU := c.f.(Unsolicited)
		if !isU || c.q.sending.Load() {
			break
		}
		// Nothing was on its way when these bytes came, unless it is
		// queued by now.
		if ok, closed := c.q.take(x, false); ok || closed {
			return ok, nil
		}
		handled, err := u.Unsolicited(&c.br, &c.cw)
		if err != nil {
			return false, err
		}
		if !handled {
			break
		}
	}
	// An answer is coming in, or the loop hangs: the Exchange is queued or
	// about to be.
	for {
		if ok, closed := c.q.take(x, true); ok || closed {
			return ok, nil
		}
		select {
		case <-c.q.ready:
		case <-c.ctx.Done():
			return false, c.ctx.Err()
		}
	}
}

// due holds x's answer until it may be written, with what was answered
// before it already on its way.
func (c *conn[R]) due(x *Exchange[R]) error {
	if x.fx == nil || x.fx.due <= 0 {
		return nil
	}
	d := x.fx.due - now()
	if c.inTurn {
		d = x.fx.delay
	}
	if d <= 0 {
		return nil
	}
	if err := c.cw.Flush(); err != nil {
		return err
	}
	return c.rep.wait.Wait(c.ctx, d)
}

// answer relays the backend's answer to x, through the drawn filter if any.
func (c *conn[R]) answer(x *Exchange[R]) error {
	if err := c.due(x); err != nil {
		return err
	}
	if x.fx == nil || x.fx.filter == nil {
		return c.f.Reply(&c.br, &c.cw, x)
	}
	if err := c.cw.Flush(); err != nil {
		return err
	}
	return c.filter(x.fx.filter, c.client, chaos.ToClient, func(w io.Writer) error { return c.f.Reply(&c.br, w, x) })
}

// backendEnded sorts how the answers stopped: the backend leaving (the
// lingering close), the client leaving or the connection closing (an end
// at once), or a failure that Serve reports.
func (c *conn[R]) backendEnded(err error) (endKind, error) {
	switch {
	case c.end.closed.Load(), c.cw.err != nil, err == errStopped:
		return endClosed, nil
	case errors.Is(err, chaos.ErrClose):
		c.cw.Flush()
		return endClosed, nil
	case relay.OrdinaryEnd(err):
		c.cw.Flush()
		return endBackend, nil
	}
	return endClosed, err
}
