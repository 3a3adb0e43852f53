package postgres

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"unsafe"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// bufSize sizes each of a connection's buffers. A message longer than it
// is streamed; only the first bufSize bytes of a statement are matched.
const bufSize = kit.BufSize

// kind is what a request of the client is.
type kind uint8

const (
	kindStartup kind = iota + 1 // the StartupMessage: drawn, answered up to authentication or ReadyForQuery
	kindAuth                    // a password, SASL or GSS message: answered the same way, never drawn
	kindQuery                   // Q, or an extended batch up to Sync: answered up to ReadyForQuery
	kindCopy                    // CopyData up to CopyDone or CopyFail: no answer of its own
	kindOne                     // Flush or Terminate: one message, no answer
)

// exchange is postgres's own state of one request in the kit's queue.
type exchange struct {
	kind  kind
	first byte   // the first message's type
	size  int32  // the first message's length on the wire
	q     *query // a simple Query's request, recycled (see framing)
	// Set by Error for the error fault, which reaches the server too (see
	// the package documentation): the request runs first (inject), the
	// session ends after the error (a FATAL one).
	failed, runs, fatal bool
}

// framing frames one client connection for the kit. Its fields are the
// request loop's, but for p.
type framing struct {
	p        *protocol
	started  bool // the StartupMessage has been framed
	tracker  tracker
	database string
	user     string
	// A simple Query's request is made anew for each, unlike a prepared
	// statement's: these recycle it. The reply loop keeps the one it
	// answered last (replied) until its next answer, when the kit has
	// reported the exchange, and hands it to the request loop (spare).
	spare   atomic.Pointer[query]
	replied *query
}

// query is a simple Query's request, with the bytes its SQL is read from.
type query struct {
	req chaos.Request
	sql []byte
}

var (
	_ kit.Framing[exchange] = (*framing)(nil)
	_ kit.Starter           = (*framing)(nil)
	_ kit.Unsolicited       = (*framing)(nil)
	_ kit.Failer[exchange]  = (*framing)(nil)
)

// errNotPostgres is a backend that does not speak protocol 3.0.
var errNotPostgres = errors.New("postgres: the backend's answer is not protocol 3.0")

// Start answers the SSLRequest and GSSENCRequest a client may send before
// its StartupMessage, and relays a CancelRequest, which is all its
// connection carries. The StartupMessage itself is left for Request, so
// that it is drawn.
func (f *framing) Start(o *kit.Opening) error {
	var toClient, toBackend bool
	if u, ok := o.Session.(chaos.TLSUpgrader); ok {
		toClient, toBackend = u.TLSSides()
	}
	if toBackend {
		if err := backendTLS(o); err != nil {
			return err
		}
	}
	for {
		b, err := o.Client.Peek(startupHeadLen)
		if err != nil {
			return err
		}
		k, size, err := startupHead(b)
		if err != nil {
			// The server answers what it makes of it.
			return handOver(o, o.Client.Buffered())
		}
		switch k {
		case packetStartup:
			return nil
		case packetCancel:
			return handOver(o, size)
		}
		// SSLRequest or GSSENCRequest.
		if k == packetSSL && toClient {
			// The route terminates TLS: 'S', and the handshake.
			o.Client.Discard(size)
			if _, err := o.ToClient.Write([]byte{'S'}); err != nil {
				return err
			}
			if err := o.ToClient.Flush(); err != nil {
				return err
			}
			if err := o.ClientTLS(); err != nil {
				return err
			}
			continue
		}
		if !f.p.passthrough || toClient || toBackend {
			o.Client.Discard(size)
			if _, err := o.ToClient.Write([]byte{'N'}); err != nil {
				return err
			}
			if err := o.ToClient.Flush(); err != nil {
				return err
			}
			continue
		}
		if _, err := o.Client.CopyN(o.ToBackend, int64(size)); err != nil {
			return err
		}
		if err := o.ToBackend.Flush(); err != nil {
			return err
		}
		a, err := o.Backend.Peek(1)
		if err != nil {
			return err
		}
		answer := a[0]
		o.Backend.CopyN(o.ToClient, 1)
		if answer != 'N' {
			// 'S' or 'G': the rest is encrypted; anything else is an old
			// server's error, relayed as it comes.
			return kit.ErrRaw
		}
		if err := o.ToClient.Flush(); err != nil {
			return err
		}
	}
}

