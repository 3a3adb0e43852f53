package chaos

import "time"

// StepKind is one thing a protocol does to carry out an Effect.
type StepKind uint8

// The steps, in the order Steps gives them. A protocol carries out each in
// its own terms; the order is the same for every protocol, so a stacked
// effect (latency with down, say) acts the same on every route.
const (
	StepRefuse     StepKind = iota + 1 // report Refused("down") and close the connection; nothing follows
	StepClose                          // close the client, the backend never reached, after D (the close delay); nothing follows
	StepWait                           // wait D (Effect.Delay) before the exchange
	StepHang                           // swallow what the client sends and never answer; nothing follows
	StepTimeout                        // stop all data; close after D, never when 0; nothing follows
	StepReset                          // close the client with a TCP RST after D (at once when 0; then nothing follows)
	StepError                          // answer with Effect.Error instead of, or inside, the reply
	StepAbort                          // forward the request, then drop the connection before any answer
	StepReplyDelay                     // hold the answer D more (Effect.ResponseDelay)
	StepCloseDelay                     // hold the connection's close for at least D (Effect.CloseDelay)
)

var stepNames = [...]string{"", "refuse", "close", "wait", "hang", "timeout", "reset", "error", "abort", "reply_delay", "close_delay"}

func (k StepKind) String() string {
	if int(k) < len(stepNames) && k != 0 {
		return stepNames[k]
	}
	return "unknown"
}

// Step is one step and its duration, if it has one.
type Step struct {
	Kind StepKind
	D    time.Duration
}

// Steps are an Effect laid out in the order every protocol carries it out.
// They live in a fixed array, so that laying an effect out allocates
// nothing.
type Steps struct {
	n    uint8
	list [5]Step
}

func (s *Steps) add(k StepKind, d time.Duration) {
	s.list[s.n] = Step{k, d}
	s.n++
}

// List returns the steps in order.
func (s *Steps) List() []Step { return s.list[:s.n] }

// Steps lays e out as ordered steps: refuse or close, then the wait, then
// the fault (hang, timeout, reset, error or abort), then the reply delay,
// then the close delay. Filters are not steps: they change the bytes of the
// exchange that the steps let through. The zero Effect has no step.
func (e *Effect) Steps() Steps {
	var s Steps
	switch e.Fault {
	case FaultRefuse:
		s.add(StepRefuse, 0)
		return s
	case FaultClose:
		s.add(StepClose, e.CloseDelay)
		return s
	}
	if e.Delay > 0 {
		s.add(StepWait, e.Delay)
	}
	switch e.Fault {
	case FaultHang:
		s.add(StepHang, 0)
	case FaultTimeout:
		s.add(StepTimeout, e.After)
	case FaultReset:
		s.add(StepReset, e.After)
	case FaultError:
		s.add(StepError, 0)
	case FaultAbort:
		s.add(StepAbort, 0)
	}
	if e.ResponseDelay > 0 {
		s.add(StepReplyDelay, e.ResponseDelay)
	}
	if e.CloseDelay > 0 {
		s.add(StepCloseDelay, e.CloseDelay)
	}
	return s
}
