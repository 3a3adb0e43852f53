package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// TestFidelity runs the same workload directly against PostgreSQL and
// through the route, each in a database of its own with the same schema,
// and requires the same bytes from both: pgx's raw values, field
// descriptions, command tags, errors and notices in every query mode, the
// output of psql -c, and the files \copy writes.
func TestFidelity(t *testing.T) {
	pg := testenv.Postgres(t)
	proxy := startProxy(t, pg.Addr, nil, nil)
	admin := connect(t, pg.Addr)
	exec(t, admin, "create database direct")
	exec(t, admin, "create database proxied")

	t.Run("pgx", func(t *testing.T) {
		direct := pgxWorkload(t, pg.Addr, "direct")
		proxied := pgxWorkload(t, proxy.Addr, "proxied")
		same(t, "pgx read", direct, proxied)
		if len(direct) < 4<<20 {
			t.Fatalf("the workload read %d bytes, want its 4 MB bytea among them", len(direct))
		}
		for _, want := range []string{"Code:22012", "Code:42P01", "notice 42", "tag INSERT 0 1", "tag UPDATE 10"} {
			if !bytes.Contains(direct, []byte(want)) {
				t.Errorf("the workload's record lacks %q", want)
			}
		}
		t.Logf("pgx read %d identical bytes directly and through the route", len(direct))
	})

	t.Run("psql", func(t *testing.T) {
		script := []string{
			`select 'plain', 'é€ unicode', E'tab\there', E'new\nline', repeat('x', 300) as long`,
			`select 12345678901234567890.0123456789::numeric * 3 as n, 1/3::numeric, 2^0.5 as f, 1e300::float8, 'NaN'::numeric, -0.0::float8`,
			`select '\xdeadbeef'::bytea as b, decode(repeat('00ff', 2000), 'hex') as long_b, ''::bytea as empty`,
			`\pset null (null)`,
			`select null as n, '' as empty, null::int as i, array[1, null, 3] as a`,
			`select 1 as one; select 2 as two; select 'three' as three, null as four`,
			`create table p (id int primary key, v text); insert into p values (1, 'a'), (2, null); select * from p`,
			`insert into p values (1, 'dup')`,
			`select 1/0`,
			`do $$ begin raise notice 'notice from %', 'plpgsql'; end $$`,
			`\x on`,
			`select id, txt, num, nul from t order by id limit 20`,
		}
		var args []string
		for _, c := range script {
			args = append(args, "-c", c)
		}
		direct := psqlOutput(t, pg.Addr, "direct", args...)
		proxied := psqlOutput(t, proxy.Addr, "proxied", args...)
		same(t, "psql printed", direct, proxied)
		for _, want := range []string{"deadbeef", "(null)", "three", "division by zero", "duplicate key", "notice from plpgsql", "é€"} {
			if !bytes.Contains(direct, []byte(want)) {
				t.Errorf("psql's output lacks %q:\n%s", want, direct)
			}
		}
		t.Logf("psql printed %d identical bytes directly and through the route", len(direct))
	})

	t.Run("copy to", func(t *testing.T) {
		const rows = 30000
		create := fmt.Sprintf(`create table big as select i, md5(i::text) as h, (i * 1.5)::numeric / 7 as n,
			case when i %% 7 = 0 then null else repeat(chr(65 + i %% 26), i %% 50) end as s,
			decode(md5(i::text), 'hex') as b, array[i, -i] as a, '2024-02-29 12:00:00+00'::timestamptz + i * interval '1 minute' as ts
			from generate_series(1, %d) i`, rows)
		dir := t.TempDir()
		files := func(addr, db string) [][]byte {
			var out [][]byte
			args := []string{"-c", "set timezone = 'UTC'", "-c", create}
			var names []string
			for _, f := range []struct{ name, opts string }{{"text", ""}, {"csv", " csv header"}, {"binary", " binary"}} {
				name := filepath.Join(dir, db+"."+f.name)
				names = append(names, name)
				args = append(args, "-c", `\copy big to '`+name+`'`+f.opts)
			}
			// The same rows in an order of the query's making.
			name := filepath.Join(dir, db+".query")
			names = append(names, name)
			args = append(args, "-c", `\copy (select * from big order by i desc) to '`+name+`'`)
			psqlOutput(t, addr, db, append([]string{"-v", "ON_ERROR_STOP=1"}, args...)...)
			for _, n := range names {
				b, err := os.ReadFile(n)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, b)
			}
			return out
		}
		direct, proxied := files(pg.Addr, "direct"), files(proxy.Addr, "proxied")
		for i, kind := range []string{"text", "csv", "binary", "query"} {
			same(t, `\copy to (`+kind+`)`, direct[i], proxied[i])
			t.Logf(`\copy to (%s) wrote %d identical bytes directly and through the route`, kind, len(direct[i]))
		}
		if n := bytes.Count(direct[0], []byte("\n")); n != rows || len(direct[0]) < 4<<20 {
			t.Fatalf(`\copy wrote %d lines in %d bytes; want %d lines and a few MB`, n, len(direct[0]), rows)
		}
	})

	if errs := proxy.Errors(); len(errs) > 0 {
		t.Errorf("the proxy reported %v", errs)
	}
}

