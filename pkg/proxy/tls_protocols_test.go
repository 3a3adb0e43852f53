package proxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	goredis "github.com/redis/go-redis/v9"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/memcache"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/mysql"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/postgres"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/redis"
	"github.com/vaurien-go/vaurien/pkg/proxy"
	"github.com/vaurien-go/vaurien/pkg/tlsroute"
)

// errorOn is a mix that answers the commands given with the protocol's
// error, and passes the others.
func errorOn(t testing.TB, commands ...string) *chaos.Mix {
	t.Helper()
	e, err := chaos.NewEntry("error", 100, nil, chaos.MatchSpec{Commands: commands})
	if err != nil {
		t.Fatal(err)
	}
	m, err := chaos.NewMix([]chaos.Entry{e})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func trust(t testing.TB, caFile string) *x509.CertPool {
	t.Helper()
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	return pool
}

// TestTLSRedisRoute puts a redis route between redis-cli or go-redis with
// TLS and a redis-server that speaks TLS only and requires a client
// certificate: faults are drawn per command inside TLS on both sides.
func TestTLSRedisRoute(t *testing.T) {
	ca := testenv.NewCA(t)
	serverCert, serverKey := ca.Issue(t, "127.0.0.1")
	redis := testenv.Start(t, "redis-server", "--port", "0", "--tls-port", "{port}", "--bind", "127.0.0.1",
		"--tls-cert-file", serverCert, "--tls-key-file", serverKey, "--tls-ca-cert-file", ca.File,
		"--tls-auth-clients", "yes", "--save", "", "--appendonly", "no")
	clientCert, clientKey := ca.Issue(t, "vaurien")

	in, caOut := generated(t)
	cfg := proxy.RouteConfig{Name: "cache", Listen: "127.0.0.1:0", Backend: redis.Addr, Protocol: "redis",
		TLS: in, Mix: errorOn(t, "GET"),
		BackendTLS: resolve(t, tlsroute.BackendOptions, map[string]any{"ca": ca.File, "cert": clientCert, "key": clientKey})}
	s := startServer(t, cfg)
	addr := s.Route("cache").Addr()

	cli := testenv.LookPath(t, "redis-cli")
	run := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		all := append([]string{"--tls", "--cacert", caOut, "-h", "localhost", "-p", port(addr)}, args...)
		out, err := exec.CommandContext(ctx, cli, all...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run("SET", "k", "from-cli"); got != "OK" {
		t.Errorf("redis-cli SET: %q", got)
	}
	if got := run("STRLEN", "k"); got != "8" {
		t.Errorf("redis-cli STRLEN: %q, want 8", got)
	}
	if got := run("GET", "k"); !strings.Contains(got, "vaurien: injected fault") {
		t.Errorf("redis-cli GET: %q, want the injected error", got)
	}

	rdb := goredis.NewClient(&goredis.Options{Addr: addr, DisableIdentity: true,
		TLSConfig: &tls.Config{RootCAs: trust(t, caOut), ServerName: "localhost"}})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Set(ctx, "g", "from-go", 0).Err(); err != nil {
		t.Fatalf("go-redis SET: %v", err)
	}
	if n, err := rdb.Incr(ctx, "n").Result(); err != nil || n != 1 {
		t.Errorf("go-redis INCR: %d, %v", n, err)
	}
	if err := rdb.Get(ctx, "g").Err(); err == nil || !strings.Contains(err.Error(), "vaurien: injected fault") {
		t.Errorf("go-redis GET: %v, want the injected error", err)
	}
	// Pipelined commands keep their order inside TLS.
	pipe := rdb.Pipeline()
	for range 100 {
		pipe.Incr(ctx, "p")
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cmds {
		if v := c.(*goredis.IntCmd).Val(); v != int64(i+1) {
			t.Fatalf("pipelined INCR %d answered %d", i+1, v)
		}
	}
}

// TestTLSMemcacheRoute: a memcache route with TLS on both sides, in front
// of memcached with TLS.
func TestTLSMemcacheRoute(t *testing.T) {
	ca := testenv.NewCA(t)
	serverCert, serverKey := ca.Issue(t, "127.0.0.1")
	mc := testenv.Start(t, "memcached", "-p", "{port}", "-l", "127.0.0.1", "-U", "0", "-u", "root", "-Z",
		"-o", "ssl_chain_cert="+serverCert+",ssl_key="+serverKey)

	in, caOut := generated(t)
	cfg := proxy.RouteConfig{Name: "mc", Listen: "127.0.0.1:0", Backend: mc.Addr, Protocol: "memcache",
		TLS: in, Mix: errorOn(t, "get", "gets"),
		BackendTLS: resolve(t, tlsroute.BackendOptions, map[string]any{"ca": ca.File})}
	s := startServer(t, cfg)

	pool := trust(t, caOut)
	client := memcache.New(s.Route("mc").Addr())
	client.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		d := tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: "localhost"}}
		return d.DialContext(ctx, network, address)
	}
	defer client.Close()
	if err := client.Set(&memcache.Item{Key: "k", Value: []byte("over tls")}); err != nil {
		t.Fatalf("set: %v", err)
	}
	if v, err := client.Increment("missing", 1); err != memcache.ErrCacheMiss {
		t.Errorf("incr of a missing key: %d, %v; want a cache miss from memcached", v, err)
	}
	if _, err := client.Get("k"); err == nil || !strings.Contains(err.Error(), "vaurien injected fault") {
		t.Errorf("get: %v, want the injected SERVER_ERROR", err)
	}
}

