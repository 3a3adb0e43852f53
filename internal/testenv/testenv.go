// Package testenv starts the real servers that vaurien's tests run against
// (redis-server, memcached, nginx, prometheus, PostgreSQL, MariaDB) on
// 127.0.0.1 and decides what happens when one is missing: the test skips
// with a clear message, unless VAURIEN_REQUIRE_SERVERS=1 (set by CI) turns
// the skip into a failure. A package whose TestMain goes through WithSkipSummary also
// prints one line naming the tests it skipped and what to install, where a
// user running go test without -v sees it.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image/png"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the variable that makes missing servers fail tests.
const RequireEnv = "VAURIEN_REQUIRE_SERVERS"

// LookPath returns the path of a server binary, skipping (or failing under
// VAURIEN_REQUIRE_SERVERS=1) the test when it is not installed.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	// Debian keeps PostgreSQL's server programs out of PATH, one
	// directory per major version: the newest wins.
	pg, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.Reverse(pg)
	for _, dir := range append([]string{"/usr/sbin", "/usr/local/sbin", "/sbin"}, pg...) {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name)
		}
	}
	Missing(t, name, "is not installed", "apt-get install "+debianPackage(name)+" (Debian)")
	return ""
}

// Missing skips the test for want of need (a server binary, a Docker
// engine), or fails it under VAURIEN_REQUIRE_SERVERS=1. why says what is
// wrong with it, install how to get it. The skip is counted for the
// package's summary line (WithSkipSummary).
func Missing(t testing.TB, need, why, install string) {
	t.Helper()
	msg := fmt.Sprintf("%s %s; to run this test: %s", need, why, install)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatal(msg + " (" + RequireEnv + "=1 requires it)")
	}
	skipped.add(t.Name(), need, install)
	t.Skip(msg)
}

func debianPackage(name string) string {
	switch name {
	case "redis-server":
		return "redis-server"
	case "redis-benchmark", "redis-cli":
		return "redis-tools"
	case "nginx":
		return "nginx-light"
	case "promtool":
		return "prometheus"
	case "docker":
		return "docker.io"
	case "initdb", "postgres", "pgbench", "psql":
		return "postgresql"
	case "mariadbd", "mariadb-install-db":
		return "mariadb-server"
	case "mariadb", "mariadb-slap", "mysqlslap":
		return "mariadb-client"
	}
	return name
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no earlier call of this process returned. It is drawn below the
// kernel's ephemeral range: a port the kernel hands out for ":0" listeners
// and outgoing connections could be taken, by this or another test
// process, between this check and the server's own bind, and the test
// would then talk to whatever took it.
func FreePort(t testing.TB) int {
	t.Helper()
	given.mu.Lock()
	defer given.mu.Unlock()
	lo, hi := belowEphemeral()
	for range 1000 {
		port := lo + rand.IntN(hi-lo)
		if given.ports[port] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		given.ports[port] = true
		return port
	}
	t.Fatalf("find a free port: none free in %d-%d", lo, hi-1)
	return 0
}

// belowEphemeral is the range FreePort draws from: up to 16384 ports below
// the first ephemeral port (32768 where the kernel does not say).
func belowEphemeral() (lo, hi int) {
	hi = 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 2048 {
				hi = n
			}
		}
	}
	return max(1024, hi-16384), hi
}

var given = struct {
	mu    sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Server is a real server process started for a test.
type Server struct {
	Addr string // host:port it listens on
	cmd  *exec.Cmd
	args []string
	t    testing.TB
	// As whom the server runs (nil: this process's user), and the signal
	// that stops it (nil: kill).
	cred *syscall.Credential
	quit os.Signal
}

// Start runs a server binary with args (where "{port}" is replaced by a free
// port) and waits until it accepts TCP connections. It is stopped when the
// test ends.
func Start(t testing.TB, binary string, args ...string) *Server {
	t.Helper()
	path := LookPath(t, binary)
	port := FreePort(t)
	for i, a := range args {
		if a == "{port}" {
			args[i] = strconv.Itoa(port)
		}
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), args: append([]string{path}, args...), t: t}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if s.cred != nil {
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	out, _ := s.cmd.StdoutPipe()
	s.cmd.Stderr = s.cmd.Stdout
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", s.args[0], err)
	}
	go func() { // drain output so the server never blocks on a full pipe
		sc := bufio.NewScanner(out)
		for sc.Scan() {
		}
	}()
	if err := WaitListening(s.Addr, startTimeout); err != nil {
		s.Stop()
		s.t.Fatalf("start %s: %v", s.args[0], err)
	}
}

// Stop stops the server and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	if s.quit == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
		return
	}
	_ = s.cmd.Process.Signal(s.quit)
	done := make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// Restart starts the server again on the same address after Stop.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// startTimeout bounds a server's start, sized for a loaded two-core
// machine where several packages' tests start servers at once.
const startTimeout = 30 * time.Second

// WaitListening polls until addr accepts a TCP connection; its error says
// how long it waited, and the last dial's error.
func WaitListening(addr string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing accepted connections on %s within %v (last dial: %w)", addr, within, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Redis starts a throwaway redis-server without persistence.
func Redis(t testing.TB) *Server {
	return Start(t, "redis-server", "--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no")
}

// Memcached starts a throwaway memcached with 1 MB+ items allowed.
func Memcached(t testing.TB) *Server {
	return Start(t, "memcached", "-p", "{port}", "-l", "127.0.0.1", "-U", "0", "-m", "256", "-I", "16m", "-u", "root")
}

// CheckPicture fails the test unless data is a PNG that shows something:
// many colours, and a good share of pixels that are not white. It tells a
// rendered page from a blank or broken one.
func CheckPicture(t testing.TB, data []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	seen := map[uint32]bool{}
	ink, all := 0, 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[(r>>8)<<16|(g>>8)<<8|bl>>8] = true
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				ink++
			}
			all++
		}
	}
	if len(seen) < 50 || float64(ink) < 0.03*float64(all) {
		t.Errorf("the picture looks blank: %d colours, %.1f%% of pixels not white", len(seen), 100*float64(ink)/float64(max(all, 1)))
	}
}

