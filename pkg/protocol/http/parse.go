package httpproto

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// Limits on a message head. A peer that exceeds them gets 414 or 431 (from
// the client) or a raw relay (from the backend); nothing a peer claims is
// ever allocated beyond them.
const (
	maxLine        = 64 << 10 // one start line, header line, chunk-size or trailer line
	maxHead        = 1 << 20  // a whole header block, or a whole trailer block
	maxBlankPrefix = 16       // blank lines tolerated before a request line
	maxLength      = 1 << 62  // the largest Content-Length or chunk size accepted
)

var (
	errLineTooLong  = errors.New("line too long")
	errHeadTooLarge = errors.New("header block too large")
)

// A syntaxError is a message the proxy cannot frame, or could frame
// otherwise than its recipient (RFC 9112 section 11.2): a request is
// answered 400 and its connection closed, a response hands the connection
// to a raw relay.
type syntaxError string

func (e syntaxError) Error() string { return "malformed http message: " + string(e) }

// errVersion is a request line of HTTP/x.y with x other than 1: it is
// answered 505 (RFC 9110 section 15.6.6).
var errVersion = syntaxError("HTTP major version other than 1")

// bodyKind says how a message body is delimited.
type bodyKind uint8

const (
	bodyNone    bodyKind = iota // no body
	bodyLength                  // Content-Length bytes
	bodyChunked                 // chunked transfer coding, up to the last chunk and trailers
	bodyEOF                     // until the sender closes (responses only)
)

// fields holds what the framing needs from a header block. Offsets are
// into the head it was parsed from.
type fields struct {
	hdrStart   int   // offset of the first header line
	hdrEnd     int   // offset of the blank line that ends the head
	end        int   // the head's length, blank line included
	length     int64 // Content-Length, when hasLength
	hasLength  bool
	hasTE      bool // a Transfer-Encoding header is present
	chunked    bool // chunked is the final transfer coding
	teBad      bool // a coding follows chunked, or one is not a token
	connClose  bool // Connection: close
	keepAlive  bool // Connection: keep-alive
	connUpg    bool // Connection: upgrade
	upgrade    bool // an Upgrade header is present
	expect100  bool // Expect: 100-continue
	hostStart  int  // value range of the first Host header; -1 when absent
	hostEnd    int
	versionMin byte // HTTP/1.x minor version
}

// request is a parsed request head.
type request struct {
	fields
	method      []byte
	target      []byte
	lineStart   int // offset of the request line (after blank lines)
	targetStart int
}

// response is a parsed response head.
type response struct {
	fields
	status int
}

// readHead appends one message head (start line, header lines and the
// blank line that ends them) from r to buf[:0]. It returns what it consumed
// even on error, so that a fallback relay loses no byte. A clean end of
// stream before any byte is io.EOF with an empty head.
func readHead(r *kit.Reader, buf []byte, request bool) ([]byte, error) {
	head := buf[:0]
	lineStart := 0
	blank := 0
	for {
		frag, err := r.ReadSlice('\n')
		head = append(head, frag...)
		if len(head)-lineStart > maxLine {
			return head, errLineTooLong
		}
		if len(head) > maxHead {
			return head, errHeadTooLarge
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(head) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return head, err
		}
		if isBlank(head[lineStart:]) {
			if lineStart > blank || !request {
				return head, nil
			}
			// Blank lines before a request line are tolerated (RFC 9112
			// section 2.2) and relayed as they are.
			blank = len(head)
			if blank > maxBlankPrefix*2 {
				return head, syntaxError("blank lines before the request line")
			}
		}
		lineStart = len(head)
	}
}

// checkRequestStart reports what is wrong with b, the start of a request
// head up to the LF that ends its request line at most, as far as it
// goes: a method
// (a token), a space, a target without spaces or controls, a space, then
// HTTP/x.y. It lets a client that sends something other than HTTP/1 (a TLS
// ClientHello) be answered at once rather than waited on for a line end
// that never comes. nil when b may still start a request line that
// parseRequest accepts or answers 505.
func checkRequestStart(b []byte) error {
	b = b[skipBlank(b):]
	if len(b) == 1 && b[0] == '\r' {
		return nil // a blank line or an empty request line, to be seen
	}
	m := 0
	for m < len(b) && tokenChars[b[m]] {
		m++
	}
	if m == len(b) {
		return nil
	}
	if m == 0 || b[m] != ' ' {
		return syntaxError("method")
	}
	t := m + 1
	for t < len(b) && b[t] > ' ' && b[t] != 0x7f {
		t++
	}
	if t == len(b) {
		return nil
	}
	if t == m+1 || b[t] != ' ' {
		return syntaxError("request target")
	}
	for i, c := range b[t+1:] {
		var ok bool
		switch {
		case i < 5:
			ok = c == "HTTP/"[i]
		case i == 5 || i == 7:
			ok = isDigit(c)
		case i == 6:
			ok = c == '.'
		case i == 8:
			ok = c == '\r'
		}
		if !ok {
			return syntaxError("http version")
		}
	}
	return nil
}

