// Package memcache owns vaurien's memcache protocol: memcached's text
// protocol framed on both sides of a connection, on the protocol kit
// (pkg/protocol/kit), and a drawn behavior carried out on each request.
//
// Framing. A request is its command line and, for set, add, replace,
// append, prepend, cas and ms, its data block, streamed and never buffered
// whole (a large block's unbuffered part is spliced socket to socket). The
// line is classified as memcached's own parser reads it (same tokenizer,
// number parsing and token-count checks), since that decides whether
// memcached reads a data block and whether it answers at all. An answer is
// split by its first line: VALUE blocks up to END (get, gets, gat, gats), a
// VA block (mg, ma), STAT, ITEM or PREFIX lines up to END (stats and its
// sub-commands), or a single line. Requests are forwarded as they arrive
// and answers matched to them in order, so pipelines keep their depth.
//
// Requests without an answer. A classic command ending in noreply gets
// none (memcached suppresses even its errors); its exchange is reported
// once forwarded. A meta command with the q flag (mg, ms, md, ma) is
// answered outside the common case only (hits, NS, EX, NF, every error; no
// EN or HD), and mn always, with MN, in order. So quiet requests are
// matched as a run: every answer before the next MN belongs to it. The
// client's mn ends a run; where it has not sent one yet (before a request
// that is not quiet, before a fault's reply, whenever the proxy would wait
// for client bytes) the proxy sends an mn of its own and drops its MN: the
// client sees exactly memcached's bytes.
//
// A get, gets, gat or gats naming a key longer than 250 bytes makes
// memcached drop the answers it has not sent yet, earlier pipelined ones
// included: such a get is forwarded once every earlier answer has arrived.
//
// The unit of draw is one request; in a quiet run, a request drawn with a
// behavior that changes anything is answered in a run of its own.
// chaos.Request.Command is the command name as sent: memcached's are lower
// case and case-sensitive, so matchers name them so ("get", "set", "mg").
// Faults on the wire:
//
//   - error: the request is not forwarded; the client gets "SERVER_ERROR
//     <message>\r\n" (default message "vaurien injected fault"), for meta
//     requests too, quiet or not. A noreply request gets nothing, as from
//     memcached.
//   - error with inject: the request runs, and up to 100 bytes in the
//     middle of the answer's first value (VALUE or VA) are overwritten with
//     random bytes, lengths unchanged; an answer without a value is
//     replaced by the SERVER_ERROR line.
//   - the others act as on every protocol-aware route (docs/behaviors.md).
//
// Raw relay. The connection goes raw (relay.Raw), once every answer due is
// relayed, when the client speaks the binary protocol (first byte 0x80),
// after watch and lru_crawler metadump (the backend then streams), when a
// request line other than get or gets overflows the 16 KiB read buffer
// (memcached closes on those), and when a data block claims more than 1
// GiB. A backend answer that cannot be framed closes the connection. A
// backend that closes its side has what it said reach the client, then the
// end of the stream, while what the client still sends is dropped (a
// lingering close, at most relay.LingerTime).
package memcache

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// DefaultMessage is the text of the SERVER_ERROR reply when the behavior
// sets none.
const DefaultMessage = "vaurien injected fault"

func init() {
	chaos.RegisterProtocol(chaos.ProtocolSpec{
		Name: "memcache",
		Doc: "memcached's text protocol, classic and meta commands. One draw per request; " +
			"an error fault answers SERVER_ERROR, inject corrupts a returned value, and every " +
			"answer is matched to its request in order, noreply and quiet (q) requests included. " +
			"Behaviors can be limited to commands, named in lower case (get, set, mg...).",
		Options: chaos.OriginalProtocolOptions(
			"the proxy sizes its own buffers and streams large values",
			"a client connection keeps its backend connection for as long as it lives"),
		Example: "route \"cache\" {\n  listen   = \"0.0.0.0:11212\"\n  backend  = \"memcached:11211\"\n  protocol = \"memcache\"\n\n" +
			"  behavior \"error\" {\n    percent = 5\n  }\n}",
		New: func(chaos.Values) (chaos.Protocol, error) { return New(), nil },
	})
}

type protocol struct{}

// New returns the memcache protocol.
func New() chaos.Protocol { return protocol{} }

