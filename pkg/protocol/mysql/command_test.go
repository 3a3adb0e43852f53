package mysql

import (
	"slices"
	"testing"
)

func TestKeyword(t *testing.T) {
	cases := []struct{ sql, want string }{
		{"SELECT 1", "SELECT"},
		{"select 1", "SELECT"},
		{"UpDaTe t SET a=1", "UPDATE"},
		{"  \n\tINSERT INTO t VALUES (1)", "INSERT"},
		{"/* a comment */ DELETE FROM t", "DELETE"},
		{"-- a comment\nCOMMIT", "COMMIT"},
		{"# a comment\r\nBEGIN", "BEGIN"},
		{"--not a comment\nSELECT", "OTHER"},
		{"/*!40101 SET NAMES utf8 */", "SET"},
		{"/*M!100100 SET STATEMENT max_statement_time=1 FOR */ SELECT 1", "SET"},
		{"/*! */ SELECT", "SELECT"},
		{"((SELECT 1) UNION (SELECT 2))", "SELECT"},
		{"start transaction", "START"},
		{"WITH x AS (SELECT 1) SELECT * FROM x", "WITH"},
		{"ROLLBACK", "ROLLBACK"},
		{"", "OTHER"},
		{"/* unterminated", "OTHER"},
		{"SELECTED_ROWS", "OTHER"},
		{"SELECT1", "OTHER"},
		{"frobnicate the table", "OTHER"},
		{"averyveryverylongwordindeed", "OTHER"},
		{"load data local infile 'x' into table t", "LOAD"},
		{"SELECT\x00", "SELECT"},
		{"ÉSELECT", "OTHER"},
	}
	for _, c := range cases {
		if got := keyword([]byte(c.sql)); got != c.want {
			t.Errorf("keyword(%q) = %q, want %q", c.sql, got, c.want)
		}
	}
}

func TestKeywordDoesNotAllocate(t *testing.T) {
	sql := []byte("/* x */ update t set a = 1")
	if n := testing.AllocsPerRun(100, func() { keyword(sql) }); n != 0 {
		t.Fatalf("keyword allocates %v times per call", n)
	}
}

func TestStatement(t *testing.T) {
	cases := []struct {
		name    string
		payload string
		caps    uint64
		want    string
		ok      bool
	}{
		{"plain", "\x03SELECT 1", 0, "SELECT 1", true},
		{"query attributes, none", "\x03\x00\x01SELECT 1", capQueryAttributes, "SELECT 1", true},
		{"query attributes with parameters", "\x03\x01\x01\x00\x01", capQueryAttributes, "", false},
		{"query attributes cut", "\x03", capQueryAttributes, "", false},
	}
	for _, c := range cases {
		sql, ok := statement([]byte(c.payload), c.caps)
		if string(sql) != c.want || ok != c.ok {
			t.Errorf("%s: statement = %q, %v; want %q, %v", c.name, sql, ok, c.want, c.ok)
		}
	}
	long := make([]byte, 1+2*maxText)
	if sql, _ := statement(long, 0); len(sql) != maxText {
		t.Errorf("a long statement gives %d bytes of text, want %d", len(sql), maxText)
	}
}

func TestCommandName(t *testing.T) {
	for code, want := range map[byte]string{comPing: "PING", comInitDB: "INIT_DB", comStmtPrepare: "STMT_PREPARE",
		comQuit: "QUIT", comStmtBulkExecute: "STMT_BULK_EXECUTE", 0x20: "OTHER", 0xee: "OTHER"} {
		if got := commandName(code); got != want {
			t.Errorf("commandName(%#x) = %q, want %q", code, got, want)
		}
	}
}

func TestCommandsCloseTheSet(t *testing.T) {
	set := commands()
	for code := range 256 {
		if !slices.Contains(set, commandName(byte(code))) {
			t.Errorf("command %#x is named %q, outside the declared set", code, commandName(byte(code)))
		}
	}
	for _, k := range keywords {
		if !slices.Contains(set, k) {
			t.Errorf("keyword %q is outside the declared set", k)
		}
	}
	if !slices.Contains(set, other) || !slices.Contains(set, connectCommand) {
		t.Errorf("OTHER or CONNECT is outside the declared set: %v", set)
	}
}
