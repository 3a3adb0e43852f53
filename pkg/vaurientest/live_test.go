package vaurientest_test

// Pooled clients: a change of a route's mix made through the admin API
// reaches the connections that real clients (go-redis, database/sql with
// pgx) opened before it, and the change back reaches them too.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/redis/go-redis/v9"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/client"
	"github.com/vaurien-go/vaurien/pkg/vaurientest"
)

// accepted is how many client connections a route has accepted.
func accepted(t *testing.T, p *vaurientest.Proxy, route string) int64 {
	t.Helper()
	r, err := p.Client.Route(t.Context(), route)
	if err != nil {
		t.Fatal(err)
	}
	return r.Stats.Accepted
}

func TestErrorReachesEveryPooledRedisConnection(t *testing.T) {
	srv := testenv.Redis(t)
	p := vaurientest.Start(t, `
		route "cache" {
		  listen  = "127.0.0.1:0"
		  backend = "`+srv.Addr+`"
		}`)
	ctx := t.Context()
	// No retry: a failed call shows what its own pooled connection got.
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr("cache"), PoolSize: 4, MinIdleConns: 0, MaxRetries: -1})
	defer rdb.Close()
	if err := rdb.Set(ctx, "key", "value", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Warm all four connections of the pool at once.
	var conns []*redis.Conn
	for range 4 {
		c := rdb.Conn()
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close() // back to the pool
	}
	if n := accepted(t, p, "cache"); n != 4 {
		t.Fatalf("the route accepted %d connections, want the pool's 4", n)
	}

	err := p.Client.WithBehavior(ctx, "cache", client.Behavior{Name: "error"}, func() error {
		for i := range 2 {
			v, err := rdb.Get(ctx, "key").Result()
			if err == nil || errors.Is(err, redis.Nil) {
				return fmt.Errorf("call %d: got %q, %v; want the injected error", i, v, err)
			}
			t.Logf("call %d under error: %v", i, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Both failures came on pooled connections, and so do the successes
	// that follow: the two connections left were never reopened.
	for i := range 2 {
		if v, err := rdb.Get(ctx, "key").Result(); err != nil || v != "value" {
			t.Fatalf("call %d after WithBehavior: %q, %v", i, v, err)
		}
	}
	if n := accepted(t, p, "cache"); n != 4 {
		t.Errorf("the route accepted %d connections, want none beyond the pool's 4", n)
	}
	st := rdb.PoolStats()
	if st.Misses != 4 {
		t.Errorf("the pool opened %d connections in all, want 4", st.Misses)
	}
}

func TestDelayReachesPooledPostgresConnections(t *testing.T) {
	pg := testenv.Postgres(t)
	p := vaurientest.Start(t, `
		route "db" {
		  listen  = "127.0.0.1:0"
		  backend = "`+pg.Addr+`"
		}`)
	ctx := t.Context()
	db, err := sql.Open("pgx", "postgres://postgres@"+p.Addr("db")+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const pool = 4
	db.SetMaxOpenConns(pool)
	db.SetMaxIdleConns(pool)
	// Warm every connection of the pool: hold them all at once.
	var conns []*sql.Conn
	for range pool {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
	// Queries in parallel, one per pooled connection; the slowest counts.
	queries := func() time.Duration {
		t.Helper()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, pool)
		for range pool {
			wg.Go(func() {
				var n int
				if err := db.QueryRowContext(ctx, "SELECT 1 FROM pg_sleep(0.05)").Scan(&n); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	base := queries()

	const sleep = 700 * time.Millisecond
	delay := client.Behavior{Name: "delay", Percent: 100, Options: map[string]any{"sleep": sleep.String()}}
	if _, err := p.Client.SetMix(ctx, "db", client.Mix{delay}, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if took := queries(); took < sleep || took > base+4*sleep+2*time.Second {
			t.Errorf("queries %d under delay %v took %v (%v before)", i, sleep, took, base)
		}
	}
	if _, err := p.Client.ResetRoute(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	if took := queries(); took >= sleep {
		t.Errorf("queries after the reset took %v, want full speed (%v before the delay)", took, base)
	}
	if n := accepted(t, p, "db"); n != pool {
		t.Errorf("the route accepted %d connections, want the pool's %d only", n, pool)
	}
}

// On a protocol-aware route each request draws when vaurien reads it: a
// request read before a change keeps its draw, even while it waits in the
// pipeline for its answer, and the requests read after it draw from the
// new mix.
func TestPipelinedRequestKeepsItsDraw(t *testing.T) {
	srv := testenv.Redis(t)
	const sleep = 600 * time.Millisecond
	p := vaurientest.Start(t, `
		route "cache" {
		  listen   = "127.0.0.1:0"
		  backend  = "`+srv.Addr+`"
		  protocol = "redis"
		  behavior "delay" {
		    percent = 100
		    sleep   = "`+sleep.String()+`"
		    before  = false
		  }
		}`)
	ctx := t.Context()
	c, err := net.DialTimeout("tcp", p.Addr("cache"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := c.Write([]byte("*2\r\n$4\r\nECHO\r\n$5\r\nfirst\r\n")); err != nil {
		t.Fatal(err)
	}
	// Once vaurien has drawn for the first request, the mix changes.
	waitFor(t, func() bool {
		r, err := p.Client.Route(ctx, "cache")
		return err == nil && r.Stats.Faults == 1
	})
	errMix := client.Behavior{Name: "error", Percent: 100, Options: map[string]any{"message": "ERR from the new mix"}}
	if _, err := p.Client.SetMix(ctx, "cache", client.Mix{errMix}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("*2\r\n$4\r\nECHO\r\n$6\r\nsecond\r\n")); err != nil {
		t.Fatal(err)
	}
	want := "$5\r\nfirst\r\n-ERR from the new mix\r\n"
	got := make([]byte, len(want))
	if _, err := readFull(c, got); err != nil || string(got) != want {
		t.Fatalf("replies %q, %v; want %q", got, err, want)
	}
	if took := time.Since(start); took < sleep {
		t.Errorf("the first reply came after %v, want its drawn delay %v", took, sleep)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("the condition never held")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
