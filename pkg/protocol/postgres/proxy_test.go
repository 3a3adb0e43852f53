package postgres

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(testenv.WithSkipSummary(m))
}

// startProxy serves the postgres protocol with default options, or p, in
// front of backend.
func startProxy(t testing.TB, backend string, mix *chaos.Mix, p chaos.Protocol) *protocoltest.Proxy {
	t.Helper()
	if p == nil {
		var err error
		if p, err = New(tlsDisable, DefaultErrorCode, ""); err != nil {
			t.Fatal(err)
		}
	}
	return protocoltest.Start(t, protocoltest.Config{Protocol: p, Backend: backend, Mix: mix})
}

// url is a connection string for addr as user, with sslmode prefer: the
// client asks for TLS first and goes on in plain text on 'N'.
func url(addr, user, password string) string {
	if password != "" {
		user += ":" + password
	}
	return fmt.Sprintf("postgres://%s@%s/postgres?sslmode=prefer", user, addr)
}

func connect(t testing.TB, addr string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url(addr, "postgres", ""))
	if err != nil {
		t.Fatalf("connect through %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func exec(t testing.TB, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestPassThrough runs pgx through the route with an empty mix: every kind
// of exchange gives what the server gives.
func TestPassThrough(t *testing.T) {
	pg := testenv.Postgres(t)
	proxy := startProxy(t, pg.Addr, nil, nil)
	ctx := context.Background()
	c := connect(t, proxy.Addr)
	exec(t, c, "CREATE TABLE kv (k int PRIMARY KEY, v text)")

	t.Run("simple protocol", func(t *testing.T) {
		var n int
		var s string
		err := c.QueryRow(ctx, "select 41 + 1, 'a' || 'b'", pgx.QueryExecModeSimpleProtocol).Scan(&n, &s)
		if err != nil || n != 42 || s != "ab" {
			t.Fatalf("got %d %q %v; want 42 \"ab\"", n, s, err)
		}
		// Several statements in one Query, and an error among them.
		_, err = c.Exec(ctx, "insert into kv values (1, 'one'); insert into kv values (1, 'dup')", pgx.QueryExecModeSimpleProtocol)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23505" {
			t.Fatalf("a duplicate key gives %v; want SQLSTATE 23505", err)
		}
		exec(t, c, "delete from kv")
	})

	t.Run("extended protocol and prepared statements", func(t *testing.T) {
		for i := range 50 {
			exec(t, c, "insert into kv values ($1, $2)", i, fmt.Sprint("v", i))
		}
		if _, err := c.Prepare(ctx, "get", "select v from kv where k = $1"); err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			var v string
			if err := c.QueryRow(ctx, "get", i).Scan(&v); err != nil || v != fmt.Sprint("v", i) {
				t.Fatalf("get %d = %q, %v", i, v, err)
			}
		}
		rows, _ := c.Query(ctx, "select k from kv order by k")
		ks, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil || len(ks) != 50 || ks[49] != 49 {
			t.Fatalf("%d rows, %v", len(ks), err)
		}
	})

	t.Run("pipeline", func(t *testing.T) {
		b := &pgx.Batch{}
		for i := range 200 {
			b.Queue("select $1::int * 2", i)
		}
		br := c.SendBatch(ctx, b)
		for i := range 200 {
			var n int
			if err := br.QueryRow().Scan(&n); err != nil || n != 2*i {
				t.Fatalf("batch item %d = %d, %v", i, n, err)
			}
		}
		if err := br.Close(); err != nil {
			t.Fatal(err)
		}
		// libpq-style pipeline mode: many Syncs, read back in order.
		p := c.PgConn().StartPipeline(ctx)
		for i := range 20 {
			p.SendQueryParams("select $1::text", [][]byte{[]byte(fmt.Sprint(i))}, nil, nil, nil)
			p.SendPipelineSync()
		}
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			res, err := p.GetResults()
			if err != nil {
				t.Fatal(err)
			}
			rr, ok := res.(*pgconn.ResultReader)
			if !ok {
				t.Fatalf("result %d is %T", i, res)
			}
			r := rr.Read()
			if r.Err != nil || len(r.Rows) != 1 || string(r.Rows[0][0]) != fmt.Sprint(i) {
				t.Fatalf("pipeline result %d: %+v", i, r)
			}
			if res, err = p.GetResults(); err != nil {
				t.Fatal(err)
			} else if _, ok := res.(*pgconn.PipelineSync); !ok {
				t.Fatalf("after result %d: %T, want the Sync", i, res)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("bytea of 10 MB", func(t *testing.T) {
		blob := make([]byte, 10<<20)
		rand.Read(blob)
		var back []byte
		if err := c.QueryRow(ctx, "select $1::bytea", blob).Scan(&back); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, blob) {
			t.Fatalf("10 MB bytea came back as %d bytes, different", len(back))
		}
	})

	t.Run("listen and notify", func(t *testing.T) {
		listener := connect(t, proxy.Addr)
		exec(t, listener, "listen news")
		exec(t, c, "select pg_notify('news', 'hello')")
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := listener.WaitForNotification(wctx)
		if err != nil || n.Channel != "news" || n.Payload != "hello" {
			t.Fatalf("notification %+v, %v", n, err)
		}
	})

	t.Run("cancel request", func(t *testing.T) {
		// pgx sends a CancelRequest on a connection of its own when the
		// context ends, with the key the server gave through the proxy.
		cfg, err := pgx.ParseConfig(url(proxy.Addr, "postgres", ""))
		if err != nil {
			t.Fatal(err)
		}
		cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
			return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 20 * time.Second}
		}
		cc, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close(ctx)
		qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = cc.Exec(qctx, "select pg_sleep(30)")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("a canceled pg_sleep gives %v; want SQLSTATE 57014", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("the cancel took %v", took)
		}
		exec(t, cc, "select 1") // the connection is still good
	})

	t.Run("copy of 100 MB", func(t *testing.T) {
		exec(t, c, "create table blobs (n int, b text)")
		const rows, size = 100, 1 << 20
		line := strings.Repeat("x", size)
		src := pgx.CopyFromSlice(rows, func(i int) ([]any, error) { return []any{i, line}, nil })
		n, err := c.CopyFrom(ctx, pgx.Identifier{"blobs"}, []string{"n", "b"}, src)
		if err != nil || n != rows {
			t.Fatalf("copied %d rows in, %v", n, err)
		}
		var out countingWriter
		tag, err := c.PgConn().CopyTo(ctx, &out, "copy blobs to stdout")
		if err != nil || tag.RowsAffected() != rows {
			t.Fatalf("copied %v out, %v", tag, err)
		}
		if out.n < rows*size || out.lines != rows {
			t.Fatalf("copy out gave %d bytes in %d lines; want over %d in %d", out.n, out.lines, rows*size, rows)
		}
		exec(t, c, "drop table blobs")
	})

	if errs := proxy.Errors(); len(errs) > 0 {
		t.Errorf("the proxy reported %v", errs)
	}
}

