package redis

import (
	"bytes"
	"io"
)

const (
	// maxArgs is how many leading arguments the scanner remembers: enough
	// to recognise the commands that change the connection's state
	// (CLIENT REPLY OFF takes three; a fourth makes it another command).
	maxArgs = 4
	// maxArgc is redis' own bound on a request's argument count.
	maxArgc = 1<<31 - 1
	// maxFastDigits is how many digits a length may have for headerLine's
	// quick reading, which cannot overflow with them.
	maxFastDigits = 18
)

// scan frames one client request inside the bytes buffered so far. It is
// resumable: when the request is not complete it keeps its place, and the
// next call, given the same request's bytes with more after them (perhaps
// moved in memory), goes on from there. Redis requests are either an array
// of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") or an inline line
// ("GET k\r\n").
type scan struct {
	pos    int   // bytes scanned, always at a boundary between elements
	argc   int64 // elements the header announced; -1 before the header
	seen   int64 // elements scanned whole
	inline bool
	nargs  int
	args   [maxArgs][2]int // offsets of the first arguments in the request
}

func (s *scan) reset() {
	*s = scan{argc: -1}
}

// arg returns argument i from the request's bytes, or nil when it was not
// seen (yet).
func (s *scan) arg(b []byte, i int) []byte {
	if i >= s.nargs {
		return nil
	}
	return b[s.args[i][0]:s.args[i][1]]
}

// step scans b, the request's bytes buffered so far, and reports whether
// the request is complete: it is then b[:s.pos]. full says that b is all
// that can be buffered, so an inline line that has not ended is too long.
func (s *scan) step(b []byte, maxBulk int64, full bool) (bool, error) {
	if s.argc < 0 {
		if len(b) == 0 {
			return false, nil
		}
		if b[0] != '*' {
			return s.line(b, full)
		}
		n, size, err := headerLine(b)
		if err != nil {
			return false, err
		}
		if size == 0 {
			if full {
				return false, errLineTooLong
			}
			return false, nil
		}
		if n > maxArgc {
			return false, protoErr("invalid multibulk length %d", n)
		}
		s.argc = max(n, 0) // redis takes *0 and *-1 as an empty request
		s.pos = size
	}
	for s.seen < s.argc {
		rest := b[s.pos:]
		if len(rest) == 0 {
			return false, nil
		}
		if rest[0] != '$' {
			return false, protoErr("expected '$', got %q", rest[0])
		}
		n, size, err := headerLine(rest)
		if err != nil || size == 0 {
			return false, err
		}
		if n < 0 || n > maxBulk {
			return false, protoErr("invalid bulk length %d", n)
		}
		end := int64(size) + n + 2
		if int64(len(rest)) < end {
			return false, nil
		}
		if rest[end-2] != '\r' || rest[end-1] != '\n' {
			return false, errNoCRLF
		}
		if s.nargs < maxArgs {
			start := s.pos + size
			s.args[s.nargs] = [2]int{start, start + int(n)}
			s.nargs++
		}
		s.pos += int(end)
		s.seen++
	}
	return true, nil
}

// headerLine reads the length or count line that starts b: its number and
// its length, CRLF included, or a length of 0 while it is not all in b.
func headerLine(b []byte) (n int64, size int, err error) {
	// The common line, a few digits, in one pass.
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

// line scans an inline request: one line, arguments separated by blanks.
// Quoting is not interpreted (redis would); only the arguments that change
// the connection's state are read, and those never need quotes.
func (s *scan) line(b []byte, full bool) (bool, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if full {
			return false, protoErr("inline request too long")
		}
		return false, nil
	}
	s.inline = true
	s.pos = i + 1
	s.argc = 0
	for j := 0; j < i; {
		for j < i && isBlank(b[j]) {
			j++
		}
		k := j
		for k < i && !isBlank(b[k]) {
			k++
		}
		if k > j {
			if s.nargs < maxArgs {
				s.args[s.nargs] = [2]int{j, k}
				s.nargs++
			}
			s.argc++
		}
		j = k
	}
	s.seen = s.argc
	return true, nil
}

// isBlank is C's isspace, what redis splits inline arguments on.
func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

// scanRequest buffers the next request, or as much of it as fits, and
// frames it into sc: it reports whether the whole request is buffered. On
// io.EOF the bytes of a request cut short stay buffered.
func (r *reader) scanRequest(sc *scan) (bool, error) {
	sc.reset()
	for {
		b := r.bytes()
		full := len(b) == r.Size()
		if full && b[0] != '*' && r.growInline() {
			continue
		}
		done, err := sc.step(b, r.maxBulk, full)
		if err != nil || done {
			return done, err
		}
		if full {
			return false, nil // too large to hold: the rest is streamed
		}
		if err := r.more(); err != nil {
			return false, err
		}
	}
}

// copyRequest moves the request that scanRequest framed to w: what the
// scanner saw at once, then the elements that did not fit, streamed.
func (r *reader) copyRequest(w io.Writer, sc *scan, complete bool) error {
	b, _ := r.Peek(sc.pos)
	if _, err := w.Write(b); err != nil {
		return err
	}
	r.Discard(len(b))
	if complete {
		return nil
	}
	return r.rest(w, sc)
}

// rest streams the elements of a request that step did not reach because
// they did not fit in the buffer: each bulk's header is checked, its
// payload copied through without being held.
func (r *reader) rest(w io.Writer, s *scan) error {
	for ; s.seen < s.argc; s.seen++ {
		b, err := r.fill(1)
		if err != nil {
			return eofIsUnexpected(err)
		}
		if b[0] != '$' {
			return protoErr("expected '$', got %q", b[0])
		}
		line, err := r.peekLine(maxHeaderLine)
		if err != nil {
			return eofIsUnexpected(err)
		}
		n, err := parseLength(line)
		if err != nil {
			return err
		}
		if n < 0 || n > r.maxBulk {
			return protoErr("invalid bulk length %d", n)
		}
		if _, err := w.Write(line); err != nil {
			return err
		}
		r.Discard(len(line))
		if err := r.payload(w, n, nil, 0); err != nil {
			return err
		}
	}
	return nil
}
