package memcache

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
	// maxData caps the length a data block may claim, on either side: it
	// turns an absurd claim into a clean failure, not a huge copy.
	maxData = 1 << 30
	// injectBytes is what an error with inject overwrites: the original
	// Vaurien's 100 random bytes, over the middle of the value rather than
	// inserted, so that the length the client reads still holds.
	injectBytes = 100
)

var (
	errLongLine    = errors.New("line longer than the read buffer")
	errBadResponse = errors.New("malformed response line")
	errTooLarge    = fmt.Errorf("data block larger than %d bytes", maxData)
)

// FramingError reports a backend answer that is not memcache's text
// protocol; the connection is closed.
type FramingError struct{ Err error }

func (e *FramingError) Error() string { return "read memcache response: " + e.Err.Error() }

func (e *FramingError) Unwrap() error { return e.Err }

// respKind is what the first line of a response announces.
type respKind uint8

const (
	respLine  respKind = iota // the whole response: STORED, END, HD, EN, an error...
	respValue                 // VALUE: a data block, then more VALUE blocks until END
	respVA                    // VA: a data block, and that is all
	respList                  // STAT, ITEM, PREFIX: more lines until END
	respMN                    // MN, the end of a run of quiet requests
)

// classifyResponse reads a response's first line; size is the length of
// the data block after VALUE or VA.
func classifyResponse(line []byte) (respKind, int64, error) {
	k, field := respValue, 3 // VALUE <key> <flags> <bytes> [<cas unique>]
	switch {
	case bytes.HasPrefix(line, []byte("VALUE ")):
	case bytes.HasPrefix(line, []byte("VA ")):
		k, field = respVA, 1 // VA <size> <flags>*
	case bytes.HasPrefix(line, []byte("STAT ")), bytes.HasPrefix(line, []byte("ITEM ")), bytes.HasPrefix(line, []byte("PREFIX ")):
		return respList, 0, nil
	case bytes.Equal(line, []byte("MN\r\n")):
		return respMN, 0, nil
	default:
		return respLine, 0, nil
	}
	rest := commandLine(line)
	for range field {
		_, rest, _ = bytes.Cut(rest, []byte{' '})
	}
	rest, _, _ = bytes.Cut(rest, []byte{' '})
	n, ok := kit.Decimal(rest)
	if ok && n <= maxData {
		return k, int64(n), nil
	}
	err := errBadResponse
	if ok {
		err = errTooLarge
	}
	return k, 0, &FramingError{fmt.Errorf("%w: %q", err, line[:min(len(line), 64)])}
}

// unit says what of the backend's stream answers a request, and how.
type unit struct {
	run     bool   // responses up to and including an MN line (a run of quiet requests)
	swallow bool   // the MN was the proxy's own: do not relay it
	corrupt bool   // error with inject: overwrite the middle of the first value
	reply   []byte // for corrupt: the error line that replaces an answer without a value
}

type framer struct {
	br *kit.Reader
	n  int64 // bytes relayed (not those dropped), for byte accounting
}

func (f *framer) write(w io.Writer, b []byte) error {
	m, err := w.Write(b)
	if w != io.Discard {
		f.n += int64(m)
	}
	return err
}

func (f *framer) copy(w io.Writer, n int64) error {
	m, err := f.br.CopyN(w, n)
	if w != io.Discard {
		f.n += m
	}
	return err
}

// next reads a response line, which must fit the buffer, and classifies
// it; line is nil when it could not be read.
func (f *framer) next() (line []byte, k respKind, size int64, err error) {
	if line, err = f.br.ReadSlice('\n'); err == nil {
		k, size, err = classifyResponse(line)
		return line, k, size, err
	}
	if err == bufio.ErrBufferFull {
		err = &FramingError{errLongLine}
	} else if err == io.EOF && len(line) > 0 {
		err = io.ErrUnexpectedEOF
	}
	return nil, 0, 0, err
}

// relay copies one unit from the backend to w. With corrupt, an answer
// whose first response has a non-empty value gets its middle overwritten,
// lengths unchanged; any other answer is replaced by u.reply.
func (f *framer) relay(w io.Writer, u unit) error {
	out, pending := w, u.corrupt
	var mn []byte // the MN that ends the run
	for first := true; ; first = false {
		line, k, size, err := f.next()
		if err != nil {
			return err
		}
		if first && u.corrupt && ((k != respValue && k != respVA) || size == 0) {
			out, pending = io.Discard, false
		}
		if u.run && k == respMN {
			mn = line
			break
		}
		if err := f.response(out, line, k, size, &pending); err != nil {
			return err
		}
		if !u.run {
			break
		}
	}
	if u.corrupt && out == io.Discard {
		if err := f.write(w, u.reply); err != nil {
			return err
		}
	}
	if mn == nil || u.swallow {
		return nil
	}
	return f.write(w, mn)
}

// response relays one response after its first line: the data block of
// VALUE or VA, and more VALUE blocks or list lines up to END (or an error).
func (f *framer) response(w io.Writer, line []byte, k respKind, size int64, corrupt *bool) error {
	if err := f.write(w, line); err != nil {
		return err
	}
	switch k {
	case respVA:
		return f.block(w, size, corrupt)
	case respLine, respMN:
		return nil
	}
	for first := k; k == first; { // VALUE blocks, or list lines, up to what ends them
		if k == respValue {
			if err := f.block(w, size, corrupt); err != nil {
				return err
			}
		}
		var err error
		// A malformed VALUE line fails an answer of values, and ends a list.
		if line, k, size, err = f.next(); err != nil && (line == nil || first == respValue) {
			return err
		}
		if err := f.write(w, line); err != nil {
			return err
		}
	}
	return nil
}

// block relays a data block of size bytes and its CRLF, overwriting the
// middle of the first one when corrupt is still pending.
func (f *framer) block(w io.Writer, size int64, corrupt *bool) error {
	if !*corrupt {
		return f.copy(w, size+2)
	}
	*corrupt = false
	k := min(size, injectBytes)
	head := (size - k) / 2
	// Read the overwritten bytes first: a truncated answer gets no junk.
	if err := f.copy(w, head); err != nil {
		return err
	}
	if err := f.copy(io.Discard, k); err != nil {
		return err
	}
	var junk [injectBytes]byte
	for i := range junk[:k] {
		junk[i] = byte(rand.Uint32())
	}
	if err := f.write(w, junk[:k]); err != nil {
		return err
	}
	return f.copy(w, size-head-k+2)
}
