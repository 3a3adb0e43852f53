package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// Direction names which way bytes flow.
type Direction uint8

// Directions. Both is the set of the two.
const (
	ToBackend Direction = 1 << iota // client → backend (upstream)
	ToClient                        // backend → client (downstream)
	Both      = ToBackend | ToClient
)

// Has reports whether d includes x.
func (d Direction) Has(x Direction) bool { return d&x != 0 }

// String gives the name used in config, API and metric labels.
func (d Direction) String() string {
	switch d {
	case ToBackend:
		return "to_backend"
	case ToClient:
		return "to_client"
	case Both:
		return "both"
	}
	return "none"
}

// DirectionChoices are the accepted spellings of a direction option.
var DirectionChoices = []string{"to_backend", "to_client", "both"}

// ParseDirection reads a direction name.
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "to_backend":
		return ToBackend, nil
	case "to_client":
		return ToClient, nil
	case "both":
		return Both, nil
	}
	return 0, fmt.Errorf("invalid direction %q: want one of %s", s, strings.Join(DirectionChoices, ", "))
}

// Fault is what happens to a unit of traffic instead of a normal exchange.
// Behaviors describe faults; the protocol serving the connection carries them
// out in its own terms, so no behavior needs to know any protocol.
type Fault uint8

// The faults. On a tcp route the unit is the connection; on a protocol-aware
// route it is one request and its response.
const (
	NoFault      Fault = iota
	FaultRefuse        // close the new connection before anything happens (down)
	FaultClose         // close the client at once; the backend is never reached (blackout)
	FaultHang          // read what the client sends and never answer (hang)
	FaultAbort         // forward the request, then drop the connection before any answer (abort)
	FaultError         // answer with an error instead of, or inside, the real answer (error)
	FaultReset         // after Effect.After, close the client with a TCP RST (reset_peer)
	FaultTimeout       // stop relaying; close after Effect.After, or never when it is 0 (timeout)
)

var faultNames = [...]string{"none", "refuse", "close", "hang", "abort", "error", "reset", "timeout"}

func (f Fault) String() string {
	if int(f) < len(faultNames) {
		return faultNames[f]
	}
	return "unknown"
}

// ErrorSpec says how a FaultError answers. Each protocol renders it in its
// own terms: an HTTP response, a RESP error, a memcache SERVER_ERROR, or on a
// raw stream random bytes.
type ErrorSpec struct {
	Inject  bool   // corrupt the real answer instead of replacing it
	Status  int    // HTTP status; 0 lets the protocol choose
	Message string // the error text; "" lets the protocol choose
	// Code names a database error: a preset (deadlock, serialization...)
	// or the database's own code (a SQLSTATE, an error number); "" lets
	// the protocol choose.
	Code    string
	Headers map[string]string // extra HTTP response headers
}

// ErrorCodeOption is the behavior option that sets ErrorSpec.Code.
const ErrorCodeOption = "code"

// CheckErrorCode checks the error code that a behavior's options v set
// against the protocol of the route they are for, with the protocol's
// CheckErrorCode. It passes options that set no code, and protocols that
// do not check codes or are not registered.
func CheckErrorCode(protocol string, v Values) error {
	code := v.String(ErrorCodeOption)
	if code == "" {
		return nil
	}
	spec, ok := LookupProtocol(protocol)
	if !ok || spec.CheckErrorCode == nil {
		return nil
	}
	if err := spec.CheckErrorCode(code); err != nil {
		return fmt.Errorf("option %q: on a %s route, %w", ErrorCodeOption, protocol, err)
	}
	return nil
}

// A Filter relays one direction of a connection itself, changing the bytes
// or their timing (bandwidth, slicer, corrupt, limit_data...). It returns
// when src ends (nil), on a write error, or with ErrClose to end the
// connection. Waits must select on ctx. On a tcp connection the route's mix
// may change while the filter runs: src then gives end of stream at the
// next read, and ctx is canceled with the cause ErrMixChanged; the filter
// should write what it holds and return, and the connection goes on with
// its next draw.
type Filter interface {
	Relay(ctx context.Context, dst io.Writer, src io.Reader) error
}

// FilterFunc adapts a function to Filter.
type FilterFunc func(ctx context.Context, dst io.Writer, src io.Reader) error