// Postgres starts a throwaway PostgreSQL server on 127.0.0.1 with a fresh
// cluster in a temporary directory: user postgres, database postgres, trust
// authentication, no fsync. PostgreSQL refuses to run as root, so under
// root it runs as the postgres user of Debian's package. Connect with
// "postgres://postgres@ADDR/postgres?sslmode=disable".
func Postgres(t testing.TB) *Server {
	t.Helper()
	return startPostgres(t, nil)
}

// PostgresTLS starts a throwaway PostgreSQL cluster with ssl on, serving a
// certificate for 127.0.0.1 and localhost issued by ca, that takes only
// TLS connections (hostssl from 127.0.0.1): a client that does not ask for
// TLS is refused, SQLSTATE 28000.
func PostgresTLS(t testing.TB, ca *CA) *Server {
	t.Helper()
	return postgresTLS(t, ca, "hostssl all all 127.0.0.1/32 trust\n")
}

// PostgresTLSOptional is PostgresTLS taking clients that do not ask for
// TLS too, as a server with ssl on and host lines does.
func PostgresTLSOptional(t testing.TB, ca *CA) *Server {
	t.Helper()
	return postgresTLS(t, ca, "host all all 127.0.0.1/32 trust\n")
}

func postgresTLS(t testing.TB, ca *CA, hba string) *Server {
	t.Helper()
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	certPEM, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	return startPostgres(t, func(dir string, uid, gid int) []string {
		// The server reads its key only when the key is private to it.
		var args []string
		for _, f := range []struct {
			data      []byte
			name, opt string
		}{{certPEM, "server.crt", "ssl_cert_file"}, {keyPEM, "server.key", "ssl_key_file"}, {[]byte(hba), "pg_hba.conf", "hba_file"}} {
			to := filepath.Join(dir, f.name)
			if err := os.WriteFile(to, f.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if uid >= 0 {
				if err := os.Chown(to, uid, gid); err != nil {
					t.Fatal(err)
				}
			}
			args = append(args, "-c", f.opt+"="+to)
		}
		return append(args, "-c", "ssl=on")
	})
}

// serverDir makes a directory for a server that refuses to run as root.
// When this process is root, the server is to run as account, whose
// credential is returned (nil otherwise) and who owns the directory.
func serverDir(t testing.TB, server, account string) (string, *syscall.Credential) {
	t.Helper()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup(account)
		if err != nil {
			t.Fatalf("%s refuses to run as root and there is no %s user to run it as: %v", server, account, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// Not t.TempDir: its parent is closed to other users.
	dir, err := os.MkdirTemp("", "vaurien-"+account+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, cred
}

// startPostgres starts a cluster; extra, given the cluster's directory and
// the server's user and group (-1 when it is this process's), returns more
// server arguments.
func startPostgres(t testing.TB, extra func(dir string, uid, gid int) []string) *Server {
	t.Helper()
	initdb, postgres := LookPath(t, "initdb"), LookPath(t, "postgres")
	dir, cred := serverDir(t, "PostgreSQL", "postgres")
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := FreePort(t)
	s := &Server{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		args: []string{postgres, "-D", data, "-k", dir, "-p", strconv.Itoa(port),
			"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off"},
		t: t, cred: cred, quit: syscall.SIGINT, // a fast shutdown
	}
	if extra != nil {
		uid, gid := -1, -1
		if cred != nil {
			uid, gid = int(cred.Uid), int(cred.Gid)
		}
		s.args = append(s.args, extra(dir, uid, gid)...)
	}
	s.start()
	t.Cleanup(s.Stop)
	if err := postgresReady(s.Addr, 30*time.Second); err != nil {
		t.Fatalf("PostgreSQL did not become ready: %v", err)
	}
	return s
}

// postgresReady polls until PostgreSQL, which listens before it is ready,
// answers a startup message with an authentication request instead of an
// error ("the database system is starting up"), or with the refusal of a
// server that takes TLS only: it checks pg_hba.conf once it is ready.
func postgresReady(addr string, within time.Duration) error {
	startup := []byte("\x00\x00\x00\x00\x00\x03\x00\x00user\x00postgres\x00database\x00postgres\x00\x00")
	startup[3] = byte(len(startup))
	deadline := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			var kind byte
			var body []byte
			if _, err = c.Write(startup); err == nil {
				kind, body, err = readPostgresMessage(c)
			}
			c.Close()
			if err == nil && (kind == 'R' || kind == 'E' && postgresErrorCode(body) == "28000") {
				return nil
			}
			if err == nil {
				err = fmt.Errorf("answered %q to a startup message: %q", kind, body)
			}
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readPostgresMessage(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[1:]))
	if n < 4 || n > 1<<16 {
		return hdr[0], nil, fmt.Errorf("a message of length %d", n)
	}
	body := make([]byte, n-4)
	_, err := io.ReadFull(r, body)
	return hdr[0], body, err
}

// postgresErrorCode is the SQLSTATE of an ErrorResponse's body.
func postgresErrorCode(body []byte) string {
	for len(body) > 1 {
		field, rest := body[0], body[1:]
		v, next, ok := bytes.Cut(rest, []byte{0})
		if !ok {
			break
		}
		if field == 'C' {
			return string(v)
		}
		body = next
	}
	return ""
}
