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
	maxHeaderLine = 32      // a longer length line ("$536870912\r\n") is not RESP
	maxFastDigits = 18      // the digits headerLine's quick pass reads without overflow
	maxPending    = 1 << 53 // the values a reply may announce: a hostile count cannot overflow
	maxPushKind   = 12      // the longest push kind looked for ("punsubscribe")
	injectMax     = 100     // the most bytes a corruption replaces, as the original Vaurien
)

// ProtocolError reports bytes that are not RESP: from the client, the rest
// of the stream goes raw; from the backend, the connection closes.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "resp protocol error: " + e.Msg }

func protoErr(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

var (
	errLineTooLong = &ProtocolError{Msg: "length line too long"}
	errBadLength   = &ProtocolError{Msg: "invalid length"}
	errNoCRLF      = &ProtocolError{Msg: "value not terminated by CRLF"}
)

func isProtocolError(err error) bool {
	var pe *ProtocolError
	return errors.As(err, &pe)
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// headerLine reads the length or count line that starts b: its number and
// its length, CRLF included, or a length of 0 while it is not all in b.
func headerLine(b []byte) (n int64, size int, err error) {
	i := 1
	for ; i < len(b) && i <= maxFastDigits; i++ {
		c := b[i]
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	if i > 1 && i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
		return n, i + 2, nil
	}
	j := bytes.IndexByte(b[:min(len(b), maxHeaderLine)], '\n')
	if j < 0 {
		if len(b) >= maxHeaderLine {
			return 0, 0, errLineTooLong
		}
		return 0, 0, nil
	}
	n, err = parseLength(b[:j+1])
	return n, j + 1, err
}

// parseLength reads the signed decimal of a length or integer line: the
// bytes between the type byte and the CRLF.
func parseLength(line []byte) (int64, error) {
	if len(line) < 4 || line[len(line)-2] != '\r' {
		return 0, errBadLength
	}
	digits, neg := line[1:len(line)-2], line[1] == '-'
	if neg {
		digits = digits[1:]
	}
	n, ok := kit.Decimal(digits)
	if !ok || n > 1<<63 || (n == 1<<63 && !neg) {
		return 0, errBadLength
	}
	if neg {
		return -int64(n), nil
	}
	return int64(n), nil
}

// header copies the length line the reader is at to w and returns its
// number.
func (r *reader) header(w io.Writer) (int64, error) {
	for {
		n, size, err := headerLine(r.Bytes())
		if err != nil {
			return 0, err
		}
		if size > 0 {
			_, err := w.Write(r.Bytes()[:size])
			r.Discard(size)
			return n, err
		}
		if err := r.More(); err == bufio.ErrBufferFull {
			return 0, errLineTooLong
		} else if err != nil {
			return 0, eofIsUnexpected(err)
		}
	}
}

// pushKind is pushKind on the push the reader is at: it reads no further
// than the push's first element.
func (r *reader) pushKind() ([]byte, error) {
	for {
		b := r.Bytes()
		if kind, done := pushKind(b); done || len(b) == r.Size() {
			return kind, nil
		}
		if err := r.More(); err != nil {
			return nil, eofIsUnexpected(err)
		}
	}
}

// pushKind reads the kind of the push that starts b: the payload of its
// first element when that is a bulk string of at most maxPushKind bytes,
// nil otherwise. done is false while b is too short to tell.
func pushKind(b []byte) (kind []byte, done bool) {
	n, size, err := headerLine(b)
	if err == nil && size > 0 && n > 0 {
		if len(b) == size {
			return nil, false
		}
		if b = b[size:]; b[0] != '$' {
			return nil, true
		}
		n, size, err = headerLine(b)
		if err == nil && size > 0 && n >= 0 && n <= maxPushKind {
			if len(b) < size+int(n) {
				return nil, false
			}
			return b[size : size+int(n)], true
		}
	}
	return nil, err != nil || size > 0
}

// whole returns the length of the reply the reader holds whole when it is
// a simple string, error or bulk string, as most are, and 0 otherwise:
// such a reply is relayed in one write, without walk.
func (r *reader) whole() int {
	b := r.Bytes()
	if len(b) < 4 {
		return 0
	}
	switch b[0] {
	case '+', '-':
		i := bytes.IndexByte(b, '\n')
		if i < 0 || b[i-1] != '\r' {
			return 0
		}
		return i + 1
	case '$':
		n, size := shortLength(b)
		if size == 0 {
			var err error
			if n, size, err = headerLine(b); err != nil || size == 0 {
				return 0
			}
		}
		if n < 0 || n > r.maxBulk || int64(len(b)-size) < n+2 {
			return 0
		}
		end := size + int(n) + 2
		if b[end-2] != '\r' || b[end-1] != '\n' {
			return 0
		}
		return end
	}
	return 0
}

// walk copies pending whole RESP2 or RESP3 values from r to w. It counts
// the values still due instead of recursing, so that depth costs no stack.
func (r *reader) walk(w io.Writer, pending int64, cor *corrupter) error {
	for pending > 0 {
		b, err := r.Peek(1)
		if err != nil {
			return eofIsUnexpected(err)
		}
		t, n := b[0], int64(0) // n: the values t announces besides itself
		switch t {
		case '+', '-', ':', '_', '#', ',', '(':
			err = r.simple(w, t, cor)
		case '$', '!', '=':
			var size int64
			size, err = r.header(w)
			switch {
			case err != nil, size == -1 && t == '$': // RESP2 null bulk string
			case size < 0 || size > r.maxBulk:
				err = protoErr("bulk length %d out of range", size)
			case t == '=' && size < 4:
				err = protoErr("verbatim string without format")
			case t == '=':
				err = r.payload(w, size, cor, 4) // keep the "txt:" format prefix intact
			default:
				err = r.payload(w, size, cor, 0)
			}
		case '*', '~', '>', '%', '|':
			n, err = r.header(w)
			switch {
			case err != nil:
			case n == -1 && t == '*': // RESP2 null array
				n = 0
			case n < 0 || n > maxPending:
				err = protoErr("aggregate count %d out of range", n)
			case t == '%':
				n *= 2
			case t == '|': // its pairs, then the value it annotates
				n = 2*n + 1
			}
		default:
			err = protoErr("unknown type byte %q", t)
		}
		if err != nil {
			return err
		}
		if pending += n - 1; pending > maxPending {
			return protoErr("aggregate too large")
		}
	}
	return nil
}

// payload copies n bytes and their CRLF to w. A value larger than the
// buffer is streamed (spliced when it can), never held whole.
func (r *reader) payload(w io.Writer, n int64, cor *corrupter, skip int64) error {
	dst := cor.wrap(w, skip, n, 0, 256)
	if n+2 > int64(r.Size()) {
		if _, err := r.CopyN(dst, n); err != nil {
			return err
		}
		n, dst = 0, w
	}
	b, err := r.Peek(int(n) + 2)
	if err != nil {
		return eofIsUnexpected(err)
	}
	if b[n] != '\r' || b[n+1] != '\n' {
		return errNoCRLF
	}
	_, err = dst.Write(b)
	r.Discard(len(b))
	return err
}

// simple copies a line-valued item (+ - : _ # , ( ) to w, checking what
// RESP3 constrains of its content. A line longer than the buffer is
// streamed, and not corrupted.
func (r *reader) simple(w io.Writer, t byte, cor *corrupter) error {
	for total := 0; ; {
		b := r.Bytes()
		i := bytes.IndexByte(b, '\n')
		if i < 0 && len(b) == r.Size() {
			// Streamed but for its last byte, which may be the CR.
			if total += len(b) - 1; int64(total) > r.maxBulk {
				return protoErr("line longer than %d bytes", r.maxBulk)
			}
			_, err := w.Write(b[:len(b)-1])
			r.Discard(len(b) - 1)
			if err != nil {
				return err
			}
			continue
		}
		if i < 0 {
			if err := r.More(); err != nil {
				return eofIsUnexpected(err)
			}
			continue
		}
		line, end := b[:i+1], i-1
		if line[end] != '\r' {
			return errNoCRLF
		}
		if total == 0 {
			switch content := line[1:end]; {
			case t == '_' && len(content) != 0:
				return protoErr("null with content")
			case t == '#' && (len(content) != 1 || (content[0] != 't' && content[0] != 'f')):
				return protoErr("invalid boolean")
			case (t == ',' || t == '(') && len(content) == 0:
				return protoErr("empty number")
			case t == '+' || t == '-':
				w = cor.wrap(w, 1, int64(end), 'a', 26)
			case t == ':':
				if _, err := parseLength(line); err != nil {
					return protoErr("invalid integer")
				}
				from := int64(1)
				if content[0] == '-' {
					from = 2
				}
				w = cor.wrap(w, from, int64(end), '0', 10)
			}
		}
		_, err := w.Write(line)
		r.Discard(len(line))
		return err
	}
}

// corrupter overwrites a few bytes in the middle of a reply's first string,
// error or integer, never a length nor a line's CR LF: the client stays in
// sync and reads a wrong value rather than garbage.
type corrupter struct {
	done     bool
	w        io.Writer
	off      int64 // bytes written through
	from, to int64 // the range overwritten
	lo       byte  // the class of the bytes written instead: lo to lo+n-1
	n        int
	buf      [injectMax]byte
}

// wrap returns w, or c writing to w when the value at [from, to) of what
// goes through is the one to damage: a quarter of it (at least one byte,
// at most injectMax, centred) becomes random bytes of [lo, lo+n).
func (c *corrupter) wrap(w io.Writer, from, to int64, lo byte, n int) io.Writer {
	if c == nil || c.done || to <= from {
		return w
	}
	k := min(max((to-from)/4, 1), injectMax)
	c.done, c.w, c.off, c.lo, c.n = true, w, 0, lo, n
	c.from = from + (to-from-k)/2
	c.to = c.from + k
	return c
}

func (c *corrupter) Write(p []byte) (int, error) {
	start, end := c.off, c.off+int64(len(p))
	c.off = end
	if end <= c.from || start >= c.to {
		return c.w.Write(p)
	}
	a, b := max(c.from, start)-start, min(c.to, end)-start
	out := c.buf[:b-a]
	for i := range out {
		// Another byte of the class, so that a corrupted value always differs.
		if orig := int(p[a+int64(i)] - c.lo); orig >= c.n {
			out[i] = c.lo + byte(rand.IntN(c.n))
		} else {
			out[i] = c.lo + byte((orig+1+rand.IntN(c.n-1))%c.n)
		}
	}
	for _, part := range [][]byte{p[:a], out, p[b:]} {
		if _, err := c.w.Write(part); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}
