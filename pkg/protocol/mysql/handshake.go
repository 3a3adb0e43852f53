package mysql

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// greeting is what the framing reads of the server's Handshake v10.
type greeting struct {
	caps uint64 // with MariaDB's extended capabilities in the upper half
	// capsAt is the offset of the lower two capability bytes in the
	// payload, where CLIENT_SSL is cleared.
	capsAt int
}

// parseGreeting reads a Handshake v10 payload.
func parseGreeting(p []byte) (greeting, error) {
	if len(p) == 0 || p[0] != 10 {
		if len(p) > 0 && p[0] == pktErr {
			return greeting{}, fmt.Errorf("the server refused the connection with an error packet")
		}
		return greeting{}, fmt.Errorf("server greeting is not a protocol 10 handshake (first byte %#x)", firstByte(p))
	}
	v := bytes.IndexByte(p[1:], 0)
	if v < 0 {
		return greeting{}, fmt.Errorf("server greeting: server version without its terminating NUL")
	}
	off := 1 + v + 1
	// connection id (4), auth data part 1 (8), filler (1), capabilities (2)
	if len(p) < off+15 {
		return greeting{}, fmt.Errorf("server greeting of %d bytes ends before its capabilities", len(p))
	}
	g := greeting{capsAt: off + 13}
	g.caps = uint64(binary.LittleEndian.Uint16(p[g.capsAt:]))
	// charset (1), status (2), upper capabilities (2), auth data length
	// (1), 10 reserved bytes of which MariaDB uses the last 4.
	if len(p) >= off+20 {
		g.caps |= uint64(binary.LittleEndian.Uint16(p[off+18:])) << 16
	}
	if g.caps&capLongPassword == 0 && len(p) >= off+31 {
		g.caps |= uint64(binary.LittleEndian.Uint32(p[off+27:])) << 32
	}
	return g, nil
}

// clearSSL takes CLIENT_SSL out of a greeting's capabilities, so that the
// client goes on in plain text with the proxy, which reads its commands.
func (g greeting) clearSSL(p []byte) {
	p[g.capsAt+1] &^= capSSL >> 8
}

func firstByte(p []byte) byte {
	if len(p) == 0 {
		return 0
	}
	return p[0]
}

// login is what the framing reads of the client's handshake response.
type login struct {
	caps uint64 // as the client sent them, MariaDB's extended ones included
	// ssl is set for an SSLRequest: the client asks for TLS and the rest
	// of its login comes encrypted.
	ssl  bool
	user string
	db   string
}

// sslRequestLen is the length of an SSLRequest payload: the first fields
// of a HandshakeResponse41 and nothing else.
const sslRequestLen = 32

// parseLogin reads a HandshakeResponse41 or an SSLRequest. Clients of the
// 3.20 protocol (no CLIENT_PROTOCOL_41) are not read: the error says so.
func parseLogin(p []byte) (login, error) {
	if len(p) < 4 {
		return login{}, fmt.Errorf("client handshake response of %d bytes, want at least 4", len(p))
	}
	var l login
	l.caps = uint64(binary.LittleEndian.Uint32(p))
	if l.caps&capProtocol41 == 0 {
		return login{}, fmt.Errorf("client handshake response without CLIENT_PROTOCOL_41: the 3.20 protocol is not framed")
	}
	if len(p) < sslRequestLen {
		return login{}, fmt.Errorf("client handshake response of %d bytes, want at least %d", len(p), sslRequestLen)
	}
	if l.caps&capLongPassword == 0 {
		l.caps |= uint64(binary.LittleEndian.Uint32(p[9+mariadbExtendedCapsOff:])) << 32
	}
	if len(p) == sslRequestLen && l.caps&capSSL != 0 {
		l.ssl = true
		return l, nil
	}
	b := p[sslRequestLen:]
	user, rest, ok := bytes.Cut(b, []byte{0})
	if !ok {
		return login{}, fmt.Errorf("client handshake response: user name without its terminating NUL")
	}
	l.user = string(user)
	// The auth response, then the database when CLIENT_CONNECT_WITH_DB.
	switch {
	case l.caps&capPluginAuthLenenc != 0:
		n, size, ok := lenenc(rest)
		if !ok || uint64(len(rest)-size) < n {
			return login{}, fmt.Errorf("client handshake response: auth response longer than the packet")
		}
		rest = rest[size+int(n):]
	case l.caps&capSecureConnection != 0:
		if len(rest) < 1 || len(rest)-1 < int(rest[0]) {
			return login{}, fmt.Errorf("client handshake response: auth response longer than the packet")
		}
		rest = rest[1+int(rest[0]):]
	default:
		_, after, ok := bytes.Cut(rest, []byte{0})
		if !ok {
			return login{}, fmt.Errorf("client handshake response: auth response without its terminating NUL")
		}
		rest = after
	}
	if l.caps&capConnectWithDB != 0 {
		db, _, _ := bytes.Cut(rest, []byte{0})
		l.db = string(db)
	}
	return l, nil
}

// agreed is the set of capabilities both sides have: what the session
// speaks. MariaDB's extended ones count only when both sides use them.
func agreed(server, client uint64) uint64 {
	c := server & client
	if server&capLongPassword != 0 || client&capLongPassword != 0 {
		c &= 1<<32 - 1
	}
	return c
}

// authTurn says who speaks after a server packet of the authentication
// exchange.
type authTurn uint8

const (
	authOK     authTurn = iota // OK: the command phase starts
	authFailed                 // ERR: the server closes the connection
	authClient                 // the client answers (auth switch, more data)
	authServer                 // the server goes on (caching_sha2_password's fast auth success, then OK)
)

// authNext classifies a packet the server sends during authentication:
// OK, ERR, an auth switch request (0xfe), or more data for the plugin
// (0x01), which the client answers, except caching_sha2_password's
// "fast auth success" (0x01 0x03), after which the server sends its OK.
func authNext(p []byte) authTurn {
	switch {
	case len(p) == 0:
		return authClient
	case p[0] == pktOK:
		return authOK
	case p[0] == pktErr:
		return authFailed
	case len(p) == 2 && p[0] == 0x01 && p[1] == 0x03:
		return authServer
	}
	return authClient
}
