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

// maxData caps the length a data block may claim, on either side. Blocks
// are streamed, never buffered whole; the cap only turns an absurd claim
// into a clean framing error instead of a multi-gigabyte copy.
const maxData = 1 << 30

// injectBytes is how many bytes of a value an error with inject overwrites:
// the original Vaurien's 100 random bytes, written over the middle of the
// value instead of inserted, so that the length the client reads still holds.
const injectBytes = 100

var (
	errLongLine    = errors.New("line longer than the read buffer")
	errBadResponse = errors.New("malformed response line")
	errTooLarge    = fmt.Errorf("data block larger than %d bytes", maxData)
)

// respKind is what the first line of a response announces.
type respKind uint8

const (
	respLine  respKind = iota // the whole response: STORED, END, HD, EN, an error...
	respValue                 // VALUE: a data block, then more VALUE blocks until END
	respVA                    // VA: a data block, and that is all
	respList                  // STAT, ITEM, PREFIX: more lines until END
	respMN                    // MN, the end of a run of quiet requests
)

// classifyResponse reads the first line of a response; size is the length
// of the data block that follows VALUE or VA.
func classifyResponse(line []byte) (k respKind, size int64, err error) {
	switch {
	case bytes.HasPrefix(line, []byte("VALUE ")):
		// VALUE <key> <flags> <bytes> [<cas unique>]
		size, err = sizeField(line, 3)
		return respValue, size, err
	case bytes.HasPrefix(line, []byte("VA ")):
		// VA <size> <flags>*
		size, err = sizeField(line, 1)
		return respVA, size, err
	case bytes.HasPrefix(line, []byte("STAT ")), bytes.HasPrefix(line, []byte("ITEM ")), bytes.HasPrefix(line, []byte("PREFIX ")):
		return respList, 0, nil
	case bytes.Equal(line, []byte("MN\r\n")):
		return respMN, 0, nil
	}
	return respLine, 0, nil
}

// sizeField parses the i-th space-separated field of a response line as a
// data length: plain decimal digits, at most maxData.
func sizeField(line []byte, i int) (int64, error) {
	line = commandLine(line)
	for ; i > 0; i-- {
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			return 0, errBadResponse
		}
		line = line[sp+1:]
	}
	if sp := bytes.IndexByte(line, ' '); sp >= 0 {
		line = line[:sp]
	}
	n, ok := kit.Decimal(line)
	switch {
	case !ok:
		return 0, errBadResponse
	case n > maxData:
		return 0, errTooLarge
	}
	return int64(n), nil
}

// readLine returns the next line with its "\n". A line that does not fit
// the reader's buffer is an error: memcached's response lines are short.
func readLine(br source) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == nil {
		return line, nil
	}
	if err == bufio.ErrBufferFull {
		return nil, errLongLine
	}
	if err == io.EOF && len(line) > 0 {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

// copyN moves exactly n bytes from br to w through br's own buffer, or
// socket to socket for the kit's Reader when the block is large. It is
// io.CopyN without the LimitedReader and the 32 KiB buffer that io.Copy
// allocates on its way into a TCP connection: nothing is allocated, however
// large the block.
func copyN(w io.Writer, br source, n int64) (int64, error) {
	if r, ok := br.(*kit.Reader); ok {
		return r.CopyN(w, n)
	}
	var done int64
	for done < n {
		avail := br.Buffered()
		if avail == 0 {
			if _, err := br.Peek(1); err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return done, err
			}
			avail = br.Buffered()
		}
		k := int(min(int64(avail), n-done))
		b, _ := br.Peek(k)
		m, err := w.Write(b)
		br.Discard(m)
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// unit says how much of the backend's stream answers one record and what
// to do to it on the way.
type unit struct {
	run     bool   // responses up to and including an MN line (a run of quiet requests)
	swallow bool   // the MN was the proxy's own: do not relay it
	corrupt bool   // error with inject: overwrite the middle of the first value
	reply   []byte // for corrupt: the error line that replaces an answer without a value
}

// source is what the framer reads answers from: the kit's Reader on a
// connection, a bufio.Reader in tests.
type source interface {
	ReadSlice(delim byte) ([]byte, error)
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
	Buffered() int
}

// framer relays framed responses from a backend reader.
type framer struct {
	br source
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
	m, err := copyN(w, f.br, n)
	if w != io.Discard {
		f.n += m
	}
	return err
}

// relay copies one unit from the backend to w. With corrupt, an answer
// whose first response carries a non-empty value gets that value's middle
// overwritten (lengths unchanged, so the client stays in step); any other
// answer is read and dropped, and u.reply is written in its place.
func (f *framer) relay(w io.Writer, u unit) error {
	first := true
	out := w
	pending := u.corrupt
	for {
		line, err := readLine(f.br)
		if err != nil {
			return err
		}
		k, size, err := classifyResponse(line)
		if err != nil {
			return fmt.Errorf("%w: %q", err, truncate(line))
		}
		if first && u.corrupt && ((k != respValue && k != respVA) || size == 0) {
			out = io.Discard
			pending = false
		}
		first = false
		if k == respMN && u.run {
			if out == io.Discard {
				if err := f.write(w, u.reply); err != nil {
					return err
				}
			}
			if u.swallow {
				return nil
			}
			return f.write(w, line)
		}
		if err := f.response(out, line, k, size, &pending); err != nil {
			return err
		}
		if !u.run {
			if out == io.Discard {
				return f.write(w, u.reply)
			}
			return nil
		}
	}
}

// response relays the rest of one response whose first line is line.
func (f *framer) response(w io.Writer, line []byte, k respKind, size int64, corrupt *bool) error {
	if err := f.write(w, line); err != nil {
		return err
	}
	switch k {
	case respVA:
		return f.block(w, size, corrupt)
	case respValue:
		for {
			if err := f.block(w, size, corrupt); err != nil {
				return err
			}
			line, err := readLine(f.br)
			if err != nil {
				return err
			}
			k, size, err = classifyResponse(line)
			if err != nil {
				return fmt.Errorf("%w: %q", err, truncate(line))
			}
			if err := f.write(w, line); err != nil {
				return err
			}
			if k != respValue {
				return nil // END, or the error line memcached sends instead
			}
		}
	case respList:
		for {
			line, err := readLine(f.br)
			if err != nil {
				return err
			}
			if err := f.write(w, line); err != nil {
				return err
			}
			if k, _, _ := classifyResponse(line); k != respList {
				return nil // END, or an error line
			}
		}
	}
	return nil
}

// block relays a data block of size bytes and its CRLF, overwriting the
// middle of the first one when corrupt is still pending.
func (f *framer) block(w io.Writer, size int64, corrupt *bool) error {
	if !*corrupt || size == 0 {
		return f.copy(w, size+2)
	}
	*corrupt = false
	k := min(size, injectBytes)
	head := (size - k) / 2
	if err := f.copy(w, head); err != nil {
		return err
	}
	// The overwritten bytes are read first, so that a truncated answer
	// gets no junk.
	if _, err := f.br.Discard(int(k)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
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

// truncate shortens a line for an error message.
func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
