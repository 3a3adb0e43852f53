package redis

import (
	"io"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

const (
	maxInline  = 64 << 10 // redis' PROTO_INLINE_MAX_SIZE
	maxReplies = 1024     // bounds the messages awaited for one UNSUBSCRIBE
	execAbort  = "EXECABORT Transaction discarded because of previous errors."
)

var discardRequest = []byte("*1\r\n$7\r\nDISCARD\r\n")

// reader frames RESP on one side's kit.Reader.
type reader struct {
	*kit.Reader
	maxBulk int64
	grow    int // the size a long inline line may grow the buffer to; 0 for none
}

// kind sorts the commands that change the reply stream.
type kind uint8

const (
	kOther kind = iota
	kEmpty
	kSwitch // SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, MONITOR
	kSync   // SYNC, PSYNC: an RDB payload that is not RESP, then a stream
	kMulti
	kExec
	kDiscard
	kReset
	// From kUnsub on, the kinds are only queued inside MULTI.
	kUnsub // UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE
	kReplyOn
	kReplyOff
	kReplySkip
)

// replacement drops the backend's reply for an error: the EXEC of a
// transaction that must not run went to redis as DISCARD.
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

// framing frames one client connection, and mirrors the state in redis that
// decides what comes back: the CLIENT REPLY mode and the transaction.
type framing struct {
	p              *Protocol
	cr, br         reader
	sc             scan
	names          lastName
	mode           kind // the CLIENT REPLY mode: kOther (on), kReplyOff or kReplySkip
	inMulti, dirty bool // dirty: an injected error refused a command of the transaction
	pendingSwitch  bool // a SUBSCRIBE or MONITOR was queued in the transaction
}

var (
	_ kit.Failer[inflight] = (*framing)(nil)
	_ kit.Unsolicited      = (*framing)(nil)
)

// Request frames the next request. Bytes that are not RESP go raw, so
// that redis answers them itself.
func (f *framing) Request(in *kit.Reader, x *kit.Exchange[inflight]) error {
	r, sc := &f.cr, &f.sc
	r.Reader = in
	if _, err := r.scanRequest(sc); err != nil {
		if isProtocolError(err) {
			x.Then = kit.RawNow
			return nil
		}
		return err
	}
	if sc.argc == 0 {
		// An empty request runs no command and gets no reply, but redis
		// still ends a CLIENT REPLY SKIP with it.
		x.Reply, x.R.k = kit.ReplyNone, kEmpty
		return nil
	}
	b := r.Bytes()
	x.Req = f.names.of(sc.arg(b, 0))
	k := classify(x.Req.Command, sc, b)
	x.R.k = k
	if !f.expectsReply(k) {
		x.Reply = kit.ReplyNone
	}
	if k == kUnsub && !f.inMulti {
		// One message per channel named, or one when none is.
		x.R.replies = int32(min(max(sc.argc-1, 1), maxReplies))
	}
	if k == kExec && f.inMulti && f.dirty {
		x.R.replace = abortExec
		return nil
	}
	// Redis refuses SYNC and PSYNC inside MULTI, so only SUBSCRIBE and
	// MONITOR wait for EXEC. An RDB payload is not RESP: no reply is framed.
	if ((k == kSwitch || k == kSync) && !f.inMulti) || (k == kExec && f.inMulti && f.pendingSwitch) {
		x.Reply, x.Then = kit.ReplyNone, kit.RawAfter
	}
	return nil
}

// Send forwards the request, and tracks what it changes in redis. The
// EXEC of a transaction a command of which was refused goes as DISCARD.
func (f *framing) Send(in *kit.Reader, out io.Writer, x *kit.Exchange[inflight]) error {
	switch {
	case out == io.Discard:
	case x.R.replace == abortExec:
		return f.discardInstead(out)
	default:
		f.track(x.R.k)
	}
	return f.cr.copyRequest(out, &f.sc)
}

// Fail keeps redis's transaction in step with what the client is told: an
// EXEC or DISCARD refused ends it with a DISCARD, a command refused inside it
// makes its EXEC fail; a command whose reply is turned off still runs.
func (f *framing) Fail(in *kit.Reader, out io.Writer, x *kit.Exchange[inflight]) (bool, error) {
	switch k := x.R.k; {
	case x.Reply == kit.ReplyNone:
		return true, f.Send(in, out, x)
	case f.inMulti && (k == kExec || k == kDiscard):
		x.R.replace = failExec
		return true, f.discardInstead(out)
	case f.inMulti && k != kMulti:
		f.dirty = true
	}
	return false, nil
}

func (f *framing) discardInstead(out io.Writer) error {
	f.track(kDiscard)
	if err := f.cr.copyRequest(io.Discard, &f.sc); err != nil {
		return err
	}
	_, err := out.Write(discardRequest)
	return err
}

// Reply relays the backend's reply with the pushes before it; for the
// UNSUBSCRIBE family, its messages: arrays in RESP2, pushes of its own kind
// in RESP3 (others, such as invalidations, are out of band), or one reply
// of another type (an error: NOAUTH, say).
func (f *framing) Reply(in *kit.Reader, out io.Writer, x *kit.Exchange[inflight]) error {
	r := &f.br
	r.Reader = in
	if x.R.replace != keep {
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
	if x.R.replies == 0 && !x.Inject {
		if n := r.whole(); n > 0 {
			_, err := out.Write(r.Bytes()[:n])
			r.Discard(n)
			return err
		}
	}
	for i := range max(x.R.replies, 1) {
		// The first message is the one damaged.
		t, err := f.reply(r, x, out, out, x.Inject && i == 0)
		if err != nil || (t != '*' && t != '>') {
			return err
		}
	}
	return nil
}

// reply relays one reply to dst, with the pushes before it to oob and the
// attributes that belong to it, and returns its type byte.
func (f *framing) reply(r *reader, x *kit.Exchange[inflight], dst, oob io.Writer, inject bool) (byte, error) {
	for {
		b, err := r.Peek(1)
		if err != nil {
			return 0, eofIsUnexpected(err)
		}
		t := b[0]
		if t == '|' {
			n, err := r.header(dst)
			if err == nil && n < 0 {
				err = protoErr("attribute count %d out of range", n)
			} else if err == nil {
				err = r.walk(dst, 2*n, nil)
			}
			if err != nil {
				return 0, err
			}
			continue
		}
		own := t != '>'
		if !own && x.R.replies > 0 {
			kind, err := r.pushKind()
			if err != nil {
				return 0, err
			}
			own = equalFold(kind, x.Req.Command)
		}
		if own {
			var cor *corrupter
			if inject {
				cor = new(corrupter) // on the fault's path only
			}
			return t, r.walk(dst, 1, cor)
		}
		if err := r.walk(oob, 1, nil); err != nil {
			return 0, err
		}
	}
}

// Unsolicited relays what redis sends with no request in flight: a push,
// or a value no request asked for (such as the error redis sends before
// closing a connection over maxclients).
func (f *framing) Unsolicited(in *kit.Reader, out io.Writer) (bool, error) {
	f.br.Reader = in
	return true, f.br.walk(out, 1, nil)
}

// Error is the RESP error line.
func (f *framing) Error(_ *kit.Exchange[inflight], spec *chaos.ErrorSpec) []byte {
	msg := f.p.errMsg
	if spec.Message != "" {
		msg = errorLine(spec.Message)
	}
	return []byte("-" + msg + "\r\n")
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
		switch arg := sc.arg(b, 2); {
		case sc.argc != 3 || sc.nargs != 3 || !equalFold(sc.arg(b, 1), "REPLY"): // another subcommand
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
	switch {
	case k == kUnsub && !f.inMulti:
		return true // pub/sub messages come whatever CLIENT REPLY says
	case k >= kUnsub && f.inMulti:
		k = kOther // queued, answered +QUEUED
	}
	switch f.mode {
	case kReplyOff:
		return k == kReplyOn || k == kReset
	case kReplySkip:
		return k == kReplyOn
	}
	return k != kReplyOff && k != kReplySkip
}

// track updates the connection state for a command of kind k that reached
// redis, mirroring what redis does with its client flags.
func (f *framing) track(k kind) {
	if f.mode == kReplySkip {
		f.mode = kOther // this command is the one skipped
	}
	switch {
	case k == kReset:
		f.mode = kOther
		fallthrough
	case k == kExec || k == kDiscard:
		f.inMulti, f.dirty, f.pendingSwitch = false, false, false
	case k == kMulti:
		f.inMulti = true
	case k == kSwitch && f.inMulti:
		f.pendingSwitch = true
	case f.inMulti: // CLIENT REPLY is queued, not run
	case k == kReplyOn:
		f.mode = kOther
	case k == kReplyOff, k == kReplySkip && f.mode == kOther:
		f.mode = k
	}
}
