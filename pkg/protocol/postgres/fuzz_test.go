package postgres

import (
	"testing"
)

// FuzzFrontend frames arbitrary client bytes as the request loop does: the
// startup packet, then typed messages, each first message of a request
// drawn and every later one followed. No panic, and a request is drawn
// with a command from the bounded set.
func FuzzFrontend(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		tr := tracker{database: "d", user: "u"}
		if len(in) >= startupHeadLen {
			if k, n, err := startupHead(in); err == nil && n <= len(in) {
				if k == packetStartup {
					startupParams(in[:n])
				}
				in = in[n:]
			}
		}
		first := true
		for len(in) >= headerLen {
			typ, size, err := header(in)
			if err != nil {
				return
			}
			body := in[headerLen:min(size, len(in))]
			if first {
				r := tr.first(typ, body)
				if _, known := keywords[r.Command]; !known && r.Command != CommandOther && r.Command != CommandEmpty &&
					r.Command != CommandFunction && r.Command != "CLOSE" {
					t.Fatalf("message %q drawn with command %q, outside the bounded set", typ, r.Command)
				}
			} else {
				tr.follow(typ, body)
			}
			first = typ == msgSync || typ == msgQuery
			if size > len(in) {
				return
			}
			in = in[size:]
		}
	})
}

// FuzzBackend frames arbitrary server bytes as the reply loop does, in and
// out of authentication: no panic, and an answer never ends past the bytes
// it was given nor inside a message.
func FuzzBackend(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, auth := range []bool{false, true} {
			rest := in
			for len(rest) > 0 {
				off, end, err := scan(rest, auth)
				if off > len(rest) {
					t.Fatalf("scan stopped at %d of %d bytes", off, len(rest))
				}
				if err != nil || off == 0 {
					break
				}
				// off is a message boundary, and only the last message
				// walked can end the answer.
				for at := 0; at < off; {
					typ, size, _ := header(rest[at:])
					last, _ := ends(typ, rest[at+headerLen:at+size], auth)
					at += size
					if at > off || last && at != off {
						t.Fatalf("scan stopped at %d, not after the message that ends the answer", off)
					}
					if at == off && last != end {
						t.Fatalf("scan says end %v after a message that ends it: %v", end, last)
					}
				}
				if end {
					break
				}
				rest = rest[off:]
			}
			for len(rest) >= headerLen {
				typ, size, err := header(rest)
				if err != nil || size > len(rest) {
					break
				}
				if typ == msgErrorResponse || typ == msgNoticeResponse {
					errorFields(rest[headerLen:size])
				}
				rest = rest[size:]
			}
		}
	})
}

// FuzzKeyword reads the first keyword of arbitrary SQL: no panic, and a
// keyword from the bounded set.
func FuzzKeyword(f *testing.F) {
	f.Fuzz(func(t *testing.T, sql []byte) {
		k := keyword(sql)
		if _, known := keywords[k]; !known && k != CommandOther && k != CommandEmpty {
			t.Fatalf("keyword(%q) = %q, outside the bounded set", sql, k)
		}
	})
}