type countingWriter struct{ n, lines int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	w.lines += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)

// TestAuthentication connects through the route with each password method
// the server asks for: SCRAM-SHA-256, md5 and cleartext.
func TestAuthentication(t *testing.T) {
	pg := testenv.Postgres(t)
	ctx := context.Background()
	admin := connect(t, pg.Addr)
	// The test server trusts everyone: its pg_hba.conf is rewritten (the
	// server's own COPY can write it) so that these users need a password.
	hba := []string{
		"local all all trust",
		"host all postgres 127.0.0.1/32 trust",
		"host all u_scram 127.0.0.1/32 scram-sha-256",
		"host all u_md5 127.0.0.1/32 md5",
		"host all u_plain 127.0.0.1/32 password",
	}
	var file string
	if err := admin.QueryRow(ctx, "show hba_file").Scan(&file); err != nil {
		t.Fatal(err)
	}
	exec(t, admin, fmt.Sprintf("copy (select * from unnest(array['%s'])) to '%s'", strings.Join(hba, "','"), file))
	exec(t, admin, "select pg_reload_conf()")
	exec(t, admin, "set password_encryption = 'scram-sha-256'")
	exec(t, admin, "create role u_scram login password 'sekret'")
	exec(t, admin, "create role u_plain login password 'sekret'")
	exec(t, admin, "set password_encryption = 'md5'")
	exec(t, admin, "create role u_md5 login password 'sekret'")
	proxy := startProxy(t, pg.Addr, nil, nil)
	for _, user := range []string{"u_scram", "u_md5", "u_plain"} {
		t.Run(user, func(t *testing.T) {
			c, err := pgx.Connect(ctx, url(proxy.Addr, user, "sekret"))
			if err != nil {
				t.Fatalf("connect as %s: %v", user, err)
			}
			defer c.Close(ctx)
			var who string
			if err := c.QueryRow(ctx, "select current_user").Scan(&who); err != nil || who != user {
				t.Fatalf("current_user %q, %v", who, err)
			}
			var method string
			if err := admin.QueryRow(ctx, "select auth_method from pg_hba_file_rules where $1 = any(user_name)", user).Scan(&method); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s authenticated with %s", who, method)
			_, err = pgx.Connect(ctx, url(proxy.Addr, user, "wrong"))
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "28P01" {
				t.Fatalf("a wrong password gives %v; want SQLSTATE 28P01", err)
			}
		})
	}
}
