// Package kit is the engine under vaurien's request/response protocols. A
// protocol supplies its framing (Framing: where a request ends and what it
// is, where its reply ends, when the connection leaves framing, how an
// error looks); the kit owns the rest, the same for every protocol:
//
//   - pooled buffered I/O that reads in the poller's callback, so that an
//     idle connection holds no buffer (Reader, Writer);
//   - the two loops, requests (client → backend) and replies (backend →
//     client), and the in-order queue of Exchanges between them, which lets
//     clients pipeline at full speed and holds no room for Exchanges while
//     empty;
//   - parking: a connection that has been quiet for a second, both loops
//     waiting at their tops, leaves its goroutines, and the relay's poller
//     watches its two sockets until either is readable or ends (a new
//     connection starts so, once past its opening): an idle connection
//     holds no goroutine, stack or buffer. A side without a descriptor
//     (TLS) keeps its goroutines;
//   - a draw per request, and carrying out the drawn Effect step by step
//     in the order chaos.Effect.Steps gives (carryOut), so that a fault acts
//     the same on every protocol;
//   - the switch to a raw relay, the idle timeout, byte accounting, the
//     close delay, and the lingering close that lets the backend's last
//     words reach a client that is still sending.
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
	// Send writes the request Request framed to out, streaming what
	// follows its head from in. out is the backend's Writer, a filter's
	// pipe, or io.Discard when the proxy answers in place of the backend:
	// Send always consumes the whole request from in. It may change x's
	// Reply and R (x.Affected is set by then).
	Send(in *Reader, out io.Writer, x *Exchange[R]) error
	// Reply relays the backend's answer to x from in, the backend's side,
	// to out, with the out-of-band messages that come before it, up to
	// where the answer ends. With x.Inject it corrupts the answer (or
	// replaces it with Error's). ErrRaw leaves framing after it;
	// chaos.ErrClose ends the connection once the answer is written, and
	// setting x.Then to Close ends it with the lingering close (an answer
	// that says so). With ReplyOwn it writes the proxy's own answer and
	// reads nothing.
	Reply(in *Reader, out io.Writer, x *Exchange[R]) error
	// Error renders the error fault's answer to x in the protocol's terms;
	// nil ends the connection instead, once the earlier answers are
	// relayed, without forwarding the request. It sets x.Then to Close
	// when its answer ends the connection: the request is then not read
	// any further.
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
	// 413). Send can then change nothing the reply loop sees in x. A
	// request sent through a filter is still queued once it is sent.
	Early bool
	R     R

	op    op
	start time.Duration // now() when the request was framed
	fx    *replyEffect  // nil when the draw changes nothing on the way back
}

// Replies says how many answers a request gets.
type Replies uint8

const (
	// ReplyOne is one answer, framed by Reply.
	ReplyOne Replies = iota
	// ReplyNone is no answer at all (memcache's noreply, Redis's CLIENT
	// REPLY OFF, quit): the exchange ends once the request is sent.
	ReplyNone
	// ReplyOwn is the proxy's own answer, which Reply writes without
	// reading the backend (HTTP's 400 to a request framed ambiguously).
	ReplyOwn
)

// Then says what the connection does after a request.
type Then uint8

const (
	// Frame goes on framing.
	Frame Then = iota
	// RawAfter relays the connection raw after this request and its
	// answer (SUBSCRIBE, SYNC, memcache's watch).
	RawAfter
	// RawNow relays the connection raw from this request on, which was
	// not framed (binary memcache, bytes that are not the protocol).
	RawNow
	// RawIfReply waits for the answer before framing more; Reply returns
	// ErrRaw to go raw (an HTTP upgrade answered 101).
	RawIfReply
	// Close ends the connection after this request's answer: nothing more
	// is forwarded, what the client still sends is dropped, and the client
	// gets the end of the stream once the answer is out (HTTP's answers
	// that close the connection).
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
// exchange that is not framed as requests: a handshake, authentication,
// startup messages. Start passes it through before the loops start; nothing
// is drawn meanwhile. ErrRaw relays the whole connection raw, starting
// with what Start looked at and did not consume.
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
// requests (memcache's runs of quiet requests). The kit calls Settle before
// it waits for the client, before it carries out an effect and before a raw
// switch; Settle fills x with a request of the proxy's own that closes what
// is open (x.Req stays nil), sent with Send, or reports false.
type Settler[R any] interface {
	Settle(x *Exchange[R]) bool
}

// Unsolicited is implemented by a Framing whose backend speaks unasked
// (Redis's RESP3 pushes, PostgreSQL's notifications). When backend bytes
// come with no request in flight, Unsolicited relays what it recognises
// and reports true; false leaves them to the next request's Reply.
type Unsolicited interface {
	Unsolicited(in *Reader, out io.Writer) (bool, error)
}

// Failer is implemented by a Framing that must keep the backend in step
// when the error fault answers a request in the backend's place (a
// transaction the client now believes failed, a request whose answer never
// comes). Fail runs instead of the kit's default, which consumes the
// request with Send(in, io.Discard, x) and answers x.ErrorReply(). When Fail
// reports done, it has consumed the request, written to out (the backend)
// what keeps it in step, or the request itself, and x is queued as it
// left it: its Reply answers x.ErrorReply() where it is due. It may do
// nothing but note the failure and report false.
type Failer[R any] interface {
	Fail(in *Reader, out io.Writer, x *Exchange[R]) (done bool, err error)
}

// Options size a connection.
type Options struct {
	// BufSize is the size of each read and write buffer; DefaultBufSize
	// when 0. A request head that does not fit is the protocol's to
	// handle (stream it, or go raw).
	BufSize int
	// ReplyDelayInTurn runs a reply delay from the moment its answer's
	// turn comes rather than from the request's arrival: the delayed
	// answers of a pipeline then add up (HTTP holds each response in turn).
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
	if o.BufSize <= 0 {
		o.BufSize = DefaultBufSize
	}
	c := newConn(ctx, s, f, o, backend)
	if d, ok := s.(chaos.Detacher); ok {
		// The loops run in goroutines of their own, and the engine's,
		// whose stack dialing grew, ends: stacks are most of what an idle
		// connection costs.
		d.Detach()
		go c.serve(func(err error) {
			backend.Close()
			d.End(err)
		})
		return nil
	}
	ended := make(chan error, 1)
	c.serve(func(err error) {
		backend.Close()
		ended <- err
	})
	return <-ended
}
