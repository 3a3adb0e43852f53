package mysql

import "encoding/binary"

// A packet is a 4-byte header, a 3-byte little-endian payload length and a
// sequence id, then the payload. A payload of 2^24-1 bytes or more is sent
// as chunks of maxChunk bytes, each with a header of its own and the next
// sequence id, ending with a shorter chunk (an empty one when the payload
// is a multiple of maxChunk): framing goes chunk by chunk, and only the
// first chunk of a payload says what it is.
const (
	headerLen = 4
	maxChunk  = 1<<24 - 1
	// peekLen is how much of a payload the framing looks at: enough for
	// every field that decides where a reply ends (an OK packet's status
	// flags after two length-encoded integers: 1+9+9+2 bytes).
	peekLen = 32
)

// header reads a packet header: the payload length of the chunk and its
// sequence id.
func header(b []byte) (n int, seq byte) {
	return int(b[0]) | int(b[1])<<8 | int(b[2])<<16, b[3]
}

// putHeader writes a packet header.
func putHeader(b []byte, n int, seq byte) {
	b[0], b[1], b[2], b[3] = byte(n), byte(n>>8), byte(n>>16), seq
}

// Capability flags (protocol::CapabilityFlags) that change the framing.
// MariaDB's extended capabilities are the upper 32 bits.
const (
	capLongPassword        = 1 << 0 // MySQL; MariaDB clears it to say "extended capabilities follow"
	capConnectWithDB       = 1 << 3
	capCompress            = 1 << 5
	capProtocol41          = 1 << 9
	capSSL                 = 1 << 11
	capSecureConnection    = 1 << 15
	capMultiResults        = 1 << 17
	capPluginAuth          = 1 << 19
	capConnectAttrs        = 1 << 20
	capPluginAuthLenenc    = 1 << 21
	capOptionalMetadata    = 1 << 25 // CLIENT_OPTIONAL_RESULTSET_METADATA
	capQueryAttributes     = 1 << 27
	capProgressObsolete    = 1 << 29 // MariaDB's first CLIENT_PROGRESS (a client-only flag in MySQL)
	capDeprecateEOF        = 1 << 24
	capZstd                = 1 << 26
	mariadbProgress        = 1 << 32       // MARIADB_CLIENT_PROGRESS
	mariadbCacheMetadata   = 1 << (32 + 4) // MARIADB_CLIENT_CACHE_METADATA
	mariadbExtendedCapsOff = 19            // offset of the extended capabilities in the 23-byte filler
)

// Server status flags read from OK and EOF packets.
const (
	statusInTrans       = 0x0001
	statusCursorExists  = 0x0040
	statusMoreResults   = 0x0008
	statusLastRowSent   = 0x0080
	statusInTransReadOK = 0x2000
)

// The first byte of a reply packet's payload.
const (
	pktOK          = 0x00
	pktLocalInfile = 0xfb
	pktEOF         = 0xfe
	pktErr         = 0xff
)

// progressCode is the error code of MariaDB's progress reports: ERR
// packets that a long statement (ALTER TABLE, LOAD DATA) sends before its
// reply, to clients that asked for them with CLIENT_PROGRESS.
const progressCode = 0xffff

// lenenc reads a length-encoded integer at the start of b. ok is false
// when b is too short or starts with 0xff, which no length-encoded integer
// does (0xfb, NULL in a row, reads as 0).
func lenenc(b []byte) (v uint64, size int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	switch c := b[0]; {
	case c < 0xfb:
		return uint64(c), 1, true
	case c == 0xfb:
		return 0, 1, true
	case c == 0xfc:
		if len(b) < 3 {
			return 0, 0, false
		}
		return uint64(binary.LittleEndian.Uint16(b[1:])), 3, true
	case c == 0xfd:
		if len(b) < 4 {
			return 0, 0, false
		}
		return uint64(b[1]) | uint64(b[2])<<8 | uint64(b[3])<<16, 4, true
	case c == 0xfe:
		if len(b) < 9 {
			return 0, 0, false
		}
		return binary.LittleEndian.Uint64(b[1:]), 9, true
	}
	return 0, 0, false
}

// appendLenenc appends v as a length-encoded integer.
func appendLenenc(b []byte, v uint64) []byte {
	switch {
	case v < 0xfb:
		return append(b, byte(v))
	case v < 1<<16:
		return append(b, 0xfc, byte(v), byte(v>>8))
	case v < 1<<24:
		return append(b, 0xfd, byte(v), byte(v>>8), byte(v>>16))
	}
	return binary.LittleEndian.AppendUint64(append(b, 0xfe), v)
}

// okStatus reads the status flags of an OK packet (0x00, or 0xfe ending a
// resultset under CLIENT_DEPRECATE_EOF): after the header byte, the
// affected rows and the last insert id as length-encoded integers.
func okStatus(p []byte) (uint16, bool) {
	if len(p) < 1 {
		return 0, false
	}
	i := 1
	for range 2 {
		_, n, ok := lenenc(p[i:])
		if !ok {
			return 0, false
		}
		i += n
	}
	if len(p) < i+2 {
		return 0, false
	}
	return binary.LittleEndian.Uint16(p[i:]), true
}

// eofStatus reads the status flags of an EOF packet: 0xfe, warnings,
// status.
func eofStatus(p []byte) (uint16, bool) {
	if len(p) < 5 {
		return 0, false
	}
	return binary.LittleEndian.Uint16(p[3:]), true
}
