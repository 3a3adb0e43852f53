package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vaurien-go/vaurien/internal/testenv"
	_ "github.com/vaurien-go/vaurien/pkg/behavior" // error
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

// errorMix is a mix with the error behavior at percent, its options and
// match.
func errorMix(t testing.TB, percent float64, opts map[string]any, match chaos.MatchSpec) *chaos.Mix {
	t.Helper()
	e, err := chaos.NewEntry("error", percent, opts, match)
	if err != nil {
		t.Fatal(err)
	}
	return protocoltest.Mix(t, e)
}

func pgError(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// TestErrorOnUpdates: a 10% error mix limited to UPDATE fails about 10% of
// the UPDATEs with serialization_failure, and no SELECT.
func TestErrorOnUpdates(t *testing.T) {
	pg := testenv.Postgres(t)
	ctx := context.Background()
	direct := connect(t, pg.Addr)
	exec(t, direct, "create table counter (id int primary key, n int)")
	exec(t, direct, "insert into counter values (1, 0)")
	proxy := startProxy(t, pg.Addr, errorMix(t, 10, nil, chaos.MatchSpec{Commands: []string{"update"}}), nil)
	const rounds = 1000
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeSimpleProtocol} {
		t.Run(mode.String(), func(t *testing.T) {
			c := connect(t, proxy.Addr)
			exec(t, direct, "update counter set n = 0")
			failed := 0
			for i := range rounds {
				_, err := c.Exec(ctx, "UPDATE counter SET n = n + 1 WHERE id = $1", mode, 1)
				if err != nil {
					if pe := pgError(err); pe == nil || pe.Code != "40001" || pe.Severity != "ERROR" {
						t.Fatalf("update %d: %v; want SQLSTATE 40001", i, err)
					}
					failed++
				}
				var n int
				if err := c.QueryRow(ctx, "select n from counter where id = $1", mode, 1).Scan(&n); err != nil {
					t.Fatalf("select %d: %v", i, err)
				}
				if n != i+1-failed {
					t.Fatalf("after %d updates of which %d failed, n = %d: a failed update ran", i+1, failed, n)
				}
			}
			if failed < rounds/20 || failed > rounds*3/20 {
				t.Fatalf("%d of %d updates failed; want about 10%%", failed, rounds)
			}
			t.Logf("%d of %d updates failed with 40001, no select", failed, rounds)
		})
	}
}

// TestErrorInTransaction: an injected error inside BEGIN ... COMMIT fails
// the transaction on the server too: a retry loop ends with exactly the
// committed rows, and a COMMIT sent after the error commits nothing.
func TestErrorInTransaction(t *testing.T) {
	pg := testenv.Postgres(t)
	ctx := context.Background()
	direct := connect(t, pg.Addr)
	exec(t, direct, "create table orders (id int primary key, paid bool)")
	proxy := startProxy(t, pg.Addr, errorMix(t, 30, nil, chaos.MatchSpec{Commands: []string{"UPDATE"}}), nil)
	c := connect(t, proxy.Addr)

	t.Run("retry loop", func(t *testing.T) {
		retries := 0
		for id := range 100 {
			for attempt := 0; ; attempt++ {
				if attempt > 50 {
					t.Fatalf("order %d: still failing after 50 attempts", id)
				}
				err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
					if _, err := tx.Exec(ctx, "insert into orders values ($1, false)", id); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, "update orders set paid = true where id = $1", id)
					if err != nil && c.PgConn().TxStatus() != 'E' {
						t.Errorf("after an injected error the client's transaction status is %c, want E", c.PgConn().TxStatus())
					}
					return err
				})
				if err == nil {
					break
				}
				if pe := pgError(err); pe == nil || pe.Code != "40001" {
					t.Fatalf("order %d: %v", id, err)
				}
				retries++
			}
		}
		var n, paid int
		if err := direct.QueryRow(ctx, "select count(*), count(*) filter (where paid) from orders").Scan(&n, &paid); err != nil {
			t.Fatal(err)
		}
		if n != 100 || paid != 100 {
			t.Fatalf("the table holds %d orders, %d paid; want exactly the 100 committed", n, paid)
		}
		if retries == 0 {
			t.Fatal("no transaction was retried: no error was injected")
		}
		t.Logf("100 transactions committed after %d retries", retries)
	})

	t.Run("commit after the error", func(t *testing.T) {
		// A client that ignores the error and commits: the server, whose
		// transaction failed too, rolls it back, as it would after a real
		// error.
		for id := 1000; ; id++ {
			tx, err := c.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			exec(t, c, "insert into orders values ($1, false)", id)
			_, uerr := c.Exec(ctx, "update orders set paid = true where id = $1", id)
			cerr := tx.Commit(ctx)
			var exists bool
			if err := direct.QueryRow(ctx, "select exists (select 1 from orders where id = $1)", id).Scan(&exists); err != nil {
				t.Fatal(err)
			}
			if uerr == nil {
				if cerr != nil || !exists {
					t.Fatalf("a transaction with no error: commit %v, row there %v", cerr, exists)
				}
				continue
			}
			if !errors.Is(cerr, pgx.ErrTxCommitRollback) || exists {
				t.Fatalf("commit after an injected error: %v, row there %v; want ErrTxCommitRollback and no row", cerr, exists)
			}
			return
		}
	})
}