// Relay calls f.
func (f FilterFunc) Relay(ctx context.Context, dst io.Writer, src io.Reader) error {
	return f(ctx, dst, src)
}

// ErrClose is returned by a Filter that ends the connection on purpose.
var ErrClose = errors.New("connection closed by behavior")

// ErrMixChanged is the cause (context.Cause) of the end of a filter's
// context when the route's mix changed and the connection goes on under
// its next draw, as opposed to the connection ending.
var ErrMixChanged = errors.New("the route's mix changed")

// Effect is what one drawn behavior does to one unit of traffic. The zero
// Effect changes nothing and is relayed at full speed.
type Effect struct {
	Fault         Fault
	Delay         time.Duration // wait before the exchange: before dialing (tcp) or forwarding the request
	ResponseDelay time.Duration // wait before the answer reaches the client
	After         time.Duration // for FaultReset and FaultTimeout: when the fault strikes
	CloseDelay    time.Duration // hold the close this long (slow_close)
	Error         ErrorSpec     // for FaultError
	ToBackend     Filter        // transforms the client → backend bytes, if set
	ToClient      Filter        // transforms the backend → client bytes, if set
	// Handshake is a fault of the TLS handshake, carried out by routes
	// that terminate TLS, once per connection before any protocol sees it.
	// It is no part of IsZero: to a protocol's draw it changes nothing.
	Handshake Handshake
}

// Handshake is a fault of a TLS handshake that a route terminates.
type Handshake struct {
	Delay time.Duration // hold the handshake this long before it starts
	// Alert, when not 0, answers the client's hello with this fatal TLS
	// alert (its code, as in RFC 8446 section 6) instead of a handshake.
	Alert uint8
	// Cert, when set, serves a faulty certificate instead of the route's:
	// "expired", "not_yet_valid", "wrong_host" or "self_signed".
	Cert string
}

// IsZero reports whether the handshake goes as configured.
func (h Handshake) IsZero() bool { return h == Handshake{} }

// IsZero reports whether the effect changes nothing.
func (e *Effect) IsZero() bool {
	return e.Fault == NoFault && e.Delay == 0 && e.ResponseDelay == 0 && e.After == 0 &&
		e.CloseDelay == 0 && e.ToBackend == nil && e.ToClient == nil
}

// Filter returns the filter for one direction.
func (e *Effect) Filter(d Direction) Filter {
	if d == ToBackend {
		return e.ToBackend
	}
	return e.ToClient
}

// SetFilter installs f on every direction in d.
func (e *Effect) SetFilter(d Direction, f Filter) {
	if d.Has(ToBackend) {
		e.ToBackend = f
	}
	if d.Has(ToClient) {
		e.ToClient = f
	}
}

// Request describes one request on a protocol-aware route, for behaviors
// that look at it and for matching. It is nil on a raw tcp route. A Request
// and its Header func are valid until Exchanged returns: protocols recycle
// them, so neither the engine nor an observer may keep one.
type Request struct {
	Command string                   // Redis or memcache command, HTTP method, SQL statement keyword; upper case for Redis, HTTP and SQL
	Path    string                   // HTTP path
	Header  func(name string) string // HTTP header lookup; nil elsewhere
	// On database routes: the statement's text, and the database and user
	// the client named when it connected.
	SQL, Database, User string
}

// Unit is one draw: a connection on tcp, a request on protocol-aware routes.
type Unit struct {
	Seq     uint64   // the draw's number on its route, from 1
	Request *Request // nil on tcp
	seed    uint64
	rnd     *rand.Rand
}

// Rand returns a random source for this unit, derived from the route's seed
// and the draw, so seeded runs repeat their jitter and random bytes too.
func (u *Unit) Rand() *rand.Rand {
	if u.rnd == nil {
		u.rnd = rand.New(rand.NewPCG(u.seed, u.Seq))
	}
	return u.rnd
}

// Behavior is a configured behavior, built by its spec's New. Effect is
// called once per draw, concurrently from many connections: behaviors that
// count (warmup, agitate) use atomics. Effect must not keep u after it
// returns (units are reused); keeping u.Rand() is fine.
type Behavior interface {
	Effect(u *Unit) Effect
}

