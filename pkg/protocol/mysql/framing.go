package mysql

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// bufSize sizes each of a connection's buffers: a handshake packet and the
// head of a statement (maxText) fit in it; longer packets are streamed.
const bufSize = kit.BufSize

// rollback is a COM_QUERY ROLLBACK of the proxy's own, sent before the
// client's next command after an injected deadlock inside a transaction.
var rollback = []byte("\x09\x00\x00\x00\x03ROLLBACK")

// errAuthFailed ends a connection whose login the server refused, once
// the server's ERR packet has reached the client; errTooMany one refused
// at its handshake by an injected too_many_connections.
var (
	errAuthFailed = errors.New("the server refused the login")
	errTooMany    = errors.New("refused at the handshake by an injected too_many_connections error")
)

// exchange is mysql's own state of one command in the kit's queue.
type exchange struct {
	code byte
	// seq is the sequence id of the command's last packet: the reply, or
	// an injected ERR, goes on from it.
	seq byte
	// infile: these are the client's LOCAL INFILE packets; the reply is
	// the rest of the LOAD DATA statement's.
	infile bool
	// rollback: a ROLLBACK of the proxy's own went first (after an
	// injected deadlock); its answer is dropped.
	rollback bool
	// consumed: the command was read by Fail; Send has nothing left to do.
	consumed bool
	// failed: the command was answered by an injected error in the
	// server's place and a ROLLBACK went instead: Reply drops the
	// ROLLBACK's answer and writes the error.
	failed bool
	// deadlock: the injected error is a deadlock, which rolls the
	// transaction back.
	deadlock bool
	rq       *request // what the command is drawn as; nil when it is not drawn
}

// framing frames one client connection for the kit.
type framing struct {
	p        *protocol
	caps     uint64 // what client and server agreed on
	user, db string
	// infile is set by the reply loop when the server asks for the
	// client's file, before the request reaches the client: the client's
	// next bytes are the file.
	infile atomic.Bool
	// inTrans follows the server's status flags, from the reply loop.
	inTrans atomic.Bool
	// rollbackDue: a deadlock was injected (with inject) inside a
	// transaction, and the server has not rolled it back yet.
	rollbackDue atomic.Bool
	// A command's request is recycled: the reply loop keeps the one it
	// answered last (replied) until its next answer, when the kit has
	// reported that exchange, and hands it to the request loop (spare).
	spare   atomic.Pointer[request]
	replied *request
	// stmts maps the ids of prepared statements to their keyword and text:
	// a COM_STMT_EXECUTE is drawn as the statement it runs.
	mu    sync.Mutex
	stmts map[uint32]prepared
	// prepare is the text of the COM_STMT_PREPARE in flight, until its
	// answer gives the statement's id.
	prepare prepared
	r       reply // the reply loop's
}

type prepared struct{ keyword, sql string }

// request is a command's chaos.Request, with the bytes its SQL is read
// from.
type request struct {
	req chaos.Request
	sql []byte
}

var (
	_ kit.Framing[exchange] = (*framing)(nil)
	_ kit.Starter           = (*framing)(nil)
	_ kit.Failer[exchange]  = (*framing)(nil)
)

// peekPacket returns the header of the next chunk from in and up to want
// bytes of its payload.
func peekPacket(in *kit.Reader, want int) (n int, seq byte, head []byte, err error) {
	h, err := in.Peek(headerLen)
	if err != nil {
		return 0, 0, nil, err
	}
	n, seq = header(h)
	b, err := in.Peek(headerLen + min(n, want))
	if err != nil {
		return 0, 0, nil, err
	}
	return n, seq, b[headerLen:], nil
}

// relayPacket moves one whole payload, all its chunks, from in to out, and
// returns the sequence id of its last chunk.
func relayPacket(in *kit.Reader, out io.Writer) (byte, error) {
	for {
		h, err := in.Peek(headerLen)
		if err != nil {
			return 0, err
		}
		n, seq := header(h)
		if _, err := in.CopyN(out, int64(headerLen+n)); err != nil {
			return 0, err
		}
		if n < maxChunk {
			return seq, nil
		}
	}
}