// same fails t when a workload read different bytes through the route,
// showing where.
func same(t *testing.T, what string, direct, proxied []byte) {
	t.Helper()
	if bytes.Equal(direct, proxied) {
		return
	}
	i := 0
	for i < len(direct) && i < len(proxied) && direct[i] == proxied[i] {
		i++
	}
	from := max(0, i-80)
	t.Fatalf("%s %d bytes through the route and %d directly, first different at byte %d:\ndirect:  %q\nproxied: %q",
		what, len(proxied), len(direct), i, direct[from:min(len(direct), i+80)], proxied[from:min(len(proxied), i+80)])
}

// psqlOutput runs psql on database db at addr and returns what it printed,
// standard output and errors in the order psql wrote them, and how it
// exited.
func psqlOutput(t *testing.T, addr, db string, args ...string) []byte {
	t.Helper()
	bin := testenv.LookPath(t, "psql")
	host, port, _ := net.SplitHostPort(addr)
	cmd := osexec.Command(bin, append([]string{"-X"}, args...)...)
	cmd.Env = append(os.Environ(), "PGHOST="+host, "PGPORT="+port, "PGUSER=postgres", "PGDATABASE="+db,
		"PGSSLMODE=prefer", "PGCONNECT_TIMEOUT=10", "PGAPPNAME=fidelity")
	out, err := cmd.CombinedOutput()
	var ee *osexec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("psql: %v", err)
	}
	return fmt.Appendf(out, "exit status %d\n", cmd.ProcessState.ExitCode())
}

// recorder writes what a client read, in a form that keeps every byte and
// tells NULL from empty.
type recorder struct{ bytes.Buffer }

func (r *recorder) printf(format string, args ...any) { fmt.Fprintf(&r.Buffer, format, args...) }

func (r *recorder) value(v []byte) {
	if v == nil {
		r.Write([]byte{0xff, 0xff, 0xff, 0xff})
		return
	}
	r.Write(binary.BigEndian.AppendUint32(nil, uint32(len(v))))
	r.Write(v)
}

// fields records a result's field descriptions but for the table's OID,
// which differs between the two databases.
func (r *recorder) fields(fds []pgconn.FieldDescription) {
	for _, f := range fds {
		r.printf("field %q attr %d type %d size %d mod %d format %d\n",
			f.Name, f.TableAttributeNumber, f.DataTypeOID, f.DataTypeSize, f.TypeModifier, f.Format)
	}
}

func (r *recorder) err(err error) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		r.printf("error %+v\n", *pe)
	} else if err != nil {
		r.printf("error %v\n", err)
	}
}