// sslRequest is the SSLRequest packet: its length, 8, and its code.
var sslRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// backendTLS asks the backend for TLS, as a client with sslmode=require
// does, and completes the handshake with the route's backend_tls block.
func backendTLS(o *kit.Opening) error {
	if _, err := o.ToBackend.Write(sslRequest); err != nil {
		return err
	}
	if err := o.ToBackend.Flush(); err != nil {
		return err
	}
	a, err := o.Backend.Peek(1)
	if err != nil {
		return err
	}
	if a[0] != 'S' {
		return fmt.Errorf("postgres: the backend answered %q to SSLRequest, not 'S': it does not speak TLS; turn ssl on in the server or remove the route's backend_tls block", a[0])
	}
	o.Backend.Discard(1)
	return o.BackendTLS()
}

// handOver sends the client's first n bytes on to the server and leaves
// the connection to a raw relay.
func handOver(o *kit.Opening, n int) error {
	if _, err := o.Client.CopyN(o.ToBackend, int64(n)); err != nil {
		return err
	}
	return kit.ErrRaw
}

// Request frames the client's next request; see the package documentation
// for what a request is.
func (f *framing) Request(in *kit.Reader, x *kit.Exchange[exchange]) error {
	if !f.started {
		return f.startup(in, x)
	}
	b, err := in.Peek(headerLen)
	if err != nil {
		return err
	}
	typ, size, err := header(b)
	if err != nil {
		x.Then = kit.RawNow // the server answers its own protocol violation
		return nil
	}
	x.R = exchange{kind: kindQuery, first: typ, size: int32(size)}
	switch typ {
	case msgQuery, msgParse, msgBind, msgDescribe, msgExecute, msgClose, msgSync, msgFunctionCall:
		head, err := in.Peek(min(size, bufSize))
		if err != nil && err != bufio.ErrBufferFull {
			return err
		}
		if typ == msgQuery {
			x.R.q = f.query(head[headerLen:])
			x.Req = &x.R.q.req
		} else {
			x.Req = f.tracker.first(typ, head[headerLen:])
		}
	case msgPassword:
		x.R.kind = kindAuth
	case msgCopyData, msgCopyDone, msgCopyFail:
		x.R.kind, x.Reply = kindCopy, kit.ReplyNone
	case msgFlush, msgTerminate:
		x.R.kind, x.Reply = kindOne, kit.ReplyNone
	default:
		x.Then = kit.RawNow
	}
	return nil
}

// query makes the request of a simple Query from its body (cut short when
// the message is longer than the buffer), recycling one the reply loop is
// done with.
func (f *framing) query(body []byte) *query {
	q := f.spare.Swap(nil)
	if q == nil {
		q = new(query)
	}
	// The text ends at the NUL that ends the message; IndexByte finds it
	// word by word rather than byte by byte.
	sql := body
	if i := bytes.IndexByte(body, 0); i >= 0 {
		sql = body[:i]
	}
	q.sql = append(q.sql[:0], sql...)
	// The text lives in q.sql, which changes only once the exchange has
	// been reported: the request is valid for as long as chaos.Request
	// promises.
	q.req = chaos.Request{Command: keyword(q.sql), SQL: unsafe.String(unsafe.SliceData(q.sql), len(q.sql)),
		Database: f.database, User: f.user}
	return q
}

// startup frames the StartupMessage.
func (f *framing) startup(in *kit.Reader, x *kit.Exchange[exchange]) error {
	b, err := in.Peek(startupHeadLen)
	if err != nil {
		return err
	}
	k, size, err := startupHead(b)
	if err != nil || k != packetStartup {
		x.Then = kit.RawNow
		return nil
	}
	b, err = in.Peek(size)
	if err != nil {
		return err
	}
	f.started = true
	var replication bool
	f.user, f.database, replication = startupParams(b)
	f.tracker.user, f.tracker.database = f.user, f.database
	x.R = exchange{kind: kindStartup, size: int32(size)}
	x.Req = f.tracker.command(CommandStartup)
	if replication {
		// A replication session speaks its own commands and CopyBoth:
		// relayed raw once its authentication begins.
		x.Then = kit.RawAfter
	}
	return nil
}

// poison is what an error fault sends the server in place of (or after)
// the request: a statement that fails, so that a transaction the client is
// told failed fails on the server too. Outside a transaction it changes
// nothing.
var poison = appendMessage(nil, msgQuery,
	[]byte("DO $vaurien$ BEGIN RAISE EXCEPTION 'vaurien injected fault'; END $vaurien$\x00"))

