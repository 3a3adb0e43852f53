package mysql

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/vaurien-go/vaurien/internal/testenv"
	_ "github.com/vaurien-go/vaurien/pkg/behavior" // the error behavior
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

// route serves the mysql protocol in front of backend with the given
// options (error_code and so on, as the option list declares them) and mix.
func route(t *testing.T, backend string, opts map[string]any, entries ...chaos.Entry) *protocoltest.Proxy {
	t.Helper()
	p, _, err := chaos.NewProtocol("mysql", opts)
	if err != nil {
		t.Fatal(err)
	}
	return protocoltest.Start(t, protocoltest.Config{Protocol: p, Backend: backend, Mix: protocoltest.Mix(t, entries...), Seed: 7})
}

// errorBehavior builds the error behavior with options.
func errorBehavior(t *testing.T, opts map[string]any) chaos.Behavior {
	t.Helper()
	b, _, err := chaos.NewBehavior("error", opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFidelity: go-sql-driver/mysql and the mariadb client read through
// the route byte for byte what they read directly: text and binary
// protocol, multi-statements, LOAD DATA LOCAL, values of 20 MiB.
func TestFidelity(t *testing.T) {
	srv := testenv.MariaDB(t)
	p := route(t, srv.Addr, nil)
	direct := driverWorkload(t, srv.Addr, "direct")
	proxied := driverWorkload(t, p.Addr, "proxied")
	if len(direct) < 2*blobSize {
		t.Fatalf("the workload read %d bytes, want the blobs", len(direct))
	}
	if !bytes.Equal(direct, proxied) {
		t.Fatalf("through the route the driver read %d bytes that differ from the %d it read directly", len(proxied), len(direct))
	}
	for _, c := range []string{"CREATE", "INSERT", "LOAD", "SELECT", "UPDATE", "STMT_PREPARE", "PING", "START", "COMMIT"} {
		if !strings.Contains(" "+strings.Join(p.Commands(), " ")+" ", " "+c+" ") {
			t.Errorf("no %s among the exchanges: %v", c, p.Commands())
		}
	}

	t.Run("mariadb client", func(t *testing.T) {
		cli := testenv.LookPath(t, "mariadb")
		file := filepath.Join(t.TempDir(), "rows.tsv")
		if err := os.WriteFile(file, []byte("1\tone\n2\ttwo\n3\tthree\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		run := func(addr, table string) []byte {
			script := "use " + testenv.MariaDBDatabase + "\n" +
				"CREATE TABLE " + table + " (id INT PRIMARY KEY, v TEXT);\n" +
				"LOAD DATA LOCAL INFILE '" + file + "' INTO TABLE " + table + ";\n" +
				"SELECT * FROM " + table + "; SELECT 2;\n" +
				"PREPARE s FROM 'SELECT v FROM " + table + " WHERE id = ?'; SET @i = 2; EXECUTE s USING @i;\n" +
				"SELECT REPEAT('ab', 100000) AS big;\n"
			_, port, _ := net.SplitHostPort(addr)
			cmd := exec.Command(cli, "-h127.0.0.1", "-P"+port, "-u"+testenv.MariaDBNativeUser,
				"-p"+testenv.MariaDBPassword, "--local-infile=1", "--batch", "--skip-column-names")
			cmd.Stdin = strings.NewReader(script)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("mariadb through %s: %v\n%s", addr, err, out)
			}
			return out
		}
		direct, proxied := run(srv.Addr, "cli_direct"), run(p.Addr, "cli_proxied")
		if !bytes.Equal(direct, proxied) || !bytes.Contains(direct, []byte("three")) {
			t.Fatalf("the mariadb client printed %d bytes through the route, %d directly, or not the rows", len(proxied), len(direct))
		}
	})

	t.Run("ed25519", func(t *testing.T) {
		db := open(t, dsn(testenv.MariaDBEd25519User, p.Addr))
		var who string
		if err := db.QueryRow("SELECT CURRENT_USER()").Scan(&who); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(who, testenv.MariaDBEd25519User+"@") {
			t.Fatalf("logged in as %q", who)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		db := open(t, strings.Replace(dsn(testenv.MariaDBNativeUser, p.Addr), ":"+testenv.MariaDBPassword+"@", ":wrong@", 1))
		var me *mysql.MySQLError
		if err := db.Ping(); !errors.As(err, &me) || me.Number != 1045 {
			t.Fatalf("a wrong password gave %v, want the server's error 1045", err)
		}
	})
}

// TestErrorOnUpdates: a 10% error mix matching UPDATE makes the driver
// return the server's deadlock error on about one UPDATE in ten, text or
// prepared, and on no SELECT.
func TestErrorOnUpdates(t *testing.T) {
	srv := testenv.MariaDB(t)
	p := route(t, srv.Addr, nil, chaos.Entry{Name: "error", Percent: 10, Behavior: errorBehavior(t, nil),
		Match: func(r *chaos.Request) bool { return r.Command == "UPDATE" }})
	db := open(t, dsn(testenv.MariaDBNativeUser, p.Addr))
	must(t, db, "CREATE TABLE counters (id INT PRIMARY KEY, n INT)")
	must(t, db, "INSERT INTO counters VALUES (1, 0)")
	const rounds = 400
	failed := 0
	for i := range rounds {
		var err error
		if i%2 == 0 {
			_, err = db.Exec("UPDATE counters SET n = n + 1 WHERE id = 1")
		} else {
			_, err = db.Exec("update counters set n = n + ? where id = 1", 1)
		}
		if err != nil {
			var me *mysql.MySQLError
			if !errors.As(err, &me) || me.Number != 1213 || string(me.SQLState[:]) != "40001" {
				t.Fatalf("UPDATE failed with %v, want the deadlock error 1213 (40001)", err)
			}
			failed++
		}
		var n int
		if err := db.QueryRow("SELECT n FROM counters WHERE id = ?", 1).Scan(&n); err != nil {
			t.Fatalf("SELECT failed: %v", err)
		}
		if n != i+1-failed {
			t.Fatalf("after %d UPDATEs of which %d failed, n = %d: a failed UPDATE ran, or a good one did not", i+1, failed, n)
		}
	}
	t.Logf("%d of %d UPDATEs failed with 1213 (40001), no SELECT", failed, rounds)
	if failed < rounds/20 || failed > rounds/5 {
		t.Fatalf("%d of %d UPDATEs failed, want about 10%%", failed, rounds)
	}
}

// TestRetryInTransaction: errors injected inside BEGIN ... COMMIT leave
// client and server agreeing: an application that retries its
// transaction ends with exactly the rows it committed, whether it rolls
// back after the error or just begins again.
func TestRetryInTransaction(t *testing.T) {
	srv := testenv.MariaDB(t)
	p := route(t, srv.Addr, nil, chaos.Entry{Name: "error", Percent: 30, Behavior: errorBehavior(t, nil),
		Match: func(r *chaos.Request) bool { return r.Command == "INSERT" || r.Command == "UPDATE" }})
	db := open(t, dsn(testenv.MariaDBNativeUser, p.Addr))
	must(t, db, "CREATE TABLE accounts (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB")
	const txs = 40
	injected := 0
	transfer := func(exec func(string, ...any) error, id int) error {
		if err := exec("INSERT INTO accounts VALUES (?, 0)", id); err != nil {
			return err
		}
		return exec("UPDATE accounts SET n = n + 1 WHERE id = ?", id)
	}
	deadlock := func(err error) bool {
		var me *mysql.MySQLError
		return errors.As(err, &me) && me.Number == 1213
	}
	for id := range txs / 2 { // database/sql: roll back, retry
		for {
			tx, err := db.Begin()
			if err != nil {
				t.Fatal(err)
			}
			err = transfer(func(q string, args ...any) error { _, err := tx.Exec(q, args...); return err }, id)
			if err == nil {
				err = tx.Commit()
			}
			if err == nil {
				break
			}
			tx.Rollback()
			if !deadlock(err) {
				t.Fatalf("transaction %d: %v", id, err)
			}
			injected++
		}
	}
	conn, err := db.Conn(t.Context()) // an application that begins again without ROLLBACK
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for id := txs / 2; id < txs; id++ {
		for {
			exec := func(q string, args ...any) error { _, err := conn.ExecContext(t.Context(), q, args...); return err }
			err := exec("BEGIN")
			if err == nil {
				err = transfer(exec, id)
			}
			if err == nil {
				err = exec("COMMIT")
			}
			if err == nil {
				break
			}
			if !deadlock(err) {
				t.Fatalf("transaction %d: %v", id, err)
			}
			injected++
		}
	}
	if injected == 0 {
		t.Fatal("no error was injected")
	}
	direct := open(t, dsn(testenv.MariaDBNativeUser, srv.Addr))
	var rows, sum int
	if err := direct.QueryRow("SELECT COUNT(*), COALESCE(SUM(n), 0) FROM accounts").Scan(&rows, &sum); err != nil {
		t.Fatal(err)
	}
	if rows != txs || sum != txs {
		t.Fatalf("after %d committed transactions and %d injected deadlocks the table holds %d rows summing to %d, want %d and %d",
			txs, injected, rows, sum, txs, txs)
	}
}

// TestPresets: each preset reaches the driver as the server's own error,
// at the statement or, for too_many_connections, at the handshake.
func TestPresets(t *testing.T) {
	srv := testenv.MariaDB(t)
	setup := open(t, dsn(testenv.MariaDBNativeUser, srv.Addr))
	must(t, setup, "CREATE TABLE presets (id INT PRIMARY KEY)")
	onUpdate := func(r *chaos.Request) bool { return r.Command == "INSERT" }
	for _, c := range []struct {
		route, behavior map[string]any
		number          uint16
		state           string
	}{
		{map[string]any{"error_code": "lock_wait_timeout"}, nil, 1205, "HY000"},
		{map[string]any{"error_code": "read_only"}, nil, 1290, "HY000"},
		{map[string]any{"error_code": "1105", "sqlstate": "HY001", "error_message": "custom"}, nil, 1105, "HY001"},
		{nil, map[string]any{"code": "lock_wait_timeout"}, 1205, "HY000"},
		{nil, map[string]any{"code": "40P01"}, 1105, "HY000"}, // a postgres code: said to be none of mysql's
		{nil, map[string]any{"message": "try again"}, 1213, "40001"},
	} {
		p := route(t, srv.Addr, c.route, chaos.Entry{Name: "error", Percent: 100, Behavior: errorBehavior(t, c.behavior), Match: onUpdate})
		db := open(t, dsn(testenv.MariaDBNativeUser, p.Addr))
		_, err := db.Exec("INSERT INTO presets VALUES (1)")
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != c.number || string(me.SQLState[:]) != c.state {
			t.Errorf("route %v, behavior %v: %v, want error %d (%s)", c.route, c.behavior, err, c.number, c.state)
			continue
		}
		if msg, ok := c.behavior["message"]; ok && me.Message != msg {
			t.Errorf("message %q, want %q", me.Message, msg)
		}
		if err := db.Ping(); err != nil {
			t.Errorf("the connection is not usable after the error: %v", err)
		}
	}
	var n int
	if err := setup.QueryRow("SELECT COUNT(*) FROM presets").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the server holds %d rows (%v): an answered INSERT ran", n, err)
	}

	t.Run("too_many_connections", func(t *testing.T) {
		p := route(t, srv.Addr, map[string]any{"error_code": "too_many_connections"},
			chaos.Entry{Name: "error", Percent: 100, Behavior: errorBehavior(t, nil)})
		db := open(t, dsn(testenv.MariaDBNativeUser, p.Addr))
		var me *mysql.MySQLError
		if err := db.Ping(); !errors.As(err, &me) || me.Number != 1040 {
			t.Fatalf("connecting gave %v, want error 1040", err)
		}
		if p.Faults.Load() == 0 {
			t.Fatal("the fault was not drawn")
		}
		cli := testenv.LookPath(t, "mariadb")
		_, port, _ := net.SplitHostPort(p.Addr)
		out, err := exec.Command(cli, "-h127.0.0.1", "-P"+port, "-u"+testenv.MariaDBNativeUser, "-p"+testenv.MariaDBPassword, "-e", "SELECT 1").CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte("1040")) || !bytes.Contains(out, []byte("Too many connections")) {
			t.Fatalf("the mariadb client printed %q (%v), want error 1040", out, err)
		}
	})

	t.Run("gone_away", func(t *testing.T) {
		p := route(t, srv.Addr, map[string]any{"error_code": "gone_away"},
			chaos.Entry{Name: "error", Percent: 100, Behavior: errorBehavior(t, nil), Match: onUpdate})
		db := open(t, dsn(testenv.MariaDBNativeUser, p.Addr))
		if err := db.Ping(); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("INSERT INTO presets VALUES (2)"); !errors.Is(err, mysql.ErrInvalidConn) {
			t.Fatalf("the INSERT gave %v, want the driver's lost connection", err)
		}
		var one int
		if err := db.QueryRow("SELECT 1").Scan(&one); err != nil {
			t.Fatalf("the pool did not reconnect: %v", err)
		}
	})

	t.Run("inject", func(t *testing.T) {
		p := route(t, srv.Addr, nil, chaos.Entry{Name: "error", Percent: 100, Behavior: errorBehavior(t, map[string]any{"inject": true}), Match: onUpdate})
		db := open(t, dsn(testenv.MariaDBNativeUser, p.Addr))
		var me *mysql.MySQLError
		if _, err := db.Exec("INSERT INTO presets VALUES (3)"); !errors.As(err, &me) || me.Number != 1213 {
			t.Fatalf("the INSERT gave %v, want error 1213", err)
		}
		var n int
		if err := setup.QueryRow("SELECT COUNT(*) FROM presets WHERE id = 3").Scan(&n); err != nil || n != 1 {
			t.Fatalf("with inject the statement runs: the server holds %d rows (%v)", n, err)
		}
	})
}

// TestConformance: for each fault and option, a client that has logged in
// and pings sees what the table says.
func TestConformance(t *testing.T) {
	srv := testenv.MariaDB(t)
	p, err := New("deadlock", "", "", tlsDisable)
	if err != nil {
		t.Fatal(err)
	}
	protocoltest.Conform(t, protocoltest.Client{Protocol: p, Backend: srv.Addr, Exchange: ping})
}

// ping logs in as root (no password) and sends COM_PING: the way a
// client sees the answer.
func ping(c net.Conn) (protocoltest.Answer, error) {
	read := func() ([]byte, error) {
		var h [headerLen]byte
		if _, err := readFull(c, h[:]); err != nil {
			return nil, err
		}
		n, _ := header(h[:])
		p := make([]byte, n)
		_, err := readFull(c, p)
		return p, err
	}
	if _, err := read(); err != nil { // the greeting
		return 0, err
	}
	caps := uint32(capLongPassword | capProtocol41 | capSecureConnection | capPluginAuth | capPluginAuthLenenc | capDeprecateEOF)
	login := loginPayload(uint64(caps), "root", "", "")
	if _, err := c.Write(pkt(1, login)); err != nil {
		return 0, err
	}
	for {
		p, err := read()
		if err != nil {
			return 0, err
		}
		if len(p) > 0 && p[0] == pktOK {
			break
		}
		if len(p) == 0 || p[0] == pktErr {
			return 0, errors.New("login refused")
		}
		// An auth switch to mysql_native_password: the empty password's
		// answer is empty.
		if _, err := c.Write(pkt(3)); err != nil {
			return 0, err
		}
	}
	if _, err := c.Write(pkt(0, []byte{comPing})); err != nil {
		return 0, err
	}
	p, err := read()
	switch {
	case err != nil:
		return 0, err
	case len(p) > 0 && p[0] == pktOK:
		return protocoltest.Answered, nil
	case len(p) > 0 && p[0] == pktErr:
		return protocoltest.ErrorReply, nil
	}
	return 0, errors.New("not an answer to COM_PING")
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

// greetingCaps reads the capabilities of the greeting at addr.
func greetingCaps(t *testing.T, addr string) uint64 {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var h [headerLen]byte
	if _, err := readFull(c, h[:]); err != nil {
		t.Fatal(err)
	}
	n, _ := header(h[:])
	p := make([]byte, n)
	if _, err := readFull(c, p); err != nil {
		t.Fatal(err)
	}
	g, err := parseGreeting(p)
	if err != nil {
		t.Fatal(err)
	}
	return g.caps
}

// TestTLS: by default the route takes CLIENT_SSL out of a server's
// greeting, and a driver that prefers TLS goes on in plain text, framed;
// with tls = "passthrough" the driver's TLS session is relayed raw, and it
// verifies the server's own certificate.
func TestTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	srv := testenv.MariaDBTLS(t, ca)
	if greetingCaps(t, srv.Addr)&capSSL == 0 {
		t.Fatal("the server offers no TLS")
	}
	if err := mysql.RegisterTLSConfig("vaurien-test", &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	query := func(addr, mode string) string {
		db := open(t, dsn(testenv.MariaDBNativeUser, addr, "tls="+mode))
		var cipher string
		if err := db.QueryRow("SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'").Scan(&cipher); err != nil {
			t.Fatalf("through %s with tls=%s: %v", addr, mode, err)
		}
		db.Close()
		return cipher
	}
	if cipher := query(srv.Addr, "preferred"); cipher == "" {
		t.Fatal("directly, tls=preferred did not use TLS")
	}

	plain := route(t, srv.Addr, nil)
	if greetingCaps(t, plain.Addr)&capSSL != 0 {
		t.Fatal("the route's greeting offers TLS")
	}
	if cipher := query(plain.Addr, "preferred"); cipher != "" {
		t.Fatalf("through the route the session uses TLS (%s)", cipher)
	}
	if !slices.Contains(plain.Commands(), "SELECT") {
		t.Fatalf("the session was not framed: %v", plain.Commands())
	}

	raw := route(t, srv.Addr, map[string]any{"tls": "passthrough"})
	if greetingCaps(t, raw.Addr)&capSSL == 0 {
		t.Fatal("with passthrough the route's greeting offers no TLS")
	}
	if cipher := query(raw.Addr, "vaurien-test"); cipher == "" {
		t.Fatal("with passthrough the session does not use TLS")
	}
	if cmds := raw.Commands(); len(cmds) != 0 {
		t.Fatalf("a TLS session was framed: %v", cmds)
	}
}
