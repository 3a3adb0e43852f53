package postgres

import (
	"slices"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// keywords are the statement keywords a request's Command can take: the
// first word of every SQL command PostgreSQL has. Any other first word is
// reported as OTHER, so that metrics labelled by command stay bounded
// whatever clients send. The values are the map's own strings, so a lookup
// allocates nothing.
var keywords = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"ABORT", "ALTER", "ANALYZE", "ANALYSE", "BEGIN", "CALL", "CHECKPOINT", "CLOSE", "CLUSTER",
		"COMMENT", "COMMIT", "COPY", "CREATE", "DEALLOCATE", "DECLARE", "DELETE", "DISCARD", "DO",
		"DROP", "END", "EXECUTE", "EXPLAIN", "FETCH", "GRANT", "IMPORT", "INSERT", "LISTEN", "LOAD",
		"LOCK", "MERGE", "MOVE", "NOTIFY", "PREPARE", "REASSIGN", "REFRESH", "REINDEX", "RELEASE",
		"RESET", "REVOKE", "ROLLBACK", "SAVEPOINT", "SECURITY", "SELECT", "SET", "SHOW", "START",
		"TABLE", "TRUNCATE", "UNLISTEN", "UPDATE", "VACUUM", "VALUES", "WITH",
	} {
		m[k] = k
	}
	return m
}()

// Commands that are not a statement's first word.
const (
	// CommandOther stands for a first word outside the known keywords.
	CommandOther = "OTHER"
	// CommandEmpty is a request with no statement: an empty query, or an
	// extended batch that executes nothing (a lone Sync).
	CommandEmpty = "EMPTY"
	// CommandStartup is the connection's StartupMessage, drawn as a unit of
	// its own so that faults can refuse sessions (too_many_connections).
	CommandStartup = "STARTUP"
	// CommandFunction is a FunctionCall message (the fast-path interface).
	CommandFunction = "FUNCTION"
)

// commands lists every Command a request can have, sorted, with OTHER,
// the catch-all, last: the closed set metrics label statements with.
func commands() []string {
	var c []string
	for k := range keywords {
		c = append(c, k)
	}
	c = append(c, CommandEmpty, CommandStartup, CommandFunction)
	slices.Sort(c)
	return append(c, CommandOther)
}

// maxKeyword is longer than every known keyword.
const maxKeyword = 12

// keyword returns the first keyword of a SQL text, upper case, from the
// known set: white space, -- comments, nested /* */ comments and opening
// parentheses ("(SELECT 1) UNION ...") are skipped the way the server's
// lexer skips them. It allocates nothing.
func keyword(sql []byte) string {
	i := 0
	for i < len(sql) {
		c := sql[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '(':
			i++
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' && sql[i] != '\r' {
				i++
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			i = skipBlockComment(sql, i)
		default:
			return word(sql[i:])
		}
	}
	return CommandEmpty
}

