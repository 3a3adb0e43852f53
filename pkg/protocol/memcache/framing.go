package memcache

import (
	"bufio"
	"bytes"
	"io"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// bufSize sizes each of a connection's buffers. It is memcached's own read
// buffer size: a request line that does not fit is one memcached rejects
// too (except get and gets, whose long key lists are streamed).
const bufSize = 16 << 10

// binaryMagic starts every request of memcached's binary protocol.
const binaryMagic = 0x80

var noop = []byte("mn\r\n")

// inflight is memcache's own state of one request in the kit's queue.
type inflight struct {
	r       request
	n       int32 // the request line's length, for Send
	long    bool  // the line overflowed the buffer: a long get, streamed
	mn      bool  // the proxy's own mn, which ends a run of quiet requests
	run     bool  // the answer is a run: answers up to and including an MN
	swallow bool  // the run's MN answers the proxy's own mn: it is dropped
}

// framing frames one client connection for the kit.
type framing struct {
	p       *protocol
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
		if first[0] == binaryMagic {
			x.Then = kit.RawNow
			return nil
		}
	}
	line, err := in.PeekSlice('\n')
	long := false
	switch {
	case err == bufio.ErrBufferFull:
		if !isLongGet(line) {
			x.Then = kit.RawNow // memcached closes on such lines
			return nil
		}
		long = true
	case err != nil:
		return err
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
	case kindNoop:
		x.R.run = true
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
	x.R = inflight{mn: true, run: true, swallow: true}
	return true
}

// Send writes the request: its line, then the rest of an overlong get line
// or the data block with its CRLF, streamed from the client. A quiet
// request that the draw changes is answered in a run of its own.
func (f *framing) Send(in *kit.Reader, out io.Writer, x *kit.Exchange[inflight]) error {
	e := &x.R
	if e.mn {
		_, err := out.Write(noop)
		return err
	}
	line, _ := in.Peek(int(e.n))
	if _, err := out.Write(line); err != nil {
		return err
	}
	in.Discard(int(e.n))
	switch {
	case e.long:
		for {
			chunk, err := in.ReadSlice('\n')
			if _, werr := out.Write(chunk); werr != nil {
				return werr
			}
			if err == nil {
				break
			}
			if err != bufio.ErrBufferFull {
				return err
			}
		}
	case e.r.data >= 0:
		if _, err := in.CopyN(out, e.r.data+2); err != nil {
			return err
		}
	}
	switch e.r.kind {
	case kindQuiet:
		if !x.Affected {
			f.run = true
			return nil
		}
		x.Reply, e.run, e.swallow = kit.ReplyOne, true, true
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
	return fr.relay(out, unit{run: x.R.run, swallow: x.R.swallow, corrupt: x.Inject, reply: x.ErrorReply()})
}

// Error is the SERVER_ERROR line.
func (f *framing) Error(_ *kit.Exchange[inflight], spec *chaos.ErrorSpec) []byte {
	return f.p.reply(spec.Message)
}

// isLongGet reports whether a line that overflowed the buffer is a get or
// gets, the only commands memcached lets grow past its read buffer.
func isLongGet(line []byte) bool {
	line = bytes.TrimLeft(line, " ")
	return bytes.HasPrefix(line, []byte("get ")) || bytes.HasPrefix(line, []byte("gets "))
}
