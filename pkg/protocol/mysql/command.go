package mysql

import (
	"encoding/binary"
	"maps"
	"slices"
)

// maxText is how much of a statement's text matching sees: a glob on the
// text matches its first maxText bytes, so that a 20 MB INSERT is streamed
// rather than held for a match.
const maxText = 4096

// commandNames name the commands that carry no statement, the way
// chaos.Request.Command shows them (and metrics count them): the
// protocol's COM_ name without its prefix. Unknown commands are OTHER.
var commandNames = [...]string{
	0x00: "SLEEP", comQuit: "QUIT", comInitDB: "INIT_DB", comQuery: "QUERY",
	comFieldList: "FIELD_LIST", 0x05: "CREATE_DB", 0x06: "DROP_DB", 0x07: "REFRESH",
	0x08: "SHUTDOWN", comStatistics: "STATISTICS", comProcessInfo: "PROCESS_INFO",
	0x0b: "CONNECT", 0x0c: "PROCESS_KILL", 0x0d: "DEBUG", comPing: "PING", 0x0f: "TIME",
	0x10: "DELAYED_INSERT", comChangeUser: "CHANGE_USER", comBinlogDump: "BINLOG_DUMP",
	0x13: "TABLE_DUMP", 0x14: "CONNECT_OUT", comRegisterSlave: "REGISTER_SLAVE",
	comStmtPrepare: "STMT_PREPARE", comStmtExecute: "STMT_EXECUTE",
	comStmtSendLongData: "STMT_SEND_LONG_DATA", comStmtClose: "STMT_CLOSE",
	comStmtReset: "STMT_RESET", 0x1b: "SET_OPTION", comStmtFetch: "STMT_FETCH",
	0x1d: "DAEMON", comBinlogDumpGTID: "BINLOG_DUMP_GTID", comResetConnection: "RESET_CONNECTION",
}

// commandName names a command byte.
func commandName(code byte) string {
	if code == comStmtBulkExecute {
		return "STMT_BULK_EXECUTE"
	}
	if int(code) < len(commandNames) && commandNames[code] != "" {
		return commandNames[code]
	}
	return other
}

// other is the keyword of a statement that starts with none of keywords,
// and the name of an unknown command: label values stay a fixed set.
const other = "OTHER"

// connectCommand is the Command of the draw a connection gets at its
// handshake on a route whose error_code is too_many_connections.
const connectCommand = "CONNECT"

// commands is the closed set of Request.Command values: statement
// keywords, command names, CONNECT and OTHER.
func commands() []string {
	set := map[string]bool{other: true, connectCommand: true, commandName(comStmtBulkExecute): true}
	for k := range keywords {
		set[k] = true
	}
	for _, n := range commandNames {
		if n != "" {
			set[n] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// keywords are the words a statement may start with in MySQL and MariaDB.
// A statement's keyword is one of them or OTHER, never free text, so that
// it can label metrics.
var keywords = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"ALTER", "ANALYZE", "BACKUP", "BEGIN", "BINLOG", "CACHE", "CALL", "CHANGE", "CHECK",
		"CHECKSUM", "COMMIT", "CREATE", "DEALLOCATE", "DELETE", "DESC", "DESCRIBE", "DO",
		"DROP", "EXECUTE", "EXPLAIN", "FLUSH", "GET", "GRANT", "HANDLER", "HELP", "INSERT",
		"INSTALL", "KILL", "LOAD", "LOCK", "OPTIMIZE", "PREPARE", "PURGE", "RELEASE",
		"RENAME", "REPAIR", "REPLACE", "RESET", "RESIGNAL", "REVOKE", "ROLLBACK", "SAVEPOINT",
		"SELECT", "SET", "SHOW", "SHUTDOWN", "SIGNAL", "START", "STOP", "TABLE", "TRUNCATE",
		"UNINSTALL", "UNLOCK", "UPDATE", "USE", "VALUES", "WITH", "XA",
	} {
		m[k] = k
	}
	return m
}()

// keyword returns a statement's first keyword in upper case, skipping
// blanks, comments and opening parentheses, or OTHER. MySQL's executable
// comments (/*! ... */ and MariaDB's /*M! ... */) are read as statement
// text, as the server reads them.
func keyword(sql []byte) string {
	i := 0
	for i < len(sql) {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '(' || c == ';':
			i++
		case c == '#', c == '-' && i+2 < len(sql) && sql[i+1] == '-' && isSpace(sql[i+2]):
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			j := i + 2
			if j < len(sql) && sql[j] == 'M' && j+1 < len(sql) && sql[j+1] == '!' {
				j++
			}
			if j < len(sql) && sql[j] == '!' {
				// Executable: the optional version, then statement text.
				j++
				for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
					j++
				}
				i = j
				continue
			}
			end := indexComment(sql[j:])
			if end < 0 {
				return other
			}
			i = j + end + 2
		case c == '*' && i+1 < len(sql) && sql[i+1] == '/':
			// The end of an executable comment read as text.
			i += 2
		default:
			return word(sql[i:])
		}
	}
	return other
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func indexComment(b []byte) int {
	for i := 0; i+1 < len(b); i++ {
		if b[i] == '*' && b[i+1] == '/' {
			return i
		}
	}
	return -1
}

// word maps the letters at the start of b to a known keyword.
func word(b []byte) string {
	var buf [16]byte
	n := 0
	for n < len(b) {
		c := b[n]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c < 'A' || c > 'Z' {
			break
		}
		if n == len(buf) {
			return other
		}
		buf[n] = c
		n++
	}
	if n < len(b) && (b[n] == '_' || b[n] >= '0' && b[n] <= '9' || b[n] >= 0x80) {
		return other // an identifier, not a keyword
	}
	if k, ok := keywords[string(buf[:n])]; ok { // no allocation: the map lookup converts in place
		return k
	}
	return other
}

// statement returns the SQL text at the start of a COM_QUERY payload's
// head (after the command byte), skipping the query attributes that come
// first when CLIENT_QUERY_ATTRIBUTES was agreed. ok is false when the
// attributes carry parameters: their values are typed binary data that
// the framing does not decode, and the statement is then OTHER.
func statement(payload []byte, caps uint64) (sql []byte, ok bool) {
	b := payload[1:]
	if caps&capQueryAttributes != 0 {
		params, n, ok := lenenc(b)
		if !ok || params != 0 {
			return nil, false
		}
		b = b[n:]
		if _, n, ok = lenenc(b); !ok { // the parameter set count, always 1
			return nil, false
		}
		b = b[n:]
	}
	return b[:min(len(b), maxText)], true
}

// stmtID reads the statement id of COM_STMT_EXECUTE, _FETCH, _CLOSE,
// _RESET and _SEND_LONG_DATA.
func stmtID(payload []byte) (uint32, bool) {
	if len(payload) < 5 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(payload[1:]), true
}
