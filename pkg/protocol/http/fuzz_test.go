package httpproto

import (
	"bufio"
	"bytes"
	"testing"
)

// frameAll splits data into messages the way a connection does, relaying
// each head and body into out, and checks that what was relayed plus what
// is left unread is exactly data: no byte lost, duplicated or reordered,
// whatever the input.
func frameAll(t *testing.T, data []byte, next func(r *bufio.Reader, out *bytes.Buffer) bool) {
	src := bytes.NewReader(data)
	r := bufio.NewReaderSize(src, 16) // the smallest buffer: long lines take the slow path
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
		frameAll(t, data, func(r *bufio.Reader, out *bytes.Buffer) bool {
			head, err := readHead(r, nil, true)
			out.Write(head)
			if err != nil {
				return false
			}
			var rq request
			if parseRequest(head, &rq) != nil {
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
		frameAll(t, data, func(r *bufio.Reader, out *bytes.Buffer) bool {
			h, err := readHead(r, nil, false)
			out.Write(h)
			if err != nil {
				return false
			}
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
		frameAll(t, data, func(r *bufio.Reader, out *bytes.Buffer) bool {
			var b body
			b.reset(r, bodyChunked, 0, false)
			buf := make([]byte, 3)
			for {
				n, err := b.Read(buf)
				out.Write(buf[:n])
				if err != nil {
					return false
				}
			}
		})
	})
}
