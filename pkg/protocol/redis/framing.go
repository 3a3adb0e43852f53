package redis

import (
	"io"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

const (
	// bufSize sizes every pooled buffer: a pipeline's batch fits many
	// times, and larger values are streamed through.
	bufSize = 16 << 10
	// maxInline is redis' longest inline request (PROTO_INLINE_MAX_SIZE):
	// the client's buffer grows to it for an inline line that does not fit.
	maxInline = 64 << 10
	// maxReplies bounds the messages awaited for one UNSUBSCRIBE.
	maxReplies = 1024
)

const execAbort = "EXECABORT Transaction discarded because of previous errors."

var discardRequest = []byte("*1\r\n$7\r\nDISCARD\r\n")

// reader frames RESP on one side's kit.Reader.
type reader struct {
	*kit.Reader
	maxBulk int64
	grow    int // the size an inline line may grow the buffer to; 0 for no growth
}

func (r *reader) bytes() []byte              { return r.Bytes() }
func (r *reader) more() error                { return r.More() }
func (r *reader) fill(n int) ([]byte, error) { return r.Peek(n) }

// growInline moves the buffered bytes to a buffer of r.grow bytes, for an
// inline request longer than the pooled buffer. It reports false when the
// buffer cannot grow.
func (r *reader) growInline() bool { return r.grow > 0 && r.Grow(r.grow) }

// kind sorts the commands that change the reply stream.
type kind uint8

const (
	kOther kind = iota
	kEmpty
	kSwitch // SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, MONITOR
	kSync   // SYNC, PSYNC: an RDB payload that is not RESP, then a stream
	kUnsub  // UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE
	kMulti
	kExec
	kDiscard
	kReset
	kReplyOn
	kReplyOff
	kReplySkip
)

type replyMode uint8

const (
	replyOn replyMode = iota
	replyOff
	replySkip // the next command gets no reply
)

// replacement says that the backend's reply is dropped and an error
// answers in its place: the EXEC of a transaction that must not run went
// to redis as DISCARD.
type replacement uint8

const (
	keep      replacement = iota
	abortExec             // EXECABORT: a command of the transaction was refused
	failExec              // the error fault's own answer
)

// inflight is redis's own state of one request in the kit's queue.
type inflight struct {
	k       kind
	replace replacement
	replies int32 // for UNSUBSCRIBE and its kin, how many messages answer
}

// framing frames one client connection for the kit, and mirrors the
// connection's state in redis that decides what comes back: the CLIENT
// REPLY mode and the transaction.
type framing struct {
	p              *Protocol
	cr, br         reader
	sc             scan
	names          lastName
	last           *chaos.Request
	complete       bool // the request framed is buffered whole
	mode           replyMode
	inMulti, dirty bool // dirty: an injected error refused a command of the transaction
	pendingSwitch  bool // a SUBSCRIBE or MONITOR was queued in the transaction
	cor            corrupter
}

var (
	_ kit.Framing[inflight] = (*framing)(nil)
	_ kit.Failer[inflight]  = (*framing)(nil)
	_ kit.Unsolicited       = (*framing)(nil)
)

func (f *framing) client(in *kit.Reader) *reader {
	if f.cr.Reader == nil {
		f.cr = reader{Reader: in, maxBulk: f.p.maxBulk, grow: maxInline}
	}
	return &f.cr
}

func (f *framing) backend(in *kit.Reader) *reader {
	if f.br.Reader == nil {
		f.br = reader{Reader: in, maxBulk: f.p.maxBulk}
	}
	return &f.br
}

// Request frames the next request. Bytes that are not RESP go raw, so
// that redis answers them itself.
func (f *framing) Request(in *kit.Reader, x *kit.Exchange[inflight]) error {
	r := f.client(in)
	complete, err := r.scanRequest(&f.sc)
	if err != nil {
		if isProtocolError(err) {
			x.Then = kit.RawNow
			return nil
		}
		return err
	}
	f.complete = complete
	if f.sc.argc == 0 {
		// An empty request runs no command and gets no reply, but redis
		// still ends a CLIENT REPLY SKIP with it.
		x.Reply, x.R.k = kit.ReplyNone, kEmpty
		return nil
	}
	var name string
	if f.sc.nargs > 0 {
		name = f.names.of(f.sc.arg(r.bytes(), 0))
	}
	k := classify(name, &f.sc, r.bytes()[:f.sc.pos])
	x.Req, x.R.k = f.request(name), k
	if !f.expectsReply(k) {
		x.Reply = kit.ReplyNone
	}
	if k == kUnsub && !f.inMulti {
		// One message per channel named, or one when none is: a push in
		// RESP3, the command's only answer.
		x.R.replies = int32(min(max(f.sc.argc-1, 1), maxReplies))
	}
	if k == kExec && f.inMulti && f.dirty {
		x.R.replace = abortExec
		return nil
	}
	// SYNC and PSYNC are refused inside MULTI (redis flags them no-multi),
	// so only SUBSCRIBE and MONITOR wait for EXEC. Their replies are not
	// framed: an RDB payload is not RESP.
	if ((k == kSwitch || k == kSync) && !f.inMulti) || (k == kExec && f.inMulti && f.pendingSwitch) {
		x.Reply, x.Then = kit.ReplyNone, kit.RawAfter
	}
	return nil
}

// request returns the chaos.Request of a command: one per name, shared by
// every connection for the known commands, so that naming costs nothing.
func (f *framing) request(name string) *chaos.Request {
	if f.last != nil && f.last.Command == name {
		return f.last
	}
	r, ok := requests[name]
	if !ok {
		r = &chaos.Request{Command: name}
	}
	f.last = r
	return r
}

var requests = func() map[string]*chaos.Request {
	m := make(map[string]*chaos.Request, len(commandNames))
	for _, n := range commandNames {
		m[n] = &chaos.Request{Command: n}
	}
	return m
}()

// Send forwards the request, and tracks what it changes in redis. The
// EXEC of a transaction a command of which was refused goes as DISCARD.
func (f *framing) Send(in *kit.Reader, out io.Writer, x *kit.Exchange[inflight]) error {
	r := f.client(in)
	if out == io.Discard {
		return r.copyRequest(out, &f.sc, f.complete)
	}
	if x.R.replace == abortExec {
		return f.discardInstead(r, out)
	}
	f.track(x.R.k)
	return r.copyRequest(out, &f.sc, f.complete)
}

// Fail keeps redis's transaction in step with what the client is told: an
// EXEC or DISCARD refused by the error fault ends the transaction with a
// DISCARD, a command refused inside it makes its EXEC fail, and a command
// whose reply the client turned off still runs, as it expects.
func (f *framing) Fail(in *kit.Reader, out io.Writer, x *kit.Exchange[inflight]) (bool, error) {
	k := x.R.k
	switch {
	case x.Reply == kit.ReplyNone:
		return true, f.Send(in, out, x)
	case f.inMulti && (k == kExec || k == kDiscard):
		x.R.replace = failExec
		return true, f.discardInstead(f.client(in), out)
	case f.inMulti && k != kMulti:
		f.dirty = true
	}
	return false, nil
}

func (f *framing) discardInstead(r *reader, out io.Writer) error {
	f.track(kDiscard)
	if err := r.copyRequest(io.Discard, &f.sc, f.complete); err != nil {
		return err
	}
	_, err := out.Write(discardRequest)
	return err
}

// Reply relays the backend's reply, the pushes before it and the
// attributes that belong to it; for the UNSUBSCRIBE family, the messages
// that answer it.
func (f *framing) Reply(in *kit.Reader, out io.Writer, x *kit.Exchange[inflight]) error {
	r := f.backend(in)
	switch x.R.replace {
	case abortExec, failExec:
		if _, err := f.reply(r, x, io.Discard, out, false); err != nil {
			return err
		}
		msg := x.ErrorReply()
		if x.R.replace == abortExec {
			msg = []byte("-" + execAbort + "\r\n")
		}
		_, err := out.Write(msg)
		return err
	}
	if x.R.replies == 0 {
		_, err := f.reply(r, x, out, out, x.Inject)
		return err
	}
	// Arrays in RESP2, pushes of the command's own kind in RESP3 (pushes
	// of another kind, such as invalidations, are relayed out of band). A
	// reply of another type (an error: NOAUTH, say) is the only one.
	inject := x.Inject
	for range x.R.replies {
		t, err := f.reply(r, x, out, out, inject)
		if err != nil || (t != '*' && t != '>') {
			return err
		}
		inject = false // the first message is the one damaged
	}
	return nil
}

// reply relays one reply to dst, with the pushes before it to oob and the
// attributes that belong to it, and returns its type byte.
func (f *framing) reply(r *reader, x *kit.Exchange[inflight], dst, oob io.Writer, inject bool) (byte, error) {
	var t byte
head:
	for {
		b, err := r.fill(1)
		if err != nil {
			return 0, eofIsUnexpected(err)
		}
		switch t = b[0]; t {
		case '>':
			if x.R.replies > 0 {
				kind, err := r.pushKind()
				if err != nil {
					return 0, err
				}
				if equalFold(kind, x.Req.Command) {
					break head // the push is the reply
				}
			}
			if err := r.walk(oob, 1, nil); err != nil {
				return 0, err
			}
		case '|':
			n, err := r.header(dst)
			if err != nil {
				return 0, err
			}
			if n < 0 {
				return 0, protoErr("attribute count %d out of range", n)
			}
			if err := r.walk(dst, 2*n, nil); err != nil {
				return 0, err
			}
		default:
			break head
		}
	}
	var cor *corrupter
	if inject {
		f.cor.done = false
		cor = &f.cor
	}
	return t, r.walk(dst, 1, cor)
}

// Unsolicited relays what redis sends with no request in flight: a push,
// or a value no request asked for (such as the error redis sends before
// closing a connection over maxclients).
func (f *framing) Unsolicited(in *kit.Reader, out io.Writer) (bool, error) {
	return true, f.backend(in).walk(out, 1, nil)
}

// Error is the RESP error line.
func (f *framing) Error(_ *kit.Exchange[inflight], spec *chaos.ErrorSpec) []byte {
	msg := f.p.errMsg
	if spec.Message != "" {
		msg = errorLine(spec.Message)
	}
	return []byte("-" + msg + "\r\n")
}

// equalFold compares an argument with an upper-case ASCII word.
func equalFold(b []byte, upper string) bool {
	if len(b) != len(upper) {
		return false
	}
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

func classify(name string, sc *scan, b []byte) kind {
	switch name {
	case "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR":
		return kSwitch
	case "SYNC", "PSYNC":
		return kSync
	case "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE":
		return kUnsub
	case "MULTI":
		return kMulti
	case "EXEC":
		return kExec
	case "DISCARD":
		return kDiscard
	case "RESET":
		return kReset
	case "CLIENT":
		if sc.argc != 3 || sc.nargs != 3 || !equalFold(sc.arg(b, 1), "REPLY") {
			return kOther
		}
		switch arg := sc.arg(b, 2); {
		case equalFold(arg, "ON"):
			return kReplyOn
		case equalFold(arg, "OFF"):
			return kReplyOff
		case equalFold(arg, "SKIP"):
			return kReplySkip
		}
	}
	return kOther
}

// expectsReply says whether redis will answer a command of kind k, given
// the CLIENT REPLY mode.
func (f *framing) expectsReply(k kind) bool {
	if k == kUnsub && !f.inMulti {
		return true // pub/sub messages come whatever CLIENT REPLY says
	}
	if f.inMulti && (k == kReplyOn || k == kReplyOff || k == kReplySkip || k == kUnsub) {
		k = kOther // queued, answered +QUEUED
	}
	switch f.mode {
	case replyOff:
		return k == kReplyOn || k == kReset
	case replySkip:
		return k == kReplyOn
	}
	return k != kReplyOff && k != kReplySkip
}

// track updates the connection state for a command of kind k that reached
// redis, mirroring what redis does with its client flags.
func (f *framing) track(k kind) {
	wasSkip := f.mode == replySkip
	switch k {
	case kReset:
		f.mode, f.inMulti, f.dirty, f.pendingSwitch = replyOn, false, false, false
		return
	case kReplyOn:
		if !f.inMulti {
			f.mode = replyOn
			return
		}
	case kReplyOff:
		if !f.inMulti {
			f.mode = replyOff
			return
		}
	case kReplySkip:
		if !f.inMulti {
			if f.mode != replyOff {
				f.mode = replySkip
			}
			return
		}
	case kMulti:
		f.inMulti = true
	case kExec, kDiscard:
		f.inMulti, f.dirty, f.pendingSwitch = false, false, false
	case kSwitch:
		if f.inMulti {
			f.pendingSwitch = true
		}
	}
	if wasSkip {
		f.mode = replyOn
	}
}
