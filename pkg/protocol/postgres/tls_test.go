package postgres

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

// sslOn turns on the test server's TLS with a self-signed certificate.
func sslOn(t *testing.T, addr string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir, whose parent other users cannot enter: the server may
	// run as the postgres user, who must own the key.
	dir, err := os.MkdirTemp("", "vaurien-postgres-tls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	crt, kf := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if err := os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(kf, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	c := connect(t, addr)
	exec(t, c, "alter system set ssl_cert_file = '"+crt+"'")
	exec(t, c, "alter system set ssl_key_file = '"+kf+"'")
	exec(t, c, "alter system set ssl = on")
	exec(t, c, "select pg_reload_conf()")
}

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
	pg := testenv.Postgres(t)
	sslOn(t, pg.Addr)
	ctx := context.Background()
	require := func(addr string) string {
		return strings.Replace(url(addr, "postgres", ""), "sslmode=prefer", "sslmode=require", 1)
	}
	// New sessions take the reload that turns TLS on once the postmaster
	// has read it.
	protocoltest.WaitFor(t, 10*time.Second, "the server to take TLS", func() bool {
		c, err := pgx.Connect(ctx, require(pg.Addr))
		if err == nil {
			c.Close(ctx)
		}
		return err == nil
	})

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
