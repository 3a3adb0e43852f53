package protocoltest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// Answer is what a client made of the answer to its request.
type Answer uint8

// Answers.
const (
	Answered   Answer = iota + 1 // the backend's answer
	ErrorReply                   // an error in the protocol's terms
)

// Client is a real client of one protocol, reduced to what the conformance
// table needs.
type Client struct {
	// Protocol serves the route; Backend is a real server of the protocol.
	Protocol chaos.Protocol
	Backend  string
	// Exchange sends one request on c and reads its whole answer, the way a
	// client of the protocol does. It returns how it understood the
	// answer, or the error that ended the read (the table sets c's
	// deadline).
	Exchange func(c net.Conn) (Answer, error)
}

// What a client observes.
type outcome uint8

const (
	answered outcome = 1 << iota
	errorReply
	silent // nothing came before the deadline; the connection is open
	closed // the connection ended with a FIN
	reset  // the connection ended with an RST
	ended  = closed | reset
)

var outcomeNames = map[outcome]string{answered: "the answer", errorReply: "an error reply",
	silent: "silence", closed: "a close", reset: "a reset", ended: "a close or reset"}

func (o outcome) String() string { return outcomeNames[o] }

// conformance is the table: for each fault and option a behavior can
// draw, what a real client of any protocol observes. A protocol that
// carries out an Effect partly fails its rows.
var conformance = []struct {
	name    string
	effect  chaos.Effect
	want    outcome
	atLeast time.Duration // the outcome comes no sooner
	atMost  time.Duration // and no later; 0 for the table's bound
	refused bool          // Session.Refused is called
	then    outcome       // after an answer, the connection ends so
	filter  chaos.Direction
}{
	{name: "no fault", want: answered},
	{name: "delay", effect: chaos.Effect{Delay: 300 * time.Millisecond}, want: answered, atLeast: 300 * time.Millisecond},
	{name: "response delay", effect: chaos.Effect{ResponseDelay: 300 * time.Millisecond}, want: answered, atLeast: 300 * time.Millisecond},
	{name: "delays add up", effect: chaos.Effect{Delay: 200 * time.Millisecond, ResponseDelay: 200 * time.Millisecond}, want: answered, atLeast: 400 * time.Millisecond},
	{name: "error", effect: chaos.Effect{Fault: chaos.FaultError}, want: errorReply},
	{name: "error after a delay", effect: chaos.Effect{Fault: chaos.FaultError, Delay: 300 * time.Millisecond}, want: errorReply, atLeast: 300 * time.Millisecond},
	{name: "refuse", effect: chaos.Effect{Fault: chaos.FaultRefuse}, want: ended, refused: true},
	{name: "refuse comes before the delay", effect: chaos.Effect{Fault: chaos.FaultRefuse, Delay: 10 * time.Second}, want: ended, atMost: 3 * time.Second, refused: true},
	{name: "close", effect: chaos.Effect{Fault: chaos.FaultClose}, want: ended},
	{name: "close comes before the delay", effect: chaos.Effect{Fault: chaos.FaultClose, Delay: 10 * time.Second}, want: ended, atMost: 3 * time.Second},
	{name: "close held by the close delay", effect: chaos.Effect{Fault: chaos.FaultClose, CloseDelay: 300 * time.Millisecond}, want: ended, atLeast: 300 * time.Millisecond},
	{name: "hang", effect: chaos.Effect{Fault: chaos.FaultHang}, want: silent},
	{name: "timeout never closes without after", effect: chaos.Effect{Fault: chaos.FaultTimeout}, want: silent},
	{name: "timeout closes after after", effect: chaos.Effect{Fault: chaos.FaultTimeout, After: 300 * time.Millisecond}, want: ended, atLeast: 300 * time.Millisecond},
	{name: "reset", effect: chaos.Effect{Fault: chaos.FaultReset}, want: reset},
	{name: "reset after after", effect: chaos.Effect{Fault: chaos.FaultReset, After: 300 * time.Millisecond}, want: answered, then: reset, atLeast: 300 * time.Millisecond},
	{name: "abort", effect: chaos.Effect{Fault: chaos.FaultAbort}, want: ended},
	{name: "filter to the client", want: answered, filter: chaos.ToClient},
	{name: "filter to the backend", want: answered, filter: chaos.ToBackend},
}

// observeFor bounds every observation: silence is what lasts this long.
const observeFor = 1500 * time.Millisecond

// Conform runs the conformance table against c: one subtest per row, each
// on a proxy of its own whose every request draws the row's effect.
func Conform(t *testing.T, c Client) {
	for _, row := range conformance {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			fixed := &Fixed{E: row.effect}
			var seen atomic.Int64
			if row.filter != 0 {
				fixed.E.SetFilter(row.filter, counting{&seen})
			}
			p := Start(t, Config{Protocol: c.Protocol, Backend: c.Backend, Mix: Mix(t, Entry(100, fixed))})
			conn, err := net.Dial("tcp", p.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			bound := row.atMost
			if bound == 0 {
				bound = row.atLeast + observeFor
			}
			start := time.Now()
			conn.SetDeadline(start.Add(bound))
			got := observe(c.Exchange(conn))
			took := time.Since(start)
			if got&row.want == 0 {
				t.Fatalf("the client saw %v after %v, want %v", got, took, row.want)
			}
			if row.then != 0 {
				got = observe(0, waitEnd(conn))
				took = time.Since(start)
				if got&row.then == 0 {
					t.Fatalf("after the answer the client saw %v after %v, want %v", got, took, row.then)
				}
			}
			if got != silent && took < row.atLeast {
				t.Fatalf("the client saw %v after %v, want it no sooner than %v", got, took, row.atLeast)
			}
			if row.filter != 0 && seen.Load() == 0 {
				t.Fatalf("the %v filter saw no byte", row.filter)
			}
			if row.refused {
				WaitFor(t, 5*time.Second, "the refusal reported", func() bool { return p.Refusals.Load() == 1 })
			} else if n := p.Refusals.Load(); n != 0 {
				t.Fatalf("Refused called %d times", n)
			}
		})
	}
}

func observe(a Answer, err error) outcome {
	switch {
	case err == nil && a == Answered:
		return answered
	case err == nil && a == ErrorReply:
		return errorReply
	case errors.Is(err, os.ErrDeadlineExceeded):
		return silent
	case errors.Is(err, syscall.ECONNRESET):
		return reset
	}
	return closed
}

// waitEnd reads until the connection ends.
func waitEnd(c net.Conn) error {
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		err = io.EOF
	}
	return err
}

// counting is a filter that relays unchanged and counts what it relays.
type counting struct{ n *atomic.Int64 }

func (f counting) Relay(ctx context.Context, dst io.Writer, src io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f.n.Add(int64(n))
			if _, err := dst.Write(buf[:n]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