// Start passes the handshake and the authentication through: the
// server's greeting (without CLIENT_SSL unless tls is passthrough), the
// client's login, then every packet of the authentication exchange until
// the server's OK. A client that asks for TLS, and a session that
// compresses its packets, are relayed raw.
func (f *framing) Start(o *kit.Opening) error {
	if f.p.fail.preset == "too_many_connections" {
		var d chaos.Drawn
		if o.Session.Draw(&chaos.Request{Command: connectCommand}, &d) && d.Effect.Fault == chaos.FaultError {
			// Before the greeting, the server knows nothing of the client's
			// protocol: no SQLSTATE, as MySQL and MariaDB send it.
			fail := f.p.failure(&d.Effect.Error)
			o.ToClient.Write(errPacket(0, fail.code, fail.state, fail.message, false))
			return errTooMany
		}
	}
	n, _, greet, err := peekPacket(o.Backend, bufSize-headerLen)
	if err == bufio.ErrBufferFull || err == nil && len(greet) < n {
		return kit.ErrRaw
	}
	if err != nil {
		return err
	}
	g, err := parseGreeting(greet)
	if err != nil {
		// Not a greeting this proxy reads (an ERR, an old protocol): the
		// client sees it as it is.
		return kit.ErrRaw
	}
	// A route with tls and backend_tls speaks TLS to both: the client's
	// SSLRequest is relayed, and each side's handshake made with vaurien.
	var bothTLS bool
	if u, ok := o.Session.(chaos.TLSUpgrader); ok {
		client, backend := u.TLSSides()
		bothTLS = client && backend
	}
	if bothTLS && g.caps&capSSL == 0 {
		return errors.New("mysql: the server offers no TLS (no CLIENT_SSL in its greeting), and the route speaks TLS to it: turn TLS on in the server, or remove the route's tls and backend_tls blocks")
	}
	if !f.p.passthroughTLS && !bothTLS {
		g.clearSSL(greet)
	}
	if _, err := relayPacket(o.Backend, o.ToClient); err != nil {
		return err
	}
	if err := o.ToClient.Flush(); err != nil {
		return err
	}
	n, _, login, err := peekPacket(o.Client, bufSize-headerLen)
	if err == bufio.ErrBufferFull || err == nil && len(login) < n {
		return kit.ErrRaw
	}
	if err != nil {
		return err
	}
	l, err := parseLogin(login)
	if bothTLS {
		if l, err = f.startTLS(o, l, err); err != nil {
			return err
		}
	}
	if err != nil || l.ssl {
		return kit.ErrRaw // TLS (or a login this proxy does not read): relayed untouched
	}
	f.caps = agreed(g.caps, l.caps)
	f.user, f.db = l.user, l.db
	if _, err := relayPacket(o.Client, o.ToBackend); err != nil {
		return err
	}
	if f.caps&(capCompress|capZstd) != 0 {
		return kit.ErrRaw // compressed packets from the server's OK on
	}
	for {
		if err := o.ToBackend.Flush(); err != nil {
			return err
		}
		_, _, head, err := peekPacket(o.Backend, 2)
		if err != nil {
			return err
		}
		turn := authNext(head)
		if _, err := relayPacket(o.Backend, o.ToClient); err != nil {
			return err
		}
		if err := o.ToClient.Flush(); err != nil {
			return err
		}
		switch turn {
		case authOK:
			return nil
		case authFailed:
			return errAuthFailed
		case authClient:
			if _, err := relayPacket(o.Client, o.ToBackend); err != nil {
				return err
			}
		}
	}
}

// startTLS relays the client's SSLRequest to the server, makes both sides
// TLS and reads the login the client sends over TLS. A client that does
// not ask for TLS is refused: its login would reach the server in plain
// text, which the route's backend_tls forbids.
func (f *framing) startTLS(o *kit.Opening, l login, err error) (login, error) {
	if err != nil {
		return l, err
	}
	if !l.ssl {
		return l, errors.New("mysql: the client did not ask for TLS, and the route speaks TLS to the server: connect with TLS (ssl-mode=REQUIRED)")
	}
	if _, err := relayPacket(o.Client, o.ToBackend); err != nil {
		return l, err
	}
	if err := o.ToBackend.Flush(); err != nil {
		return l, err
	}
	if err := o.BackendTLS(); err != nil {
		return l, err
	}
	if err := o.ClientTLS(); err != nil {
		return l, err
	}
	n, _, p, err := peekPacket(o.Client, bufSize-headerLen)
	if err == bufio.ErrBufferFull || err == nil && len(p) < n {
		return l, kit.ErrRaw
	}
	if err != nil {
		return l, err
	}
	return parseLogin(p)
}

