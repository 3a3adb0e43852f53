package redis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

const (
	// maxHeaderLine bounds a length or count line ("$536870912\r\n"): these
	// are short, so a longer one is a peer speaking something else.
	maxHeaderLine = 32
	// maxPending bounds the number of values a reply may still announce, so
	// that a hostile count cannot overflow the walker's counter.
	maxPending = 1 << 53
	// injectMax is how many bytes an injected corruption replaces at most,
	// the amount the original Vaurien inserted.
	injectMax = 100
)

// ProtocolError reports bytes that are not RESP. The framer stops there:
// on the client side it hands the rest of the stream to a raw relay, on
// the backend side it closes the connection.
type ProtocolError struct {
	Msg string
}

func (e *ProtocolError) Error() string { return "resp protocol error: " + e.Msg }

func protoErr(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

var (
	errLineTooLong = &ProtocolError{Msg: "length line too long"}
	errBadLength   = &ProtocolError{Msg: "invalid length"}
	errNoCRLF      = &ProtocolError{Msg: "value not terminated by CRLF"}
)

// isProtocolError reports whether err is a framing failure rather than an
// I/O one.
func isProtocolError(err error) bool {
	var pe *ProtocolError
	return errors.As(err, &pe)
}

// peekLine returns the next line, CRLF included, without consuming it. It
// fails with errLineTooLong when no '\n' comes within max bytes.
func (r *reader) peekLine(max int) ([]byte, error) {
	for {
		b := r.bytes()
		if i := bytes.IndexByte(b[:min(len(b), max)], '\n'); i >= 0 {
			return b[:i+1], nil
		}
		if len(b) >= max {
			return nil, errLineTooLong
		}
		if err := r.more(); err != nil {
			if err == bufio.ErrBufferFull {
				return nil, errLineTooLong
			}
			return nil, err
		}
	}
}

// maxPushKind is the longest push kind the framer looks for
// ("punsubscribe", "sunsubscribe").
const maxPushKind = 12

// pushKind returns the kind of the push the reader is at, the first
// element's payload, reading no further than that; nil when that element
// is not a short bulk string.
func (r *reader) pushKind() ([]byte, error) {
	for {
		b := r.bytes()
		if kind, done := pushKind(b); done || len(b) == r.Size() {
			return kind, nil
		}
		if err := r.more(); err != nil {
			return nil, eofIsUnexpected(err)
		}
	}
}

// pushKind reads the kind of the push that starts b: the payload of its
// first element when that is a bulk string of at most maxPushKind bytes,
// nil otherwise. done is false while b is too short to tell.
func pushKind(b []byte) (kind []byte, done bool) {
	n, size, err := headerLine(b)
	switch {
	case err != nil || (size > 0 && n < 1):
		return nil, true
	case size == 0 || len(b) == size:
		return nil, false
	}
	b = b[size:]
	if b[0] != '$' {
		return nil, true
	}
	n, size, err = headerLine(b)
	switch {
	case err != nil || (size > 0 && (n < 0 || n > maxPushKind)):
		return nil, true
	case size == 0 || len(b) < size+int(n):
		return nil, false
	}
	return b[size : size+int(n)], true
}

// parseLength reads the signed decimal of a length or integer line: the
// bytes between the type byte and the CRLF.
func parseLength(line []byte) (int64, error) {
	if len(line) < 4 || line[len(line)-2] != '\r' {
		return 0, errBadLength
	}
	digits := line[1 : len(line)-2]
	neg := digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	n, ok := kit.Decimal(digits)
	switch {
	case !ok:
		return 0, errBadLength
	case neg && n <= 1<<63:
		return int64(-n), nil
	case !neg && n < 1<<63:
		return int64(n), nil
	}
	return 0, errBadLength
}

// header copies a length line to w and returns its number.
func (r *reader) header(w io.Writer) (int64, error) {
	line, err := r.peekLine(maxHeaderLine)
	if err != nil {
		return 0, eofIsUnexpected(err)
	}
	n, err := parseLength(line)
	if err != nil {
		return 0, err
	}
	if _, err := w.Write(line); err != nil {
		return 0, err
	}
	r.Discard(len(line))
	return n, nil
}

// payload copies n bytes and their CRLF to w, streaming the ones that do
// not fit in the buffer so that no value is ever held whole.
func (r *reader) payload(w io.Writer, n int64, cor *corrupter, skip int64) error {
	if n+2 <= int64(r.Size()) {
		b, err := r.fill(int(n) + 2)
		if err != nil {
			return eofIsUnexpected(err)
		}
		if b[n] != '\r' || b[n+1] != '\n' {
			return errNoCRLF
		}
		if cor.wants(n - skip) {
			err = cor.write(w, b[:n+2], skip, n, randomByte)
		} else {
			_, err = w.Write(b)
		}
		if err != nil {
			return err
		}
		r.Discard(int(n) + 2)
		return nil
	}
	dst := w
	if cor.wants(n - skip) {
		dst = cor.writer(w, skip, n)
	}
	for left := n; left > 0; {
		if _, err := r.fill(1); err != nil {
			return eofIsUnexpected(err)
		}
		b := r.bytes()
		b = b[:min(int64(len(b)), left)]
		if _, err := dst.Write(b); err != nil {
			return err
		}
		r.Discard(len(b))
		left -= int64(len(b))
	}
	b, err := r.fill(2)
	if err != nil {
		return eofIsUnexpected(err)
	}
	if b[0] != '\r' || b[1] != '\n' {
		return errNoCRLF
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	r.Discard(2)
	return nil
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// simple copies a line-valued item (+ - : _ # , ( ) to w. Lines longer
// than the buffer are streamed; their content cannot be corrupted.
func (r *reader) simple(w io.Writer, t byte, cor *corrupter) error {
	var total int64
	prev := byte(0)
	for {
		b := r.bytes()
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(b) == r.Size() {
				if total += int64(len(b)); total > r.maxBulk {
					return protoErr("line longer than %d bytes", r.maxBulk)
				}
				if _, err := w.Write(b); err != nil {
					return err
				}
				prev = b[len(b)-1]
				r.Discard(len(b))
			}
			if err := r.more(); err != nil {
				return eofIsUnexpected(err)
			}
			continue
		}
		line := b[:i+1]
		if i > 0 {
			prev = line[i-1]
		}
		if prev != '\r' {
			return errNoCRLF
		}
		if total == 0 {
			if err := checkSimple(t, line); err != nil {
				return err
			}
		}
		var err error
		if total == 0 && cor.wants(int64(len(line)-3)) && (t == '+' || t == '-' || t == ':') {
			gen := randomLetter
			if t == ':' {
				gen = randomDigit
			}
			start := int64(1)
			if t == ':' && line[1] == '-' {
				start = 2
			}
			err = cor.write(w, line, start, int64(len(line)-2), gen)
		} else {
			_, err = w.Write(line)
		}
		if err != nil {
			return err
		}
		r.Discard(len(line))
		return nil
	}
}

// checkSimple validates the lines whose content RESP3 constrains.
func checkSimple(t byte, line []byte) error {
	content := line[1 : len(line)-2]
	switch t {
	case '_':
		if len(content) != 0 {
			return protoErr("null with content")
		}
	case '#':
		if len(content) != 1 || (content[0] != 't' && content[0] != 'f') {
			return protoErr("invalid boolean")
		}
	case ':':
		if _, err := parseLength(line); err != nil {
			return protoErr("invalid integer")
		}
	case ',', '(':
		if len(content) == 0 {
			return protoErr("empty number")
		}
	}
	return nil
}

// walk copies pending whole RESP values from r to w: any type of RESP2 or
// RESP3, aggregates nested to any depth. It counts the values still due
// instead of recursing, so depth costs no stack and no memory. An attribute
// is not a value of its own: it announces its key/value pairs and the value
// it annotates.
func (r *reader) walk(w io.Writer, pending int64, cor *corrupter) error {
	for pending > 0 {
		b, err := r.fill(1)
		if err != nil {
			return eofIsUnexpected(err)
		}
		t := b[0]
		switch t {
		case '+', '-', ':', '_', '#', ',', '(':
			if err := r.simple(w, t, cor); err != nil {
				return err
			}
			pending--
		case '$', '!', '=':
			n, err := r.header(w)
			if err != nil {
				return err
			}
			switch {
			case n == -1 && t == '$': // RESP2 null bulk string
			case n < 0 || n > r.maxBulk:
				return protoErr("bulk length %d out of range", n)
			case t == '=' && n < 4:
				return protoErr("verbatim string without format")
			default:
				skip := int64(0)
				if t == '=' {
					skip = 4 // keep the "txt:" format prefix intact
				}
				if err := r.payload(w, n, cor, skip); err != nil {
					return err
				}
			}
			pending--
		case '*', '~', '>', '%', '|':
			n, err := r.header(w)
			if err != nil {
				return err
			}
			switch {
			case n == -1 && t == '*': // RESP2 null array
				pending--
			case n < 0:
				return protoErr("aggregate count %d out of range", n)
			case t == '%':
				pending += 2*n - 1
			case t == '|':
				pending += 2 * n
			default:
				pending += n - 1
			}
			if pending > maxPending {
				return protoErr("aggregate too large")
			}
		default:
			return protoErr("unknown type byte %q", t)
		}
	}
	return nil
}

// corrupter damages the first string-like payload of a reply (a bulk,
// verbatim or blob error value, a simple string or error, an integer) by
// overwriting a few bytes in its middle. It never changes a length and
// never writes CR or LF into a line, so the client stays in sync and reads
// a wrong value rather than garbage.
type corrupter struct {
	done bool
	buf  [injectMax]byte
}

// wants reports whether a payload of n bytes is the one to damage.
func (c *corrupter) wants(n int64) bool {
	return c != nil && !c.done && n > 0
}

// span picks the damaged range inside [from, to): a quarter of the value,
// at least one byte and at most injectMax, centred.
func span(from, to int64) (int64, int64) {
	n := to - from
	k := min(max(n/4, 1), injectMax)
	start := from + (n-k)/2
	return start, start + k
}

// write writes b to w with b[from:to]'s middle overwritten by gen.
func (c *corrupter) write(w io.Writer, b []byte, from, to int64, gen func(byte) byte) error {
	c.done = true
	s, e := span(from, to)
	out := c.buf[:e-s]
	for i := range out {
		out[i] = gen(b[s+int64(i)])
	}
	if _, err := w.Write(b[:s]); err != nil {
		return err
	}
	if _, err := w.Write(out); err != nil {
		return err
	}
	_, err := w.Write(b[e:])
	return err
}

// writer wraps w so that the payload streamed through it, n bytes of which
// the first skip are kept, gets its middle overwritten.
func (c *corrupter) writer(w io.Writer, skip, n int64) io.Writer {
	c.done = true
	s, e := span(skip, n)
	return &corruptWriter{w: w, from: s, to: e, buf: &c.buf}
}

type corruptWriter struct {
	w        io.Writer
	off      int64
	from, to int64
	buf      *[injectMax]byte
}

func (cw *corruptWriter) Write(p []byte) (int, error) {
	start, end := cw.off, cw.off+int64(len(p))
	cw.off = end
	if end <= cw.from || start >= cw.to {
		return cw.w.Write(p)
	}
	a := max(cw.from, start) - start
	b := min(cw.to, end) - start
	out := cw.buf[:b-a]
	for i := range out {
		out[i] = randomByte(p[a+int64(i)])
	}
	if _, err := cw.w.Write(p[:a]); err != nil {
		return 0, err
	}
	if _, err := cw.w.Write(out); err != nil {
		return 0, err
	}
	if _, err := cw.w.Write(p[b:]); err != nil {
		return 0, err
	}
	return len(p), nil
}

// The generators return a random byte of their class that differs from the
// original, so that a corrupted value is always different.

func randomByte(orig byte) byte {
	return orig ^ byte(1+rand.IntN(255))
}

func randomLetter(orig byte) byte {
	c := byte('a' + rand.IntN(26))
	if c == orig {
		c = 'a' + (c-'a'+1)%26
	}
	return c
}

func randomDigit(orig byte) byte {
	if orig < '0' || orig > '9' {
		return orig
	}
	return '0' + (orig-'0'+byte(1+rand.IntN(9)))%10
}
