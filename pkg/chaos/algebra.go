package chaos

import (
	"context"
	"errors"
	"io"
)

// Member is one behavior of a Composite with the chance that a draw
// applies it.
type Member struct {
	Name        string
	Behavior    Behavior
	Probability float64 // 0 never applies, 1 always does
}

// Composite applies several behaviors at once, as Toxiproxy stacks toxics:
// on each draw every member is drawn on its own with its probability, and
// the effects of those drawn are merged with Merge, in member order. A
// vaurien mix draws one behavior per unit; a mix holding one Composite at
// 100% gives a route Toxiproxy's stacking instead.
type Composite []Member

// Effect draws each member and merges the effects of those drawn.
func (c Composite) Effect(u *Unit) Effect {
	var e Effect
	for _, m := range c {
		// A member at probability 0 draws nothing at all, not even a random
		// number, so that it can never apply (Toxiproxy's issue 603).
		if m.Probability <= 0 {
			continue
		}
		if m.Probability < 1 && u.Rand().Float64() >= m.Probability {
			continue
		}
		Merge(&e, m.Behavior.Effect(u))
	}
	return e
}

// faultRank orders faults by precedence when two are drawn together: the
// one that ends the exchange soonest and most surely wins.
var faultRank = map[Fault]int{
	NoFault:      0,
	FaultError:   1,
	FaultAbort:   2,
	FaultHang:    3,
	FaultTimeout: 4,
	FaultReset:   5,
	FaultClose:   6,
	FaultRefuse:  7,
}

// Merge adds the effect e to dst: delays add up, the fault of highest
// precedence wins (of two equal faults the earlier strike), the longest
// close delay wins, and filters of the same direction are chained, dst's
// first.
func Merge(dst *Effect, e Effect) {
	dst.Delay += e.Delay
	dst.ResponseDelay += e.ResponseDelay
	dst.CloseDelay = max(dst.CloseDelay, e.CloseDelay)
	switch re, rd := faultRank[e.Fault], faultRank[dst.Fault]; {
	case re > rd:
		dst.Fault, dst.After, dst.Error = e.Fault, e.After, e.Error
	case re == rd && e.Fault != NoFault:
		dst.After = min(dst.After, e.After)
	}
	dst.ToBackend = Chain(dst.ToBackend, e.ToBackend)
	dst.ToClient = Chain(dst.ToClient, e.ToClient)
}

// Chain returns a filter that runs first, then second on first's output.
// Either may be nil.
func Chain(first, second Filter) Filter {
	switch {
	case first == nil:
		return second
	case second == nil:
		return first
	}
	return chained{first, second}
}

type chained struct{ first, second Filter }

// errDownstreamDone ends the first filter's writes when the second has
// stopped reading.
var errDownstreamDone = errors.New("next filter has ended")

// Relay runs first in a goroutine writing into a pipe that second reads.
// When src ends, first returns, the pipe ends and second drains it, so
// nothing is lost. When either fails, the other is stopped and the error
// returned; first may then still be blocked reading src, and ends when the
// caller closes src's connection, as a relay does on any filter error.
func (c chained) Relay(ctx context.Context, dst io.Writer, src io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	firstDone := make(chan error, 1)
	go func() {
		err := c.first.Relay(ctx, pw, src)
		// A nil error closes the pipe with io.EOF: second sees a normal end.
		pw.CloseWithError(err)
		firstDone <- err
	}()
	err := c.second.Relay(ctx, dst, pr)
	if err == nil {
		// second only ends cleanly on the pipe's EOF: first is done.
		cancel()
		return <-firstDone
	}
	pr.CloseWithError(errDownstreamDone)
	cancel()
	select {
	case errFirst := <-firstDone:
		// The first filter's own failure is the cause, not its echo.
		if errFirst != nil && !errors.Is(errFirst, errDownstreamDone) && !errors.Is(errFirst, context.Canceled) {
			return errFirst
		}
	default:
	}
	return err
}