func isBlank(line []byte) bool {
	return len(line) == 1 || (len(line) == 2 && line[0] == '\r')
}

// trimEOL drops the line ending, CRLF or a bare LF.
func trimEOL(line []byte) []byte {
	if len(line) > 0 && line[len(line)-1] == '\n' {
		line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	}
	return line
}

// nextLine returns the line of head starting at off (without its ending)
// and the offset of the following line.
func nextLine(head []byte, off int) (line []byte, next int) {
	i := bytes.IndexByte(head[off:], '\n')
	if i < 0 {
		return trimEOL(head[off:]), len(head)
	}
	return trimEOL(head[off : off+i+1]), off + i + 1
}

// peekRequest parses the request head at the front of r's buffer when
// the buffer holds it whole (the common case, which spares readHead its
// gathering), without consuming it. It returns the head's length, or 0
// when readHead must read the head: it is not whole, or not well formed
// (then readHead finds what to do about it).
func peekRequest(r *kit.Reader, rq *request) int {
	if parseRequest(r.Bytes(), rq) != nil || rq.lineStart > maxBlankPrefix*2 {
		return 0
	}
	return rq.end
}

// peekResponse does the same for a response head.
func peekResponse(r *kit.Reader, rs *response) int {
	if parseResponse(r.Bytes(), rs) != nil {
		return 0
	}
	return rs.end
}

// parseRequest parses a head read by readHead.
func parseRequest(head []byte, rq *request) error {
	*rq = request{}
	off := skipBlank(head)
	rq.lineStart = off
	line, next := nextLine(head, off)
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return syntaxError("request line")
	}
	rq.method = line[:sp1]
	if !isToken(rq.method) {
		return syntaxError("method")
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return syntaxError("request target")
	}
	rq.target = rest[:sp2]
	rq.targetStart = off + sp1 + 1
	for _, c := range rq.target {
		if c <= ' ' || c == 0x7f {
			return syntaxError("request target")
		}
	}
	v := rest[sp2+1:]
	minor, ok := parseVersion(v)
	if !ok {
		if len(v) == 8 && string(v[:5]) == "HTTP/" && isDigit(v[5]) && v[6] == '.' && isDigit(v[7]) {
			return errVersion
		}
		return syntaxError("http version")
	}
	rq.versionMin = minor
	return parseFields(head, next, &rq.fields)
}

// parseResponse parses a head read by readHead.
func parseResponse(head []byte, rs *response) error {
	*rs = response{}
	line, next := nextLine(head, 0)
	if len(line) < 12 {
		return syntaxError("status line")
	}
	minor, ok := parseVersion(line[:8])
	if !ok || line[8] != ' ' {
		return syntaxError("status line")
	}
	rs.versionMin = minor
	code := line[9:12]
	if !isDigit(code[0]) || !isDigit(code[1]) || !isDigit(code[2]) || code[0] == '0' {
		return syntaxError("status code")
	}
	if len(line) > 12 && line[12] != ' ' {
		return syntaxError("status line")
	}
	rs.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	return parseFields(head, next, &rs.fields)
}

// parseVersion reads "HTTP/1.x" and returns x. Other major versions are
// not HTTP/1 framing and are refused.
func parseVersion(v []byte) (byte, bool) {
	if len(v) != 8 || string(v[:7]) != "HTTP/1." || !isDigit(v[7]) {
		return 0, false
	}
	return v[7] - '0', true
}