// Request frames the next command from its first chunk's head.
func (f *framing) Request(in *kit.Reader, x *kit.Exchange[exchange]) error {
	n, _, head, err := peekPacket(in, 1+maxText)
	if err != nil {
		return err
	}
	if f.infile.Load() {
		f.infile.Store(false)
		x.R.infile = true // not drawn: it is part of the LOAD DATA statement
		return nil
	}
	var code byte = 0xff // an empty command, which the server answers with an ERR
	if n > 0 {
		code = head[0]
	}
	x.R.code = code
	switch code {
	case comStmtClose:
		if id, ok := stmtID(head); ok {
			f.mu.Lock()
			delete(f.stmts, id)
			f.mu.Unlock()
		}
		x.Reply = kit.ReplyNone
		return nil // housekeeping: neither drawn nor counted
	case comQuit, comStmtSendLongData:
		// No answer; long data is part of the COM_STMT_EXECUTE that
		// follows, and drawing it alone would change what the statement
		// stores.
		x.Reply = kit.ReplyNone
		return nil
	case comBinlogDump, comBinlogDumpGTID, comChangeUser:
		// A replication stream, or a new authentication exchange: relayed
		// raw, neither drawn nor counted.
		x.Reply, x.Then = kit.ReplyNone, kit.RawAfter
		return nil
	}
	rq := f.request()
	x.R.rq, x.Req = rq, &rq.req
	req := &rq.req
	req.Command = commandName(code)
	switch code {
	case comQuery:
		sql, ok := statement(head, f.caps)
		if !ok {
			req.Command = other
			break
		}
		req.Command = keyword(sql)
		rq.sql = append(rq.sql[:0], sql...)
		// The text lives in rq.sql, which changes only once the exchange
		// has been reported: the request is valid for as long as
		// chaos.Request promises.
		req.SQL = unsafe.String(unsafe.SliceData(rq.sql), len(rq.sql))
	case comStmtPrepare:
		f.mu.Lock()
		sql := head[1:]
		f.prepare = prepared{keyword(sql), string(sql)}
		f.mu.Unlock()
	case comStmtExecute:
		if id, ok := stmtID(head); ok {
			f.mu.Lock()
			s, known := f.stmts[id]
			f.mu.Unlock()
			if known {
				req.Command, req.SQL = s.keyword, s.sql
			}
		}
	}
	return nil
}

// request returns a command's request to fill, recycling one the reply
// loop is done with.
func (f *framing) request() *request {
	rq := f.spare.Swap(nil)
	if rq == nil {
		rq = new(request)
	}
	rq.req = chaos.Request{Database: f.db, User: f.user}
	return rq
}

// Send writes the command, streaming its chunks, after a ROLLBACK of the
// proxy's own when an injected deadlock (with inject) left the server's
// transaction open.
func (f *framing) Send(in *kit.Reader, out io.Writer, x *kit.Exchange[exchange]) error {
	if x.R.consumed {
		return nil
	}
	if x.R.infile {
		for {
			h, err := in.Peek(headerLen)
			if err != nil {
				return err
			}
			n, _ := header(h)
			if _, err := in.CopyN(out, int64(headerLen+n)); err != nil {
				return err
			}
			if n == 0 {
				return nil
			}
		}
	}
	if out != io.Discard && x.Reply == kit.ReplyOne && f.rollbackDue.Load() {
		f.rollbackDue.Store(false)
		if x.Req == nil || x.Req.Command != "ROLLBACK" {
			if _, err := out.Write(rollback); err != nil {
				return err
			}
			x.R.rollback = true
		}
	}
	seq, err := relayPacket(in, out)
	x.R.seq = seq
	return err
}

