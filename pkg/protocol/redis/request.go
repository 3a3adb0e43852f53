package redis

import (
	"bytes"
	"io"
)

const (
	// maxArgs is how many leading arguments the scanner remembers: enough
	// for CLIENT REPLY OFF, which a fourth makes another command.
	maxArgs = 4
	maxArgc = 1<<31 - 1 // redis' own bound
)

// scan frames one client request, an array of bulk strings or an inline
// line, inside the bytes buffered so far. It is resumable: given the same
// bytes with more after them (perhaps moved in memory), it goes on.
type scan struct {
	pos   int   // bytes scanned, always at a boundary between elements
	argc  int64 // elements the header announced; -1 before the header
	seen  int64 // elements scanned whole
	nargs int
	args  [maxArgs][2]int // offsets of the first arguments in the request
}

func (s *scan) reset() { *s = scan{argc: -1} }

// arg returns argument i from the request's bytes, or nil when it was not
// seen (yet).
func (s *scan) arg(b []byte, i int) []byte {
	if i >= s.nargs {
		return nil
	}
	return b[s.args[i][0]:s.args[i][1]]
}

func (s *scan) add(from, to int) {
	if s.nargs < maxArgs {
		s.args[s.nargs] = [2]int{from, to}
		s.nargs++
	}
}

// step scans b, the request's bytes buffered so far, and reports whether
// the request is complete: it is then b[:s.pos]. full says that b is all
// that can be buffered.
func (s *scan) step(b []byte, maxBulk int64, full bool) (bool, error) {
	if s.argc < 0 {
		if len(b) == 0 || b[0] != '*' {
			return s.line(b, full)
		}
		n, size := shortLength(b)
		var err error
		if size == 0 {
			n, size, err = headerLine(b)
		}
		if size == 0 && full {
			err = errLineTooLong
		}
		if err != nil || size == 0 {
			return false, err
		}
		if n > maxArgc {
			return false, protoErr("invalid multibulk length %d", n)
		}
		s.argc = max(n, 0) // redis takes *0 and *-1 as an empty request
		s.pos = size
	}
	// This loop runs for every argument of every request: it works on
	// locals, saved in s when it returns.
	pos, seen := s.pos, s.seen
	for ; seen < s.argc; seen++ {
		s.pos, s.seen = pos, seen
		if pos >= len(b) {
			return false, nil
		}
		if b[pos] != '$' {
			return false, protoErr("expected '$', got %q", b[pos])
		}
		n, size := shortLength(b[pos:])
		if size == 0 {
			var err error
			if n, size, err = headerLine(b[pos:]); err != nil || size == 0 {
				return false, err
			}
		}
		if n < 0 || n > maxBulk {
			return false, protoErr("invalid bulk length %d", n)
		}
		end := int64(size) + n + 2
		if int64(len(b)-pos) < end {
			return false, nil
		}
		if e := pos + int(end); string(b[e-2:e]) != "\r\n" {
			return false, errNoCRLF
		}
		s.add(pos+size, pos+size+int(n))
		pos += int(end)
	}
	s.pos, s.seen = pos, seen
	return true, nil
}

// line scans an inline request, arguments split on C's isspace as redis
// does. Quotes are not interpreted: the arguments read never need them.
func (s *scan) line(b []byte, full bool) (bool, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if full {
			return false, protoErr("inline request too long")
		}
		return false, nil
	}
	s.pos, s.argc = i+1, 0
	for j := 0; j < i; {
		k := j
		for k < i && !isBlank(b[k]) {
			k++
		}
		if k > j {
			s.add(j, k)
			s.argc++
		}
		j = k + 1
	}
	s.seen = s.argc
	return true, nil
}

// shortLength reads a length line of one or two digits, the common case,
// faster than headerLine, which it leaves the rest to (size 0).
func shortLength(b []byte) (n int64, size int) {
	if len(b) < 5 {
		return 0, 0
	}
	hi, lo := b[1]-'0', b[2]-'0'
	switch {
	case hi > 9:
	case b[2] == '\r' && b[3] == '\n':
		return int64(hi), 4
	case lo <= 9 && b[3] == '\r' && b[4] == '\n':
		return int64(hi*10 + lo), 5
	}
	return 0, 0
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

// scanRequest buffers the next request, or as much of it as fits, and
// frames it into sc: it reports whether the whole request is buffered. On
// io.EOF the bytes of a request cut short stay buffered.
func (r *reader) scanRequest(sc *scan) (bool, error) {
	sc.reset()
	for {
		b := r.Bytes()
		full := len(b) == r.Size()
		if full && b[0] != '*' && r.grow > 0 && r.Grow(r.grow) {
			continue
		}
		done, err := sc.step(b, r.maxBulk, full)
		if err != nil || done || full {
			return done, err // not done when full: the rest is streamed
		}
		if err := r.More(); err != nil {
			return false, err
		}
	}
}

// copyRequest moves the request scanRequest framed to w, streaming the
// elements that did not fit in the buffer.
func (r *reader) copyRequest(w io.Writer, s *scan) error {
	b, _ := r.Peek(s.pos)
	if _, err := w.Write(b); err != nil {
		return err
	}
	r.Discard(len(b))
	for ; s.seen < s.argc; s.seen++ {
		b, err := r.Peek(1)
		if err != nil {
			return eofIsUnexpected(err)
		}
		if b[0] != '$' {
			return protoErr("expected '$', got %q", b[0])
		}
		n, err := r.header(w)
		if err == nil && (n < 0 || n > r.maxBulk) {
			err = protoErr("invalid bulk length %d", n)
		}
		if err == nil {
			err = r.payload(w, n, nil, 0)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