// TestAdminShutdown: the session ends after a FATAL 57P01, as in a
// failover, and a pool reconnects.
func TestAdminShutdown(t *testing.T) {
	pg := testenv.Postgres(t)
	ctx := context.Background()
	mix := errorMix(t, 100, map[string]any{"code": "admin_shutdown"}, chaos.MatchSpec{SQL: []string{"*failover*"}})
	proxy := startProxy(t, pg.Addr, mix, nil)
	pool, err := pgxpool.New(ctx, url(proxy.Addr, "postgres", "")+"&pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var pid1, pid2 int
	if err := pool.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid1); err != nil {
		t.Fatal(err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exec(t, conn.Conn(), "create temp table t (x int)")
	exec(t, conn.Conn(), "begin")
	exec(t, conn.Conn(), "insert into t values (1)")
	_, err = conn.Exec(ctx, "select 'failover now'")
	pe := pgError(err)
	if pe == nil || pe.Code != "57P01" || pe.Severity != "FATAL" || pe.Message != "terminating connection due to administrator command" {
		t.Fatalf("got %v; want FATAL 57P01", err)
	}
	if !conn.Conn().IsClosed() {
		t.Fatal("pgx still holds the session open")
	}
	conn.Release()
	if err := pool.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid2); err != nil {
		t.Fatalf("the pool did not reconnect: %v", err)
	}
	if pid1 == pid2 {
		t.Fatalf("the pool's session is the same server process %d", pid1)
	}
	// The server saw the session end: its process is gone.
	direct := connect(t, pg.Addr)
	protocoltest.WaitFor(t, 10*time.Second, "the old session to end on the server", func() bool {
		var n int
		direct.QueryRow(ctx, "select count(*) from pg_stat_activity where pid = $1", pid1).Scan(&n)
		return n == 0
	})
}

// TestTooManyConnections: sessions are refused at startup with the
// server's own error.
func TestTooManyConnections(t *testing.T) {
	pg := testenv.Postgres(t)
	ctx := context.Background()
	mix := errorMix(t, 100, map[string]any{"code": "too_many_connections"}, chaos.MatchSpec{Commands: []string{"startup"}, Users: []string{"postgres"}})
	proxy := startProxy(t, pg.Addr, mix, nil)
	_, err := pgx.Connect(ctx, url(proxy.Addr, "postgres", ""))
	pe := pgError(err)
	if pe == nil || pe.Code != "53300" || pe.Severity != "FATAL" || pe.Message != "sorry, too many clients already" {
		t.Fatalf("connect gives %v; want FATAL 53300", err)
	}
	// The startup of another user is not matched: it connects, and its
	// statements are not drawn as startups.
	direct := connect(t, pg.Addr)
	exec(t, direct, "create role other login superuser")
	c, err := pgx.Connect(ctx, url(proxy.Addr, "other", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	exec(t, c, "select 1")
}

// TestErrorCodes: the route's error_code and error_message, a behavior's
// code and message, and inject, which runs the statement first.
func TestErrorCodes(t *testing.T) {
	pg := testenv.Postgres(t)
	ctx := context.Background()
	direct := connect(t, pg.Addr)
	exec(t, direct, "create table t (x int)")
	route, err := New(tlsDisable, "40P01", "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		proto chaos.Protocol
		opts  map[string]any
		sql   string
		code  string
		msg   string
		runs  bool
	}{
		{"route default", nil, nil, "insert into t values (1)", "40001", "could not serialize access due to concurrent update", false},
		{"route error_code", route, nil, "insert into t values (2)", "40P01", "deadlock detected", false},
		{"read_only", nil, map[string]any{"code": "read_only"}, "insert into t values (3)", "25006", "cannot execute INSERT in a read-only transaction", false},
		{"sqlstate and message", nil, map[string]any{"code": "23505", "message": "duplicate key value violates unique constraint \"t_pkey\""}, "insert into t values (4)", "23505", "duplicate key value violates unique constraint \"t_pkey\"", false},
		{"inject", nil, map[string]any{"inject": true}, "insert into t values (5)", "40001", "could not serialize access due to concurrent update", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxy := startProxy(t, pg.Addr, errorMix(t, 100, tt.opts, chaos.MatchSpec{Commands: []string{"INSERT"}}), tt.proto)
			c := connect(t, proxy.Addr)
			_, err := c.Exec(ctx, tt.sql)
			pe := pgError(err)
			if pe == nil || pe.Code != tt.code || pe.Message != tt.msg || pe.Detail != detail {
				t.Fatalf("got %v; want %s %q", err, tt.code, tt.msg)
			}
			var ran bool
			if err := direct.QueryRow(ctx, "select exists (select 1 from t where x = $1)", i+1).Scan(&ran); err != nil {
				t.Fatal(err)
			}
			if ran != tt.runs {
				t.Fatalf("the statement ran: %v; want %v", ran, tt.runs)
			}
			exec(t, c, "select 1") // the session goes on
		})
	}
}

func TestOptions(t *testing.T) {
	for _, bad := range []struct{ tls, code, msg string }{
		{"require", DefaultErrorCode, ""},
		{tlsDisable, "dead_lock", ""},
		{tlsDisable, "4001", ""},
		{tlsDisable, DefaultErrorCode, "a\x00b"},
	} {
		if _, err := New(bad.tls, bad.code, bad.msg); err == nil {
			t.Errorf("New(%q, %q, %q) accepted", bad.tls, bad.code, bad.msg)
		} else {
			t.Log(err)
		}
	}
	p, _, err := chaos.NewProtocol("postgres", map[string]any{"error_code": "deadlock", "error_message": "100% stuck"})
	if err != nil {
		t.Fatal(err)
	}
	f := p.(*protocol).failure
	if f.code != "40P01" || f.text("", "UPDATE") != "100% stuck" {
		t.Fatalf("failure %+v", f)
	}
}
