package kit

import (
	"io"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// carryOut is the fault step: it carries out a drawn effect on the request
// just framed, step by step in the order chaos lays it out, the same for
// every protocol; the Framing only renders the error's answer. stop ends
// the request loop.
func (c *conn[R]) carryOut(x *Exchange[R], e *chaos.Effect) (stop bool, err error) {
	x.Affected = true
	steps := e.Steps()
	list := steps.List()
	if len(list) > 0 {
		switch st := list[0]; st.Kind {
		case chaos.StepRefuse:
			c.s.Refused("down")
			c.closeAll()
			return true, nil
		case chaos.StepClose:
			c.holdClose(st.D)
			c.bw.Flush()
			c.hold()
			c.closeAll()
			return true, nil
		}
	}
	// An affected request is answered on its own.
	if err := c.settle(); err != nil {
		return true, c.clientEnded(err)
	}
	var fail, abort bool
	fx := replyEffect{filter: e.ToClient}
	for _, st := range list {
		switch st.Kind {
		case chaos.StepWait:
			// Held until its arrival plus the delay: requests of a pipeline
			// delayed in turn overlap their waits.
			if d := x.start + st.D - now(); d > 0 {
				if err := c.bw.Flush(); err != nil {
					return true, c.clientEnded(err)
				}
				if err := c.req.wait.Wait(c.ctx, d); err != nil {
					return true, nil
				}
			}
		case chaos.StepHang, chaos.StepTimeout:
			// Nothing is answered any more; the client's bytes are dropped
			// until it leaves, or the connection closes after st.D.
			err := c.push(&Exchange[R]{op: opHang})
			if err == nil {
				err = c.bw.Flush()
			}
			if err != nil {
				return true, c.clientEnded(err)
			}
			if st.D > 0 {
				c.end.strikeAfter(st.D, c.closeAll)
			}
			return true, c.dropClient()
		case chaos.StepReset:
			if st.D <= 0 {
				c.reset()
				return true, nil
			}
			c.end.strikeAfter(st.D, c.reset)
		case chaos.StepError:
			fail = !e.Error.Inject
			x.Inject = e.Error.Inject
			// The error behavior's filter answers on raw streams, which
			// have no error of their own; here the framing renders it.
			fx.filter = nil
		case chaos.StepAbort:
			abort = true
		case chaos.StepReplyDelay:
			fx.due, fx.delay = x.start+e.Delay+st.D, st.D
		case chaos.StepCloseDelay:
			c.holdClose(st.D)
		}
	}
	if !abort && (fail || x.Inject) {
		fx.reply = c.f.Error(x, &e.Error)
	}
	if fail || x.Inject || fx.due > 0 || fx.filter != nil {
		x.fx = &fx
	}
	switch {
	case abort:
		if err := c.f.Send(&c.cr, &c.bw, x); err != nil {
			return true, c.clientEnded(err)
		}
		x.op = opAbort
		if err := c.push(x); err != nil {
			return true, c.clientEnded(err)
		}
		if err := c.bw.Flush(); err != nil {
			return true, c.clientEnded(err)
		}
		return true, nil
	case fail:
		if fl, ok := c.f.(Failer[R]); ok {
			c.q.sending.Store(true)
			done, err := fl.Fail(&c.cr, &c.bw, x)
			if err == nil && done {
				err = c.push(x)
			}
			c.q.sending.Store(false)
			if err != nil {
				return true, c.clientEnded(err)
			}
			if done {
				return false, nil
			}
		}
		// The request is read and never reaches the backend; an answer
		// that closes leaves it unread.
		if x.Then != Close {
			if err := c.f.Send(&c.cr, io.Discard, x); err != nil {
				return true, c.clientEnded(err)
			}
		}
		if x.Reply == ReplyOne {
			x.op = opError
			if fx.reply == nil {
				// The protocol's error is the end of the connection (a
				// database server gone away): the earlier answers are
				// relayed, then both connections drop.
				x.op = opAbort
			}
		}
		if err := c.push(x); err != nil || x.op == opAbort {
			return true, err
		}
		if x.Then == Close {
			return true, c.closing()
		}
		return false, nil
	}
	if err := c.forward(x, e.ToBackend); err != nil {
		return true, c.clientEnded(err) // chaos.ErrClose closes all
	}
	return c.then(x)
}

// ErrorReply is the error fault's answer to x, rendered by the Framing's
// Error, for a Reply that replaces an answer it cannot corrupt.
func (x *Exchange[R]) ErrorReply() []byte {
	if x.fx == nil {
		return nil
	}
	return x.fx.reply
}
