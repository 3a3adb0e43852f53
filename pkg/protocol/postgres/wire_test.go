package postgres

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

func TestKeyword(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"SELECT 1", "SELECT"},
		{"select 1", "SELECT"},
		{"  \n\tUpDaTe t SET a = 1", "UPDATE"},
		{"-- a comment\nINSERT INTO t VALUES (1)", "INSERT"},
		{"/* outer /* nested */ still */ delete from t", "DELETE"},
		{"((select 1) union (select 2))", "SELECT"},
		{"begin", "BEGIN"},
		{"COMMIT;", "COMMIT"},
		{"WITH x AS (SELECT 1) UPDATE t SET a = 1", "WITH"},
		{"", CommandEmpty},
		{"   ;", CommandOther},
		{"-- only a comment", CommandEmpty},
		{"/* unterminated", CommandEmpty},
		{"frobnicate now", CommandOther},
		{"SELECTED", CommandOther},
		{"averyveryverylongword", CommandOther},
		{"select1", CommandOther}, // one identifier, as the server reads it
		{"select(1)", "SELECT"},
		{"élan", CommandOther},
		{"\\copy t", CommandOther},
	}
	for _, tt := range tests {
		if got := keyword([]byte(tt.sql)); got != tt.want {
			t.Errorf("keyword(%q) = %q, want %q", tt.sql, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { keyword([]byte("  update t set a = 1")) }); n != 0 {
		t.Errorf("keyword allocates %v times per call, want 0", n)
	}
}

func TestStartupHead(t *testing.T) {
	pkt := func(code uint32, extra int) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(8+extra))
		return binary.BigEndian.AppendUint32(b, code)
	}
	tests := []struct {
		name string
		b    []byte
		want startupKind
		size int
		bad  bool
	}{
		{"ssl", pkt(codeSSL, 0), packetSSL, 8, false},
		{"gssenc", pkt(codeGSSENC, 0), packetGSSENC, 8, false},
		{"cancel", pkt(codeCancel, 8), packetCancel, 16, false},
		{"startup 3.0", pkt(protocol30, 20), packetStartup, 28, false},
		{"startup 3.2", pkt(protocol30|2, 20), packetStartup, 28, false},
		{"protocol 2", pkt(2<<16, 20), 0, 0, true},
		{"ssl with a body", pkt(codeSSL, 4), 0, 0, true},
		{"cancel cut short", pkt(codeCancel, 0), 0, 0, true},
		{"too short", pkt(protocol30, -1), 0, 0, true},
		{"too long", pkt(protocol30, maxStartupLen), 0, 0, true},
		{"http", []byte("GET / HTTP/1.1\r\n"), 0, 0, true},
	}
	for _, tt := range tests {
		k, n, err := startupHead(tt.b)
		if tt.bad {
			if err == nil {
				t.Errorf("%s: accepted as kind %d", tt.name, k)
			}
			continue
		}
		if err != nil || k != tt.want || n != tt.size {
			t.Errorf("%s: kind %d size %d err %v; want kind %d size %d", tt.name, k, n, err, tt.want, tt.size)
		}
	}
}

func TestStartupParams(t *testing.T) {
	enc := func(m *pgproto3.StartupMessage) []byte {
		b, err := m.Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		params         map[string]string
		user, database string
		replication    bool
	}{
		{map[string]string{"user": "app", "database": "shop", "application_name": "x"}, "app", "shop", false},
		{map[string]string{"user": "app"}, "app", "app", false}, // the server's default
		{map[string]string{"database": "shop"}, "", "shop", false},
		{map[string]string{"user": "rep", "replication": "database"}, "rep", "rep", true},
		{map[string]string{"user": "rep", "replication": "true"}, "rep", "rep", true},
		{map[string]string{"user": "rep", "replication": "off"}, "rep", "rep", false},
	}
	for _, tt := range tests {
		b := enc(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: tt.params})
		if k, n, err := startupHead(b); err != nil || k != packetStartup || n != len(b) {
			t.Fatalf("startupHead of %v: %d %d %v", tt.params, k, n, err)
		}
		u, d, r := startupParams(b)
		if u != tt.user || d != tt.database || r != tt.replication {
			t.Errorf("startupParams(%v) = %q, %q, %v; want %q, %q, %v", tt.params, u, d, r, tt.user, tt.database, tt.replication)
		}
	}
	// Cut anywhere, the packet gives what it holds and never panics.
	b := enc(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber, Parameters: map[string]string{"user": "app"}})
	for i := range b {
		startupParams(b[:i])
	}
}

