// Package memcache owns vaurien's memcache protocol: it frames memcached's
// text protocol on both sides of a connection and carries out a drawn
// behavior on each request.
//
// Framing. Requests are split from the client stream by their command line
// and, for storage commands (set, add, replace, append, prepend, cas) and
// ms, their data block, which is streamed through and never buffered whole
// (the unbuffered part of a large block goes socket to socket, spliced).
// The line is classified the way memcached's own parser reads it (same
// tokenizer, same number parsing, same token-count checks), because that
// decides whether memcached reads a data block and whether it answers at
// all. Answers are split from the backend stream by their first line: VALUE
// blocks up to END (get, gets, gat, gats), a VA block (mg, ma), STAT, ITEM
// or PREFIX lines up to END (stats and its sub-commands), or a single line.
// Requests are forwarded as they arrive and answers matched to them in
// order, so pipelines keep their depth.
//
// Requests that get no answer. A classic command ending in noreply gets
// none (memcached suppresses even its errors), so none is awaited; its
// exchange is reported once it is forwarded. A meta command with the q flag
// (mg, ms, md, ma) may or may not be answered: memcached leaves out the
// common case (EN for mg, HD for ms, md and ma) and answers the rest (hits,
// NS, EX, NF, every error), and it answers mn with MN, in order. So quiet
// requests are matched as a run: every answer before the next MN belongs to
// the run. The client's own mn ends a run; where the client has not sent
// one yet — before a request that is not quiet, before a fault's reply and
// whenever the proxy would wait for more client bytes — the proxy sends an
// mn of its own and drops its MN. The client sees exactly memcached's
// bytes; memcached sees the extra mn.
//
// One memcached quirk is smoothed over: a get, gets, gat or gats naming a
// key longer than 250 bytes makes memcached drop the answers it has not
// sent yet, those of earlier pipelined requests included. Such a get is
// forwarded only once every earlier answer has arrived, so none is lost.
//
// The unit of draw is one request (a quiet run's requests are drawn one by
// one; a request drawn with a behavior that changes anything is answered in
// a run of its own). Command in chaos.Request is the command name as sent:
// memcached's commands are lower case and case-sensitive, so matchers name
// them in lower case ("get", "set", "mg"). Faults on the wire:
//
//   - error: the request is read and not forwarded; the client gets
//     "SERVER_ERROR <message>\r\n" (default message "vaurien injected
//     fault"), also for meta requests, quiet or not. A noreply request is
//     swallowed and nothing is sent back, as memcached would send nothing.
//   - error with inject: the request is forwarded and the first value of
//     the answer (VALUE or VA) gets up to 100 bytes in its middle
//     overwritten with random bytes, lengths unchanged; an answer with no
//     value is replaced by the SERVER_ERROR line (the request did run).
//   - delay waits before forwarding the request; a response delay waits
//     before the answer is written.
//   - hang swallows the request and everything after it; earlier answers
//     still arrive, then nothing, until the client leaves. timeout is hang
//     that closes the connection after its After (never when 0).
//   - abort forwards the request, then drops both connections before its
//     answer (the backend with a TCP RST).
//   - blackout and down close the client connection at once; reset_peer
//     closes it with a TCP RST, at once or after its After.
//   - filters (bandwidth, slicer, corrupt, limit_data) act on that
//     request's bytes and on its answer's bytes only.
//   - slow_close holds the close of the connection, whoever ends it.
//
// The protocol is its framing on the protocol kit (pkg/protocol/kit), which
// owns the rest: between requests, and before the first, each side waits
// for its peer in the poller with its buffers back in a shared pool, and a
// request costs one read on each side, as a plain copy.
//
// Raw relay. The connection leaves framing for a raw relay (relay.Raw),
// after every answer still due has been relayed, when the client speaks the
// binary protocol (first byte 0x80), after watch and lru_crawler metadump
// (the backend then streams), when a request line other than get or gets
// overflows the 16 KiB read buffer (memcached closes on those), and when a
// data block claims more than 1 GiB. A backend answer that cannot be framed
// closes the connection. A backend that closes its side has what it said
// reach the client, then the end of the stream, while what the client still
// sends is read and dropped (a lingering close, at most relay.LingerTime).
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

// protocol is the memcache chaos.Protocol.
type protocol struct{}

// New returns the memcache protocol.
func New() chaos.Protocol { return protocol{} }

// Serve frames one client connection; see the package documentation.
func (protocol) Serve(ctx context.Context, s chaos.Session) error {
	return kit.Serve(ctx, s, &framing{}, kit.Options{BufSize: bufSize})
}

// bufSize sizes each of a connection's buffers. It is memcached's own read
// buffer size: a request line that does not fit is one memcached rejects
// too (except get and gets, whose long key lists are streamed).
const bufSize = 16 << 10

var (
	noop         = []byte("mn\r\n")
	defaultReply = []byte("SERVER_ERROR " + DefaultMessage + "\r\n")
	// Line breaks in a message would end the reply early and desynchronise
	// the client.
	lineBreaks = strings.NewReplacer("\r", " ", "\n", " ")
)

// inflight is memcache's own state of one request in the kit's queue; an
// mn of the proxy's own (Settle's) has no Req.
type inflight struct {
	r    request
	n    int32 // the request line's length, for Send
	long bool  // the line overflowed the buffer: a long get, streamed
	// swallow: the answer is a run, up to an MN that answers an mn of the
	// proxy's own and is dropped. (A client's mn is answered by a run too.)
	swallow bool
}

// framing frames one client connection for the kit.
type framing struct {
	started bool
	run     bool // quiet requests forwarded and not yet followed by an mn
}

var (
	_ kit.Framing[inflight] = (*framing)(nil)
	_ kit.Settler[inflight] = (*framing)(nil)
)

// Request frames the next request line. It is only looked at here; Send
// consumes it.
func (f *framing) Request(in *kit.Reader, x *kit.Exchange[inflight]) error {
	if !f.started {
		first, err := in.Peek(1)
		if err != nil {
			return err
		}
		f.started = true
		if first[0] == 0x80 { // the magic byte of the binary protocol
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
		// The run's answers are delimited before this request's: the line
		// stays for the next call.
		f.Settle(x)
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

// Settle ends an open run of quiet requests with an mn of the proxy's own.
// memcached answers quiet requests only when they fail (or, for mg, hit)
// and mn always, in order: every answer before that MN belongs to the run.
func (f *framing) Settle(x *kit.Exchange[inflight]) bool {
	if !f.run {
		return false
	}
	f.run = false
	x.R.swallow = true
	return true
}

// Send writes the request: its line and data block, or the line of an
// overlong get, streamed from the client. A quiet request that the draw
// changes is answered in a run of its own.
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
	fr := framer{br: in}
	return fr.relay(out, unit{run: x.R.swallow || x.R.r.kind == kindNoop, swallow: x.R.swallow, corrupt: x.Inject, reply: x.ErrorReply()})
}

// Error is the SERVER_ERROR line.
func (f *framing) Error(_ *kit.Exchange[inflight], spec *chaos.ErrorSpec) []byte {
	if spec.Message == "" {
		return defaultReply
	}
	return []byte("SERVER_ERROR " + lineBreaks.Replace(spec.Message) + "\r\n")
}