// parseFields reads the header lines of head from off, recording what the
// framing needs. Obsolete line folding, whitespace before a colon, a line
// without a colon, NUL or a bare CR in a value (RFC 9112 section 5, RFC
// 9110 section 5.5) and a Content-Length that is not one decimal number
// are refused: they are how requests get smuggled. A line is scanned once:
// its name up to the colon, then its value up to the line's end.
func parseFields(head []byte, off int, f *fields) error {
	f.hdrStart = off
	f.hostStart, f.hostEnd = -1, -1
	for off < len(head) {
		start := off
		for off < len(head) && tokenChars[head[off]] {
			off++
		}
		if off == start {
			switch c := head[off]; {
			case c == '\n':
				f.hdrEnd, f.end = start, off+1
				return nil
			case c == '\r' && off+1 < len(head) && head[off+1] == '\n':
				f.hdrEnd, f.end = start, off+2
				return nil
			case c == ' ' || c == '\t':
				return syntaxError("obsolete line folding")
			}
		}
		if off == start || off == len(head) || head[off] != ':' {
			return syntaxError("header field name")
		}
		name := head[start:off]
		eol := bytes.IndexByte(head[off:], '\n')
		if eol < 0 {
			break
		}
		vs, ve := off+1, off+eol
		off = ve + 1
		if ve > vs && head[ve-1] == '\r' {
			ve--
		}
		for vs < ve && (head[vs] == ' ' || head[vs] == '\t') {
			vs++
		}
		for ve > vs && (head[ve-1] == ' ' || head[ve-1] == '\t') {
			ve--
		}
		value := head[vs:ve]
		if bytes.IndexByte(value, 0) >= 0 || bytes.IndexByte(value, '\r') >= 0 {
			return syntaxError("NUL or CR in a field value")
		}
		switch len(name) {
		case 4:
			if equalFold(name, "host") && f.hostStart < 0 {
				f.hostStart, f.hostEnd = vs, ve
			}
		case 6:
			if equalFold(name, "expect") && equalFold(value, "100-continue") {
				f.expect100 = true
			}
		case 7:
			if equalFold(name, "upgrade") {
				f.upgrade = true
			}
		case 10:
			if equalFold(name, "connection") {
				for tok := range tokens(value) {
					switch {
					case equalFold(tok, "close"):
						f.connClose = true
					case equalFold(tok, "keep-alive"):
						f.keepAlive = true
					case equalFold(tok, "upgrade"):
						f.connUpg = true
					}
				}
			}
		case 14:
			if equalFold(name, "content-length") {
				n, ok := parseLength(value)
				if !ok || f.hasLength {
					return syntaxError("Content-Length is not one decimal number")
				}
				f.length, f.hasLength = n, true
			}
		case 17:
			if equalFold(name, "transfer-encoding") {
				f.transferCodings(value)
			}
		}
	}
	return syntaxError("unterminated head")
}

// transferCodings records a Transfer-Encoding value: whether chunked is
// the final coding, and whether chunked comes before another coding or a
// coding is not a token (both invalid in a request: RFC 9112 section 6.1).
func (f *fields) transferCodings(v []byte) {
	f.hasTE = true
	for tok := range tokens(v) {
		if f.chunked {
			f.teBad = true
		}
		name := tok
		if i := bytes.IndexByte(tok, ';'); i >= 0 {
			name = bytes.TrimRight(tok[:i], " \t")
		}
		if !isToken(name) {
			f.teBad = true
		}
		f.chunked = equalFold(tok, "chunked")
	}
}

// tokens yields the non-empty elements of a comma-separated list, without
// the spaces and tabs around them.
func tokens(v []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			var tok []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				tok, v = v, nil
			}
			tok = bytes.Trim(tok, " \t")
			if len(tok) > 0 && !yield(tok) {
				return
			}
		}
	}
}

// parseLength reads a Content-Length value: one decimal number. A list,
// even of identical values ("5, 5"), is refused: RFC 9110 section 8.6 lets
// a recipient either reject it or replace it with one value, and the proxy
// relays heads as they are, so the backend would still see the list.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) || n > maxLength/10 {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		if n > maxLength {
			return 0, false
		}
	}
	return n, true
}

// parseChunkSize reads a chunk-size line: hex digits, then optional
// whitespace and chunk extensions.
func parseChunkSize(line []byte) (int64, error) {
	line = trimEOL(line)
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case isDigit(c):
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			goto rest
		}
		if n > maxLength>>4 {
			return 0, syntaxError("chunk size")
		}
		n = n<<4 | int64(d)
		if n > maxLength {
			return 0, syntaxError("chunk size")
		}
	}
