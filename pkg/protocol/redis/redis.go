// Package redis owns the redis protocol of vaurien: RESP2 and RESP3 framing
// of a client connection's requests and its backend's replies, and the
// carrying out of drawn faults one request at a time, in RESP.
//
// # Framing
//
// Requests are arrays of bulk strings or inline lines; replies are any
// RESP2 or RESP3 value (simple strings and errors, integers, bulk strings
// including the null $-1, arrays nested to any depth including the null
// *-1, and RESP3's null, boolean, double, big number, blob error, verbatim
// string, map, set, attribute and push). Requests are forwarded as they
// arrive and replies are matched to them in order, so pipelines keep their
// depth. Bulk payloads larger than the buffers are streamed, never held
// whole; a length above max_bulk_len (redis' proto-max-bulk-len) is a
// protocol error. The buffers come from pools and go back to them while
// the connection waits for either side, so an idle connection holds none;
// an inline request grows the client's buffer up to redis' 64 KiB limit.
// An attribute belongs to the reply that follows it. A push (>) is out of
// band: it is relayed to the client when it comes, even
// while no request waits, and is not taken for a reply, with one
// exception: UNSUBSCRIBE, PUNSUBSCRIBE and SUNSUBSCRIBE on a connection
// that is not subscribed answer one message per channel named (one when
// none is), pushes of their own kind in RESP3 and arrays in RESP2, and
// whatever CLIENT REPLY says; those are their replies. The framer reads
// RESP3 at any time, so HELLO 3 needs no state of its own.
//
// Commands that change which replies come are tracked, so that a reply is
// never matched to the wrong request: CLIENT REPLY OFF (no reply until
// CLIENT REPLY ON, which replies), CLIENT REPLY SKIP (the next command gets
// no reply), RESET, empty requests, and MULTI ... EXEC/DISCARD. CLIENT REPLY
// queued inside MULTI is not tracked, nor is a CLIENT REPLY that redis
// refuses (before AUTH, say).
//
// # Raw relay
//
// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and MONITOR turn the connection into a
// message stream: once such a command is forwarded and every earlier reply
// delivered, the connection is handed to a raw two-way relay for the rest
// of its life, and draws stop (inside MULTI the switch happens at EXEC).
// SYNC and PSYNC do the same, so that a replica (or redis-cli --rdb) syncs
// through the proxy: their answer is an RDB payload that is not RESP (no
// CRLF after it, or an EOF mark when diskless), then the replication
// stream. Redis refuses them inside MULTI, so there they switch nothing.
// The same happens when the client sends bytes that are not RESP (redis
// then answers its own protocol error). When the client half-closes, its
// FIN reaches redis once redis has sent every reply it had (redis drops
// the unsent replies of a client whose EOF it reads), and a request
// blocked in redis (BLPOP) then ends. A backend reply that is not RESP
// closes both connections.
//
// # Faults
//
// The mix is drawn once per request (empty requests, which redis ignores,
// draw nothing), with chaos.Request.Command set to the upper-cased command
// name. A request that draws dummy costs no allocation. On the wire:
//   - error: the request is not forwarded; the client reads a RESP error
//     made of the behavior's message, or the protocol's error_message
//     ("-ERR vaurien: injected fault" by default). Inside MULTI the
//     transaction is marked failed, as redis does with a refused command:
//     EXEC is turned into DISCARD and answers -EXECABORT. An EXEC or DISCARD
//     that draws the error is forwarded as DISCARD. A request whose reply
//     CLIENT REPLY suppresses is forwarded untouched.
//   - error with inject: the request is forwarded and a few bytes in the
//     middle of the reply's first string, error or integer are overwritten,
//     keeping every length: the client reads a wrong value, not garbage.
//     Replies without such a value (nulls, booleans, doubles) pass intact.
//   - delay: the request waits before it is forwarded (before = true), or
//     its reply waits before it is written to the client. The wait ends at
//     the request's arrival plus the delay, so the delays of pipelined
//     requests overlap; requests and replies keep their order.
//   - hang: this request and all later ones are swallowed; the connection
//     stays open, silent, until the client leaves.
//   - timeout: like hang, and the connection closes after the behavior's
//     timeout, if it has one.
//   - abort: the request is forwarded, the earlier replies are delivered,
//     then both connections drop (the backend's with an RST).
//   - blackout and down: the client connection closes at once; the request
//     is not forwarded.
//   - reset_peer: after its delay the client connection is closed with an
//     RST; at once, before forwarding, when there is no delay.
//   - slow_close: when the backend ends the connection, the client's end
//     is held that long.
//   - filters (bandwidth, slicer, corrupt, limit_data): the to_backend one
//     relays that request's bytes, the to_client one that reply's bytes
//     (not the pushes or attributes before it); a filter that ends with an
//     error closes the connection.
//
// The route's idle timeout closes a connection that read no byte from
// either side for that long; a blocking command (BLPOP) waiting longer
// counts as idle, as on a raw relay.
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

var one = 1.0

var options = append(chaos.Options{
	{Name: "error_message", Kind: chaos.String, Default: DefaultErrorMessage,
		Doc: "the RESP error line an error fault answers when its behavior sets no message, without the leading '-' (for example \"LOADING Redis is loading the dataset in memory\")"},
	{Name: "max_bulk_len", Kind: chaos.Int, Default: int64(DefaultMaxBulkLen), Min: &one, Max: chaos.Range(chaos.MaxInt),
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
			"and PSYNC switch the connection to a raw relay.",
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

var _ chaos.Protocol = (*Protocol)(nil)

// New returns the redis protocol with the error line its faults answer by
// default ("" for DefaultErrorMessage) and the largest accepted bulk length
// (0 or less for DefaultMaxBulkLen).
func New(errorMessage string, maxBulkLen int64) *Protocol {
	if errorMessage == "" {
		errorMessage = DefaultErrorMessage
	}
	if maxBulkLen <= 0 {
		maxBulkLen = DefaultMaxBulkLen
	}
	return &Protocol{errMsg: errorLine(errorMessage), maxBulk: maxBulkLen}
}

// Serve frames one client connection until it ends. It dials the backend
// first; when that fails the error is returned and the client is closed.
func (p *Protocol) Serve(ctx context.Context, s chaos.Session) error {
	return kit.Serve(ctx, s, &framing{p: p}, kit.Options{BufSize: bufSize})
}

// errorLine makes a message safe to send as a RESP simple error: no
// leading '-' (the framer adds it) and no CR or LF, which would end the
// line early and desynchronise the client.
func errorLine(m string) string {
	m = strings.TrimRight(strings.TrimPrefix(m, "-"), "\r\n")
	if strings.ContainsAny(m, "\r\n") {
		m = strings.Map(func(r rune) rune {
			if r == '\r' || r == '\n' {
				return ' '
			}
			return r
		}, m)
	}
	if strings.TrimSpace(m) == "" {
		return DefaultErrorMessage
	}
	return m
}
