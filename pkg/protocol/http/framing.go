package httpproto

import (
	"bytes"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// exchange is http's state of one request in the kit's queue, which holds
// many: it is kept small.
type exchange struct {
	method, path  string // what the exchange is reported with
	seq           uint32 // the request's number on the connection, from 1
	head, connect bool   // HEAD, CONNECT
	close         bool   // the request ends the connection after its response
	partial       bool   // the client left in the middle of this head: it goes out as it is
	status        int16  // the proxy's own answer (400, 414, 431, 505); 0 relays the backend's
}

// framing frames one client connection for the kit. What the loops use
// is in loopState, which a parked connection drops.
type framing struct {
	s        chaos.Session
	host     []byte // "Host: <backend>\r\n" when the Host rewrite is on
	seq      uint32
	lastPath string
	header   func(string) string
	*loopState

	// rejected is the number of the request whose body turned out
	// malformed after its head went out: its answer is the proxy's 400,
	// unless the backend's began already. why is what was wrong with it or
	// with a head refused (the connection ends at the first refusal).
	rejected atomic.Uint32
	why      atomic.Pointer[chaos.ErrorSpec]
}

// loopState is what the loops frame with: the request loop owns the
// request's fields, the reply loop the response's (rs to done).
type loopState struct {
	rq       request
	head     []byte // the request head: in the Reader's buffer (inPlace), or long
	inPlace  bool
	long     []byte // a head gathered line by line
	kind     bodyKind
	reqBody  body
	req      chaos.Request // the request being framed and drawn
	rs       response
	rhead    []byte // a response head gathered line by line
	respBody body
	done     chaos.Request // the request whose exchange is reported
}

var _ kit.Unsolicited = (*framing)(nil)

func (f *framing) Resume() { f.loopState = new(loopState) }
func (f *framing) Park()   { f.loopState = nil }

func newFraming(s chaos.Session, overwriteHost bool) *framing {
	f := &framing{s: s}
	if overwriteHost {
		f.host = []byte("Host: " + s.Backend() + "\r\n")
	}
	// Matchers look headers up in the head being framed, while it is drawn.
	f.header = func(name string) string {
		v, _ := lookup(f.head, f.rq.hdrStart, strings.ToLower(name))
		return string(v)
	}
	return f
}

// Request frames the next request head, which Send consumes unless it had
// to be gathered. A head the proxy will not forward is answered in place.
func (f *framing) Request(in *kit.Reader, x *kit.Exchange[exchange]) error {
	if _, err := in.Peek(1); err != nil {
		return err
	}
	f.seq++
	x.R.seq = f.seq
	n := peekRequest(in, &f.rq)
	f.head, f.inPlace = in.Bytes()[:n], n > 0
	if n == 0 {
		if err := awaitRequestLine(in); err != nil {
			return f.reject(x, 400, err)
		}
		head, err := readHead(in, f.long, true)
		f.long, f.head = head, head
		if err == nil {
			err = parseRequest(head, &f.rq)
		}
		switch {
		case err == nil:
		case err == io.ErrUnexpectedEOF:
			// The client left in the middle of a head: as without the
			// proxy, the backend gets what there was and the end.
			x.Reply, x.R.partial = kit.ReplyNone, true
			return nil
		case err == errLineTooLong && bytes.IndexByte(head[skipBlank(head):len(head)-1], '\n') < 0:
			return f.reject(x, 414, nil) // the request line is the long one
		case err == errLineTooLong || err == errHeadTooLarge:
			return f.reject(x, 431, nil)
		case malformed(err):
			return f.reject(x, 400, err)
		default:
			return err
		}
	}
	kind, err := f.rq.body()
	if err == nil && kind == bodyChunked {
		err = checkChunks(in.Bytes()[n:])
	}
	if err != nil {
		return f.reject(x, 400, err)
	}
	f.kind = kind
	x.R.method, x.R.path = method(f.rq.method), f.path(f.rq.target)
	f.req = chaos.Request{Command: x.R.method, Path: x.R.path, Header: f.header}
	x.Req, x.Early = &f.req, true
	x.R.head, x.R.connect = string(f.rq.method) == "HEAD", string(f.rq.method) == "CONNECT"
	if x.R.connect || f.rq.upgrade && f.rq.connUpg {
		x.Then = kit.RawIfReply
	}
	x.R.close = f.rq.wantsClose()
	return nil
}

// reject answers a request head that the proxy will not forward, once the
// earlier responses are out, with status and why as its text, and closes
// the connection (RFC 9112 section 6.3): none of it reaches the backend.
func (f *framing) reject(x *kit.Exchange[exchange], status int, why error) error {
	if why == errVersion {
		status = 505
	}
	f.refuse(why)
	x.Reply, x.Then, x.R.status = kit.ReplyOwn, kit.Close, int16(status)
	return nil
}

// refuse counts a request refused and keeps why as its answer's text.
func (f *framing) refuse(why error) {
	f.s.Refused("bad_request") // proxy.RefusedBadRequest
	var spec *chaos.ErrorSpec
	if why != nil {
		spec = &chaos.ErrorSpec{Message: why.Error() + "\n"}
	}
	f.why.Store(spec)
}

// awaitRequestLine checks the request line as its bytes come until its end
// is buffered, so that a client that does not speak HTTP/1 is answered
// without waiting for a head it never sends: nil while they may still
// start a line that parseRequest accepts or answers 505. A read error is
// left to readHead.
func awaitRequestLine(in *kit.Reader) error {
	for {
		b := in.Bytes()
		line, _, whole := bytes.Cut(b[skipBlank(b):], []byte{'\n'})
		if _, _, err := requestLine(line, true); err != nil || whole {
			return err
		}
		if _, err := in.Peek(in.Buffered() + 1); err != nil {
			return nil
		}
	}
}

// Send writes the request head (Host rewritten if asked) and streams its
// body. A chunk found malformed once the head went out ends the request
// there: the backend gets nothing after the malformed line.
func (f *framing) Send(in *kit.Reader, out io.Writer, x *kit.Exchange[exchange]) error {
	e := &x.R
	if e.status != 0 {
		return nil
	}
	if err := f.writeHead(out, e.partial); err != nil {
		return err
	}
	if f.inPlace {
		in.Discard(len(f.head))
	}
	if f.kind == bodyNone || e.partial {
		return nil
	}
	f.reqBody.reset(in, f.kind, f.rq.length, false)
	_, err := f.reqBody.WriteTo(out)
	if malformed(err) {
		f.refuse(err)
		f.rejected.Store(e.seq)
		return kit.ErrStop
	}
	return err
}

// writeHead writes the request head, its Host value replaced (or a Host
// field added) when the rewrite is on.
func (f *framing) writeHead(out io.Writer, asIs bool) error {
	h, rq := f.head, &f.rq
	if f.host == nil || asIs {
		_, err := out.Write(h)
		return err
	}
	mid, cut, resume := f.host, rq.hdrEnd, rq.hdrEnd
	if rq.hostStart >= 0 {
		mid, cut, resume = f.host[len("Host: "):len(f.host)-2], rq.hostStart, rq.hostEnd
	}
	for _, p := range [...][]byte{h[:cut], mid, h[resume:]} {
		if _, err := out.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// Reply relays the response to x: its 1xx interim responses (100 Continue,
// 103 Early Hints) at once, then the final one. A response that cannot be
// framed is relayed as it comes until the backend closes, so that the
// client sees every byte it sent.
func (f *framing) Reply(in *kit.Reader, out io.Writer, x *kit.Exchange[exchange]) error {
	e := &x.R
	if x.Req != nil {
		// The request loop reuses the one x.Req was drawn with.
		f.done = chaos.Request{Command: e.method, Path: e.path}
		x.Req = &f.done
	}
	if e.status != 0 {
		_, err := out.Write(renderReply(int(e.status), f.why.Load(), false))
		return err
	}
	for {
		h, err := f.responseHead(in)
		if f.rejected.Load() == e.seq {
			x.Then = kit.Close
			_, err := out.Write(renderReply(400, f.why.Load(), e.head))
			return err
		}
		if err != nil && err != io.ErrUnexpectedEOF && !malformed(err) {
			return err
		}
		if _, err := out.Write(h); err != nil {
			return err
		}
		if err != nil {
			return unframed(in, out, x)
		}
		status := f.rs.status
		if status < 200 && status != 101 {
			continue // interim: the final response is still to come
		}
		kind := f.rs.body(e.head, e.connect)
		f.respBody.reset(in, kind, f.rs.length, x.Inject)
		switch _, err := f.respBody.WriteTo(out); {
		case err == io.ErrUnexpectedEOF:
			return io.EOF // a truncated body: the client sees the end where it came
		case malformed(err):
			return unframed(in, out, x)
		case err != nil:
			return err
		}
		if x.Then == kit.RawIfReply && (status == 101 || (e.connect && status < 300)) {
			return kit.ErrRaw // the 101 or 2xx head is out: the rest is the new protocol
		}
		if kind == bodyEOF || f.rs.wantsClose() || e.close || f.rejected.Load() == e.seq {
			x.Then = kit.Close
		}
		return nil
	}
}

// responseHead consumes the next response head and parses it into f.rs.
// h, what was read of it, is valid until the next read: it is parsed in
// place when the buffer holds it whole, else gathered into f.rhead.
func (f *framing) responseHead(in *kit.Reader) (h []byte, err error) {
	if _, err := in.Peek(1); err != nil {
		return nil, err
	}
	if parseResponse(in.Bytes(), &f.rs) == nil {
		h = in.Bytes()[:f.rs.end]
		in.Discard(len(h))
		return h, nil
	}
	f.rhead, err = readHead(in, f.rhead, false)
	if err == nil {
		err = parseResponse(f.rhead, &f.rs)
	}
	return f.rhead, err
}

// unframed relays the rest of a response the proxy cannot frame as it
// comes, until the backend closes.
func unframed(in *kit.Reader, out io.Writer, x *kit.Exchange[exchange]) error {
	x.Then = kit.Close
	if _, err := in.CopyN(out, math.MaxInt64); err != io.ErrUnexpectedEOF {
		return err
	}
	return nil
}

// Unsolicited relays what the backend sends while no request is in flight
// (a 408 before any request, bytes after a response that cannot be
// framed), as it comes.
func (f *framing) Unsolicited(in *kit.Reader, out io.Writer) (bool, error) {
	_, err := in.CopyN(out, int64(in.Buffered()))
	return true, err
}

// Error renders the error fault's page, which closes the connection: the
// request is not read any further. With inject the page only stands in for
// a response without a body, which is relayed as it is instead.
func (f *framing) Error(x *kit.Exchange[exchange], spec *chaos.ErrorSpec) []byte {
	if !x.Inject {
		x.Then = kit.Close
	}
	status := spec.Status
	if status < 100 || status > 999 {
		status = 500 + rand.IntN(4) // as the original Vaurien: 500 to 503
	}
	return renderReply(status, spec, x.R.head)
}

// methods are the registered methods, which method returns without
// allocating.
var methods = [...]string{"GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"}

func method(m []byte) string {
	for _, s := range methods {
		if string(m) == s {
			return s
		}
	}
	return string(bytes.ToUpper(m))
}

// path returns the path of a request target (without the query), reusing
// the previous request's string when it is the same path.
func (f *framing) path(p []byte) string {
	if len(p) > 0 && p[0] != '/' && p[0] != '*' {
		// absolute-form loses its scheme and authority; authority-form
		// (CONNECT host:port) stays whole
		if i := bytes.Index(p, []byte("://")); i > 0 {
			p = p[i+3:]
			if j := bytes.IndexByte(p, '/'); j >= 0 {
				p = p[j:]
			} else {
				p = []byte("/")
			}
		}
	}
	if i := bytes.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if string(p) != f.lastPath {
		f.lastPath = string(p)
	}
	return f.lastPath
}