// TestTLSPostgresRoute: the postgres route answers SSLRequest 'S' and
// terminates TLS with its generated certificate, so that psql and pgx with
// sslmode=verify-full trust it, and speaks TLS to a server that takes TLS
// only (pg_stat_ssl shows the server's side of it); faults are drawn per
// statement inside TLS.
func TestTLSPostgresRoute(t *testing.T) {
	ca := testenv.NewCA(t)
	pg := testenv.PostgresTLS(t, ca)
	direct, err := pgx.Connect(context.Background(), "postgres://postgres@"+pg.Addr+"/postgres?sslmode=disable")
	var refused *pgconn.PgError
	if !errors.As(err, &refused) || refused.Code != "28000" {
		if err == nil {
			direct.Close(context.Background())
		}
		t.Fatalf("a plain connection to the server: %v; want its refusal, SQLSTATE 28000", err)
	}
	in, caOut := generated(t)
	cfg := proxy.RouteConfig{Name: "db", Listen: "127.0.0.1:0", Backend: pg.Addr, Protocol: "postgres",
		TLS: in, Mix: errorOn(t, "UPDATE"),
		BackendTLS: resolve(t, tlsroute.BackendOptions, map[string]any{"ca": ca.File})}
	s := startServer(t, cfg)
	dsn := fmt.Sprintf("host=localhost port=%s user=postgres dbname=postgres sslmode=verify-full sslrootcert=%s", port(s.Route("db").Addr()), caOut)

	psql := testenv.LookPath(t, "psql")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, psql, dsn, "-Atc", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "t" {
		t.Fatalf("psql sslmode=verify-full through the route: %v: %q; want t, the server's side in TLS too", err, out)
	}

	// A client that does not ask for TLS is served in plain text, as by a
	// server with ssl on; the server's side stays TLS.
	plain := strings.Replace(dsn, "sslmode=verify-full", "sslmode=disable", 1)
	out, err = exec.CommandContext(ctx, psql, plain, "-Atc", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "t" {
		t.Errorf("psql sslmode=disable through the route: %v: %q", err, out)
	}

	pgxOnTLSFailsUpdate(t, ctx, dsn)
}

// TestTLSPostgresRouteClientSideOnly: a postgres route with tls and no
// backend_tls terminates TLS for psql and pgx with sslmode=verify-full and
// speaks plain text to a server without ssl; faults are drawn per statement
// inside the client's TLS.
func TestTLSPostgresRouteClientSideOnly(t *testing.T) {
	pg := testenv.Postgres(t)
	in, caOut := generated(t)
	cfg := proxy.RouteConfig{Name: "db", Listen: "127.0.0.1:0", Backend: pg.Addr, Protocol: "postgres",
		TLS: in, Mix: errorOn(t, "UPDATE")}
	s := startServer(t, cfg)
	dsn := fmt.Sprintf("host=localhost port=%s user=postgres dbname=postgres sslmode=verify-full sslrootcert=%s", port(s.Route("db").Addr()), caOut)

	psql := testenv.LookPath(t, "psql")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// verify-full fails unless the route served TLS with a certificate
	// for localhost from the CA; the server's side is plain.
	out, err := exec.CommandContext(ctx, psql, dsn, "-Atc", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "f" {
		t.Fatalf("psql sslmode=verify-full through the route: %v: %q; want f, the server's side in plain text", err, out)
	}

	pgxOnTLSFailsUpdate(t, ctx, dsn)
}

// pgxOnTLSFailsUpdate connects pgx with dsn, checks it is on TLS, and that
// an UPDATE draws the route's error fault while the statements around it
// pass.
func pgxOnTLSFailsUpdate(t *testing.T, ctx context.Context, dsn string) {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgx sslmode=verify-full: %v", err)
	}
	defer c.Close(context.Background())
	if !c.PgConn().Conn().(interface{ ConnectionState() tls.ConnectionState }).ConnectionState().HandshakeComplete {
		t.Error("pgx is not on TLS")
	}
	if _, err := c.Exec(ctx, "CREATE TABLE kv (k int PRIMARY KEY, v text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "INSERT INTO kv VALUES (1, 'a')"); err != nil {
		t.Fatal(err)
	}
	var pgErr *pgconn.PgError
	if _, err := c.Exec(ctx, "UPDATE kv SET v = 'b'"); !errors.As(err, &pgErr) || pgErr.Code != "40001" {
		t.Errorf("UPDATE under the error fault: %v, want SQLSTATE 40001", err)
	}
	var v string
	if err := c.QueryRow(ctx, "SELECT v FROM kv WHERE k = 1").Scan(&v); err != nil || v != "a" {
		t.Errorf("SELECT after the fault: %q, %v", v, err)
	}
}

// TestTLSMySQLRoute: a mysql route with tls and backend_tls keeps CLIENT_SSL
// in the greeting, relays the client's SSLRequest and speaks TLS with both
// sides, so that the mariadb client and go-sql-driver verifying the
// generated CA reach a server that sees a TLS session; faults are drawn per
// command inside TLS.
func TestTLSMySQLRoute(t *testing.T) {
	ca := testenv.NewCA(t)
	srv := testenv.MariaDBTLS(t, ca)
	in, caOut := generated(t)
	cfg := proxy.RouteConfig{Name: "mysql", Listen: "127.0.0.1:0", Backend: srv.Addr, Protocol: "mysql",
		TLS: in, Mix: errorOn(t, "UPDATE"),
		BackendTLS: resolve(t, tlsroute.BackendOptions, map[string]any{"ca": ca.File})}
	s := startServer(t, cfg)
	addr := s.Route("mysql").Addr()
	cipherQuery := "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'Ssl_cipher'"

	cli := testenv.LookPath(t, "mariadb")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, "-hlocalhost", "--protocol=TCP", "-P"+port(addr), "-u"+testenv.MariaDBNativeUser,
		"-p"+testenv.MariaDBPassword, "--ssl", "--ssl-ca="+caOut, "--ssl-verify-server-cert", "--batch", "--skip-column-names",
		"-e", cipherQuery).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("mariadb --ssl-verify-server-cert through the route: %v: %q; want the server's TLS cipher", err, out)
	}

	if err := mysql.RegisterTLSConfig("vaurien-route", &tls.Config{RootCAs: trust(t, caOut), ServerName: "localhost"}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/%s?tls=vaurien-route", testenv.MariaDBNativeUser, testenv.MariaDBPassword, addr, testenv.MariaDBDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cipher string
	if err := db.QueryRowContext(ctx, cipherQuery).Scan(&cipher); err != nil || cipher == "" {
		t.Fatalf("go-sql-driver with TLS: %q, %v", cipher, err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE kv (k INT PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	var myErr *mysql.MySQLError
	if _, err := db.ExecContext(ctx, "UPDATE kv SET v = 'x'"); !errors.As(err, &myErr) || myErr.Number != 1213 {
		t.Errorf("UPDATE under the error fault: %v, want the deadlock 1213", err)
	}

	// A client that does not ask for TLS is refused: its login would reach
	// the server in plain text.
	plain, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/%s?tls=false", testenv.MariaDBNativeUser, testenv.MariaDBPassword, addr, testenv.MariaDBDatabase))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.PingContext(ctx); err == nil {
		t.Error("a client without TLS was served by a route that speaks TLS to the server")
	}
}
