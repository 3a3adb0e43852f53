package httpproto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"iter"

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

// malformed reports whether err is a message that cannot be framed.
func malformed(err error) bool {
	_, syntax := err.(syntaxError)
	return syntax || err == errLineTooLong || err == errHeadTooLarge
}

type bodyKind uint8

const (
	bodyNone    bodyKind = iota
	bodyLength           // Content-Length bytes
	bodyChunked          // up to the last chunk and trailers
	bodyEOF              // until the sender closes (responses only)
)

// fields holds what the framing needs from a header block. Offsets are
// into the head it was parsed from.
type fields struct {
	hdrStart, hdrEnd, end int // where the header lines start and end, the head's length
	length                int64
	hasLength, hasTE      bool
	chunked               bool // chunked is the final transfer coding
	teBad                 bool // a coding follows chunked, or one is not a token
	connClose, keepAlive  bool
	connUpg, upgrade      bool // Connection: upgrade, an Upgrade field
	hostStart, hostEnd    int  // value range of the first Host field; -1 when absent
	versionMin            byte // HTTP/1.x minor version
}

type request struct {
	fields
	method, target []byte
	lineStart      int // offset of the request line, after blank lines
}

type response struct {
	fields
	status int
}

// readHead appends one message head from r to buf[:0], and what it
// consumed on error, so that a fallback relay loses no byte. A clean end
// of stream before any byte is io.EOF with an empty head.
func readHead(r *kit.Reader, buf []byte, request bool) ([]byte, error) {
	head := buf[:0]
	lineStart, blank := 0, 0
	for {
		frag, err := r.ReadSlice('\n')
		head = append(head, frag...)
		switch {
		case len(head)-lineStart > maxLine:
			return head, errLineTooLong
		case len(head) > maxHead:
			return head, errHeadTooLarge
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(head) > 0:
			return head, io.ErrUnexpectedEOF
		case err != nil:
			return head, err
		}
		if isBlank(head[lineStart:]) {
			if lineStart > blank || !request {
				return head, nil
			}
			// Blank lines before a request line are tolerated (RFC 9112
			// section 2.2) and relayed as they are.
			if blank = len(head); blank > maxBlankPrefix*2 {
				return head, syntaxError("blank lines before the request line")
			}
		}
		lineStart = len(head)
	}
}

// requestLine checks a request line without its ending: a method (a
// token), a space, a target without spaces or controls, a space, HTTP/x.y.
// With partial, b is as much of the line as has come (CR included) and is
// judged as far as it goes. m and t are where the method and target end.
func requestLine(b []byte, partial bool) (m, t int, err error) {
	for m < len(b) && tokenChars[b[m]] {
		m++
	}
	switch {
	case partial && (m == len(b) || string(b) == "\r"): // a CR may begin a blank line
		return m, t, nil
	case m == len(b):
		return m, t, syntaxError("request line")
	case m == 0 || b[m] != ' ':
		return m, t, syntaxError("method")
	}
	for t = m + 1; t < len(b) && b[t] > ' ' && b[t] != 0x7f; t++ {
	}
	switch {
	case partial && t == len(b):
		return m, t, nil
	case t == m+1 || t == len(b) || b[t] != ' ':
		return m, t, syntaxError("request target")
	}
	v := b[t+1:]
	if partial {
		const form = "HTTP/0.0\r" // 0: a digit
		for i, c := range v {
			if i == len(form) || c != form[i] && (form[i] != '0' || !isDigit(c)) {
				return m, t, syntaxError("http version")
			}
		}
		return m, t, nil
	}
	switch {
	case len(v) != 8 || string(v[:5]) != "HTTP/" || !isDigit(v[5]) || v[6] != '.' || !isDigit(v[7]):
		return m, t, syntaxError("http version")
	case v[5] != '1':
		return m, t, errVersion
	}
	return m, t, nil
}

func isBlank(line []byte) bool {
	return len(line) == 1 || (len(line) == 2 && line[0] == '\r')
}

func skipBlank(head []byte) (off int) {
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

// trimEOL drops the line ending, CRLF or a bare LF.
func trimEOL(line []byte) []byte {
	if len(line) > 0 && line[len(line)-1] == '\n' {
		line = bytes.TrimSuffix(line[:len(line)-1], []byte{'\r'})
	}
	return line
}

// nextLine returns the line of head at off, without its ending, and the
// offset of the next.
func nextLine(head []byte, off int) (line []byte, next int) {
	end := len(head)
	if i := bytes.IndexByte(head[off:], '\n'); i >= 0 {
		end = off + i + 1
	}
	return trimEOL(head[off:end]), end
}

// peekRequest parses the request head at the front of r's buffer, without
// consuming it, when the buffer holds it whole (the common case). It
// returns the head's length, or 0: readHead must read the head.
func peekRequest(r *kit.Reader, rq *request) int {
	if parseRequest(r.Bytes(), rq) != nil || rq.lineStart > maxBlankPrefix*2 {
		return 0
	}
	return rq.end
}

func parseRequest(head []byte, rq *request) error {
	*rq = request{lineStart: skipBlank(head)}
	line, next := nextLine(head, rq.lineStart)
	m, t, err := requestLine(line, false)
	if err != nil {
		return err
	}
	rq.method, rq.target = line[:m], line[m+1:t]
	rq.versionMin = line[len(line)-1] - '0'
	return parseFields(head, next, &rq.fields)
}

func parseResponse(head []byte, rs *response) error {
	*rs = response{}
	line, next := nextLine(head, 0)
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || !isDigit(line[7]) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return syntaxError("status line")
	}
	code := line[9:12]
	if !isDigit(code[0]) || !isDigit(code[1]) || !isDigit(code[2]) || code[0] == '0' {
		return syntaxError("status code")
	}
	rs.versionMin = line[7] - '0'
	rs.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	return parseFields(head, next, &rs.fields)
}

