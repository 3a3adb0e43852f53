package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

func sslUsed(t *testing.T, c *pgx.Conn) bool {
	t.Helper()
	var on bool
	if err := c.QueryRow(context.Background(), "select ssl from pg_stat_ssl where pid = pg_backend_pid()").Scan(&on); err != nil {
		t.Fatal(err)
	}
	return on
}

// TestTLS: by default the proxy answers an SSLRequest 'N' and the session
// goes on in plain text; with tls = "passthrough" the server's TLS goes
// through, relayed raw.
func TestTLS(t *testing.T) {
	// The server takes plain clients too: through the route that answers
	// 'N', the session is plain on both sides.
	pg := testenv.PostgresTLSOptional(t, testenv.NewCA(t))
	ctx := context.Background()
	require := func(addr string) string {
		return strings.Replace(url(addr, "postgres", ""), "sslmode=prefer", "sslmode=require", 1)
	}
	if c, err := pgx.Connect(ctx, require(pg.Addr)); err != nil {
		t.Fatalf("the server does not take TLS: %v", err)
	} else {
		c.Close(ctx)
	}

	t.Run("disable", func(t *testing.T) {
		proxy := startProxy(t, pg.Addr, nil, nil)
		if c, err := pgx.Connect(ctx, require(proxy.Addr)); err == nil {
			c.Close(ctx)
			t.Fatal("sslmode=require connected through a route that answers 'N'")
		}
		c := connect(t, proxy.Addr) // sslmode=prefer
		if sslUsed(t, c) {
			t.Fatal("the session through the route is encrypted")
		}
	})
	t.Run("passthrough", func(t *testing.T) {
		p, err := New(tlsPassthrough, DefaultErrorCode, "")
		if err != nil {
			t.Fatal(err)
		}
		proxy := startProxy(t, pg.Addr, nil, p)
		c, err := pgx.Connect(ctx, require(proxy.Addr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if !sslUsed(t, c) {
			t.Fatal("the session through the route is not encrypted")
		}
		exec(t, c, "select 1")
	})
}
