// Package redis owns the redis protocol of vaurien: RESP2 and RESP3 framing
// of a client connection's requests and its backend's replies, and drawn
// faults carried out one request at a time, in RESP.
//
// Requests (arrays of bulk strings, or inline lines that grow the client's
// buffer up to redis' 64 KiB) are forwarded as they arrive and replies (any
// RESP2 or RESP3 value, nested to any depth) matched to them in order, so
// pipelines keep their depth. Values larger than the buffers are streamed;
// a length above max_bulk_len (redis' proto-max-bulk-len) is a protocol
// error. An attribute belongs to the reply that follows it. A push is out
// of band, relayed when it comes, except that UNSUBSCRIBE, PUNSUBSCRIBE and
// SUNSUBSCRIBE on a connection that is not subscribed answer one message
// per channel named (one when none is), pushes of their own kind in RESP3
// and arrays in RESP2, whatever CLIENT REPLY says. RESP3 is read at any
// time, so HELLO 3 needs no state. So that no reply is matched to the
// wrong request, CLIENT REPLY OFF, ON and SKIP, RESET, empty requests and
// MULTI ... EXEC/DISCARD are tracked (not a CLIENT REPLY queued in MULTI
// or refused by redis).
//
// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and MONITOR (inside MULTI, its EXEC)
// hand the connection to a raw relay once every earlier reply is out, and
// draws stop; so do SYNC and PSYNC, whose RDB payload is not RESP, so that
// replicas sync through the proxy, and client bytes that are not RESP
// (redis answers its own error). A backend reply that is not RESP closes
// both connections. A client's half-close reaches redis once redis has
// sent every reply it had (it drops those of a client whose EOF it reads),
// and a blocked BLPOP then ends; a blocking command waiting longer than the
// idle timeout counts as idle, as on a raw relay.
//
// The mix is drawn once per request (not for empty ones), with
// chaos.Request.Command the upper-cased command name; a dummy draw costs no
// allocation. The kit carries out the draw as for every protocol; filters
// act on the request's bytes and its reply's, not the pushes or attributes
// before it. The error fault answers a RESP error line (the behavior's
// message, or error_message) in place of the request; inside MULTI it
// fails the transaction as redis does a refused command (EXEC goes as
// DISCARD and answers -EXECABORT), and an EXEC or DISCARD that draws it
// goes as DISCARD; a request whose reply CLIENT REPLY suppresses goes
// untouched. With inject the request is forwarded and a few bytes in the
// middle of the reply's first string, error or integer are overwritten,
// lengths kept.
package redis

import (
	"context"
	"strings"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// DefaultErrorMessage is the error a fault answers when neither the behavior
// nor the route's error_message says otherwise.
const DefaultErrorMessage = "ERR vaurien: injected fault"

// DefaultMaxBulkLen is redis' default proto-max-bulk-len, 512 MB.
const DefaultMaxBulkLen = 512 << 20

var options = append(chaos.Options{
	{Name: "error_message", Kind: chaos.String, Default: DefaultErrorMessage,
		Doc: "the RESP error line an error fault answers when its behavior sets no message, without the leading '-' (for example \"LOADING Redis is loading the dataset in memory\")"},
	{Name: "max_bulk_len", Kind: chaos.Int, Default: int64(DefaultMaxBulkLen), Min: chaos.Range(1), Max: chaos.Range(chaos.MaxInt),
		Doc: "the largest bulk string length accepted from either side, as redis' proto-max-bulk-len; a larger claimed length is a protocol error"},
}, chaos.OriginalProtocolOptions(
	"the framer sizes its own buffers and streams large values",
	"a client connection keeps its backend connection for as long as it lives, pipelines included")...)

func init() {
	chaos.RegisterProtocol(chaos.ProtocolSpec{
		Name: "redis",
		Doc: "Redis (RESP2 and RESP3). One draw per request: an error fault answers " +
			"a RESP error instead of forwarding the request, a delay holds one " +
			"request or one reply, hang and abort act from that request on. " +
			"Pipelines are kept; SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, MONITOR, SYNC " +
			"and PSYNC switch the connection to a raw relay. Order across connections " +
			"is not kept, as through any proxy: a command sent on one connection may " +
			"reach redis after one sent later on another.",
		Options: options,
		Example: "route \"cache\" {\n  listen   = \"127.0.0.1:6380\"\n  backend  = \"127.0.0.1:6379\"\n" +
			"  protocol = \"redis\"\n\n  behavior \"error\" {\n    percent = 10\n  }\n}",
		New: func(v chaos.Values) (chaos.Protocol, error) {
			return New(v.String("error_message"), v.Int("max_bulk_len")), nil
		},
	})
}

// Protocol serves redis client connections. Build it with New.
type Protocol struct {
	errMsg  string
	maxBulk int64
}

// New returns the redis protocol with the error line its faults answer by
// default ("" for DefaultErrorMessage) and the largest accepted bulk length
// (0 or less for DefaultMaxBulkLen).
func New(errorMessage string, maxBulkLen int64) *Protocol {
	if maxBulkLen <= 0 {
		maxBulkLen = DefaultMaxBulkLen
	}
	return &Protocol{errMsg: errorLine(errorMessage), maxBulk: maxBulkLen}
}

// Serve frames one client connection until it ends. It dials the backend
// first; when that fails the error is returned and the client is closed.
func (p *Protocol) Serve(ctx context.Context, s chaos.Session) error {
	f := &framing{p: p, cr: reader{maxBulk: p.maxBulk, grow: maxInline}, br: reader{maxBulk: p.maxBulk}}
	return kit.Serve(ctx, s, f, kit.Options{})
}

// errorLine makes a message safe to send as a RESP simple error: no
// leading '-' (the framer adds it) and no CR or LF, which would end the
// line early and desynchronise the client.
func errorLine(m string) string {
	m = crlfToSpace.Replace(strings.TrimRight(strings.TrimPrefix(m, "-"), "\r\n"))
	if strings.TrimSpace(m) == "" {
		return DefaultErrorMessage
	}
	return m
}

var crlfToSpace = strings.NewReplacer("\r", " ", "\n", " ")
