package httpproto

import (
	"bufio"
	"io"
	"math"
	"math/rand/v2"

	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// bulkMin is the size from which the data of a body goes through
// Reader.CopyN, which moves it socket to socket when it can.
const bulkMin = 64 << 10

// injectLen is how many body bytes an error fault with inject corrupts,
// as many as the original Vaurien inserted; they are replaced rather than
// inserted so that Content-Length and chunk sizes stay true.
const injectLen = 100

type chunkState uint8

const (
	chunkSize    chunkState = iota // expecting a chunk-size line
	chunkData                      // inside chunk data
	chunkDataEnd                   // expecting the CRLF after chunk data
	chunkTrailer                   // inside the trailer section
)

// body relays one framed message body exactly as it came: chunk-size
// lines, extensions, data, trailers, line endings and all. It hands out
// pieces of its reader's buffer, so a body of any size streams through
// without being held, and a claimed length is only ever counted down.
type body struct {
	r       *kit.Reader
	kind    bodyKind
	n       int64 // bytes left of the body (length) or of the chunk (chunked data)
	state   chunkState
	done    bool
	line    []byte // a line longer than r's buffer, gathered
	trailer int    // trailer bytes so far

	rest []byte // Read: the part of the last piece not returned yet
	err  error  // Read: the error that came with it

	inject  bool
	dataOff int64 // data bytes produced so far
	cs, ce  int64 // data byte range to corrupt; ce == 0 until known
}

// reset prepares b for the next body from r.
func (b *body) reset(r *kit.Reader, kind bodyKind, length int64, inject bool) {
	*b = body{r: r, kind: kind, n: length, line: b.line[:0], inject: inject}
	if inject && kind == bodyLength {
		b.cs = max(0, length/2-injectLen/2)
		b.ce = min(length, b.cs+injectLen)
	}
}

// next returns the next piece of raw body bytes, valid until the following
// call, and io.EOF after the last. Bytes consumed before an error are
// returned with it, so that a fallback relay loses none.
func (b *body) next() ([]byte, error) {
	if b.done {
		return nil, io.EOF
	}
	switch b.kind {
	case bodyLength:
		p, err := b.data(b.n)
		b.n -= int64(len(p))
		if b.n == 0 {
			b.done = true
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return p, err
	case bodyEOF:
		p, err := b.data(math.MaxInt64)
		if err == io.EOF {
			b.done = true
		}
		return p, err
	case bodyChunked:
		return b.chunk()
	}
	b.done = true
	return nil, io.EOF
}

func (b *body) chunk() ([]byte, error) {
	switch b.state {
	case chunkSize:
		line, err := b.readLine()
		if err != nil {
			return line, err
		}
		n, err := parseChunkSize(line)
		if err != nil {
			return line, err
		}
		if n == 0 {
			b.state = chunkTrailer
		} else {
			b.state, b.n = chunkData, n
			if b.inject && b.ce == 0 { // the middle of the first chunk
				b.cs = b.dataOff + max(0, n/2-injectLen/2)
				b.ce = min(b.dataOff+n, b.cs+injectLen)
			}
		}
		return line, nil
	case chunkData:
		p, err := b.data(b.n)
		b.n -= int64(len(p))
		if b.n == 0 {
			b.state = chunkDataEnd
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return p, err
	case chunkDataEnd:
		line, err := b.readLine()
		if err == nil && !isBlank(line) {
			err = syntaxError("chunk longer than its size")
		}
		b.state = chunkSize
		return line, err
	}
	line, err := b.readLine()
	if err != nil {
		return line, err
	}
	b.trailer += len(line)
	if b.trailer > maxHead {
		return line, errHeadTooLarge
	}
	if err := checkTrailer(line); err != nil {
		return line, err
	}
	if isBlank(line) {
		b.done = true
	}
	return line, nil
}

// data returns up to max bytes of what r holds, reading only when it holds
// none.
func (b *body) data(max int64) ([]byte, error) {
	if b.r.Buffered() == 0 {
		if _, err := b.r.Peek(1); err != nil {
			return nil, err
		}
	}
	p := b.r.Bytes()
	if int64(len(p)) > max {
		p = p[:max]
	}
	b.r.Discard(len(p))
	b.corrupt(p)
	return p, nil
}

// readLine returns one line with its ending.
func (b *body) readLine() ([]byte, error) {
	frag, err := b.r.ReadSlice('\n')
	if err == nil {
		return frag, nil
	}
	b.line = append(b.line[:0], frag...)
	for err == bufio.ErrBufferFull {
		if len(b.line) > maxLine {
			return b.line, errLineTooLong
		}
		frag, err = b.r.ReadSlice('\n')
		b.line = append(b.line, frag...)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err == nil && len(b.line) > maxLine {
		err = errLineTooLong
	}
	return b.line, err
}

// corrupt flips the bytes of p that fall in the range chosen for an
// injected error; a close-delimited body gets the middle of its first piece.
func (b *body) corrupt(p []byte) {
	start := b.dataOff
	b.dataOff += int64(len(p))
	if !b.inject || len(p) == 0 {
		return
	}
	if b.ce == 0 {
		b.cs = start + max(0, int64(len(p))/2-injectLen/2)
		b.ce = min(b.dataOff, b.cs+injectLen)
	}
	for i := max(b.cs, start); i < min(b.ce, b.dataOff); i++ {
		p[i-start] ^= byte(1 + rand.IntN(255)) // never 0: every byte changes
	}
}

// WriteTo copies the rest of the body to w. It returns nil at the body's
// end. Large data goes through Reader.CopyN, which splices it when w is
// the other side's Writer.
func (b *body) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if n := b.dataLeft(); n >= bulkMin && !b.inject && b.r.Buffered() == 0 {
			m, err := b.r.CopyN(w, n)
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

// dataLeft is how many data bytes may be copied blindly from here.
func (b *body) dataLeft() int64 {
	switch {
	case b.done:
		return 0
	case b.kind == bodyLength:
		return b.n
	case b.kind == bodyChunked && b.state == chunkData:
		return b.n
	case b.kind == bodyEOF:
		return math.MaxInt64
	}
	return 0
}

// advance accounts for m data bytes moved by CopyN, which ended with err.
func (b *body) advance(m int64, err error) error {
	b.dataOff += m
	switch b.kind {
	case bodyLength:
		b.n -= m
		b.done = b.n == 0
	case bodyChunked:
		b.n -= m
		if b.n == 0 {
			b.state = chunkDataEnd
		}
	case bodyEOF:
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			b.done = true
			return nil
		}
	}
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Read lets a filter pull the body; it ends with io.EOF at the body's end.
func (b *body) Read(p []byte) (int, error) {
	for len(b.rest) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		b.rest, b.err = b.next()
	}
	n := copy(p, b.rest)
	b.rest = b.rest[n:]
	return n, nil
}
