package httpproto

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// bufSize is the size of a connection's buffers: a head that does not fit
// is gathered line by line, up to the limits in parse.go.
const bufSize = kit.BufSize

// newReader returns a Reader of the given size over rd.
func newReader(rd io.Reader, size int) *kit.Reader { return kit.NewReader(rd, size) }

// rewind empties r, whose source starts again.
func rewind(r *kit.Reader) { r.Discard(r.Buffered()) }

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name    string
		head    string
		err     bool
		v505    bool // the error is errVersion, answered 505
		method  string
		target  string
		body    bodyKind
		length  int64
		close   bool
		upgrade bool
		host    string
	}{
		{name: "get", head: "GET /a?b HTTP/1.1\r\nHost: example.com\r\n\r\n", method: "GET", target: "/a?b", host: "example.com"},
		{name: "bare LF", head: "GET / HTTP/1.1\nHost: h\n\n", method: "GET", target: "/", host: "h"},
		{name: "leading blank lines", head: "\r\n\r\nGET / HTTP/1.1\r\n\r\n", method: "GET", target: "/"},
		{name: "length", head: "POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n", method: "POST", target: "/", body: bodyLength, length: 12},
		{name: "zero length", head: "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", method: "POST", target: "/", body: bodyNone},
		{name: "length list", head: "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", err: true},
		{name: "same lengths", head: "POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", err: true},
		{name: "different lengths", head: "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", err: true},
		{name: "signed length", head: "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n", err: true},
		{name: "negative length", head: "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", err: true},
		{name: "hex length", head: "POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n", err: true},
		{name: "empty length", head: "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", err: true},
		{name: "length with vertical tab", head: "POST / HTTP/1.1\r\nContent-Length: 5\v\r\n\r\n", err: true},
		{name: "huge length", head: "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", err: true},
		{name: "chunked", head: "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", method: "POST", target: "/", body: bodyChunked},
		{name: "chunked over two fields", head: "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", method: "POST", target: "/", body: bodyChunked},
		{name: "length and chunked", head: "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", err: true},
		{name: "chunked and length", head: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", err: true},
		{name: "chunked not last", head: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", err: true},
		{name: "chunked twice", head: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", err: true},
		{name: "chunked then a field", head: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", err: true},
		{name: "xchunked", head: "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", err: true},
		{name: "chunked with a parameter", head: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", err: true},
		{name: "chunked with a vertical tab", head: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\v\r\n\r\n", err: true},
		{name: "empty transfer-encoding", head: "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", err: true},
		{name: "transfer-encoding in http/1.0", head: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", err: true},
		{name: "space before colon of transfer-encoding", head: "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n", err: true},
		{name: "NUL in a value", head: "GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n", err: true},
		{name: "bare CR in a value", head: "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", err: true},
		{name: "bare CR ending a value", head: "GET / HTTP/1.1\r\nX: a\r\r\n\r\n", err: true},
		{name: "NUL in a name", head: "GET / HTTP/1.1\r\nX\x00Y: a\r\n\r\n", err: true},
		{name: "other controls kept", head: "GET / HTTP/1.1\r\nX: a\x01\tb\r\n\r\n", method: "GET", target: "/"},
		{name: "http/9.9", head: "GET / HTTP/9.9\r\n\r\n", err: true, v505: true},
		{name: "http/1.10", head: "GET / HTTP/1.10\r\n\r\n", err: true},
		{name: "lower-case version", head: "GET / http/1.1\r\n\r\n", err: true},
		{name: "http/1.0 closes", head: "GET / HTTP/1.0\r\n\r\n", method: "GET", target: "/", close: true},
		{name: "http/1.0 keep-alive", head: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", method: "GET", target: "/"},
		{name: "connection close", head: "GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", method: "GET", target: "/", close: true},
		{name: "upgrade", head: "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", method: "GET", target: "/ws", upgrade: true},
		{name: "connect", head: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", method: "CONNECT", target: "example.com:443", host: "example.com:443"},
		{name: "host whitespace", head: "GET / HTTP/1.1\r\nhost: \t a:1 \t\r\n\r\n", method: "GET", target: "/", host: "a:1"},
		{name: "http/2 preface", head: "PRI * HTTP/2.0\r\n\r\n", err: true, v505: true},
		{name: "http/0.9", head: "GET /\r\n\r\n", err: true},
		{name: "space before colon", head: "GET / HTTP/1.1\r\nHost : x\r\n\r\n", err: true},
		{name: "folding", head: "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", err: true},
		{name: "no colon", head: "GET / HTTP/1.1\r\nX\r\n\r\n", err: true},
		{name: "two spaces", head: "GET  / HTTP/1.1\r\n\r\n", err: true},
		{name: "control in target", head: "GET /\x01 HTTP/1.1\r\n\r\n", err: true},
		{name: "bad method", head: "G(T / HTTP/1.1\r\n\r\n", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			head, err := readHead(newReader(strings.NewReader(tc.head+"trailing"), 4096), nil, true)
			if err != nil {
				if tc.err {
					return
				}
				t.Fatalf("readHead: %v", err)
			}
			if string(head) != tc.head {
				t.Fatalf("head %q, want %q", head, tc.head)
			}
			var rq request
			err = parseRequest(head, &rq)
			var kind bodyKind
			if err == nil {
				kind, err = rq.body()
			}
			if tc.err {
				if err == nil {
					t.Fatal("parsed, want an error")
				}
				if (err == errVersion) != tc.v505 {
					t.Fatalf("error %v; want errVersion: %v", err, tc.v505)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			host := ""
			if rq.hostStart >= 0 {
				host = string(head[rq.hostStart:rq.hostEnd])
			}
			got := []any{string(rq.method), string(rq.target), kind, rq.length, rq.wantsClose(), rq.upgrade && rq.connUpg, host}
			want := []any{tc.method, tc.target, tc.body, tc.length, tc.close, tc.upgrade, tc.host}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("field %d: got %v, want %v", i, got[i], want[i])
				}
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		head   string
		method string
		err    bool
		status int
		body   bodyKind
		length int64
		close  bool
	}{
		{head: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", status: 200, body: bodyLength, length: 3},
		{head: "HTTP/1.1 200\r\nContent-Length: 3\r\n\r\n", status: 200, body: bodyLength, length: 3},
		{head: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", method: "HEAD", status: 200, body: bodyNone, length: 3},
		{head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", status: 200, body: bodyChunked},
		{head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", status: 200, body: bodyEOF},
		{head: "HTTP/1.1 200 OK\r\n\r\n", status: 200, body: bodyEOF},
		{head: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", status: 200, body: bodyLength, length: 1, close: true},
		{head: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n", status: 200, body: bodyLength, length: 1},
		{head: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status: 200, body: bodyNone, close: true},
		{head: "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", status: 204, body: bodyNone, length: 9},
		{head: "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", status: 304, body: bodyNone},
		{head: "HTTP/1.1 100 Continue\r\n\r\n", status: 100, body: bodyNone},
		{head: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", status: 101, body: bodyNone},
		{head: "HTTP/1.1 200 Connection established\r\n\r\n", method: "CONNECT", status: 200, body: bodyNone},
		{head: "HTTP/1.1 407 Auth\r\nContent-Length: 2\r\n\r\n", method: "CONNECT", status: 407, body: bodyLength, length: 2},
		{head: "HTTP/2 200 OK\r\n\r\n", err: true},
		{head: "HTTP/1.1 20 OK\r\n\r\n", err: true},
		{head: "HTTP/1.1 2000 OK\r\n\r\n", err: true},
		{head: "HTTP/1.1 099 OK\r\n\r\n", err: true},
		{head: "ICY 200 OK\r\n\r\n", err: true},
		{head: "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", err: true},
	}
	for _, tc := range tests {
		t.Run(strings.SplitN(tc.head, "\r\n", 2)[0]+" "+tc.method, func(t *testing.T) {
			head, err := readHead(newReader(strings.NewReader(tc.head+"body"), 4096), nil, false)
			if err != nil {
				t.Fatalf("readHead: %v", err)
			}
			var rs response
			err = parseResponse(head, &rs)
			if tc.err {
				if err == nil {
					t.Fatal("parsed, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			kind := rs.body(tc.method == "HEAD", tc.method == "CONNECT")
			if rs.status != tc.status || kind != tc.body || rs.length != tc.length || rs.wantsClose() != tc.close {
				t.Errorf("got status %d body %d length %d close %v", rs.status, kind, rs.length, rs.wantsClose())
			}
		})
	}
}

func TestReadHeadLimits(t *testing.T) {
	tests := []struct {
		in  string
		err error
	}{
		{"GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxLine) + "\r\n\r\n", errLineTooLong},
		{"GET /" + strings.Repeat("a", maxLine) + " HTTP/1.1\r\n\r\n", errLineTooLong},
		{"GET / HTTP/1.1\r\n" + strings.Repeat("X: "+strings.Repeat("a", 1000)+"\r\n", maxHead/1000) + "\r\n", errHeadTooLarge},
		{"GET / HTTP/1.1\r\nX: a", io.ErrUnexpectedEOF},
		{"", io.EOF},
		{strings.Repeat("\r\n", maxBlankPrefix+1) + "GET / HTTP/1.1\r\n\r\n", syntaxError("")},
	}
	for _, tc := range tests {
		in := []byte(tc.in)
		r := newReader(bytes.NewReader(in), 4096)
		head, err := readHead(r, nil, true)
		if _, ok := tc.err.(syntaxError); ok {
			if !errors.As(err, new(syntaxError)) {
				t.Errorf("%.40q: %v, want a syntax error", tc.in, err)
			}
		} else if err != tc.err {
			t.Errorf("%.40q: %v, want %v", tc.in, err, tc.err)
		}
		if !bytes.HasPrefix(in, head) || len(head) > maxHead+maxLine+4096 {
			t.Errorf("%.40q: the head returned (%d bytes) is not what was consumed", tc.in, len(head))
		}
	}
}

// TestPartialRequestLine checks the judgement of a request line that has
// not ended yet: what may still become a request line, and what cannot.
func TestPartialRequestLine(t *testing.T) {
	tests := []struct {
		in  string
		bad bool
	}{
		{in: ""},
		{in: "\r"},
		{in: "\r\n\r"},
		{in: "G"},
		{in: "GET"},
		{in: "GET "},
		{in: "GET /a?b"},
		{in: "GET /a "},
		{in: "GET /a HTTP/"},
		{in: "GET /a HTTP/9.9"},
		{in: "GET /a HTTP/1.1\r"},
		{in: "\r\nPOST * HT"},
		{in: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", bad: true}, // a TLS ClientHello
		{in: " GET", bad: true},
		{in: "G\x00", bad: true},
		{in: "GET  /", bad: true},
		{in: "GET /a\x01", bad: true},
		{in: "GET /a  ", bad: true},
		{in: "GET /a XTTP", bad: true},
		{in: "GET /a HTTP/11", bad: true},
		{in: "GET /a HTTP/1.1x", bad: true},
		{in: "GET /a HTTP/1.1\r\r", bad: true},
	}
	for _, tc := range tests {
		b := []byte(tc.in)
		if _, _, err := requestLine(b[skipBlank(b):], true); (err != nil) != tc.bad {
			t.Errorf("%q: %v, want bad: %v", tc.in, err, tc.bad)
		}
	}
}

func TestCheckChunks(t *testing.T) {
	tests := []struct {
		in  string
		bad bool
	}{
		{in: ""},
		{in: "5\r\nhel"},
		{in: "5\r\nhello\r"},
		{in: "3\r\nabc\r\n0\r\nA: b\r\n\r\n"},
		{in: "0\r\n\r\nnot a chunk"},
		{in: "3\nabc\n0\n\n"},
		{in: "-1\r\n", bad: true},
		{in: "ffffffffffffffff\r\n", bad: true},
		{in: "5\r\nhello\r\n1ffffffffffffffff\r\n", bad: true},
		{in: "5\r\nhelloX\r\n", bad: true},
		{in: "0\r\nX\r\n", bad: true},
		{in: "0\r\nA: b\r\n c\r\n", bad: true},
	}
	for _, tc := range tests {
		if err := checkChunks([]byte(tc.in)); (err != nil) != tc.bad {
			t.Errorf("%q: %v, want bad: %v", tc.in, err, tc.bad)
		}
	}
}

func TestParseChunkSize(t *testing.T) {
	tests := []struct {
		line string
		n    int64
		err  bool
	}{
		{"0\r\n", 0, false},
		{"a\r\n", 10, false},
		{"FF\n", 255, false},
		{"10 ;name=value\r\n", 16, false},
		{"10;a;b=\"c\"\r\n", 16, false},
		{"3fffffffffffffff\r\n", 1<<62 - 1, false},
		{"4000000000000001\r\n", 0, true},
		{"ffffffffffffffffff\r\n", 0, true},
		{"ffffffffffffffff\r\n", 0, true},
		{"1ffffffffffffffff\r\n", 0, true},
		{"5;a=\x00\r\n", 0, true},
		{"5;a\rb\r\n", 0, true},
		{"5;a=\tb\r\n", 5, false},
		{"5\r\r\n", 0, true},
		{"\r\n", 0, true},
		{"-1\r\n", 0, true},
		{"0x10\r\n", 0, true},
		{"1 2\r\n", 0, true},
	}
	for _, tc := range tests {
		n, err := parseChunkSize([]byte(tc.line))
		if (err != nil) != tc.err || n != tc.n {
			t.Errorf("%q: %d, %v", tc.line, n, err)
		}
	}
}

// TestBodyFraming checks that a body is relayed byte for byte and ends
// exactly where it should, leaving what follows unread.
func TestBodyFraming(t *testing.T) {
	long := strings.Repeat("x", 100000)
	tests := []struct {
		name   string
		kind   bodyKind
		length int64
		in     string
		body   string // the relayed bytes; the rest of in stays unread
		err    bool
	}{
		{name: "length", kind: bodyLength, length: 5, in: "hello, world", body: "hello"},
		{name: "long length", kind: bodyLength, length: 100000, in: long + "next", body: long},
		{name: "short length", kind: bodyLength, length: 50, in: "abc", body: "abc", err: true},
		{name: "chunked", kind: bodyChunked, in: "5\r\nhello\r\n0\r\n\r\nnext", body: "5\r\nhello\r\n0\r\n\r\n"},
		{name: "chunked LF", kind: bodyChunked, in: "5;x=y\nhello\n0\n\nnext", body: "5;x=y\nhello\n0\n\n"},
		{name: "trailers", kind: bodyChunked, in: "3\r\nabc\r\n0\r\nA: b\r\nC: d\r\n\r\nGET", body: "3\r\nabc\r\n0\r\nA: b\r\nC: d\r\n\r\n"},
		{name: "long chunk", kind: bodyChunked, in: "186a0\r\n" + long + "\r\n0\r\n\r\n", body: "186a0\r\n" + long + "\r\n0\r\n\r\n"},
		{name: "chunk overrun", kind: bodyChunked, in: "2\r\nabc\r\n0\r\n\r\n", body: "2\r\nabc\r\n", err: true},
		{name: "bad size", kind: bodyChunked, in: "zz\r\nabc", body: "zz\r\n", err: true},
		{name: "trailer without colon", kind: bodyChunked, in: "0\r\nX\r\n\r\n", body: "0\r\nX\r\n", err: true},
		{name: "folded trailer", kind: bodyChunked, in: "0\r\nA: b\r\n c\r\n\r\n", body: "0\r\nA: b\r\n c\r\n", err: true},
		{name: "NUL in a trailer", kind: bodyChunked, in: "0\r\nA: \x00\r\n\r\n", body: "0\r\nA: \x00\r\n", err: true},
		{name: "truncated chunk", kind: bodyChunked, in: "10\r\nabc", body: "10\r\nabc", err: true},
		{name: "eof body", kind: bodyEOF, in: long, body: long},
		{name: "none", kind: bodyNone, in: "abc", body: ""},
		{name: "huge claimed chunk", kind: bodyChunked, in: "3fffffffffffffff\r\nabc", body: "3fffffffffffffff\r\nabc", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, read := range []bool{false, true} {
				src := strings.NewReader(tc.in)
				r := newReader(src, 16)
				var b body
				b.reset(r, tc.kind, tc.length, false)
				var out bytes.Buffer
				var err error
				if read { // piece by piece, without the bulk path
					for err == nil {
						var p []byte
						p, err = b.next()
						out.Write(p)
					}
					if err == io.EOF {
						err = nil
					}
				} else {
					_, err = b.WriteTo(&out)
				}
				if (err != nil) != tc.err {
					t.Errorf("read=%v: error %v", read, err)
				}
				if out.String() != tc.body {
					t.Errorf("read=%v: relayed %.60q, want %.60q", read, out.String(), tc.body)
				}
				rest, _ := io.ReadAll(io.MultiReader(bytes.NewReader(r.Bytes()), src))
				if out.String()+string(rest) != tc.in {
					t.Errorf("read=%v: bytes were lost or duplicated", read)
				}
			}
		})
	}
}

func TestInjectKeepsLength(t *testing.T) {
	for _, tc := range []struct {
		kind bodyKind
		in   string
	}{
		{bodyLength, strings.Repeat("a", 1000)},
		{bodyLength, "ab"},
		{bodyChunked, "3e8\r\n" + strings.Repeat("a", 1000) + "\r\n0\r\n\r\n"},
		{bodyEOF, strings.Repeat("a", 1000)},
	} {
		r := newReader(strings.NewReader(tc.in), 64)
		var b body
		b.reset(r, tc.kind, int64(len(tc.in)), true)
		var out bytes.Buffer
		if _, err := b.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		diff := 0
		for i := range got {
			if got[i] != tc.in[i] {
				diff++
			}
		}
		if len(got) != len(tc.in) || diff == 0 || diff > injectLen {
			t.Errorf("kind %d: length %d (want %d), %d bytes changed", tc.kind, len(got), len(tc.in), diff)
		}
		if tc.kind == bodyChunked && (!strings.HasPrefix(got, "3e8\r\n") || !strings.HasSuffix(got, "\r\n0\r\n\r\n")) {
			t.Errorf("chunk framing was corrupted: %.20q...%.20q", got[:20], got[len(got)-20:])
		}
	}
}

func TestLookup(t *testing.T) {
	head := []byte("GET / HTTP/1.1\r\nHost: a\r\nX-Token:  secret \r\nx-token: second\r\n\r\n")
	var rq request
	if err := parseRequest(head, &rq); err != nil {
		t.Fatal(err)
	}
	f := newFraming(nil, false)
	f.Resume() // as the kit does before the loops run
	f.head, f.rq = head, rq
	for name, want := range map[string]string{"X-Token": "secret", "host": "a", "HOST": "a", "missing": "", "X": ""} {
		if got := f.header(name); got != want {
			t.Errorf("header(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestRenderReply(t *testing.T) {
	reply := string(renderReply(503, nil, false))
	if !strings.HasPrefix(reply, "HTTP/1.1 503 Service Unavailable\r\n") || !strings.Contains(reply, "Connection: close\r\n") {
		t.Errorf("reply:\n%s", reply)
	}
	spec := chaos.ErrorSpec{Message: "nope", Headers: map[string]string{"Retry-After": "5", "Content-Length": "1", "Bad\r\nName": "x", "X-Evil": "a\r\nb", "content-type": "application/json"}}
	reply = string(renderReply(418, &spec, false))
	want := "HTTP/1.1 418 I'm a teapot\r\nRetry-After: 5\r\ncontent-type: application/json\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
	if reply != want {
		t.Errorf("reply:\n%q\nwant\n%q", reply, want)
	}
	if head := string(renderReply(500, &spec, true)); !strings.HasSuffix(head, "\r\n\r\n") || !strings.Contains(head, "Content-Length: 4") {
		t.Errorf("HEAD reply:\n%q", head)
	}
}