// skipBlockComment returns the index after the block comment that starts at
// i; comments nest in PostgreSQL. An unterminated comment runs to the end.
func skipBlockComment(sql []byte, i int) int {
	depth := 0
	for i+1 < len(sql) {
		switch {
		case sql[i] == '/' && sql[i+1] == '*':
			depth++
			i += 2
		case sql[i] == '*' && sql[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return len(sql)
}

// word upper-cases the identifier that begins b (a letter, then letters,
// digits, _ or $, as the server's lexer reads one) and looks it up.
func word(b []byte) string {
	var buf [maxKeyword]byte
	n := 0
	for ; n < len(b) && identByte(b[n], n == 0); n++ {
		if n == len(buf) {
			return CommandOther
		}
		c := b[n]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[n] = c
	}
	if k, ok := keywords[string(buf[:n])]; ok {
		return k
	}
	return CommandOther
}

func identByte(c byte, first bool) bool {
	letter := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
	return letter || !first && ('0' <= c && c <= '9' || c == '_' || c == '$')
}

// maxStatements bounds the prepared statements and portals a connection's
// framer remembers. Past it the oldest name is forgotten: a batch that
// runs it is drawn with Command OTHER and no SQL, nothing worse.
const maxStatements = 4096

// names maps statement (or portal) names to the request they are drawn
// as, in the order they were made, so that the oldest can be forgotten.
type names struct {
	byName map[string]*chaos.Request
	order  []string
}

func (n *names) get(name []byte) (*chaos.Request, bool) {
	r, ok := n.byName[string(name)]
	return r, ok
}

func (n *names) set(name string, r *chaos.Request) {
	if n.byName == nil {
		n.byName = map[string]*chaos.Request{}
	}
	if _, ok := n.byName[name]; !ok {
		if len(n.byName) >= maxStatements {
			n.forget(n.order[0])
		}
		n.order = append(n.order, name)
	}
	n.byName[name] = r
}

func (n *names) forget(name string) {
	if _, ok := n.byName[name]; !ok {
		return
	}
	delete(n.byName, name)
	for i, o := range n.order {
		if o == name {
			n.order = append(n.order[:i], n.order[i+1:]...)
			break
		}
	}
}

// tracker follows the statements and portals a client prepares, so that a
// batch that only binds and executes a prepared statement is still drawn
// with its keyword and text. It sees the client's messages in order, in
// the request loop only. The requests it hands out are never changed once
// made: a prepared statement's is drawn again at each execution without a
// new allocation, and the queue may still hold an earlier one.
type tracker struct {
	database, user      string
	statements, portals names
	fixed               map[string]*chaos.Request // requests with no SQL, by command
}

// request makes the request for a statement's text (a prefix of it when
// whole is false: the message is longer than the buffer).
func (t *tracker) request(sql []byte) *chaos.Request {
	return &chaos.Request{Command: keyword(sql), SQL: string(sql), Database: t.database, User: t.user}
}

// command returns the connection's request for a command with no text.
func (t *tracker) command(c string) *chaos.Request {
	if r, ok := t.fixed[c]; ok {
		return r
	}
	if t.fixed == nil {
		t.fixed = map[string]*chaos.Request{}
	}
	r := &chaos.Request{Command: c, Database: t.database, User: t.user}
	t.fixed[c] = r
	return r
}

// parse records a Parse message's body (name, query, ...) and returns what
// it prepares. A body cut short (a statement longer than the buffer) is
// drawn with the text it holds.
func (t *tracker) parse(body []byte) *chaos.Request {
	name, rest, ok := cstringBytes(body)
	if !ok {
		return t.command(CommandOther)
	}
	sql, _, _ := cstringBytes(rest)
	if sql == nil {
		sql = rest
	}
	r := t.request(sql)
	// The unnamed statement is replaced by every Parse: it is kept too,
	// clients bind it in the same batch or the next.
	t.statements.set(string(name), r)
	return r
}

// bind records a Bind message (portal, statement, ...) and returns what the
// portal runs.
func (t *tracker) bind(body []byte) *chaos.Request {
	portal, rest, ok := cstringBytes(body)
	if !ok {
		return t.command(CommandOther)
	}
	name, _, ok := cstringBytes(rest)
	if !ok {
		return t.command(CommandOther)
	}
	r, ok := t.statements.get(name)
	if !ok {
		r = t.command(CommandOther)
	}
	t.portals.set(string(portal), r)
	return r
}

// lookup returns what a Describe or Execute names: kind 'S' a statement,
// 'P' a portal.
func (t *tracker) lookup(kind byte, name []byte) *chaos.Request {
	var r *chaos.Request
	var ok bool
	if kind == 'S' {
		r, ok = t.statements.get(name)
	} else {
		r, ok = t.portals.get(name)
	}
	if !ok {
		return t.command(CommandOther)
	}
	return r
}

// close forgets a statement or portal a Close message names.
func (t *tracker) close(body []byte) {
	if len(body) < 1 {
		return
	}
	name, _, ok := cstringBytes(body[1:])
	if !ok {
		return
	}
	if body[0] == 'S' {
		t.statements.forget(string(name))
	} else {
		t.portals.forget(string(name))
	}
}

// first returns the request an extended batch that begins with a message
// of type typ and body body is drawn as (a simple Query's is framing's), recording what the message prepares or binds.
// body may be cut short when the message is longer than the buffer.
func (t *tracker) first(typ byte, body []byte) *chaos.Request {
	switch typ {
	case msgParse:
		return t.parse(body)
	case msgBind:
		return t.bind(body)
	case msgDescribe:
		if len(body) < 1 {
			return t.command(CommandOther)
		}
		name, _, _ := cstringBytes(body[1:])
		return t.lookup(body[0], name)
	case msgExecute:
		name, _, _ := cstringBytes(body)
		return t.lookup('P', name)
	case msgClose:
		t.close(body)
		return t.command("CLOSE")
	case msgSync:
		return t.command(CommandEmpty)
	case msgFunctionCall:
		return t.command(CommandFunction)
	}
	return t.command(CommandOther)
}

// follow records what a message inside a batch (after its first) prepares,
// binds or closes.
func (t *tracker) follow(typ byte, body []byte) {
	switch typ {
	case msgParse:
		t.parse(body)
	case msgBind:
		t.bind(body)
	case msgClose:
		t.close(body)
	}
}