// pgxWorkload fills a table of database db at addr with text, numerics,
// bytea (one of 4 MB), NULLs, arrays and json, reads it back in each of
// pgx's query modes, through multi-statement queries, binary results and a
// batch, and returns what it read.
func pgxWorkload(t *testing.T, addr, db string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var rec recorder
	cfg, err := pgx.ParseConfig(strings.Replace(url(addr, "postgres", ""), "/postgres?", "/"+db+"?", 1))
	if err != nil {
		t.Fatal(err)
	}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { rec.printf("notice %+v\n", *n) }
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to %s through %s: %v", db, addr, err)
	}
	defer c.Close(ctx)
	for _, p := range []string{"server_version", "server_encoding", "client_encoding", "DateStyle", "TimeZone",
		"integer_datetimes", "standard_conforming_strings", "is_superuser", "session_authorization"} {
		rec.printf("parameter %s = %q\n", p, c.PgConn().ParameterStatus(p))
	}
	exec(t, c, `create table t (id int primary key, txt text, num numeric, big bigint, f float8, b bytea,
		ts timestamptz, j jsonb, arr int[], nul text)`)
	rnd := rand.New(rand.NewChaCha8([32]byte{'v', 'a', 'u', 'r', 'i', 'e', 'n'}))
	for i := range 200 {
		b := make([]byte, i*97)
		if i == 199 {
			b = make([]byte, 4<<20)
		}
		for j := range b {
			b[j] = byte(rnd.Uint32())
		}
		var nul any
		if i%2 == 1 {
			nul = fmt.Sprint("odd ", i)
		}
		exec(t, c, "insert into t values ($1::int, $2, $3::numeric * $1::int, $4, $5, $6, $7::timestamptz + $1::int * interval '1 hour', $8, $9, $10)",
			i, fmt.Sprintf("row %d é€ \t%q", i, "quoted"), "12345678901234567890.0123456789", int64(i)<<40-7, float64(i)/7,
			b, "2024-02-29 23:59:59.123456+01", fmt.Sprintf(`{"k": %d, "a": [1, "x", null]}`, i), []int32{int32(i), -1, 0}, nul)
	}

	const sel = "select * from t where id >= $1 order by id"
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement,
		pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec} {
		rec.printf("mode %v\n", mode)
		rows, err := c.Query(ctx, sel, mode, 0)
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		rec.fields(rows.FieldDescriptions())
		n := 0
		for rows.Next() {
			for _, v := range rows.RawValues() {
				rec.value(v)
			}
			n++
		}
		rows.Close()
		if rows.Err() != nil || n != 200 {
			t.Fatalf("%v: read %d rows, %v", mode, n, rows.Err())
		}
		rec.printf("tag %s\n", rows.CommandTag())
	}

	// Several statements in one Query, a notice and an error among them.
	results, err := c.PgConn().Exec(ctx, `select 1 as one, null::text as none, ''::text as empty;
		insert into t (id) values (1000); update t set nul = 'x' where id < 10;
		select count(*), sum(num), string_agg(txt, ',' order by id) from t;
		do $$ begin raise notice 'notice %', 42; end $$;
		select '\x00ff'::bytea, 'NaN'::float8, '-Infinity'::float8, 1e-300::float8;
		select 1/0; select 'not reached'`).ReadAll()
	rec.err(err)
	for _, r := range results {
		rec.fields(r.FieldDescriptions)
		for _, row := range r.Rows {
			for _, v := range row {
				rec.value(v)
			}
		}
		rec.printf("tag %s\n", r.CommandTag)
		rec.err(r.Err)
	}

	// Every column in binary, and a prepared statement's error.
	res := c.PgConn().ExecParams(ctx, "select b, num, ts, j, arr, f, nul from t order by id", nil, nil, nil, []int16{1}).Read()
	rec.fields(res.FieldDescriptions)
	for _, row := range res.Rows {
		for _, v := range row {
			rec.value(v)
		}
	}
	rec.printf("tag %s\n", res.CommandTag)
	_, err = c.Exec(ctx, "select * from missing where id = $1", 1)
	rec.err(err)

	b := &pgx.Batch{}
	for i := range 50 {
		b.Queue("select id, txt, num, f, nul from t where id = $1", i)
	}
	br := c.SendBatch(ctx, b)
	for range 50 {
		rows, err := br.Query()
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			for _, v := range rows.RawValues() {
				rec.value(v)
			}
		}
		rows.Close()
		rec.printf("tag %s\n", rows.CommandTag())
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
	return rec.Bytes()
}
