package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// TestReplication runs PostgreSQL's replication clients through the route:
// their sessions speak replication commands and CopyBoth, relayed raw once
// authentication begins. The test server's pg_hba.conf, initdb's, lets
// replication connections in from 127.0.0.1.
func TestReplication(t *testing.T) {
	pg := testenv.Postgres(t)
	proxy := startProxy(t, pg.Addr, nil, nil)
	ctx := context.Background()
	admin := connect(t, pg.Addr)
	// Frozen, and out of autovacuum's reach: nothing changes the table's
	// pages once the backup's checkpoint has written them.
	exec(t, admin, "create table r (i int, s text) with (autovacuum_enabled = off)")
	exec(t, admin, "insert into r select i, md5(i::text) from generate_series(1, 50000) i")
	exec(t, admin, "vacuum freeze r")
	startups := func() int { return drawn(proxy.Drawn(), CommandStartup) }

	t.Run("pg_basebackup", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "backup")
		before := startups()
		out := tool(t, proxy.Addr, "pg_basebackup", "-D", dir, "-X", "stream", "-c", "fast", "--no-sync", "-v")
		if n := startups() - before; n < 2 {
			t.Errorf("pg_basebackup -X stream opened %d sessions through the route, want two: the backup and its WAL stream\n%s", n, out)
		}
		// The manifest holds the server's checksum of every file, and
		// pg_verifybackup parses the WAL the backup needs: the backup
		// received through the route is the one the server sent.
		verified := tool(t, proxy.Addr, "pg_verifybackup", dir)
		if !strings.Contains(verified, "successfully verified") {
			t.Fatalf("pg_verifybackup: %s", verified)
		}
		// And the table's file is the server's, byte for byte.
		var path string
		if err := admin.QueryRow(ctx, "select pg_relation_filepath('r')").Scan(&path); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil {
			t.Fatal(err)
		}
		var want []byte
		if err := admin.QueryRow(ctx, "select pg_read_binary_file($1)", path).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || len(want) == 0 {
			t.Fatalf("the backup's %s has %d bytes that differ from the server's %d", path, len(got), len(want))
		}
		size, files := dirSize(t, dir)
		t.Logf("pg_basebackup -X stream through the route: %d files, %d bytes, verified; %s is the server's %d bytes", files, size, path, len(want))
	})

	t.Run("pg_receivewal", func(t *testing.T) {
		// WAL of a fresh segment up to a known position: the server's own
		// segment file holds it too.
		exec(t, admin, "select pg_switch_wal()")
		exec(t, admin, "insert into r select i, repeat(md5(i::text), 4) from generate_series(1, 20000) i")
		var end, segment string
		var offset int
		if err := admin.QueryRow(ctx, "select pg_current_wal_flush_lsn()::text, file_name, file_offset from pg_walfile_name_offset(pg_current_wal_flush_lsn())").
			Scan(&end, &segment, &offset); err != nil {
			t.Fatal(err)
		}
		var want []byte
		if err := admin.QueryRow(ctx, "select pg_read_binary_file('pg_wal/' || $1, 0, $2)", segment, offset).Scan(&want); err != nil {
			t.Fatal(err)
		}
		// WAL past the end, so that each client has a record to stop at
		// rather than wait for the server's next keepalive.
		exec(t, admin, "insert into r values (0, 'past the end')")
		receive := func(addr string) []byte {
			dir := t.TempDir()
			tool(t, addr, "pg_receivewal", "-D", dir, "--endpos", end, "--no-loop", "--no-sync")
			var got []byte
			for _, name := range []string{segment, segment + ".partial"} {
				if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
					got = b
				}
			}
			if len(got) < offset {
				entries, _ := os.ReadDir(dir)
				t.Fatalf("pg_receivewal through %s wrote %v, not segment %s up to %d", addr, entries, segment, offset)
			}
			return got[:offset]
		}
		direct, proxied := receive(pg.Addr), receive(proxy.Addr)
		if !bytes.Equal(direct, want) {
			t.Fatalf("pg_receivewal directly received WAL that differs from the server's segment")
		}
		same(t, "pg_receivewal received", direct, proxied)
		if offset < 1<<20 {
			t.Fatalf("the WAL compared is %d bytes, want the insert's MB", offset)
		}
		t.Logf("pg_receivewal through the route received %d bytes of segment %s up to %s, the server's own", offset, segment, end)
	})

	if errs := proxy.Errors(); len(errs) > 0 {
		t.Errorf("the proxy reported %v", errs)
	}
}

// drawn counts the draws of command.
func drawn(draws []string, command string) int {
	n := 0
	for _, d := range draws {
		if d == command {
			n++
		}
	}
	return n
}

func dirSize(t *testing.T, dir string) (size int64, files int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		size += info.Size()
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return size, files
}

// gssencRequest is the GSSENCRequest packet: its length, 8, and its code,
// 80877104.
var gssencRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30}

// TestGSSENCRequest: a client that asks for GSSAPI encryption first, as
// libpq does with gssencmode=prefer when it has credentials, gets 'N' from
// the route and goes on in plain text, SSLRequest and startup included.
func TestGSSENCRequest(t *testing.T) {
	pg := testenv.Postgres(t)
	proxy := startProxy(t, pg.Addr, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ask := func(c net.Conn) (byte, error) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		defer c.SetDeadline(time.Time{})
		if _, err := c.Write(gssencRequest); err != nil {
			return 0, err
		}
		a := make([]byte, 1)
		_, err := io.ReadFull(c, a)
		return a[0], err
	}
	// What the server would answer: Debian's is built with GSSAPI and says
	// 'G' on TCP, which a client without credentials cannot follow.
	if c, err := net.Dial("tcp", pg.Addr); err == nil {
		a, err := ask(c)
		c.Close()
		t.Logf("the server itself answers a GSSENCRequest %q (%v)", a, err)
	}

	cfg, err := pgx.ParseConfig(url(proxy.Addr, "postgres", ""))
	if err != nil {
		t.Fatal(err)
	}
	answers := make(chan byte, 8)
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		a, err := ask(c)
		if err == nil && a != 'N' {
			err = fmt.Errorf("GSSENCRequest answered %q, want 'N'", a)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		answers <- a
		return c, nil
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect after a GSSENCRequest: %v", err)
	}
	defer c.Close(ctx)
	var n int
	var encrypted bool
	if err := c.QueryRow(ctx, "select 6 * 7, coalesce((select encrypted from pg_stat_gssapi where pid = pg_backend_pid()), false)").
		Scan(&n, &encrypted); err != nil || n != 42 || encrypted {
		t.Fatalf("after the GSSENCRequest: %d, encrypted %v, %v", n, encrypted, err)
	}
	// pgx's sslmode=prefer asks for TLS on a first connection, after the
	// GSSENCRequest as libpq does, and on 'N' starts again without TLS.
	t.Logf("%d connections had their GSSENCRequest answered 'N'", len(answers))
	if d := proxy.Drawn(); !slices.Contains(d, CommandStartup) || !slices.Contains(d, "SELECT") {
		t.Fatalf("the route drew %v, want the startup and the SELECT", d)
	}
	if errs := proxy.Errors(); len(errs) > 0 {
		t.Errorf("the proxy reported %v", errs)
	}
}
