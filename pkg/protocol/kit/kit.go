// Package kit is the engine under vaurien's request/response protocols. A
// protocol supplies its Framing: where a request and its reply end, what
// the request is, when the connection leaves framing, how an error looks.
// The kit owns the rest, the same for every protocol: pooled buffered I/O
// read in the poller's callback, so that an idle connection holds no
// buffer; the request and reply loops and the in-order queue of Exchanges
// between them, so that clients pipeline at full speed; parking, so that a
// connection quiet for a second holds no goroutine either while the
// relay's poller watches its sockets (TLS sides, with no descriptor, keep
// theirs); a draw per request and the drawn Effect carried out step by step
// (carryOut), so that a fault acts the same on every protocol; the raw
// switch, the idle timeout, byte accounting, the close delay, and the
// lingering close that lets the backend's last words reach a client that
// is still sending.
package kit

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// Framing is what a protocol supplies: one value per connection, which may
// keep the connection's state (a reply mode, a transaction). R is the
// protocol's own state of one request, carried by value in the queue.
type Framing[R any] interface {
	// Request frames the next request from in, the client's side, and
	// fills x: Req (what is drawn and reported; nil for a request of the
	// proxy's own), Reply, Then and R. It reads the request's head; Send
	// reads the rest. io.EOF between requests is the client leaving.
	Request(in *Reader, x *Exchange[R]) error
	// Send writes the framed request to out (the backend's Writer, a
	// filter's pipe, or io.Discard when the proxy answers in the backend's
	// place), streaming the rest of it from in: it always consumes the
	// whole request. It may change x's Reply and R (x.Affected is set).
	Send(in *Reader, out io.Writer, x *Exchange[R]) error
	// Reply relays the backend's answer to x, with the out-of-band
	// messages before it, from in to out. With x.Inject it corrupts the
	// answer (or replaces it with Error's); with ReplyOwn it writes the
	// proxy's own answer and reads nothing. ErrRaw leaves framing after
	// it; chaos.ErrClose ends the connection once the answer is written;
	// setting x.Then to Close ends it with the lingering close.
	Reply(in *Reader, out io.Writer, x *Exchange[R]) error
	// Error renders the error fault's answer to x; nil ends the connection
	// instead, once the earlier answers are relayed, without forwarding
	// the request. It sets x.Then to Close when its answer ends the
	// connection: the request is then not read any further.
	Error(x *Exchange[R], spec *chaos.ErrorSpec) []byte
}

// Exchange is the queue item: one request and what its answer is, from
// the request loop to the reply loop, in the order the requests went.
type Exchange[R any] struct {
	Req      *chaos.Request // drawn with and reported; nil: the proxy's own request
	Reply    Replies
	Then     Then
	Affected bool // the draw changes this exchange: it is answered on its own
	Inject   bool // corrupt the real answer (an error fault with inject)
	Drain    bool // forward the request only once every earlier answer has come
	// Early queues the exchange before Send, so that its answer may begin
	// while the request is still on its way (HTTP's 100 Continue, an early
	// 413): Send can then change nothing the reply loop sees. A request
	// sent through a filter is still queued once sent.
	Early bool
	R     R

	op    op
	start time.Duration // now() when the request was framed
	fx    *replyEffect  // nil when the draw changes nothing on the way back
}

// Replies says how many answers a request gets.
type Replies uint8

const (
	ReplyOne  Replies = iota // one answer, framed by Reply
	ReplyNone                // none (memcache's noreply, CLIENT REPLY OFF, quit): done once sent
	ReplyOwn                 // the proxy's own, which Reply writes without reading the backend
)

// Then says what the connection does after a request.
type Then uint8

const (
	Frame      Then = iota // go on framing
	RawAfter               // relay raw after this request and its answer (SUBSCRIBE, SYNC)
	RawNow                 // relay raw from this request on, which was not framed
	RawIfReply             // frame nothing more until the answer, whose Reply returns ErrRaw to go raw (an upgrade)
	// Close ends the connection after this request's answer: nothing more
	// is forwarded, what the client still sends is dropped, and the client
	// gets the end of the stream once the answer is out.
	Close
)

// ErrRaw, from Reply or Start, leaves framing for a raw relay.
var ErrRaw = errors.New("leave framing for a raw relay")

// ErrStop, from Send, says that the request turned out malformed after part
// of it went out: the backend gets the end of its stream, nothing more of
// the client's is forwarded, and the connection ends once the answers due
// are out (the framing's Reply tells the client what was wrong).
var ErrStop = errors.New("stop forwarding a malformed request")

// Starter is implemented by a Framing whose connection opens with an
// exchange that is not framed as requests (a handshake, authentication):
// Start passes it through before the loops start, drawing nothing. ErrRaw
// relays the whole connection raw, starting with what Start did not
// consume.
type Starter interface {
	Start(o *Opening) error
}

// Opening is what Start gets: both sides' input and output. The kit
// flushes the Writers when Start returns.
type Opening struct {
	Client, Backend     *Reader
	ToClient, ToBackend *Writer
	Session             chaos.Session
	startTLS            func(client bool) error
}

// Settler is implemented by a Framing that leaves answers open across
// requests (memcache's quiet requests). Before the kit waits for the
// client, carries out an effect or goes raw, Settle fills x with a request
// of the proxy's own (x.Req nil) that closes what is open, sent with Send,
// or reports false.
type Settler[R any] interface {
	Settle(x *Exchange[R]) bool
}

// Unsolicited is implemented by a Framing whose backend speaks unasked
// (RESP3 pushes, PostgreSQL's notifications): with no request in flight,
// it relays what it recognises and reports true; false leaves the bytes
// to the next request's Reply.
type Unsolicited interface {
	Unsolicited(in *Reader, out io.Writer) (bool, error)
}

// Parker is a Framing whose loops' own state a quiet connection drops: Park
// once both loops left (to park, go raw or end), Resume before they run again.
type Parker interface {
	Resume()
	Park()
}

// Failer is implemented by a Framing that must keep the backend in step
// when the error fault answers in its place (a transaction the client now
// believes failed). Fail runs instead of the default, which consumes the
// request with Send(in, io.Discard, x) and answers x.ErrorReply(). When it
// reports done, it has consumed the request and written to out (the
// backend) what keeps it in step, or the request itself, and x is queued
// as it left it. It may only note the failure and report false.
type Failer[R any] interface {
	Fail(in *Reader, out io.Writer, x *Exchange[R]) (done bool, err error)
}

// Options tune a connection.
type Options struct {
	// ReplyDelayInTurn runs a reply delay from its answer's turn rather
	// than from the request's arrival: the delays of a pipeline add up.
	ReplyDelayInTurn bool
}

// Serve serves one client connection of a framed protocol: it dials the
// backend, passes the opening (Starter), runs the two loops and relays raw
// when the framing says so. It returns once the connection is over.
func Serve[R any](ctx context.Context, s chaos.Session, f Framing[R], o Options) error {
	backend, err := s.Dial(ctx)
	if err != nil {
		return err
	}
	c := &conn[R]{ctx: ctx, s: s, f: f, client: s.Client(), backend: backend, inTurn: o.ReplyDelayInTurn}
	c.idle.d = s.IdleTimeout()
	c.resumeFn = c.resume
	if d, ok := s.(chaos.Detacher); ok {
		// The engine's goroutine, whose stack dialing grew, ends: stacks
		// are most of what an idle connection costs.
		d.Detach()
		go c.serve(d.End)
		return nil
	}
	ended := make(chan error, 1)
	c.serve(func(err error) { ended <- err })
	return <-ended
}