// Send writes the request: its first message, then, for a batch, every
// message up to and including Sync (or a Query, which the server answers
// with ReadyForQuery as well), and for CopyData every message up to
// CopyDone or CopyFail, streamed. A failed request is read and dropped, and
// the server gets the poison instead, or after it when it runs.
func (f *framing) Send(in *kit.Reader, out io.Writer, x *kit.Exchange[exchange]) error {
	e := &x.R
	to := out
	if e.failed && !e.runs {
		to = io.Discard
	}
	flushed, err := f.relay(in, to, e)
	if err != nil {
		return err
	}
	if flushed {
		// The client waits for the answers to what it sent so far before
		// it goes on: the batch has no end the proxy could wait for, and
		// the connection is relayed raw from here.
		x.Reply, x.Then = kit.ReplyNone, kit.RawAfter
	}
	if e.failed {
		_, err := out.Write(poison)
		return err
	}
	return nil
}

// Fail sends the server the poison in place of a statement the error fault
// answers (Error has marked it failed), so that the server's transaction
// fails with the client's; Reply then answers the error. A refused startup
// is left to the kit: the server never hears of it.
func (f *framing) Fail(in *kit.Reader, out io.Writer, x *kit.Exchange[exchange]) (bool, error) {
	if !x.R.failed {
		return false, nil
	}
	return true, f.Send(in, out, x)
}

// relay moves the request's messages from in to out. flushed reports a
// batch that a Flush ended before its Sync.
func (f *framing) relay(in *kit.Reader, out io.Writer, e *exchange) (flushed bool, err error) {
	if _, err := in.CopyN(out, int64(e.size)); err != nil {
		return false, err
	}
	switch {
	case e.kind == kindQuery && e.first != msgQuery && e.first != msgSync:
	case e.kind == kindCopy && e.first == msgCopyData:
	default:
		return false, nil
	}
	for {
		h, err := in.Peek(headerLen)
		if err != nil {
			return false, err
		}
		typ, size, err := header(h)
		if err != nil {
			return false, err
		}
		if e.kind == kindCopy && typ != msgCopyData && typ != msgCopyDone && typ != msgCopyFail {
			return false, nil // the client left copy mode another way: the rest is framed anew
		}
		if e.kind == kindQuery && (typ == msgParse || typ == msgBind || typ == msgClose) {
			body, err := in.Peek(min(size, bufSize))
			if err != nil && err != bufio.ErrBufferFull {
				return false, err
			}
			f.tracker.follow(typ, body[headerLen:])
		}
		if _, err := in.CopyN(out, int64(size)); err != nil {
			return false, err
		}
		switch {
		case e.kind == kindCopy && typ != msgCopyData,
			e.kind == kindQuery && (typ == msgSync || typ == msgQuery):
			return false, nil
		case e.kind == kindQuery && typ == msgFlush:
			return true, nil
		}
	}
}

// Reply relays the server's answer up to where it ends: ReadyForQuery for
// a statement, and for the startup and authentication messages also an
// authentication request that waits for the client, or an error (the
// server then closes). An answer to a failed request is replaced: see
// reply.
func (f *framing) Reply(in *kit.Reader, out io.Writer, x *kit.Exchange[exchange]) error {
	if f.replied != nil {
		f.spare.Store(f.replied)
	}
	f.replied = x.R.q
	auth := x.R.kind == kindStartup || x.R.kind == kindAuth
	if x.Inject && x.R.kind == kindStartup {
		// error with inject on a startup: the server got the
		// StartupMessage, the client gets the refusal, and the session
		// ends there.
		if _, err := out.Write(x.ErrorReply()); err != nil {
			return err
		}
		return chaos.ErrClose
	}
	if x.R.failed || x.Inject {
		return f.replace(in, out, x)
	}
	for {
		b, err := in.Peek(headerLen)
		if err != nil {
			return err
		}
		// Whole messages in the buffer go out in one write.
		all, _ := in.Peek(in.Buffered())
		off, end, err := scan(all, auth)
		if err != nil {
			return err
		}
		if end {
			if _, err := out.Write(all[:off]); err != nil {
				return err
			}
			in.Discard(off)
			return nil
		}
		if off > 0 {
			if _, err := out.Write(all[:off]); err != nil {
				return err
			}
			in.Discard(off)
			continue
		}
		// The next message is longer than what is buffered: its head tells
		// whether it ends the answer, its body is streamed.
		typ, size, err := header(b)
		if err != nil {
			return err
		}
		head, err := in.Peek(min(size, headerLen+4))
		if err != nil {
			return err
		}
		end, err = ends(typ, head[headerLen:], auth)
		if err != nil {
			return err
		}
		if _, err := in.CopyN(out, int64(size)); err != nil {
			return err
		}
		if end {
			return nil
		}
	}
}

