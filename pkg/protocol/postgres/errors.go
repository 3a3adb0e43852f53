package postgres

import (
	"fmt"
	"slices"
	"strings"
)

// Severities of an ErrorResponse. FATAL ends the session: the server
// closes the connection after sending it.
const (
	severityError = "ERROR"
	severityFatal = "FATAL"
)

// preset is a named failure rendered as PostgreSQL renders it.
type preset struct {
	code     string // SQLSTATE
	severity string
	message  string // %s, if present, is the statement's keyword
	// startup: the server sends it in answer to a StartupMessage, before
	// authentication, never to a statement.
	startup bool
}

// presets are the failures an error behavior's code (or the route's
// error_code) can name. The messages are the server's own.
var presets = map[string]preset{
	"serialization":        {"40001", severityError, "could not serialize access due to concurrent update", false},
	"deadlock":             {"40P01", severityError, "deadlock detected", false},
	"admin_shutdown":       {"57P01", severityFatal, "terminating connection due to administrator command", false},
	"too_many_connections": {"53300", severityFatal, "sorry, too many clients already", true},
	"read_only":            {"25006", severityError, "cannot execute %s in a read-only transaction", false},
	"query_canceled":       {"57014", severityError, "canceling statement due to user request", false},
	"lock_wait_timeout":    {"55P03", severityError, "canceling statement due to lock timeout", false},
}

// DefaultErrorCode is the route's error_code when none is set.
const DefaultErrorCode = "serialization"

// presetNames lists the presets, sorted, for docs and messages.
func presetNames() []string {
	var n []string
	for k := range presets {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}

// failure is one error to send: what the client reads, and whether the
// session ends with it.
type failure struct {
	code, severity, message string
	startup                 bool
	literal                 bool // message is the user's, with no keyword to put in
}

// resolve reads a code: a preset name or a SQLSTATE (five digits or upper
// case letters). A SQLSTATE of class 08 (connection exception), 28
// (invalid authorization), 53300, or 57P01 to 57P03 is FATAL, as the server
// sends those; others are ERROR.
func resolve(code string) (failure, error) {
	if p, ok := presets[code]; ok {
		return failure{code: p.code, severity: p.severity, message: p.message, startup: p.startup}, nil
	}
	if !isSQLState(code) {
		return failure{}, fmt.Errorf("error code %q is neither a preset (%s) nor a SQLSTATE (five digits or upper-case letters, such as 40P01)",
			code, strings.Join(presetNames(), ", "))
	}
	f := failure{code: code, severity: severityError, message: "vaurien injected fault"}
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "28"),
		code == "53300", code == "57P01", code == "57P02", code == "57P03":
		f.severity = severityFatal
	}
	for _, p := range presets {
		if p.code == code {
			f.message, f.startup = p.message, p.startup
		}
	}
	return f, nil
}

func isSQLState(s string) bool {
	if len(s) != 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// text is the message the client reads: the behavior's, else the
// preset's with the statement's keyword put in.
func (f failure) text(override, command string) string {
	if override != "" {
		return override
	}
	if !f.literal && strings.Contains(f.message, "%s") {
		if command == "" || command == CommandOther || command == CommandEmpty {
			command = "this statement"
		}
		return fmt.Sprintf(f.message, command)
	}
	return f.message
}

// fatal reports whether the session ends with the error.
func (f failure) fatal() bool { return f.severity == severityFatal }

// detail is sent in every injected error's Detail field, so that a person
// reading a log can tell an injected failure from a real one; clients
// branch on the SQLSTATE, not on it.
const detail = "injected by vaurien"

// appendError appends an ErrorResponse with severity, SQLSTATE, message
// and detail. A NUL would end a field early and desynchronise the client,
// so it becomes a space.
func appendError(dst []byte, severity, code, message string) []byte {
	start := len(dst)
	dst = append(dst, msgErrorResponse, 0, 0, 0, 0)
	field := func(t byte, v string) {
		dst = append(dst, t)
		for i := 0; i < len(v); i++ {
			c := v[i]
			if c == 0 {
				c = ' '
			}
			dst = append(dst, c)
		}
		dst = append(dst, 0)
	}
	field('S', severity)
	field('V', severity)
	field('C', code)
	field('M', message)
	field('D', detail)
	dst = append(dst, 0)
	n := uint32(len(dst) - start - 1)
	dst[start+1], dst[start+2], dst[start+3], dst[start+4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return dst
}

// errorFields reads the fields of an ErrorResponse or NoticeResponse body.
func errorFields(body []byte) (map[byte]string, bool) {
	f := map[byte]string{}
	for len(body) > 0 && body[0] != 0 {
		t := body[0]
		v, rest, ok := cstring(body[1:])
		if !ok {
			return nil, false
		}
		f[t] = v
		body = rest
	}
	return f, len(body) == 1
}