// parseFields reads the header lines of head from off, each scanned once,
// refusing what a recipient could read otherwise (RFC 9112 section 5, RFC
// 9110 section 5.5): that is how requests get smuggled.
func parseFields(head []byte, off int, f *fields) error {
	f.hdrStart, f.hostStart, f.hostEnd = off, -1, -1
	for off < len(head) {
		start := off
		for off < len(head) && tokenChars[head[off]] {
			off++
		}
		if off == start {
			switch c := head[off]; {
			case c == '\r' && off+1 < len(head) && head[off+1] == '\n':
				off++
				fallthrough
			case c == '\n':
				f.hdrEnd, f.end = start, off+1
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
		switch len(name) { // spares most fields the comparisons
		case 4:
			if equalFold(name, "host") && f.hostStart < 0 {
				f.hostStart, f.hostEnd = vs, ve
			}
		case 7:
			f.upgrade = f.upgrade || equalFold(name, "upgrade")
		case 10:
			if equalFold(name, "connection") {
				for tok := range tokens(value) {
					f.connClose = f.connClose || equalFold(tok, "close")
					f.keepAlive = f.keepAlive || equalFold(tok, "keep-alive")
					f.connUpg = f.connUpg || equalFold(tok, "upgrade")
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
		name, _, _ := bytes.Cut(tok, []byte{';'})
		f.teBad = f.teBad || f.chunked || !isToken(bytes.TrimRight(name, " \t"))
		f.chunked = equalFold(tok, "chunked")
	}
}

// tokens yields the non-empty elements of a comma-separated list, trimmed.
func tokens(v []byte) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for tok := range bytes.SplitSeq(v, []byte{','}) {
			if tok = bytes.Trim(tok, " \t"); len(tok) > 0 && !yield(tok) {
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
	n, ok := kit.Decimal(v)
	return int64(n), ok && n <= maxLength
}

// parseChunkSize reads a chunk-size line: hex digits, then optional
// whitespace and chunk extensions.
func parseChunkSize(line []byte) (int64, error) {
	line = trimEOL(line)
	var n int64
	i := 0
digits:
	for ; i < len(line); i++ {
		d, lower := int64(line[i]-'0'), line[i]|0x20 // lower: a letter in lower case
		switch {
		case isDigit(line[i]):
		case 'a' <= lower && lower <= 'f':
			d = int64(lower-'a') + 10
		default:
			break digits
		}
		if n > maxLength>>4 || n<<4|d > maxLength {
			return 0, syntaxError("chunk size")
		}
		n = n<<4 | d
	}
	if i == 0 {
		return 0, syntaxError("chunk size")
	}
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i < len(line) && line[i] != ';' {
		return 0, syntaxError("chunk size")
	}
	for _, c := range line[i:] {
		if c < ' ' && c != '\t' || c == 0x7f { // a NUL or a bare CR, most dangerously
			return 0, syntaxError("control character in a chunk extension")
		}
	}
	return n, nil
}

// checkChunks returns the first framing error that relaying the chunked
// body at the front of p would meet, as far as p goes, so that a request
// whose malformed chunk came with its head is refused before any of it
// goes out.
func checkChunks(p []byte) error {
	b := body{kind: bodyChunked}
	for !b.done {
		if b.state == inData {
			k := min(b.n, int64(len(p)))
			if p, b.n = p[k:], b.n-k; b.n > 0 {
				return nil
			}
			b.state = dataEnd
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return nil
		}
		if err := b.endLine(p[:i+1]); err != nil {
			return err
		}
		p = p[i+1:]
	}
	return nil
}

// body says how the request's body is delimited (RFC 9112 section 6.3),
// refusing a framing that two servers could resolve differently.
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
	case rq.length > 0:
		return bodyLength, nil
	}
	return bodyNone, nil
}

func (f *fields) wantsClose() bool {
	return f.connClose || (f.versionMin == 0 && !f.keepAlive)
}

// body says how a response is delimited (RFC 9112 section 6.3).
func (rs *response) body(head, connect bool) bodyKind {
	switch {
	case head, rs.status < 200, rs.status == 204, rs.status == 304, connect && rs.status < 300:
		return bodyNone
	case rs.hasTE && rs.chunked:
		return bodyChunked
	case rs.hasTE || !rs.hasLength:
		return bodyEOF
	case rs.length > 0:
		return bodyLength
	}
	return bodyNone
}

func lookup(head []byte, off int, name string) ([]byte, bool) {
	for off < len(head) {
		line, next := nextLine(head, off)
		if len(line) == 0 {
			break
		}
		if len(line) > len(name) && line[len(name)] == ':' && equalFold(line[:len(name)], name) {
			return bytes.Trim(line[len(name)+1:], " \t"), true
		}
		off = next
	}
	return nil, false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// equalFold compares ASCII case-insensitively; s is lower case. Unicode
// folding (bytes.EqualFold) would take a Kelvin sign for a k.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
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
	for _, c := range "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" {
		t[c] = true
	}
	return t
}()

func isToken(b []byte) bool {
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return len(b) > 0
}
