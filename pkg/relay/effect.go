package relay

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// Serve carries out one drawn effect over a whole connection: the unit of
// a draw on a tcp route. It dials the backend itself, because some faults
// (down, blackout, hang, slow_open) act before there is one.
func Serve(ctx context.Context, s chaos.Session, d chaos.Drawn) error {
	e := &d.Effect
	client := s.Client()
	steps := e.Steps()
	var strike chaos.Step // the fault that acts once the backend is dialed
	for _, st := range steps.List() {
		switch st.Kind {
		case chaos.StepRefuse:
			s.Refused("down")
			return nil
		case chaos.StepClose:
			return Wait(ctx, st.D)
		case chaos.StepWait:
			if err := Wait(ctx, st.D); err != nil {
				return err
			}
		case chaos.StepHang:
			return hang(ctx, client)
		case chaos.StepReset:
			if st.D <= 0 {
				Reset(client)
				return nil
			}
			strike = st
		case chaos.StepTimeout, chaos.StepAbort:
			strike = st
		}
		// An error on a stream is its filter's random bytes; the reply and
		// close delays are the relay's (see pair.pump).
	}
	backend, err := s.Dial(ctx)
	if err != nil {
		return err
	}
	switch strike.Kind {
	case chaos.StepAbort:
		defer backend.Close()
		return abort(client, backend, s)
	case chaos.StepTimeout:
		defer backend.Close()
		return timeout(ctx, client, backend, strike.D)
	case chaos.StepReset:
		defer backend.Close()
		return resetAfter(ctx, s, client, backend, e, strike.D)
	}
	// The delay is over by now: with nothing else to do, the relay is a
	// pass-through one, the cheapest.
	rest := *e
	rest.Delay = 0
	var relayed *chaos.Effect // nil: pass-through
	if !rest.IsZero() {
		relayed = onHeap(rest)
	}
	if d, ok := s.(chaos.Detacher); ok {
		detach(ctx, s, client, backend, relayed, d.Detach())
		return nil
	}
	defer backend.Close()
	return run(ctx, s, client, backend, relayed)
}

// onHeap moves an effect that a relay's goroutines share to the heap, so
// that a pass-through connection's drawn effect stays on the stack.
func onHeap(e chaos.Effect) *chaos.Effect { return &e }

// hang reads and drops what the client sends and never answers, until the
// client leaves or the route shuts down.
func hang(ctx context.Context, client net.Conn) error {
	stop := context.AfterFunc(ctx, func() { client.Close() })
	defer stop()
	io.Copy(io.Discard, client)
	return nil
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
	if err != nil && !OrdinaryEnd(err) {
		return err
	}
	Reset(backend)
	return nil
}

// timeout stops all data: both directions are read and dropped, and the
// connection closes after after, or stays open until a side leaves when
// it is 0.
func timeout(ctx context.Context, client, backend net.Conn, after time.Duration) error {
	done := make(chan struct{}, 2)
	drop := func(c net.Conn) {
		io.Copy(io.Discard, c)
		done <- struct{}{}
	}
	go drop(backend)
	go drop(client)
	var expired <-chan time.Time
	if after > 0 {
		t := time.NewTimer(after)
		defer t.Stop()
		expired = t.C
	}
	finished := 0
	select {
	case <-done:
		finished++
	case <-expired:
	case <-ctx.Done():
	}
	client.Close()
	backend.Close()
	for ; finished < 2; finished++ {
		<-done
	}
	return nil
}

// resetAfter relays as the rest of the effect says, then after after
// closes the client with a TCP RST.
func resetAfter(ctx context.Context, s chaos.Session, client, backend net.Conn, e *chaos.Effect, after time.Duration) error {
	rest := *e
	rest.Fault, rest.After = chaos.NoFault, 0
	result := make(chan error, 1)
	go func() { result <- run(ctx, s, client, backend, &rest) }()
	t := time.NewTimer(after)
	defer t.Stop()
	select {
	case err := <-result:
		return err
	case <-t.C:
		Reset(client)
		backend.Close()
	}
	<-result
	return nil
}

// Reset closes c with a TCP RST instead of a FIN (reset_peer, abort).
func Reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
