package postgres

import (
	"encoding/binary"
	"fmt"
)

// Frontend message types (client → server), protocol 3.0.
const (
	msgQuery        = 'Q'
	msgParse        = 'P'
	msgBind         = 'B'
	msgDescribe     = 'D'
	msgExecute      = 'E'
	msgClose        = 'C'
	msgFlush        = 'H'
	msgSync         = 'S'
	msgTerminate    = 'X'
	msgFunctionCall = 'F'
	msgPassword     = 'p' // PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse
	msgCopyData     = 'd' // both directions
	msgCopyDone     = 'c' // both directions
	msgCopyFail     = 'f'
)

// Backend message types (server → client).
const (
	msgAuthentication       = 'R'
	msgParameterStatus      = 'S'
	msgBackendKeyData       = 'K'
	msgReadyForQuery        = 'Z'
	msgErrorResponse        = 'E'
	msgNoticeResponse       = 'N'
	msgNotificationResponse = 'A'
	msgCopyInResponse       = 'G'
	msgCopyOutResponse      = 'H'
	msgCopyBothResponse     = 'W'
	msgNegotiateVersion     = 'v'
)

// Codes in the first word of an untyped startup-phase packet.
const (
	protocol30      = 3 << 16
	codeCancel      = 80877102
	codeSSL         = 80877103
	codeGSSENC      = 80877104
	headerLen       = 5 // type byte and length
	startupHeadLen  = 8 // length and code
	maxStartupLen   = 10000
	maxMessageLen   = 1<<30 - 1 // the server's own limit on a message (PQ_LARGE_MESSAGE_LIMIT)
	authOK          = 0
	authSASLFinal   = 12
	txIdle          = 'I'
	txInBlock       = 'T'
	txFailed        = 'E'
	cancelPacketLen = 16
)

// header reads a typed message's header: its type and its whole length on
// the wire, type byte included. The length field counts itself; a value
// below 4 or past the server's limit is not postgres.
func header(b []byte) (typ byte, size int, err error) {
	n := binary.BigEndian.Uint32(b[1:5])
	if n < 4 || n > maxMessageLen {
		return 0, 0, fmt.Errorf("postgres: message %q claims length %d; want 4 to %d", b[0], n, maxMessageLen)
	}
	return b[0], int(n) + 1, nil
}

// startupKind is what an untyped startup-phase packet asks for.
type startupKind uint8

const (
	packetStartup startupKind = iota + 1
	packetSSL
	packetGSSENC
	packetCancel
)

// startupHead reads the length and code that begin every packet a client
// sends before its StartupMessage is accepted.
func startupHead(b []byte) (kind startupKind, size int, err error) {
	n := binary.BigEndian.Uint32(b[0:4])
	code := binary.BigEndian.Uint32(b[4:8])
	if n < startupHeadLen || n > maxStartupLen {
		return 0, 0, fmt.Errorf("postgres: startup packet claims length %d; want 8 to %d", n, maxStartupLen)
	}
	switch {
	case code == codeSSL && n == startupHeadLen:
		return packetSSL, int(n), nil
	case code == codeGSSENC && n == startupHeadLen:
		return packetGSSENC, int(n), nil
	case code == codeCancel && n == cancelPacketLen:
		return packetCancel, int(n), nil
	case code>>16 == 3:
		// 3.x: the server answers a minor version it lacks with
		// NegotiateProtocolVersion, which is relayed like any answer.
		return packetStartup, int(n), nil
	}
	return 0, 0, fmt.Errorf("postgres: startup packet with code %d; want protocol 3.x, SSLRequest, GSSENCRequest or CancelRequest", code)
}

// startupParams reads user and database from a whole StartupMessage
// (database defaults to the user, as the server does), and whether it opens
// a replication session.
func startupParams(b []byte) (user, database string, replication bool) {
	if len(b) < startupHeadLen {
		return "", "", false
	}
	p := b[startupHeadLen:]
	for len(p) > 0 && p[0] != 0 {
		k, rest, ok := cstring(p)
		if !ok {
			break
		}
		v, rest, ok := cstring(rest)
		if !ok {
			break
		}
		switch k {
		case "user":
			user = v
		case "database":
			database = v
		case "replication":
			switch v {
			case "false", "off", "no", "0":
			default:
				replication = true
			}
		}
		p = rest
	}
	if database == "" {
		database = user
	}
	return user, database, replication
}

// cstring splits a NUL-terminated string off b.
func cstring(b []byte) (s string, rest []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), b[i+1:], true
		}
	}
	return "", b, false
}

// cstringBytes is cstring without the copy, for lookups that allocate
// nothing.
func cstringBytes(b []byte) (s, rest []byte, ok bool) {
	for i, c := range b {
		if c == 0 {
			return b[:i], b[i+1:], true
		}
	}
	return nil, b, false
}

// authCode reads the request code of an Authentication message's body.
func authCode(body []byte) (uint32, bool) {
	if len(body) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(body), true
}

// authWantsAnswer reports whether an Authentication message leaves the
// next move to the client: every request but Ok, and SASLFinal, which the
// server follows with Ok on its own.
func authWantsAnswer(code uint32) bool {
	return code != authOK && code != authSASLFinal
}

// appendMessage appends a typed message with body parts to dst.
func appendMessage(dst []byte, typ byte, body ...[]byte) []byte {
	n := 4
	for _, b := range body {
		n += len(b)
	}
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	for _, b := range body {
		dst = append(dst, b...)
	}
	return dst
}

// appendReadyForQuery appends ReadyForQuery with a transaction status.
func appendReadyForQuery(dst []byte, status byte) []byte {
	return appendMessage(dst, msgReadyForQuery, []byte{status})
}
