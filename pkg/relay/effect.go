package relay

import (
	"context"
	"io"
	"net"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// Serve draws a behavior for a whole connection, the unit of a draw on a
// tcp route, and carries out its effect. It dials the backend itself,
// because some faults (down, blackout, hang, slow_open) act before there is
// one. When the session is a chaos.Follower, the connection follows the
// changes of the route's mix from then on (see follow.go).
func Serve(ctx context.Context, s chaos.Session) error {
	// A bare client stays bare when the poller relays it: the session
	// makes a net.Conn of it only for goroutines.
	var client net.Conn
	bare := -1
	if b, ok := s.(bareClient); ok {
		bare = b.BareClient()
	}
	if bare < 0 {
		client = s.Client()
	}
	p := newPair(s, client)
	e := p.first(s)
	if e.IsZero() {
		if handled, err := p.pollDial(ctx, s, bare); handled {
			return err
		}
	}
	if client == nil {
		client = s.Client()
		p.live.mu.Lock()
		p.conns[0] = client
		p.live.mu.Unlock()
	}
	// Until the backend is dialed, a change of the mix ends what the first
	// draw does (its wait, or hang) and the next draw takes over once
	// connected.
	switched := false
	var strike chaos.Step // the fault that acts once the backend is dialed
	steps := e.Steps()
walk:
	for _, st := range steps.List() {
		switch st.Kind {
		case chaos.StepRefuse:
			p.finish()
			s.Refused("down")
			return nil
		case chaos.StepClose:
			p.finish()
			return Wait(ctx, st.D)
		case chaos.StepWait:
			if err := p.wait(ctx, chaos.ToBackend, st.D); err == errSwitch {
				switched = true
				break walk
			} else if err != nil {
				p.finish()
				return err
			}
		case chaos.StepHang:
			if err := p.hang(ctx); err != errSwitch {
				p.finish()
				return err
			}
			switched = true
			break walk
		case chaos.StepReset:
			if st.D <= 0 {
				p.finish()
				Reset(client)
				return nil
			}
			strike = st
		case chaos.StepTimeout, chaos.StepAbort:
			strike = st
		}
		// An error on a stream is its filter's random bytes; the reply and
		// close delays, a timeout's drop and a reset's relay are the
		// pair's (see pair.stage and pair.pump).
	}
	backend, err := s.Dial(ctx)
	if err != nil {
		p.finish()
		return err
	}
	if !p.bind(backend) {
		p.finish()
		return nil
	}
	if !switched && strike.Kind == chaos.StepAbort {
		p.finish()
		defer backend.Close()
		return abort(client, backend, s)
	}
	if !switched {
		p.armFirst(&e)
	}
	if d, ok := s.(chaos.Detacher); ok {
		d.Detach()
		if !switched && p.poll(ctx, s, &e, d) {
			return nil
		}
		p.detach(ctx, d)
		return nil
	}
	defer backend.Close()
	return p.run(ctx)
}

// hang reads what the client sends and drops it, never answering, until
// the client leaves, the route shuts down (errors), or the mix changes
// (errSwitch: the bytes read since are the next draw's).
func (p *pair) hang(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { p.conns[0].Close() })
	defer stop()
	buf := getStageBuf()
	defer putStageBuf(buf)
	r := reader{p: p, dir: chaos.ToBackend, src: p.conns[0]}
	for {
		if _, err := r.Read(*buf); r.switched {
			return errSwitch
		} else if err != nil {
			return nil
		}
	}
}

// abort forwards the client's first bytes to the backend and drops the
// connection before any answer can come back.
func abort(client, backend net.Conn, ev chaos.Events) error {
	buf := make([]byte, 32<<10)
	n, err := client.Read(buf)
	if n > 0 {
		if m, _ := backend.Write(buf[:n]); m > 0 {
			ev.Relayed(chaos.ToBackend, int64(m))
		}
	}
	if err != nil && err != io.EOF && !OrdinaryEnd(err) {
		return err
	}
	Reset(backend)
	return nil
}

// Reset closes c with a TCP RST instead of a FIN (reset_peer, abort).
func Reset(c net.Conn) {
	// A TLS connection: reset the socket under it (and under what wraps
	// the socket for the handshake), with no close_notify first.
	for {
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = w.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
