package mysql

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A preset is a common database failure as the server reports it, or
// (code 0) as the client sees it when the server vanishes.
type preset struct {
	name    string
	code    uint16
	state   string
	message string
	doc     string
}

// presets are the failures the error_preset option names. The messages
// are MariaDB's, which clients match on as they match MySQL's.
var presets = []preset{
	{"deadlock", 1213, "40001", "Deadlock found when trying to get lock; try restarting transaction",
		"the statement is not run; inside a transaction, the proxy sends ROLLBACK in its place, so the server's transaction is rolled back as a real deadlock's is"},
	{"lock_wait_timeout", 1205, "HY000", "Lock wait timeout exceeded; try restarting transaction",
		"the statement is not run; the transaction stays open, as after a real lock wait timeout"},
	{"too_many_connections", 1040, "08004", "Too many connections",
		"drawn once per connection, at the handshake: the client gets the error instead of the server's greeting and the connection closes; no statement is drawn for errors"},
	{"read_only", 1290, "HY000", "The MariaDB server is running with the --read-only option so it cannot execute this statement",
		"the statement is not run"},
	{"gone_away", 0, "", "",
		"no reply: the statement is not run and the connection closes without a reply, as when the server goes away mid-statement: the client reports the lost connection itself, and the server rolls back the session's open transaction"},
}

func presetNames() []string {
	names := make([]string, len(presets))
	for i, p := range presets {
		names[i] = p.name
	}
	return names
}

func lookupPreset(name string) (preset, bool) {
	i := slices.IndexFunc(presets, func(p preset) bool { return p.name == name })
	if i < 0 {
		return preset{}, false
	}
	return presets[i], true
}

// deadlockCode is ER_LOCK_DEADLOCK: the server rolls back the whole
// transaction of a statement that fails with it.
const deadlockCode = 1213

// failure is how an error fault answers: a code (0 for no answer at all,
// gone_away), a SQLSTATE and a message.
type failure struct {
	preset  string // "" for a code given as a number
	code    uint16
	state   string
	message string
}

// lookupCode resolves an error code as error_code and the error behavior's
// code give it: a preset's name, or a MySQL error number (with its
// preset's SQLSTATE and message when a preset has that number).
func lookupCode(code string) (failure, bool) {
	if p, ok := lookupPreset(code); ok {
		return failure{preset: p.name, code: p.code, state: p.state, message: p.message}, true
	}
	n, err := strconv.ParseUint(code, 10, 16)
	if err != nil || n == 0 {
		return failure{}, false
	}
	for _, p := range presets {
		if uint64(p.code) == n {
			return failure{code: p.code, state: p.state, message: p.message}, true
		}
	}
	return failure{code: uint16(n), state: "HY000", message: "vaurien: injected error " + code}, true
}

// codeWanted says what lookupCode takes, for the error of a code it refuses.
func codeWanted() string {
	return fmt.Sprintf("neither a preset (%s) nor a MySQL error number (1 to 65535)", strings.Join(presetNames(), ", "))
}

// checkCode is the protocol's CheckErrorCode: the codes failure answers
// as themselves.
func checkCode(code string) error {
	if _, ok := lookupCode(code); !ok {
		return fmt.Errorf("error code %q is %s", code, codeWanted())
	}
	return nil
}

// newFailure resolves a route's error options.
func newFailure(code, state, message string) (failure, error) {
	f, ok := lookupCode(code)
	if !ok {
		return failure{}, fmt.Errorf("option \"error_code\": %q is %s", code, codeWanted())
	}
	if state != "" {
		if !validState(state) {
			return failure{}, fmt.Errorf("option \"sqlstate\": %q is not a SQLSTATE; want 5 characters of 0-9 and A-Z, such as \"40001\"", state)
		}
		f.state = state
	}
	if message != "" {
		f.message = message
	}
	return f, nil
}

func validState(s string) bool {
	if len(s) != 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// errPacket renders an ERR packet with sequence id seq: 0xff, the error
// code, then (when the client speaks protocol 4.1, which a server knows
// only after the handshake) '#' and the SQLSTATE, then the message. A
// message that would not fit in one packet is cut.
func errPacket(seq byte, code uint16, state, message string, protocol41 bool) []byte {
	n := 3 + len(message)
	if protocol41 {
		n += 6
	}
	if n > maxChunk-1 {
		message = message[:len(message)-(n-(maxChunk-1))]
		n = maxChunk - 1
	}
	b := make([]byte, headerLen, headerLen+n)
	putHeader(b, n, seq)
	b = append(b, pktErr, byte(code), byte(code>>8))
	if protocol41 {
		b = append(b, '#')
		b = append(b, state...)
	}
	return append(b, message...)
}
