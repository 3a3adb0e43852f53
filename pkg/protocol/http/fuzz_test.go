package httpproto

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// checkInPlace checks that parsing the first head of data in place, as a
// connection does when its buffer holds the head whole, finds what reading
// it line by line and parsing it finds, and that the two agree on whether
// it is a head at all.
func checkInPlace(t *testing.T, data []byte, isRequest bool) {
	r := newReader(bytes.NewReader(data), len(data)+1)
	r.Peek(1)
	var rq, wantRq request
	var rs, wantRs response
	var n int
	if isRequest {
		n = peekRequest(r, &rq)
	} else if parseResponse(r.Bytes(), &rs) == nil {
		n = rs.end
	}
	head, err := readHead(newReader(bytes.NewReader(data), 16), nil, isRequest)
	ok := err == nil
	if ok && isRequest {
		ok = parseRequest(head, &wantRq) == nil
	} else if ok {
		ok = parseResponse(head, &wantRs) == nil
	}
	switch {
	case !ok && n == 0:
		return
	case !ok || n != len(head):
		t.Fatalf("in place: %d bytes; line by line: %d bytes, %v", n, len(head), err)
	case isRequest && (rq.fields != wantRq.fields || rq.lineStart != wantRq.lineStart ||
		!bytes.Equal(rq.method, wantRq.method) || !bytes.Equal(rq.target, wantRq.target)):
		t.Fatalf("in place: %+v\nline by line: %+v", rq, wantRq)
	case !isRequest && rs != wantRs:
		t.Fatalf("in place: %+v\nline by line: %+v", rs, wantRs)
	}
}

// checkStart checks that requestLine, partial, which judges a request line
// before its end arrives, refuses none of the beginnings of a line that
// parseRequest accepts or answers 505.
func checkStart(t *testing.T, head []byte, err error) {
	if err != nil && err != errVersion {
		return
	}
	off := skipBlank(head)
	end := off + bytes.IndexByte(head[off:], '\n')
	for n := off; n <= end && n <= off+300; n++ {
		if _, _, err := requestLine(head[off:n], true); err != nil {
			t.Fatalf("%q refused after %d bytes (%v), and parsed whole", head[:end], n, err)
		}
	}
}

// checkFields compares parseFields with parseFieldsRef on the header lines
// of a head that readHead returned.
func checkFields(t *testing.T, head []byte) {
	off := skipBlank(head)
	i := bytes.IndexByte(head[off:], '\n')
	if i < 0 {
		return
	}
	off += i + 1
	var got, want fields
	gerr, werr := parseFields(head, off, &got), parseFieldsRef(head, off, &want)
	if (gerr == nil) != (werr == nil) || (gerr == nil && got != want) {
		t.Fatalf("%q:\nparseFields %+v, %v\nreference   %+v, %v", head, got, gerr, want, werr)
	}
}

// frameAll splits data into messages the way a connection does, relaying
// each head and body into out, and checks that what was relayed plus what
// is left unread is exactly data: no byte lost, duplicated or reordered,
// whatever the input.
func frameAll(t *testing.T, data []byte, next func(r *kit.Reader, out *bytes.Buffer) bool) {
	src := bytes.NewReader(data)
	r := newReader(src, 16) // the smallest buffer: long lines take the slow path
	var out bytes.Buffer
	for next(r, &out) {
	}
	if !bytes.HasPrefix(data, out.Bytes()) {
		t.Fatalf("relayed bytes are not the input's prefix:\n%q\n%q", out.Bytes(), data)
	}
	if got := out.Len() + r.Buffered() + src.Len(); got != len(data) {
		t.Fatalf("relayed %d + buffered %d + unread %d bytes of %d", out.Len(), r.Buffered(), src.Len(), len(data))
	}
}

func FuzzRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Add([]byte("POST /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;e\r\nabc\r\n0\r\nT: v\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkInPlace(t, data, true)
		frameAll(t, data, func(r *kit.Reader, out *bytes.Buffer) bool {
			head, err := readHead(r, nil, true)
			out.Write(head)
			if err != nil {
				return false
			}
			checkFields(t, head)
			var rq request
			err = parseRequest(head, &rq)
			checkStart(t, head, err)
			if err != nil {
				return false
			}
			lookup(head, rq.hdrStart, "host")
			if rq.hostStart >= 0 && (rq.hostStart > rq.hostEnd || rq.hostEnd > len(head)) {
				t.Fatalf("host range %d:%d of %d", rq.hostStart, rq.hostEnd, len(head))
			}
			kind, err := rq.body()
			if err != nil {
				return false
			}
			var b body
			b.reset(r, kind, rq.length, false)
			_, err = b.WriteTo(out)
			return err == nil
		})
	})
}

func FuzzResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No Content\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), true)
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nto the end"), false)
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		checkInPlace(t, data, false)
		frameAll(t, data, func(r *kit.Reader, out *bytes.Buffer) bool {
			h, err := readHead(r, nil, false)
			out.Write(h)
			if err != nil {
				return false
			}
			checkFields(t, h)
			var rs response
			if parseResponse(h, &rs) != nil {
				return false
			}
			var b body
			b.reset(r, rs.body(head, false), rs.length, false)
			_, err = b.WriteTo(out)
			return err == nil && rs.status != 101
		})
	})
}

func FuzzChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("a;x=\"y\"\nabcdefghij\n0\nT: 1\n\nrest"))
	f.Add([]byte("fffffffffff\r\nabc"))
	f.Fuzz(func(t *testing.T, data []byte) {
		early := checkChunks(data)
		frameAll(t, data, func(r *kit.Reader, out *bytes.Buffer) bool {
			var b body
			b.reset(r, bodyChunked, 0, false)
			_, err := b.WriteTo(out)
			// checkChunks finds what relaying finds, as far as relaying
			// goes (it does not count line lengths).
			if errors.As(err, new(syntaxError)) && early == nil {
				t.Fatalf("relaying met %v; checkChunks found nothing", err)
			}
			if err == nil && early != nil {
				t.Fatalf("relayed a whole body; checkChunks found %v", early)
			}
			return false
		})
	})
}

// parseFieldsRef is parseFields written line by line, as plainly as it
// can be: the fuzz targets check that parseFields agrees with it.
func parseFieldsRef(head []byte, off int, f *fields) error {
	f.hdrStart = off
	f.hostStart, f.hostEnd = -1, -1
	for off < len(head) {
		start := off
		line, next := nextLine(head, off)
		off = next
		if len(line) == 0 {
			f.hdrEnd, f.end = start, off
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return syntaxError("obsolete line folding")
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return syntaxError("header field name")
		}
		name := line[:colon]
		vs, ve := colon+1, len(line)
		for vs < ve && (line[vs] == ' ' || line[vs] == '\t') {
			vs++
		}
		for ve > vs && (line[ve-1] == ' ' || line[ve-1] == '\t') {
			ve--
		}
		value := line[vs:ve]
		if bytes.ContainsAny(value, "\x00\r") {
			return syntaxError("NUL or CR in a field value")
		}
		switch len(name) {
		case 4:
			if equalFold(name, "host") && f.hostStart < 0 {
				f.hostStart, f.hostEnd = start+vs, start+ve
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
					return syntaxError("content-length")
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
