package redis

import (
	"bytes"
	"io"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// FuzzParseRequest frames client bytes with the request scanner and its
// streaming copy. It must never panic, never copy a byte that was not
// sent or copy one twice, and leave a request cut short untouched.
func FuzzParseRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		// Fixed buffers of 16 and 4096 bytes, and the connections' pooled
		// buffer that grows for a long inline line.
		for _, size := range []int{16, 4096, 0} {
			r := &reader{Reader: kit.NewReader(bytes.NewReader(in), bufSize), grow: maxInline, maxBulk: 1 << 16}
			if size > 0 {
				r = newFixedReader(bytes.NewReader(in), size, 1<<16)
			}
			var out bytes.Buffer
			var sc scan
			var err error
			for err == nil {
				if _, err = r.scanRequest(&sc); err == nil {
					b, _ := r.Peek(sc.pos)
					request(sc.arg(b, 0))
					classify("CLIENT", &sc, b)
					err = r.copyRequest(&out, &sc)
				}
			}
			if !bytes.HasPrefix(in, out.Bytes()) {
				t.Fatalf("buffer %d: copied %q, not a prefix of %q", size, out.Bytes(), in)
			}
			if err == io.EOF && out.Len()+r.Buffered() != len(in) {
				t.Fatalf("buffer %d: %d bytes copied and %d left of %d", size, out.Len(), r.Buffered(), len(in))
			}
			if err != io.EOF && err != io.ErrUnexpectedEOF && !isProtocolError(err) {
				t.Fatalf("buffer %d: unexpected error %v", size, err)
			}
		}
	})
}

// FuzzParseResponse frames backend bytes with the reply walker, plain and
// corrupting, reading the kind of each push first. It must never panic nor
// allocate what a length claims, copy exactly the bytes it consumed, and a
// corrupted copy keeps their length; a value whole finds held whole is the
// one walk copies.
func FuzzParseResponse(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, size := range []int{16, 4096} {
			for _, inject := range []bool{false, true} {
				r := newFixedReader(bytes.NewReader(in), size, 1<<16)
				var out bytes.Buffer
				var err error
				for err == nil {
					var b []byte
					if b, err = r.Peek(1); err != nil {
						break
					}
					if b[0] == '>' {
						if _, err = r.pushKind(); err != nil {
							break
						}
					}
					if n := r.whole(); n > 0 && !inject {
						// The quick relay of a value held whole takes what walk does.
						held, from := bytes.Clone(r.Bytes()[:n]), out.Len()
						if err = r.walk(&out, 1, nil); err != nil || !bytes.Equal(out.Bytes()[from:], held) {
							t.Fatalf("buffer %d: whole holds %q, walk copied %q (%v)", size, held, out.Bytes()[from:], err)
						}
						continue
					}
					var cor *corrupter
					if inject {
						cor = &corrupter{}
					}
					err = r.walk(&out, 1, cor)
				}
				if err != io.EOF && err != io.ErrUnexpectedEOF && !isProtocolError(err) {
					t.Fatalf("unexpected error %v", err)
				}
				if out.Len() > len(in) {
					t.Fatalf("copied %d bytes of %d", out.Len(), len(in))
				}
				if !inject && !bytes.HasPrefix(in, out.Bytes()) {
					t.Fatalf("buffer %d: copied %q, not a prefix of %q", size, out.Bytes(), in)
				}
				if err == io.EOF && out.Len() != len(in) {
					t.Fatalf("buffer %d: framed all yet copied %d of %d bytes", size, out.Len(), len(in))
				}
			}
		}
	})
}
