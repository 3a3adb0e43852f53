package postgres

import (
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// tool runs one of PostgreSQL's client programs against addr, as the
// postgres user, with sslmode prefer (the proxy answers 'N').
func tool(t *testing.T, addr, name string, args ...string) string {
	t.Helper()
	bin := testenv.LookPath(t, name)
	host, port, _ := net.SplitHostPort(addr)
	cmd := osexec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PGHOST="+host, "PGPORT="+port, "PGUSER=postgres", "PGDATABASE=postgres",
		"PGSSLMODE=prefer", "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPsql runs psql -c and \copy through the route.
func TestPsql(t *testing.T) {
	pg := testenv.Postgres(t)
	proxy := startProxy(t, pg.Addr, nil, nil)
	if out := tool(t, proxy.Addr, "psql", "-X", "-A", "-t", "-c", "select 6 * 7"); strings.TrimSpace(out) != "42" {
		t.Fatalf("psql -c gave %q", out)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	var b strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&b, "%d,row %d\n", i, i)
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.csv")
	tool(t, proxy.Addr, "psql", "-X", "-v", "ON_ERROR_STOP=1",
		"-c", "create table rows (n int, s text)",
		"-c", `\copy rows from '`+in+`' csv`,
		"-c", `\copy (select * from rows order by n) to '`+out+`' csv`)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != b.String() {
		t.Fatalf("\\copy out gave %d bytes, not the %d copied in", len(got), b.Len())
	}
	if errs := proxy.Errors(); len(errs) > 0 {
		t.Errorf("the proxy reported %v", errs)
	}
}

// TestPgbench runs pgbench's initialisation and a short run of both query
// modes through the route: no error, and every transaction counted.
func TestPgbench(t *testing.T) {
	if testing.Short() {
		t.Skip("pgbench runs for seconds")
	}
	pg := testenv.Postgres(t)
	proxy := startProxy(t, pg.Addr, nil, nil)
	tool(t, proxy.Addr, "pgbench", "-i", "-s", "1", "-q")
	processed := regexp.MustCompile(`number of transactions actually processed: (\d+)`)
	failed := regexp.MustCompile(`number of failed transactions: (\d+)`)
	for _, mode := range []string{"simple", "extended", "prepared"} {
		out := tool(t, proxy.Addr, "pgbench", "-c", "4", "-j", "2", "-t", "200", "-M", mode)
		m := processed.FindStringSubmatch(out)
		if m == nil || m[1] != "800" {
			t.Fatalf("pgbench -M %s:\n%s", mode, out)
		}
		if f := failed.FindStringSubmatch(out); f != nil && f[1] != "0" {
			t.Fatalf("pgbench -M %s: %s failed transactions\n%s", mode, f[1], out)
		}
	}
}