// Reply relays the server's answer to one command, chunk by chunk.
func (f *framing) Reply(in *kit.Reader, out io.Writer, x *kit.Exchange[exchange]) error {
	if f.replied != nil {
		f.spare.Store(f.replied)
	}
	f.replied = x.R.rq
	if x.R.rollback {
		if _, err := relayPacket(in, io.Discard); err != nil {
			return err
		}
	}
	if x.R.failed {
		f.inTrans.Store(false) // rolled back
		_, err := out.Write(x.ErrorReply())
		return err
	}
	if x.Inject {
		return f.replace(in, out, x)
	}
	r := &f.r
	if x.R.infile {
		r.begin(comQuery, f.caps)
		r.infileDone()
	} else {
		r.begin(x.R.code, f.caps)
	}
	for {
		n, _, head, err := peekPacket(in, peekLen)
		if err != nil {
			return err
		}
		s, err := r.next(n, head)
		if err != nil {
			return &FramingError{Err: err}
		}
		if s == stepInfile {
			f.infile.Store(true)
		}
		if _, err := in.CopyN(out, int64(headerLen+n)); err != nil {
			return err
		}
		switch s {
		case stepInfile:
			return nil
		case stepDone:
			f.ended(r, x.R.code)
			return nil
		}
	}
}

// ended notes what a complete reply says about the session: whether a
// transaction is open, and the id a prepared statement got.
func (f *framing) ended(r *reply, code byte) {
	if r.statusSeen {
		f.inTrans.Store(r.status&statusInTrans != 0)
	}
	if code == comStmtPrepare {
		f.mu.Lock()
		if r.stmt != 0 {
			if f.stmts == nil {
				f.stmts = map[uint32]prepared{}
			}
			f.stmts[r.stmt] = f.prepare
		}
		f.prepare = prepared{}
		f.mu.Unlock()
	}
}

// replace reads the server's whole answer and sends the injected ERR in
// its place: the statement ran, and the client is told it failed.
func (f *framing) replace(in *kit.Reader, out io.Writer, x *kit.Exchange[exchange]) error {
	r := &f.r
	r.begin(x.R.code, f.caps)
	for {
		n, _, head, err := peekPacket(in, peekLen)
		if err != nil {
			return err
		}
		s, err := r.next(n, head)
		if err != nil {
			return &FramingError{Err: err}
		}
		if s == stepInfile {
			// The server waits for the file: the client must see the request.
			f.infile.Store(true)
			_, err := in.CopyN(out, int64(headerLen+n))
			return err
		}
		if _, err := in.Discard(headerLen + n); err != nil {
			return err
		}
		if s == stepDone {
			break
		}
	}
	errp := x.ErrorReply()
	if errp == nil {
		return chaos.ErrClose // gone away after the statement ran
	}
	errp[3] = x.R.seq + 1
	if x.R.deadlock && f.inTrans.Load() {
		f.rollbackDue.Store(true)
	}
	_, err := out.Write(errp)
	return err
}

// Error renders the ERR packet of an error fault; nil, for gone_away,
// ends the connection without an answer. Its sequence id is set once the
// command has been read (Fail, or Reply with inject): the command may
// span several packets.
func (f *framing) Error(x *kit.Exchange[exchange], spec *chaos.ErrorSpec) []byte {
	fail := f.p.failure(spec)
	if fail.code == 0 {
		return nil
	}
	x.R.deadlock = fail.code == deadlockCode
	return errPacket(1, fail.code, fail.state, fail.message, f.caps&capProtocol41 != 0)
}

// Fail reads the command that an error fault answers in the server's
// place. A deadlock inside a transaction sends the server a ROLLBACK
// instead, as a real deadlock rolls the transaction back: the client and
// the server then agree that it is gone.
func (f *framing) Fail(in *kit.Reader, out io.Writer, x *kit.Exchange[exchange]) (bool, error) {
	seq, err := relayPacket(in, io.Discard)
	if err != nil {
		return false, err
	}
	x.R.seq, x.R.consumed = seq, true
	errp := x.ErrorReply()
	if errp == nil || x.Reply != kit.ReplyOne {
		return false, nil
	}
	errp[3] = seq + 1
	if !x.R.deadlock || !f.inTrans.Load() {
		return false, nil
	}
	if _, err := out.Write(rollback); err != nil {
		return false, err
	}
	x.R.rollback, x.R.failed = true, true
	return true, nil
}

// FramingError reports a server answer that is not the MySQL protocol's;
// the connection is closed.
type FramingError struct{ Err error }

func (e *FramingError) Error() string { return fmt.Sprintf("read mysql reply: %v", e.Err) }

// Unwrap returns the underlying error.
func (e *FramingError) Unwrap() error { return e.Err }