// Serve frames one client connection; see the package documentation.
func (protocol) Serve(ctx context.Context, s chaos.Session) error {
	return kit.Serve(ctx, s, &framing{}, kit.Options{})
}

var (
	noop         = []byte("mn\r\n")
	defaultReply = []byte("SERVER_ERROR " + DefaultMessage + "\r\n")
	lineBreaks   = strings.NewReplacer("\r", " ", "\n", " ") // which would end a reply early
)

// inflight is a request's state in the kit's queue; an mn of the proxy's
// own (Settle's) has no Req.
type inflight struct {
	r       request
	n       int32 // the request line's length
	long    bool  // an overlong get line, streamed
	swallow bool  // the answer is a run ended by the MN of the proxy's own mn, dropped
}

type framing struct {
	started bool
	run     bool // quiet requests forwarded and not yet followed by an mn
}

var _ kit.Settler[inflight] = (*framing)(nil)

// Request frames the next request line; Send consumes it.
func (f *framing) Request(in *kit.Reader, x *kit.Exchange[inflight]) error {
	if !f.started {
		first, err := in.Peek(1)
		if err != nil {
			return err
		}
		f.started = true
		if first[0] == 0x80 { // the binary protocol's magic byte
			x.Then = kit.RawNow
			return nil
		}
	}
	line, err := in.PeekSlice('\n')
	long := err == bufio.ErrBufferFull
	if err != nil && !long {
		return err
	}
	if long {
		if t := bytes.TrimLeft(line, " "); !bytes.HasPrefix(t, []byte("get ")) && !bytes.HasPrefix(t, []byte("gets ")) {
			x.Then = kit.RawNow // memcached closes on such lines
			return nil
		}
	}
	r := parseRequest(line)
	if r.data > maxData {
		x.Req, x.Then = r.cmd.req, kit.RawNow
		return nil
	}
	if f.run && r.kind != kindQuiet && r.kind != kindNone && r.kind != kindNoop {
		f.Settle(x) // the run ends before this request, framed again next
		return nil
	}
	x.Req, x.Drain = r.cmd.req, r.drain || long
	x.R = inflight{r: r, n: int32(len(line)), long: long}
	switch r.kind {
	case kindNone, kindQuit, kindQuiet:
		x.Reply = kit.ReplyNone
	case kindStream:
		x.Reply, x.Then = kit.ReplyNone, kit.RawAfter
	}
	return nil
}

// Settle ends an open run of quiet requests with an mn of the proxy's own,
// whose MN follows every answer of the run.
func (f *framing) Settle(x *kit.Exchange[inflight]) bool {
	x.R.swallow, f.run = f.run, false
	return x.R.swallow
}

// Send streams the request to out. A quiet request that the draw changes
// is answered in a run of its own.
func (f *framing) Send(in *kit.Reader, out io.Writer, x *kit.Exchange[inflight]) error {
	e := &x.R
	if x.Req == nil {
		_, err := out.Write(noop)
		return err
	}
	n := int64(e.n)
	if e.r.data >= 0 {
		n += e.r.data + 2
	}
	if _, err := in.CopyN(out, n); err != nil {
		return err
	}
	if e.long {
		for {
			chunk, err := in.ReadSlice('\n')
			if _, werr := out.Write(chunk); werr != nil {
				return werr
			}
			if err != bufio.ErrBufferFull {
				return err
			}
		}
	}
	switch e.r.kind {
	case kindQuiet:
		if !x.Affected {
			f.run = true
			return nil
		}
		x.Reply, e.swallow = kit.ReplyOne, true
		_, err := out.Write(noop)
		return err
	case kindNoop:
		f.run = false
	}
	return nil
}

// Reply relays the answer, or the run of answers, to one request.
func (f *framing) Reply(in *kit.Reader, out io.Writer, x *kit.Exchange[inflight]) error {
	return (&framer{br: in}).relay(out, unit{run: x.R.swallow || x.R.r.kind == kindNoop, swallow: x.R.swallow, corrupt: x.Inject, reply: x.ErrorReply()})
}

func (f *framing) Error(_ *kit.Exchange[inflight], spec *chaos.ErrorSpec) []byte {
	if spec.Message == "" {
		return defaultReply
	}
	return []byte("SERVER_ERROR " + lineBreaks.Replace(spec.Message) + "\r\n")
}