func TestHeader(t *testing.T) {
	b, _ := (&pgproto3.Query{String: "select 1"}).Encode(nil)
	typ, n, err := header(b)
	if err != nil || typ != 'Q' || n != len(b) {
		t.Fatalf("header(%q) = %q %d %v; want Q %d", b, typ, n, err, len(b))
	}
	for _, bad := range [][]byte{{'Q', 0, 0, 0, 3}, {'D', 0x40, 0, 0, 0}, {'Q', 0xff, 0xff, 0xff, 0xff}} {
		if _, _, err := header(bad); err == nil {
			t.Errorf("header(%q) accepted", bad)
		}
	}
}

// TestErrorResponse decodes the injected errors with pgx's own decoder and
// error type: what a client reads.
func TestErrorResponse(t *testing.T) {
	tests := []struct {
		code, override, command string
		wantCode, wantSev       string
		wantMsg                 string
		fatal, startup          bool
	}{
		{"serialization", "", "UPDATE", "40001", "ERROR", "could not serialize access due to concurrent update", false, false},
		{"deadlock", "", "UPDATE", "40P01", "ERROR", "deadlock detected", false, false},
		{"admin_shutdown", "", "SELECT", "57P01", "FATAL", "terminating connection due to administrator command", true, false},
		{"too_many_connections", "", CommandStartup, "53300", "FATAL", "sorry, too many clients already", true, true},
		{"read_only", "", "INSERT", "25006", "ERROR", "cannot execute INSERT in a read-only transaction", false, false},
		{"read_only", "", CommandOther, "25006", "ERROR", "cannot execute this statement in a read-only transaction", false, false},
		{"query_canceled", "", "SELECT", "57014", "ERROR", "canceling statement due to user request", false, false},
		{"lock_wait_timeout", "", "UPDATE", "55P03", "ERROR", "canceling statement due to lock timeout", false, false},
		{"40P01", "", "UPDATE", "40P01", "ERROR", "deadlock detected", false, false},
		{"23505", "dup\x00key", "INSERT", "23505", "ERROR", "dup key", false, false},
		{"57P03", "", CommandStartup, "57P03", "FATAL", "vaurien injected fault", true, false},
		{"28P01", "password authentication failed for user \"app\"", CommandStartup, "28P01", "FATAL", "password authentication failed for user \"app\"", true, false},
	}
	for _, tt := range tests {
		f, err := resolve(tt.code)
		if err != nil {
			t.Fatalf("resolve(%q): %v", tt.code, err)
		}
		if f.fatal() != tt.fatal || f.startup != tt.startup {
			t.Errorf("%s: fatal %v startup %v; want %v %v", tt.code, f.fatal(), f.startup, tt.fatal, tt.startup)
		}
		b := appendError(nil, f.severity, f.code, f.text(tt.override, tt.command))
		typ, n, err := header(b)
		if err != nil || typ != 'E' || n != len(b) {
			t.Fatalf("%s: header %q %d %v, message of %d bytes", tt.code, typ, n, err, len(b))
		}
		var er pgproto3.ErrorResponse
		if err := er.Decode(b[5:]); err != nil {
			t.Fatalf("%s: pgproto3 cannot decode %q: %v", tt.code, b, err)
		}
		pe := pgconn.ErrorResponseToPgError(&er)
		if pe.Code != tt.wantCode || pe.Severity != tt.wantSev || pe.SeverityUnlocalized != tt.wantSev || pe.Message != tt.wantMsg || pe.Detail != detail {
			t.Errorf("%s: client reads %+v; want code %s severity %s message %q", tt.code, pe, tt.wantCode, tt.wantSev, tt.wantMsg)
		}
		var target *pgconn.PgError
		if !errors.As(error(pe), &target) {
			t.Error("not a *pgconn.PgError")
		}
	}
	for _, bad := range []string{"", "bogus", "4000", "40p01", "400011"} {
		if _, err := resolve(bad); err == nil {
			t.Errorf("resolve(%q) accepted", bad)
		} else {
			t.Logf("resolve(%q): %v", bad, err)
		}
	}
}

func TestReadyForQuery(t *testing.T) {
	for _, st := range []byte{txIdle, txInBlock, txFailed} {
		b := appendReadyForQuery(nil, st)
		var z pgproto3.ReadyForQuery
		if typ, n, err := header(b); err != nil || typ != 'Z' || n != len(b) {
			t.Fatalf("header %q %d %v", typ, n, err)
		}
		if err := z.Decode(b[5:]); err != nil || z.TxStatus != st {
			t.Errorf("ReadyForQuery(%c) decodes as %c, %v", st, z.TxStatus, err)
		}
	}
}
