package mysql

import (
	"bytes"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// blobSize makes a value whose packets are over 16 MiB both ways.
const blobSize = 20 << 20

func dsn(user, addr string, params ...string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s?%s", user, testenv.MariaDBPassword, addr, testenv.MariaDBDatabase, strings.Join(params, "&"))
}

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func must(t *testing.T, db interface {
	Exec(string, ...any) (sql.Result, error)
}, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// driverWorkload runs what go-sql-driver/mysql sends: text and binary
// protocol, multi-statements, LOAD DATA LOCAL, a 20 MiB blob each way,
// and returns what the queries read.
func driverWorkload(t *testing.T, addr, table string) []byte {
	t.Helper()
	mysql.RegisterReaderHandler("rows_"+table, func() io.Reader {
		var b bytes.Buffer
		for i := range 5000 {
			fmt.Fprintf(&b, "%d\tline %d of the file\n", 100000+i, i)
		}
		return &b
	})
	db := open(t, dsn(testenv.MariaDBNativeUser, addr, "multiStatements=true"))
	db.SetMaxOpenConns(1)
	var out bytes.Buffer
	must(t, db, "DROP TABLE IF EXISTS "+table)
	must(t, db, "CREATE TABLE "+table+" (id INT PRIMARY KEY, v VARCHAR(100), b LONGBLOB)")
	must(t, db, "INSERT INTO "+table+" (id, v) VALUES (1, 'one'), (2, 'two')")
	must(t, db, "INSERT INTO "+table+" (id, v) VALUES (?, ?)", 3, "three") // prepared: binary protocol
	blob := bytes.Repeat([]byte("0123456789abcdef"), blobSize/16)
	must(t, db, "INSERT INTO "+table+" (id, v, b) VALUES (?, 'blob', ?)", 4, blob)
	must(t, db, "INSERT INTO "+table+" (id, v, b) VALUES (5, 'blob text', REPEAT('x', ?))", blobSize)
	must(t, db, "LOAD DATA LOCAL INFILE 'Reader::rows_"+table+"' INTO TABLE "+table+" (id, v)")
	if err := db.Ping(); err != nil {
		t.Fatal(err)
	}
	read := func(q string, args ...any) {
		rows, err := db.Query(q, args...)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		for {
			cols, _ := rows.Columns()
			vals := make([]sql.RawBytes, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				for _, v := range vals {
					out.Write(v)
					out.WriteByte('|')
				}
				out.WriteByte('\n')
			}
			if !rows.NextResultSet() {
				break
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	read("SELECT id, v, b FROM " + table + " ORDER BY id")                      // text, two rows over 16 MiB
	read("SELECT id, v, b FROM "+table+" WHERE id >= ? ORDER BY id", 0)         // binary, the same
	read("SELECT COUNT(*) FROM " + table + "; SELECT 'a', 'b'; DO 1; SELECT 1") // multi-results
	read("SELECT v FROM "+table+" WHERE id = ?", 999)                           // empty binary resultset
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	must(t, tx, "UPDATE "+table+" SET v = 'uno' WHERE id = 1")
	must(t, tx, "UPDATE "+table+" SET v = ? WHERE id = ?", "dos", 2)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	read("SELECT id, v FROM " + table + " WHERE id < 10 ORDER BY id")
	if _, err := db.Exec("SELECT * FROM no_such_table"); err == nil {
		t.Fatal("a query of a missing table did not fail")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestFramingAgainstMariaDB frames, as the proxy does, every byte that
// real clients and a real MariaDB exchanged: with and without
// CLIENT_DEPRECATE_EOF, native and ed25519 authentication, the mariadb
// command-line client. Every reply must end exactly where the next
// command starts and the streams must be used up.
func TestFramingAgainstMariaDB(t *testing.T) {
	srv := testenv.MariaDB(t)
	for _, mode := range []struct {
		name string
		hide uint64
	}{{"deprecate EOF", 0}, {"EOF packets", capDeprecateEOF}} {
		t.Run("driver/"+mode.name, func(t *testing.T) {
			tp := newTap(t, srv.Addr, mode.hide)
			driverWorkload(t, tp.Addr, "t_"+strings.ReplaceAll(mode.name, " ", "_"))
			recs := tp.done()
			var all walked
			for i, rec := range recs {
				w, err := walk(rec)
				if err != nil {
					t.Fatalf("connection %d: %v (commands so far: %v)", i, err, w.commands)
				}
				if (w.caps&capDeprecateEOF != 0) != (mode.hide == 0) {
					t.Fatalf("connection %d: CLIENT_DEPRECATE_EOF agreed = %v", i, w.caps&capDeprecateEOF != 0)
				}
				all.commands = append(all.commands, w.commands...)
				all.infiles += w.infiles
				all.longest = max(all.longest, w.longest)
				all.results += w.results
			}
			for _, want := range []string{"CREATE", "INSERT", "SELECT", "LOAD", "UPDATE", "START", "COMMIT",
				"STMT_PREPARE", "STMT_EXECUTE", "STMT_CLOSE", "PING", "QUIT"} {
				if !slices.Contains(all.commands, want) {
					t.Errorf("no %s among the commands framed: %v", want, all.commands)
				}
			}
			if all.infiles != 1 || all.longest < 2 || all.results < 3 {
				t.Errorf("framed %d LOCAL INFILE exchanges (want 1), a longest payload of %d chunks (want 2 or more), %d results followed by more (want 3 or more)",
					all.infiles, all.longest, all.results)
			}
		})
	}
	t.Run("ed25519", func(t *testing.T) {
		tp := newTap(t, srv.Addr, 0)
		db := open(t, dsn(testenv.MariaDBEd25519User, tp.Addr))
		var who string
		if err := db.QueryRow("SELECT CURRENT_USER()").Scan(&who); err != nil {
			t.Fatal(err)
		}
		db.Close()
		for i, rec := range tp.done() {
			w, err := walk(rec)
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			if w.authTurns < 2 {
				t.Errorf("ed25519 authentication took %d server packets, want an auth switch then OK", w.authTurns)
			}
		}
	})
	t.Run("mariadb client", func(t *testing.T) {
		cli := testenv.LookPath(t, "mariadb")
		tp := newTap(t, srv.Addr, 0)
		dir := t.TempDir()
		file := filepath.Join(dir, "rows.tsv")
		if err := os.WriteFile(file, []byte("1\tone\n2\ttwo\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		script := "use " + testenv.MariaDBDatabase + "\n" +
			"CREATE TABLE cli (id INT PRIMARY KEY, v TEXT);\n" +
			"LOAD DATA LOCAL INFILE '" + file + "' INTO TABLE cli;\n" +
			"SELECT * FROM cli; SELECT 2;\n" +
			"PREPARE s FROM 'SELECT v FROM cli WHERE id = ?'; SET @i = 2; EXECUTE s USING @i;\n"
		cmd := exec.Command(cli, "-h127.0.0.1", "-P"+strings.Split(tp.Addr, ":")[1], "-u"+testenv.MariaDBNativeUser,
			"-p"+testenv.MariaDBPassword, "--local-infile=1", "--batch")
		cmd.Stdin = strings.NewReader(script)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("mariadb: %v\n%s", err, out)
		}
		if !bytes.Contains(out, []byte("two")) {
			t.Fatalf("mariadb printed %q", out)
		}
		for i, rec := range tp.done() {
			w, err := walk(rec)
			if err != nil {
				t.Fatalf("connection %d: %v (commands so far: %v)", i, err, w.commands)
			}
			if !slices.Contains(w.commands, "INIT_DB") || w.infiles != 1 {
				t.Errorf("commands %v, %d LOCAL INFILE exchanges: want INIT_DB and one", w.commands, w.infiles)
			}
		}
	})
}
