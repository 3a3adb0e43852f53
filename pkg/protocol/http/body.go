package httpproto

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"math/rand/v2"

	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// injectLen is how many body bytes an error fault with inject corrupts, as
// many as the original Vaurien inserted; they are replaced rather than
// inserted so that Content-Length and chunk sizes stay true.
const injectLen = 100

// bodyState is what a body expects next.
type bodyState uint8

const (
	sizeLine bodyState = iota // a chunk-size line
	inData                    // data, the body's or a chunk's
	dataEnd                   // the line ending after a chunk's data
	trailer                   // a trailer line
)

// body relays one framed message body exactly as it came: chunk-size
// lines, extensions, data, trailers, line endings and all. It hands out
// pieces of its reader's buffer, so a body of any size streams through
// without being held, and a claimed length is only ever counted down.
type body struct {
	r       *kit.Reader
	kind    bodyKind
	state   bodyState
	done    bool
	n       int64 // data bytes left, of the body or of the chunk
	trailer int   // trailer bytes so far

	inject  bool
	dataOff int64 // data bytes relayed so far
	cs, ce  int64 // data byte range to corrupt; ce == 0 until known
}

func (b *body) reset(r *kit.Reader, kind bodyKind, length int64, inject bool) {
	*b = body{r: r, kind: kind, n: length, inject: inject, done: kind == bodyNone}
	if kind == bodyEOF {
		b.n = math.MaxInt64
	}
	if kind != bodyChunked {
		b.state = inData
	}
}

// next returns the next piece of raw body bytes, valid until the next
// read, and io.EOF after the last. Bytes consumed before an error are
// returned with it, so that a fallback relay loses none.
func (b *body) next() ([]byte, error) {
	if b.done {
		return nil, io.EOF
	}
	if b.state != inData {
		line, err := b.readLine()
		if err == nil {
			err = b.endLine(line)
		}
		return line, err
	}
	if b.r.Buffered() == 0 {
		if err := b.r.More(); err != nil {
			return nil, b.advance(0, err)
		}
	}
	p := b.r.Bytes()
	p = p[:min(int64(len(p)), b.n)]
	b.r.Discard(len(p))
	if b.inject {
		b.corrupt(p)
	}
	return p, b.advance(int64(len(p)), nil)
}

// endLine moves a chunked body past line, with its ending.
func (b *body) endLine(line []byte) error {
	switch b.state {
	case sizeLine:
		n, err := parseChunkSize(line)
		if err != nil {
			return err
		}
		if n == 0 {
			b.state = trailer
			return nil
		}
		b.state, b.n = inData, n
	case dataEnd:
		if !isBlank(line) {
			return syntaxError("chunk longer than its size")
		}
		b.state = sizeLine
	default:
		if b.trailer += len(line); b.trailer > maxHead {
			return errHeadTooLarge
		}
		if b.done = isBlank(line); b.done {
			return nil
		}
		// A trailer line is checked as parseFields checks a header line.
		name, v, colon := bytes.Cut(trimEOL(line), []byte{':'})
		if !colon || !isToken(name) {
			return syntaxError("trailer field name")
		}
		if bytes.IndexByte(v, 0) >= 0 || bytes.IndexByte(v, '\r') >= 0 {
			return syntaxError("NUL or CR in a trailer field value")
		}
	}
	return nil
}

// advance accounts for m data bytes relayed, whose read ended with err.
func (b *body) advance(m int64, err error) error {
	b.dataOff += m
	b.n -= m
	switch {
	case b.kind == bodyEOF && (err == io.EOF || err == io.ErrUnexpectedEOF):
		b.done = true
		return nil
	case b.n == 0 && b.kind == bodyChunked:
		b.state = dataEnd
	case b.n == 0:
		b.done = true
	}
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readLine consumes the next line, with its ending. One longer than the
// buffer is gathered in a larger buffer, up to maxLine.
func (b *body) readLine() ([]byte, error) {
	line, err := b.r.PeekSlice('\n')
	if err == bufio.ErrBufferFull && b.r.Grow(maxLine+1) {
		line, err = b.r.PeekSlice('\n')
	}
	b.r.Discard(len(line))
	switch {
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	case len(line) > maxLine: // with bufio.ErrBufferFull or a line of maxLine+1
		err = errLineTooLong
	}
	return line, err
}

// corrupt changes the bytes of p (data from b.dataOff on) in the range
// chosen for an injected error, which the first piece chooses: the middle
// of the body, of its first chunk, or of itself when the body ends with
// the stream.
func (b *body) corrupt(p []byte) {
	start, end := b.dataOff, b.dataOff+int64(len(p))
	if b.ce == 0 {
		size := b.n
		if b.kind == bodyEOF {
			size = int64(len(p))
		}
		b.cs = start + max(0, size/2-injectLen/2)
		b.ce = min(start+size, b.cs+injectLen)
	}
	for i := max(b.cs, start); i < min(b.ce, end); i++ {
		p[i-start] ^= byte(1 + rand.IntN(255)) // never 0: every byte changes
	}
}

func (b *body) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		// CopyN splices the unread part of large data.
		if !b.done && b.state == inData && !b.inject {
			m, err := b.r.CopyN(w, b.n)
			total += m
			if err = b.advance(m, err); err != nil {
				return total, err
			}
			continue
		}
		p, err := b.next()
		if len(p) > 0 {
			m, werr := w.Write(p)
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
