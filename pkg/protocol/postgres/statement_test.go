package postgres

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// body encodes a frontend message and returns its type and body.
func body(t testing.TB, m pgproto3.FrontendMessage) (byte, []byte) {
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b[0], b[5:]
}

func TestTrackerFollowsStatementsAndPortals(t *testing.T) {
	tr := tracker{database: "shop", user: "app"}
	first := func(m pgproto3.FrontendMessage) *chaos.Request {
		typ, b := body(t, m)
		return tr.first(typ, b)
	}
	follow := func(m pgproto3.FrontendMessage) {
		typ, b := body(t, m)
		tr.follow(typ, b)
	}
	check := func(what string, got *chaos.Request, command, sql string) {
		t.Helper()
		if got.Command != command || got.SQL != sql || got.Database != "shop" || got.User != "app" {
			t.Errorf("%s: %+v; want command %q sql %q in shop as app", what, got, command, sql)
		}
	}
	// pgx's cached statements: a named Parse once, then Bind/Execute.
	check("parse", first(&pgproto3.Parse{Name: "stmt_1", Query: "UPDATE t SET a = $1"}), "UPDATE", "UPDATE t SET a = $1")
	check("bind named", first(&pgproto3.Bind{PreparedStatement: "stmt_1"}), "UPDATE", "UPDATE t SET a = $1")
	check("execute the bound portal", first(&pgproto3.Execute{}), "UPDATE", "UPDATE t SET a = $1")
	check("describe statement", first(&pgproto3.Describe{ObjectType: 'S', Name: "stmt_1"}), "UPDATE", "UPDATE t SET a = $1")
	// The unnamed statement is replaced by each Parse.
	first(&pgproto3.Parse{Query: "delete from t"})
	follow(&pgproto3.Bind{})
	check("bind unnamed", first(&pgproto3.Bind{}), "DELETE", "delete from t")
	check("named portal", func() *chaos.Request {
		follow(&pgproto3.Bind{DestinationPortal: "c1", PreparedStatement: "stmt_1"})
		return first(&pgproto3.Execute{Portal: "c1"})
	}(), "UPDATE", "UPDATE t SET a = $1")
	follow(&pgproto3.Close{ObjectType: 'S', Name: "stmt_1"})
	check("closed statement", first(&pgproto3.Bind{PreparedStatement: "stmt_1"}), CommandOther, "")
	check("unknown portal", first(&pgproto3.Execute{Portal: "nope"}), CommandOther, "")
	check("lone sync", first(&pgproto3.Sync{}), CommandEmpty, "")
	check("function call", first(&pgproto3.FunctionCall{Function: 1}), CommandFunction, "")
	// A message cut short (longer than the buffer) is drawn with the text
	// it holds.
	typ, b := body(t, &pgproto3.Parse{Name: "big", Query: "insert into t values ('xxxxxxxx')"})
	check("cut parse", tr.first(typ, b[:20]), "INSERT", "insert into t va")
	// Requests with no text are made once per connection.
	if a, b := first(&pgproto3.Sync{}), first(&pgproto3.Sync{}); a != b {
		t.Error("each lone Sync made a request of its own")
	}
	// A prepared statement is drawn as the same request each time.
	first(&pgproto3.Parse{Name: "p", Query: "select 2"})
	if a, b := first(&pgproto3.Bind{PreparedStatement: "p"}), first(&pgproto3.Bind{PreparedStatement: "p"}); a != b {
		t.Error("each execution of a prepared statement made a request of its own")
	}
}

func TestTrackerForgetsTheOldest(t *testing.T) {
	var tr tracker
	for i := range maxStatements + 10 {
		typ, b := body(t, &pgproto3.Parse{Name: fmt.Sprint("s", i), Query: "select 1"})
		tr.first(typ, b)
	}
	if n := len(tr.statements.byName); n != maxStatements || len(tr.statements.order) != maxStatements {
		t.Fatalf("%d statements remembered (%d in order); want %d", n, len(tr.statements.order), maxStatements)
	}
	if _, ok := tr.statements.get([]byte("s0")); ok {
		t.Error("the oldest statement is still remembered")
	}
	if r, ok := tr.statements.get([]byte(fmt.Sprint("s", maxStatements+9))); !ok || r.Command != "SELECT" {
		t.Error("the newest statement is forgotten")
	}
}

func TestQueryRequestsAreRecycled(t *testing.T) {
	f := &framing{database: "shop", user: "app"}
	_, b := body(t, &pgproto3.Query{String: "update t set a = 1"})
	q := f.query(b)
	if q.req.Command != "UPDATE" || q.req.SQL != "update t set a = 1" || q.req.Database != "shop" || q.req.User != "app" {
		t.Fatalf("request %+v", q.req)
	}
	if q2 := f.query([]byte("  select")); q2 == q || q2.req.Command != "SELECT" || q2.req.SQL != "  select" {
		t.Fatalf("a request still in use was recycled, or a cut Query read wrong: %+v", q2.req)
	}
	// Once the reply loop is done with it (its next answer), the next
	// Query reuses it, allocating nothing.
	f.spare.Store(q)
	if n := testing.AllocsPerRun(100, func() {
		r := f.query(b)
		f.spare.Store(r)
	}); n != 0 {
		t.Errorf("a recycled Query request allocates %v times", n)
	}
	if r := f.query([]byte("delete from t\x00")); r != q || r.req.SQL != "delete from t" || r.req.Command != "DELETE" {
		t.Fatalf("recycled request %+v", r.req)
	}
}
