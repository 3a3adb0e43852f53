package httpproto

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync/atomic"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// bufSize sizes each of a connection's buffers: a head that does not fit
// is gathered line by line, up to the limits in parse.go.
const bufSize = 16 << 10

// refusedBadRequest is the reason a request the proxy will not forward is
// counted under (proxy.RefusedBadRequest).
const refusedBadRequest = "bad_request"

// errMalformed is a response head that was read whole and cannot be
// framed.
var errMalformed = errors.New("malformed response head")

// exchange is http's own state of one request in the kit's queue, kept
// small: the queue holds many.
type exchange struct {
	method, path string // what the exchange is reported with
	seq          uint32 // the request's number on the connection, from 1
	head         bool   // a HEAD request: its response has no body
	connect      bool   // a CONNECT request
	close        bool   // the request ends the connection after its response
	partial      bool   // the client left in the middle of this head: it goes out as it is
	status       int16  // the proxy's own answer (400, 414, 431, 505); 0 relays the backend's
}

// framing frames one client connection for the kit. The request loop
// owns the fields of the request being framed, the reply loop those of the
// response being relayed.
type framing struct {
	s    chaos.Session
	host []byte // the Host rewrite; nil when off

	// request loop
	rq       request
	head     []byte // the request head being framed: in the Reader's buffer, or long
	inPlace  bool   // head is at the front of the Reader's buffer, not consumed
	long     []byte // a head gathered line by line
	kind     bodyKind
	reqBody  body
	seq      uint32
	lastPath string
	header   func(string) string
	req      chaos.Request // the request being framed and drawn

	// reply loop
	rs       response
	rhead    []byte // a response head gathered line by line
	respBody body
	done     chaos.Request // the request whose exchange is reported

	// rejected is the number of the request whose body turned out
	// malformed after its head went out: its answer is the proxy's 400,
	// unless the backend's began already. why is what was wrong with it,
	// or with a head refused (at most one request is refused: the
	// connection ends there).
	rejected atomic.Uint32
	why      atomic.Pointer[error]
}

var (
	_ kit.Framing[exchange] = (*framing)(nil)
	_ kit.Unsolicited       = (*framing)(nil)
)

func newFraming(s chaos.Session, host string) *framing {
	f := &framing{s: s}
	if host != "" {
		f.host = []byte(host)
	}
	// Matchers look headers up while the request is drawn, when its head
	// is the one being framed.
	f.header = func(name string) string {
		v, _ := lookup(f.head, f.rq.hdrStart, strings.ToLower(name))
		return string(v)
	}
	return f
}

// Request frames the next request head; Send consumes it, unless it had to
// be gathered. A head the proxy will not forward is answered in place.
func (f *framing) Request(in *kit.Reader, x *kit.Exchange[exchange]) error {
	if _, err := in.Peek(1); err != nil {
		return err
	}
	f.seq++
	x.R.seq = f.seq
	f.inPlace = false
	if n := peekRequest(in, &f.rq); n > 0 {
		f.head, f.inPlace = in.Bytes()[:n], true
	} else {
		if err := awaitRequestLine(in); err != nil {
			return f.reject(x, 400, err)
		}
		head, err := readHead(in, f.long, true)
		f.long, f.head = head, head
		switch {
		case err == io.ErrUnexpectedEOF:
			// The client left in the middle of a head: the backend gets
			// what there was and the end of the stream, as without the
			// proxy.
			x.Reply, x.R.partial = kit.ReplyNone, true
			return nil
		case err == errLineTooLong || err == errHeadTooLarge:
			status := 431
			if skip := skipBlank(head); err == errLineTooLong {
				if i := bytes.IndexByte(head[skip:], '\n'); i < 0 || skip+i == len(head)-1 {
					status = 414 // the request line is the long one
				}
			}
			return f.reject(x, status, nil)
		case errors.As(err, new(syntaxError)):
			return f.reject(x, 400, err)
		case err != nil:
			return err
		}
		if err := parseRequest(head, &f.rq); err != nil {
			return f.reject(x, 400, err)
		}
	}
	kind, err := f.rq.body()
	if err == nil && kind == bodyChunked {
		rest := in.Bytes()
		if f.inPlace {
			rest = rest[len(f.head):]
		}
		err = checkChunks(rest)
	}
	if err != nil {
		return f.reject(x, 400, err)
	}
	f.kind = kind
	x.R.method, x.R.path = method(f.rq.method), f.path(f.rq.target)
	f.req = chaos.Request{Command: x.R.method, Path: x.R.path, Header: f.header}
	x.Req = &f.req
	x.Early = true
	switch string(f.rq.method) {
	case "HEAD":
		x.R.head = true
	case "CONNECT":
		x.R.connect = true
		x.Then = kit.RawIfReply
	}
	if f.rq.upgrade && f.rq.connUpg {
		x.Then = kit.RawIfReply
	}
	x.R.close = f.rq.wantsClose()
	return nil
}