// Drawn is the outcome of one draw.
type Drawn struct {
	Name   string // the behavior drawn, "dummy" for the remainder of the mix
	Effect Effect
}

// Events is how a protocol reports what happens on its connection.
type Events interface {
	Relayed(d Direction, n int64)               // n more bytes went d
	Exchanged(req *Request, took time.Duration) // one request/response exchange ended
	Refused(reason string)                      // the connection was refused on purpose ("down", "bad_request")
}

// Session is one accepted client connection, handed to a protocol.
type Session interface {
	Events
	// Client is the accepted connection (a *net.TCPConn on TCP listeners).
	Client() net.Conn
	// Backend is the route's current backend address (host:port).
	Backend() string
	// Dial connects to the route's current backend with its dial timeout
	// and reports failures.
	Dial(ctx context.Context) (net.Conn, error)
	// Draw picks a behavior from the route's live mix for one unit into
	// d and reports whether it changes anything (see Mix.DrawTo); d is
	// left alone when no behavior is picked.
	Draw(req *Request, d *Drawn) bool
	// IdleTimeout is how long the connection may move no byte; 0 is never.
	IdleTimeout() time.Duration
}

// TLSUpgrader is implemented by the sessions of protocols that negotiate
// TLS inside their exchange (ProtocolSpec.InnerTLS): the protocol calls it
// once it has agreed with a side to speak TLS, and goes on over the
// connection it returns.
type TLSUpgrader interface {
	// TLSSides reports whether the route terminates TLS with its clients
	// (a tls block) and originates it to its backend (backend_tls).
	TLSSides() (client, backend bool)
	// ServerTLS completes the handshake with the client over client (the
	// client connection, or a view of it that first gives back what the
	// protocol read ahead), carrying out the route's handshake faults, and
	// returns the TLS connection, which the session then ends with.
	ServerTLS(ctx context.Context, client net.Conn) (net.Conn, error)
	// ClientTLS completes the handshake with the backend over backend, a
	// connection Dial returned.
	ClientTLS(ctx context.Context, backend net.Conn) (net.Conn, error)
}

// Detacher is implemented by sessions whose connection may go on after
// Serve returns. A relay then runs in goroutines of its own and the
// engine's goroutine ends: its stack, grown by dialing, would otherwise be
// held for the connection's life, and stacks are most of what an idle
// connection costs.
type Detacher interface {
	// Detach makes the engine leave the connection open when Serve
	// returns. The caller must then call End once, with the connection's
	// error, when it is over: the engine then closes the client and ends
	// the connection's accounting. The engine still closes the client
	// when the route stops, which must end whatever still relays.
	Detach()
	// End ends a detached connection. It is a method, not a function
	// that Detach returns, so that detaching allocates nothing.
	End(err error)
}

// Follower is implemented by sessions whose route's mix can change while
// the connection is open. A protocol that draws once per connection (tcp)
// uses it so that its live connections follow each change: the connection
// loads the change counter at every read, which is all a connection whose
// mix never changes pays, and draws again when it moved.
type Follower interface {
	// Follow makes the engine call h's MixChanged after each change of
	// the route's mix, for as long as the connection lives, from the
	// goroutine that made the change: it must return quickly and never
	// block. It returns the route's change counter, which only grows and
	// moves once the new mix is in force, before MixChanged is called.
	Follow(h ChangeHook) *atomic.Uint64
	// Redraw draws from the route's live mix, as Draw does, and returns
	// the mix's version: the value the change counter has, or will have
	// in a moment, for it. The counter being above the version of a draw
	// means that the mix changed since.
	Redraw() (Drawn, uint64)
}

// ChangeHook hears of the changes of a route's mix (see Follower). It is
// an interface, not a function, so that a connection that follows the mix
// allocates nothing for it.
type ChangeHook interface{ MixChanged() }

// Protocol serves client connections of a route: it draws from the mix
// (once per connection or once per request), dials the backend when it needs
// one, relays and carries out the drawn faults. Serve returns when the
// connection is over and closes what it dialed, unless it detached the
// connection (see Detacher); the engine closes the client connection. ctx
// ends when the route shuts down.
type Protocol interface {
	Serve(ctx context.Context, s Session) error
}
