package memcache

import (
	"errors"
	"io"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

// The response side: backend → client.

// flushClient sends the buffered answers and reports their bytes.
func (c *conn) flushClient() error {
	if c.cw.Buffered() > 0 {
		if err := c.cw.Flush(); err != nil {
			return err
		}
	}
	if c.down > 0 {
		c.s.Relayed(chaos.ToClient, c.down)
		c.down = 0
	}
	return nil
}

// writeLoop answers the records in order. drained reports that the reader
// finished and every record was handled; raw that the connection goes raw.
func (c *conn) writeLoop() (drained, raw bool, err error) {
	for {
		r, ok, err := c.next()
		if err != nil {
			return false, false, c.responseErr(err)
		}
		if !ok {
			return true, false, normalEnd(c.flushClient())
		}
		if c.hanging {
			continue
		}
		switch r.op {
		case opOne:
			if err := c.answer(r, unit{}); err != nil {
				return false, false, err
			}
		case opNone:
			c.s.Exchanged(r.req, r.took())
		case opQuiet:
			c.pending = append(c.pending, r)
		case opNoop, opRunEnd:
			u := unit{run: true, swallow: r.op == opRunEnd}
			if r.fx == nil {
				for _, p := range c.pending {
					if p.fx != nil {
						r.fx = p.fx
					}
				}
			}
			if err := c.answer(r, u); err != nil {
				return false, false, err
			}
			for _, p := range c.pending {
				c.s.Exchanged(p.req, p.took())
			}
			clear(c.pending)
			c.pending = c.pending[:0]
		case opReply:
			if err := c.wait(r.fx); err != nil {
				return false, false, err
			}
			n, err := c.cw.Write(r.fx.reply)
			c.down += int64(n)
			if err != nil {
				return false, false, normalEnd(err)
			}
			c.s.Exchanged(r.req, r.took())
		case opQuit:
			c.s.Exchanged(r.req, r.took())
		case opDrained:
			close(r.done)
		case opHang:
			c.hanging = true
		case opAbort:
			c.flushClient()
			relay.Reset(c.backend)
			return false, false, nil
		case opRaw:
			if err := c.flushClient(); err != nil {
				return false, false, normalEnd(err)
			}
			if n := c.br.Buffered(); n > 0 {
				b, _ := c.br.Peek(n)
				m, err := c.client.Write(b)
				c.s.Relayed(chaos.ToClient, int64(m))
				if err != nil {
					return false, false, normalEnd(err)
				}
				c.br.Discard(n)
			}
			if r.req != nil {
				c.s.Exchanged(r.req, r.took())
			}
			return false, true, nil
		}
	}
}

// next returns the next record, or ok false once the reader is done and
// every record is handled. With none queued it waits on the backend rather
// than on the queue: the answer to the next request then wakes this
// goroutine directly, one wake-up per answer as in a plain copy, and a
// backend that closes an idle connection is seen at once. The reader
// interrupts the wait (wake) for the records that need no answer.
func (c *conn) next() (r record, ok bool, err error) {
	select {
	case r, ok = <-c.q:
		return r, ok, nil
	default:
	}
	if err := c.flushClient(); err != nil {
		return r, false, err
	}
	for {
		if c.hanging {
			// Nothing is forwarded any more: only the reader's end matters.
			select {
			case r, ok = <-c.q:
				return r, ok, nil
			case <-c.ctx.Done():
				return r, false, c.ctx.Err()
			}
		}
		c.parked.Store(true)
		select {
		case r, ok = <-c.q:
			c.parked.Store(false)
			return r, ok, nil
		default:
		}
		err := c.waitBackend()
		c.parked.Store(false)
		switch {
		case err == nil:
			// An answer is coming in; its record is queued or about to be.
			select {
			case r, ok = <-c.q:
				return r, ok, nil
			case <-c.ctx.Done():
				return r, false, c.ctx.Err()
			}
		case !errors.Is(err, errWoken):
			return r, false, err
		}
		select {
		case r, ok = <-c.q:
			return r, ok, nil
		default: // woken late, for a record already taken
		}
	}
}

// wait carries out a response delay, with what was answered before it
// already on its way.
func (c *conn) wait(fx *effect) error {
	if fx == nil || fx.delay <= 0 {
		return nil
	}
	if err := c.flushClient(); err != nil {
		return normalEnd(err)
	}
	return c.downWait.Wait(c.ctx, fx.delay)
}

// answer relays the unit that answers r and reports the exchange (a
// record that ends a run is not a client request unless it is its mn).
func (c *conn) answer(r record, u unit) error {
	if err := c.relayUnit(r.fx, u); err != nil {
		return err
	}
	if r.req != nil {
		c.s.Exchanged(r.req, r.took())
	}
	return nil
}

func (c *conn) relayUnit(fx *effect, u unit) error {
	if fx == nil {
		c.f.n = 0
		err := c.f.relay(c.cw, u)
		c.down += c.f.n
		return c.responseErr(err)
	}
	if err := c.wait(fx); err != nil {
		return err
	}
	u.corrupt, u.reply = fx.corrupt, fx.reply
	if fx.toClient == nil {
		c.f.n = 0
		err := c.f.relay(c.cw, u)
		c.down += c.f.n
		return c.responseErr(err)
	}
	// A ToClient filter relays this answer itself, straight to the client
	// so that its pacing holds; the framer feeds it through a pipe.
	if err := c.flushClient(); err != nil {
		return normalEnd(err)
	}
	pr, pw := io.Pipe()
	framed := make(chan error, 1)
	go func() {
		f := framer{br: c.br}
		err := f.relay(pw, u)
		pw.CloseWithError(err)
		framed <- err
	}()
	ferr := fx.toClient.Relay(c.ctx, &relay.Counter{W: c.client, Events: c.s, Dir: chaos.ToClient}, pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if ferr != nil {
		// The framer may wait for backend bytes that no longer matter.
		c.closeBoth()
	}
	err := <-framed
	if ferr != nil {
		if !errors.Is(ferr, chaos.ErrClose) && normalEnd(ferr) != nil {
			return ferr
		}
		return errStopped
	}
	return c.responseErr(err)
}

// responseErr keeps the ordinary ends quiet and names a framing failure.
func (c *conn) responseErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, errBadResponse) || errors.Is(err, errTooLarge) || errors.Is(err, errLongLine) {
		return &FramingError{Err: err}
	}
	if normalEnd(err) == nil {
		return errStopped
	}
	return err
}

// FramingError reports a backend answer that is not memcache's text
// protocol; the connection is closed.
type FramingError struct{ Err error }

func (e *FramingError) Error() string { return "read memcache response: " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *FramingError) Unwrap() error { return e.Err }