rest:
	if i == 0 {
		return 0, syntaxError("chunk size")
	}
	for ; i < len(line); i++ {
		switch line[i] {
		case ' ', '\t':
		case ';':
			if hasControl(line[i:]) {
				return 0, syntaxError("control character in a chunk extension")
			}
			return n, nil
		default:
			return 0, syntaxError("chunk size")
		}
	}
	return n, nil
}

// checkChunks walks the chunked body at the front of b as far as b goes,
// without consuming it, and returns the first framing error in it: what
// body would meet relaying it. It lets a request whose malformed chunk
// came with its head be refused before any of it goes out.
func checkChunks(b []byte) error {
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil
		}
		n, err := parseChunkSize(b[:i+1])
		if err != nil {
			return err
		}
		b = b[i+1:]
		if n == 0 {
			break
		}
		if int64(len(b)) < n {
			return nil
		}
		b = b[n:]
		i = bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil
		}
		if !isBlank(b[:i+1]) {
			return syntaxError("chunk longer than its size")
		}
		b = b[i+1:]
	}
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return nil
		}
		if err := checkTrailer(b[:i+1]); err != nil || isBlank(b[:i+1]) {
			return err
		}
		b = b[i+1:]
	}
}

// hasControl reports whether b holds a control character other than a tab
// (a NUL or a bare CR, most dangerously).
func hasControl(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}

// checkTrailer checks one line of a trailer section (with its ending) as
// parseFields checks a header line: a token name, a colon, and a value
// without NUL or bare CR. A blank line, which ends the section, passes.
func checkTrailer(line []byte) error {
	line = trimEOL(line)
	if len(line) == 0 {
		return nil
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return syntaxError("trailer field name")
	}
	if v := line[colon+1:]; bytes.IndexByte(v, 0) >= 0 || bytes.IndexByte(v, '\r') >= 0 {
		return syntaxError("NUL or CR in a trailer field value")
	}
	return nil
}

// body says how the request's body is delimited (RFC 9112 section 6.3).
// What a server may resolve one way and another server another way is
// refused: Content-Length with Transfer-Encoding, a Transfer-Encoding
// other than codings ending in one chunked, or any in an HTTP/1.0 request.
func (rq *request) body() (bodyKind, error) {
	switch {
	case rq.hasTE && rq.hasLength:
		return bodyNone, syntaxError("Content-Length together with Transfer-Encoding")
	case rq.hasTE && rq.versionMin == 0:
		return bodyNone, syntaxError("Transfer-Encoding in an HTTP/1.0 request")
	case rq.hasTE && (!rq.chunked || rq.teBad):
		return bodyNone, syntaxError("Transfer-Encoding whose final coding is not one chunked")
	case rq.hasTE:
		return bodyChunked, nil
	case rq.hasLength && rq.length > 0:
		return bodyLength, nil
	}
	return bodyNone, nil
}

// wantsClose reports whether the request asks to end the connection after
// its response.
func (f *fields) wantsClose() bool {
	return f.connClose || (f.versionMin == 0 && !f.keepAlive)
}

// body says how a response to a request with the given method is
// delimited (RFC 9112 section 6.3).
func (rs *response) body(head, connect bool) bodyKind {
	switch {
	case head, rs.status < 200, rs.status == 204, rs.status == 304:
		return bodyNone
	case connect && rs.status < 300:
		return bodyNone
	case rs.hasTE && rs.chunked:
		return bodyChunked
	case rs.hasTE:
		return bodyEOF
	case rs.hasLength && rs.length > 0:
		return bodyLength
	case rs.hasLength:
		return bodyNone
	}
	return bodyEOF
}

// lookup returns the value of the first header field called name in the
// header lines of head, and whether there is one.
func lookup(head []byte, off int, name string) ([]byte, bool) {
	for off < len(head) {
		line, next := nextLine(head, off)
		off = next
		if len(line) == 0 {
			break
		}
		if len(line) > len(name) && line[len(name)] == ':' && equalFold(line[:len(name)], name) {
			return bytes.Trim(line[len(name)+1:], " \t"), true
		}
	}
	return nil, false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// equalFold compares ASCII case-insensitively; s is lower case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// tokenChars marks the characters of an RFC 9110 token.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}
