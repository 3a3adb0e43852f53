package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// HAProxy's descriptor budget: under the 20,000 open files a process may
// have on the machines the suite runs on. A spliced connection costs it two
// sockets and, while data moves, a pipe (two descriptors) from a pool of a
// quarter of maxconn: 2.5 descriptors per connection at most, so maxconn is
// the budget over 2.5 less some room for listeners and logs.
const (
	haproxyFDLimit  = 19000
	haproxyMaxConns = 7500
)

// haproxyConfig runs HAProxy as the issue measured it: mode tcp, splicing
// both ways, default threads (one per CPU). The timeouts are long enough
// that the idle workload's connections stay open.
const haproxyConfig = `global
	fd-hard-limit %[1]d
	maxconn %[2]d

defaults
	mode tcp
	maxconn %[2]d
	option splice-request
	option splice-response
	timeout connect 5s
	timeout client 1h
	timeout server 1h

frontend bench
	bind %[3]s
	default_backend bench

backend bench
	server backend %[4]s
`

// haproxyBin is the haproxy binary, or "" when it is not installed
// (bench/run.sh installs it from Debian when it can).
func haproxyBin() string {
	if p, err := exec.LookPath("haproxy"); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		if p := filepath.Join(dir, "haproxy"); fileExists(p) {
			return p
		}
	}
	return ""
}

// startHAProxy runs an HAProxy process in front of backend; the child's
// addr is where it listens.
func startHAProxy(b testing.TB, bin, backend string) *child {
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(b))
	dir := b.TempDir()
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, fmt.Appendf(nil, haproxyConfig, haproxyFDLimit, haproxyMaxConns, addr, backend), 0o644); err != nil {
		b.Fatal(err)
	}
	// -db: stay in the foreground, so that the process started is the
	// one that serves and is measured.
	cmd := exec.Command(bin, "-db", "-f", conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatalf("start haproxy: %v", err)
	}
	c := &child{name: "haproxy", cmd: cmd, addr: addr}
	b.Cleanup(c.stop)
	if err := testenv.WaitListening(addr, 10*time.Second); err != nil {
		c.stop()
		b.Fatalf("haproxy did not start: %v\n%s", err, out.String())
	}
	return c
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