// scan walks the whole server messages at the start of buf, up to and
// including one that ends the answer: off is where it stopped, end whether
// the answer ended there.
func scan(buf []byte, auth bool) (off int, end bool, err error) {
	for off+headerLen <= len(buf) {
		typ, size, err := header(buf[off:])
		if err != nil {
			return off, false, err
		}
		if off+size > len(buf) {
			break
		}
		body := buf[off+headerLen : off+size]
		off += size
		if end, err := ends(typ, body, auth); end || err != nil {
			return off, end, err
		}
	}
	return off, false, nil
}

// ends reports whether a server message ends the answer it belongs to.
func ends(typ byte, body []byte, auth bool) (bool, error) {
	switch typ {
	case msgReadyForQuery:
		return true, nil
	case msgCopyBothResponse:
		return false, fmt.Errorf("postgres: CopyBothResponse outside a replication session")
	case msgErrorResponse:
		return auth, nil // during authentication, the server closes after it
	case msgAuthentication:
		if !auth {
			return false, errNotPostgres
		}
		code, ok := authCode(body)
		return ok && authWantsAnswer(code), nil
	}
	return false, nil
}

// replace reads the server's answers to a failed request (the request's
// own when it ran, then the poison's) and sends the client the error in
// their place, then ReadyForQuery with the server's transaction status:
// 'E' when a transaction was open, which the poison made fail on the
// server too. Notices and notifications that come meanwhile are relayed.
func (f *framing) replace(in *kit.Reader, out io.Writer, x *kit.Exchange[exchange]) error {
	answers := 1
	if x.R.runs {
		answers = 2
	}
	var status byte
	for answers > 0 {
		b, err := in.Peek(headerLen)
		if err != nil {
			return err
		}
		typ, size, err := header(b)
		if err != nil {
			return err
		}
		switch typ {
		case msgReadyForQuery:
			z, err := in.Peek(headerLen + 1)
			if err != nil {
				return err
			}
			status = z[headerLen]
			answers--
			_, err = in.Discard(size)
			if err != nil {
				return err
			}
		case msgNotificationResponse, msgNoticeResponse, msgParameterStatus:
			if _, err := in.CopyN(out, int64(size)); err != nil {
				return err
			}
		default:
			if _, err := in.Discard(size); err != nil {
				return err
			}
		}
	}
	if _, err := out.Write(x.ErrorReply()); err != nil {
		return err
	}
	if x.R.fatal {
		return chaos.ErrClose
	}
	_, err := out.Write(appendReadyForQuery(nil, status))
	return err
}

// Error renders the error fault's ErrorResponse: the behavior's code, or
// the route's error_code, with the behavior's message or the preset's.
// At startup the server can only refuse the session: the error is FATAL,
// and a statement's failure becomes too_many_connections.
func (f *framing) Error(x *kit.Exchange[exchange], spec *chaos.ErrorSpec) []byte {
	fl := f.p.failure
	if spec.Code != "" {
		var err error
		if fl, err = resolve(spec.Code); err != nil {
			fl = failure{code: "XX000", severity: severityError, message: "vaurien: " + err.Error()}
		}
	}
	command := ""
	if x.Req != nil {
		command = x.Req.Command
	}
	if x.R.kind == kindStartup {
		if !fl.fatal() {
			fl, _ = resolve("too_many_connections")
		}
		fl.severity = severityFatal
		return appendError(nil, fl.severity, fl.code, fl.text(spec.Message, command))
	}
	x.R.failed, x.R.runs, x.R.fatal = true, spec.Inject, fl.fatal()
	return appendError(nil, fl.severity, fl.code, fl.text(spec.Message, command))
}

// Unsolicited relays what the server sends while no request waits:
// notifications (LISTEN), notices, parameter changes, and the FATAL error
// a server sends before it ends a session.
func (f *framing) Unsolicited(in *kit.Reader, out io.Writer) (bool, error) {
	b, err := in.Peek(headerLen)
	if err != nil {
		return false, err
	}
	typ, size, err := header(b)
	if err != nil {
		return false, err
	}
	switch typ {
	case msgNotificationResponse, msgNoticeResponse, msgParameterStatus, msgErrorResponse:
		_, err := in.CopyN(out, int64(size))
		return err == nil, err
	}
	return false, nil
}