// reject answers a request head that the proxy will not forward, after the
// responses to the requests before it: 505 for an HTTP major version other
// than 1, 414 or 431 for a head over the limits, else 400. The connection
// then closes (RFC 9112 section 6.3), and nothing of the request reaches
// the backend. why, when set, is the answer's text.
func (f *framing) reject(x *kit.Exchange[exchange], status int, why error) error {
	if why == errVersion {
		status = 505
	}
	f.s.Refused(refusedBadRequest)
	x.Reply, x.Then = kit.ReplyOwn, kit.Close
	x.R.status = int16(status)
	f.why.Store(&why)
	return nil
}

// awaitRequestLine checks the request line as its bytes come
// (checkRequestStart) until its end is buffered, so that a client that does
// not speak HTTP/1 is answered without waiting for a head it never sends.
// A read error is left for readHead to meet again.
func awaitRequestLine(in *kit.Reader) error {
	for {
		b := in.Bytes()
		b = b[skipBlank(b):]
		end := bytes.IndexByte(b, '\n')
		line := b
		if end >= 0 {
			line = b[:end]
		}
		if err := checkRequestStart(line); err != nil {
			return err
		}
		if end >= 0 {
			return nil
		}
		if _, err := in.Peek(in.Buffered() + 1); err != nil {
			return nil
		}
	}
}

