package testenv

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The accounts of a MariaDB started by MariaDB, all with the password
// MariaDBPassword and every privilege. MariaDB has no server side of
// caching_sha2_password (MySQL's default), so its two other common methods
// are there: mysql_native_password, offered in the server's greeting, and
// ed25519, which the server asks for with an auth switch.
const (
	MariaDBNativeUser  = "vaurien"
	MariaDBEd25519User = "vaurien_ed"
	MariaDBPassword    = "vaurien"
	MariaDBDatabase    = "vaurien"
)

// MariaDB starts a throwaway MariaDB server on 127.0.0.1 with a fresh data
// directory in a temporary directory, and the accounts and database above.
// LOAD DATA LOCAL is allowed and max_allowed_packet is 64 MiB, so that
// packets of more than 16 MiB can be tried. mariadbd refuses to run as
// root, so under root it runs as the mysql user of Debian's package.
// Connect with go-sql-driver/mysql as
// "vaurien:vaurien@tcp(ADDR)/vaurien".
func MariaDB(t testing.TB) *Server {
	t.Helper()
	return startMariaDB(t, nil)
}

// MariaDBTLS starts MariaDB as MariaDB does, with TLS offered
// (CLIENT_SSL) with a certificate for 127.0.0.1 and localhost issued by
// ca; clients that do not ask for TLS are still accepted.
func MariaDBTLS(t testing.TB, ca *CA) *Server {
	t.Helper()
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	return startMariaDB(t, func(dir string, cred *syscall.Credential) []string {
		// The server runs as another user: it gets copies it can read.
		var args []string
		for _, f := range []struct{ from, name, opt string }{{cert, "server.crt", "--ssl-cert"}, {key, "server.key", "--ssl-key"}} {
			b, err := os.ReadFile(f.from)
			if err != nil {
				t.Fatal(err)
			}
			to := filepath.Join(dir, f.name)
			if err := os.WriteFile(to, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if cred != nil {
				if err := os.Chown(to, int(cred.Uid), int(cred.Gid)); err != nil {
					t.Fatal(err)
				}
			}
			args = append(args, f.opt+"="+to)
		}
		return args
	})
}

// startMariaDB starts a server; extra, given its directory and the user it
// runs as (nil: this process's), returns more server arguments.
func startMariaDB(t testing.TB, extra func(dir string, cred *syscall.Credential) []string) *Server {
	t.Helper()
	install, mariadbd := LookPath(t, "mariadb-install-db"), LookPath(t, "mariadbd")
	dir, cred := serverDir(t, "mariadbd", "mysql")
	data := filepath.Join(dir, "data")
	// Small logs and pool: the defaults write 100 MB before the first query.
	small := []string{"--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M"}
	args := append([]string{"--no-defaults", "--datadir=" + data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve"}, small...)
	if cred != nil {
		args = append(args, "--user=mysql")
	}
	cmd := exec.Command(install, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	// The accounts are made by the server itself at start, before it
	// accepts connections.
	initSQL := filepath.Join(dir, "init.sql")
	script := fmt.Sprintf(`INSTALL SONAME 'auth_ed25519';
CREATE USER '%[1]s'@'%%' IDENTIFIED BY '%[3]s';
GRANT ALL ON *.* TO '%[1]s'@'%%';
CREATE USER '%[2]s'@'%%' IDENTIFIED VIA ed25519 USING PASSWORD('%[3]s');
GRANT ALL ON *.* TO '%[2]s'@'%%';
CREATE DATABASE %[4]s;
`, MariaDBNativeUser, MariaDBEd25519User, MariaDBPassword, MariaDBDatabase)
	if err := os.WriteFile(initSQL, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	s := &Server{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		args: append([]string{mariadbd, "--no-defaults", "--datadir=" + data,
			"--socket=" + filepath.Join(dir, "mariadb.sock"), "--pid-file=" + filepath.Join(dir, "mariadb.pid"),
			"--port=" + strconv.Itoa(port), "--bind-address=127.0.0.1", "--skip-name-resolve",
			"--init-file=" + initSQL, "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0",
			"--local-infile=1", "--max-allowed-packet=64M", "--max-connections=500"}, small...),
		t: t, cred: cred, quit: syscall.SIGTERM, // a clean shutdown
	}
	if extra != nil {
		s.args = append(s.args, extra(dir, cred)...)
	}
	s.start()
	t.Cleanup(s.Stop)
	if err := mariadbReady(s.Addr, startTimeout); err != nil {
		t.Fatalf("MariaDB did not become ready: %v", err)
	}
	return s
}

// mariadbReady polls until the server greets a new connection with its
// handshake (protocol version 10) rather than an error packet.
func mariadbReady(addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			head := make([]byte, 5)
			_, err = io.ReadFull(c, head)
			c.Close()
			if err == nil && head[4] == 10 {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("greeted a new connection with packet type %#x, not a handshake", head[4])
			}
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
