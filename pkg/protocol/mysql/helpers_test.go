package mysql

import (
	"bytes"
	"encoding/binary"
)

// pkt renders one packet (a payload under maxChunk) with its header.
func pkt(seq byte, payload ...[]byte) []byte {
	p := bytes.Join(payload, nil)
	b := make([]byte, headerLen, headerLen+len(p))
	putHeader(b, len(p), seq)
	return append(b, p...)
}

// long renders a payload of any length as its chunks, from sequence id
// seq.
func long(seq byte, p []byte) []byte {
	var out []byte
	for {
		n := min(len(p), maxChunk)
		out = append(out, pkt(seq, p[:n])...)
		seq++
		p = p[n:]
		if n < maxChunk {
			return out
		}
	}
}

func ok(status uint16) []byte {
	return binary.LittleEndian.AppendUint16([]byte{0x00, 0x00, 0x00}, status)
}

func okEOF(status uint16) []byte { // an OK with the 0xfe header, ending rows under CLIENT_DEPRECATE_EOF
	return binary.LittleEndian.AppendUint16([]byte{0xfe, 0x00, 0x00}, status)
}

func eof(status uint16) []byte {
	return binary.LittleEndian.AppendUint16([]byte{0xfe, 0x00, 0x00}, status)
}

func errp() []byte { return []byte("\xff\xbd\x04#40001Deadlock") }

func col(name string) []byte {
	b := []byte("\x03def\x00\x00\x00")
	b = append(appendLenenc(b, uint64(len(name))), name...)
	return append(b, "\x00\x0c\x3f\x00\x0b\x00\x00\x00\x03\x00\x00\x00\x00\x00"...)
}

func row(vals ...string) []byte {
	var b []byte
	for _, v := range vals {
		b = append(appendLenenc(b, uint64(len(v))), v...)
	}
	return b
}

// frame drives r over the server bytes in, chunk by chunk, as the
// connection does: it returns the offset where the reply (or its part
// before a LOCAL INFILE request) ends, the last step, and an error when
// the bytes are not a reply or end before it does.
func frame(r *reply, in []byte) (int, step, error) {
	off := 0
	for {
		if len(in)-off < headerLen {
			return off, stepMore, errShort
		}
		n, _ := header(in[off:])
		head := in[off+headerLen : min(len(in), off+headerLen+min(n, peekLen))]
		if len(head) < min(n, peekLen) || len(in)-off-headerLen < n {
			return off, stepMore, errShort
		}
		s, err := r.next(n, head)
		off += headerLen + n
		if err != nil || s != stepMore {
			return off, s, err
		}
	}
}

var errShort = errorString("the bytes end before the reply does")

type errorString string

func (e errorString) Error() string { return string(e) }