// skipBlank returns the offset of the first line of head that is not blank.
func skipBlank(head []byte) int {
	off := 0
	for {
		if off < len(head) && head[off] == '\n' {
			off++
		} else if off+1 < len(head) && head[off] == '\r' && head[off+1] == '\n' {
			off += 2
		} else {
			return off
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
	if errors.Is(err, errLineTooLong) || errors.Is(err, errHeadTooLarge) || errors.As(err, new(syntaxError)) {
		f.why.Store(&err)
		f.rejected.Store(e.seq)
		f.s.Refused(refusedBadRequest)
		return kit.ErrStop
	}
	return err
}

// writeHead writes the request head, its Host value replaced (or a Host
// field added) when the rewrite is on.
func (f *framing) writeHead(out io.Writer, asIs bool) error {
	h := f.head
	if f.host == nil || asIs {
		_, err := out.Write(h)
		return err
	}
	before, after := h[:f.rq.hdrEnd], h[f.rq.hdrEnd:]
	var mid []byte
	if f.rq.hostStart >= 0 {
		before, after, mid = h[:f.rq.hostStart], h[f.rq.hostEnd:], f.host
	}
	if _, err := out.Write(before); err != nil {
		return err
	}
	if mid == nil {
		if _, err := io.WriteString(out, "Host: "+string(f.host)+"\r\n"); err != nil {
			return err
		}
	} else if _, err := out.Write(mid); err != nil {
		return err
	}
	_, err := out.Write(after)
	return err
}

// Reply relays the response to x: its 1xx interim responses (100 Continue,
// 103 Early Hints) at once, then the final one, whose body ends at its
// Content-Length, its last chunk and trailers, or when the backend closes.
// A response that cannot be framed is relayed as it comes until the
// backend closes, so that the client sees every byte it sent.
func (f *framing) Reply(in *kit.Reader, out io.Writer, x *kit.Exchange[exchange]) error {
	e := &x.R
	if x.Req != nil {
		// The request loop reuses the one x.Req was drawn with.
		f.done = chaos.Request{Command: e.method, Path: e.path}
		x.Req = &f.done
	}
	if e.status != 0 {
		_, err := out.Write(renderReply(int(e.status), whySpec(*f.why.Load()), false))
		return err
	}
	for {
		h, inPlace, err := f.responseHead(in)
		if f.rejected.Load() == e.seq {
			x.Then = kit.Close
			_, err := out.Write(renderReply(400, whySpec(*f.why.Load()), e.head))
			return err
		}
		switch {
		case err == nil:
		case len(h) == 0 && err == io.EOF:
			return err
		case err == errMalformed || err == io.ErrUnexpectedEOF || err == errLineTooLong || err == errHeadTooLarge || errors.As(err, new(syntaxError)):
			return f.unframed(in, out, x, h, inPlace)
		default:
			return err
		}
		if _, err := out.Write(h); err != nil {
			return err
		}
		if inPlace {
			in.Discard(len(h))
		}
		status := f.rs.status
		if status < 200 && status != 101 {
			continue // interim: the final response is still to come
		}
		kind := f.rs.body(e.head, e.connect)
		if kind != bodyNone {
			f.respBody.reset(in, kind, f.rs.length, x.Inject)
			if _, err := f.respBody.WriteTo(out); err != nil {
				if err == io.ErrUnexpectedEOF {
					return io.EOF // a truncated body: the client sees the end where it came
				}
				if errors.Is(err, errLineTooLong) || errors.Is(err, errHeadTooLarge) || errors.As(err, new(syntaxError)) {
					return f.unframed(in, out, x, nil, false)
				}
				return err
			}
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

// responseHead reads the next response head and parses it into f.rs.
// When the buffer holds the head whole, it is parsed where it is and left
// there (inPlace) until relayed; otherwise it is gathered into f.rhead.
func (f *framing) responseHead(in *kit.Reader) (h []byte, inPlace bool, err error) {
	if _, err := in.Peek(1); err != nil {
		return nil, false, err
	}
	if n := peekResponse(in, &f.rs); n > 0 {
		return in.Bytes()[:n], true, nil
	}
	h, err = readHead(in, f.rhead, false)
	f.rhead = h
	if err == nil && parseResponse(h, &f.rs) != nil {
		err = errMalformed
	}
	return h, false, err
}

// unframed relays a response the proxy cannot frame as it comes, from h
// (what was read of it), until the backend closes.
func (f *framing) unframed(in *kit.Reader, out io.Writer, x *kit.Exchange[exchange], h []byte, inPlace bool) error {
	x.Then = kit.Close
	if _, err := out.Write(h); err != nil {
		return err
	}
	if inPlace {
		in.Discard(len(h))
	}
	var rest body
	rest.reset(in, bodyEOF, 0, false)
	_, err := rest.WriteTo(out)
	return err
}

// Unsolicited relays what the backend sends while no request is in flight
// (a 408 before any request, bytes after a response that cannot be
// framed), as it comes.
func (f *framing) Unsolicited(in *kit.Reader, out io.Writer) (bool, error) {
	b := in.Bytes()
	_, err := out.Write(b)
	in.Discard(len(b))
	return true, err
}

// Error renders the error fault's page, which closes the connection: the
// request is not read any further. With inject the page only stands in for
// a response without a body, which is relayed as it is instead.
func (f *framing) Error(x *kit.Exchange[exchange], spec *chaos.ErrorSpec) []byte {
	if !x.Inject {
		x.Then = kit.Close
	}
	return renderReply(errorStatus(spec), spec, x.R.head)
}

// whySpec is the answer's text for what was wrong with a request.
func whySpec(why error) *chaos.ErrorSpec {
	if why == nil {
		return nil
	}
	return &chaos.ErrorSpec{Message: why.Error() + "\n"}
}

// method returns the request method as a string, without allocating for
// the registered methods.
func method(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "HEAD":
		return "HEAD"
	case "DELETE":
		return "DELETE"
	case "OPTIONS":
		return "OPTIONS"
	case "PATCH":
		return "PATCH"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return string(bytes.ToUpper(m))
}

// path returns the path of a request target (without the query), reusing
// the previous request's string when it is the same path.
func (f *framing) path(target []byte) string {
	p := target
	if len(p) > 0 && p[0] != '/' && p[0] != '*' {
		// absolute-form: skip scheme and authority
		if i := bytes.Index(p, []byte("://")); i > 0 {
			p = p[i+3:]
			if j := bytes.IndexByte(p, '/'); j >= 0 {
				p = p[j:]
			} else {
				p = []byte("/")
			}
		}
		// authority-form (CONNECT host:port) stays whole
	}
	for i, ch := range p {
		if ch == '?' || ch == '#' {
			p = p[:i]
			break
		}
	}
	if string(p) != f.lastPath {
		f.lastPath = string(p)
	}
	return f.lastPath
}
