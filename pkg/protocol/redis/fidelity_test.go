package redis

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

// A replica syncs through the proxy: SYNC and PSYNC answer an RDB payload
// that is not RESP (no CRLF after it, or an EOF mark when diskless) and
// then the replication stream, so the connection goes raw at them. The
// replica gets the keys of the RDB and those written afterwards.
func TestReplicaSyncsThroughProxy(t *testing.T) {
	for _, diskless := range []string{"yes", "no"} {
		t.Run("diskless="+diskless, func(t *testing.T) {
			master := testenv.Start(t, "redis-server", "--port", "{port}", "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no", "--protected-mode", "no",
				"--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0", "--dir", t.TempDir())
			p := startProxy(t, master.Addr, proxyConfig{})
			ctx := context.Background()
			m := newClient(t, master.Addr, 2)
			for i := range 100 {
				if err := m.Set(ctx, fmt.Sprint("before", i), i, 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			host, port, _ := net.SplitHostPort(p.Addr)
			replica := testenv.Start(t, "redis-server", "--port", "{port}", "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no", "--protected-mode", "no",
				"--replicaof", host, port, "--dir", t.TempDir())
			r := newClient(t, replica.Addr, 2)
			protocoltest.WaitFor(t, 20*time.Second, "the replica's link to be up", func() bool {
				info, _ := r.Info(ctx, "replication").Result()
				return strings.Contains(info, "master_link_status:up")
			})
			if got, err := r.Get(ctx, "before99").Result(); err != nil || got != "99" {
				t.Fatalf("replica's before99 = %q, %v; want the RDB's 99", got, err)
			}
			for i := range 100 {
				if err := m.Set(ctx, fmt.Sprint("after", i), i, 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			protocoltest.WaitFor(t, 10*time.Second, "the stream's keys on the replica", func() bool {
				got, _ := r.Get(ctx, "after99").Result()
				return got == "99"
			})
			if n, err := r.DBSize(ctx).Result(); err != nil || n != 200 {
				t.Fatalf("replica holds %d keys (%v), want 200", n, err)
			}
			// The proxy stays framed up to the switch: the handshake's
			// commands are counted.
			if p.Count("REPLCONF") == 0 || p.Count("PSYNC") != 1 {
				t.Errorf("exchanges: REPLCONF %d, PSYNC %d; want some and 1", p.Count("REPLCONF"), p.Count("PSYNC"))
			}
		})
	}
}

// redis-cli --rdb (SYNC) saves the master's RDB through the proxy.
func TestRDBDumpThroughProxy(t *testing.T) {
	cli := testenv.LookPath(t, "redis-cli")
	srv := testenv.Start(t, "redis-server", "--port", "{port}", "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--repl-diskless-sync", "no", "--dir", t.TempDir())
	p := startProxy(t, srv.Addr, proxyConfig{})
	ctx := context.Background()
	if err := newClient(t, srv.Addr, 2).Set(ctx, "dumped", "value-in-the-rdb", 0).Err(); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(p.Addr)
	file := filepath.Join(t.TempDir(), "dump.rdb")
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli, "-h", host, "-p", port, "--rdb", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --rdb: %v\n%s", err, out)
	}
	rdb, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(rdb), "REDIS") || !strings.Contains(string(rdb), "value-in-the-rdb") {
		t.Fatalf("the dump (%d bytes) is not the master's RDB: %.40q", len(rdb), rdb)
	}
}

// Redis refuses SYNC and PSYNC inside MULTI: there they switch nothing,
// and the connection stays framed.
func TestSyncInsideMultiStaysFramed(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	rc := dialRaw(t, p.Addr)
	rc.write(command("MULTI") + command("PSYNC", "?", "-1") + command("SYNC") + command("EXEC") + command("PING"))
	rc.expect("+OK\r\n")
	rc.expect("-ERR Command not allowed inside a transaction\r\n")
	rc.expect("-ERR Command not allowed inside a transaction\r\n")
	rc.expect("-EXECABORT Transaction discarded because of previous errors.\r\n")
	rc.expect("+PONG\r\n")
	protocoltest.WaitFor(t, 5*time.Second, "PING to be counted as an exchange", func() bool { return p.Count("PING") == 1 })
}

// After HELLO 3, the UNSUBSCRIBE family answers a connection with no
// subscription with pushes only, one per channel named (one when none
// is): they are the command's reply, and the commands after it go on.
func TestUnsubscribeAnswersWithPushes(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	rc := dialRaw(t, p.Addr)
	rc.send("HELLO", "3")
	rc.read()
	for _, cmd := range []string{"UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"} {
		kind := strings.ToLower(cmd)
		rc.send(cmd)
		rc.expect(fmt.Sprintf(">3\r\n$%d\r\n%s\r\n_\r\n:0\r\n", len(kind), kind))
		rc.send("PING")
		rc.expect("+PONG\r\n")
		rc.write(command(cmd, "a", "b") + command("ECHO", "after"))
		rc.expect(fmt.Sprintf(">3\r\n$%d\r\n%s\r\n$1\r\na\r\n:0\r\n", len(kind), kind))
		rc.expect(fmt.Sprintf(">3\r\n$%d\r\n%s\r\n$1\r\nb\r\n:0\r\n", len(kind), kind))
		rc.expect("$5\r\nafter\r\n")
	}
	protocoltest.WaitFor(t, 5*time.Second, "the exchanges to be counted", func() bool {
		return p.Count("UNSUBSCRIBE") == 2 && p.Count("SUNSUBSCRIBE") == 2 && p.Count("ECHO") == 3
	})

	// A real RESP3 client: the connection stays usable.
	ctx := context.Background()
	rdb := newClient(t, p.Addr, 3)
	conn := rdb.Conn()
	defer conn.Close()
	for _, cmd := range []string{"UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"} {
		if v, err := conn.Do(ctx, cmd).Slice(); err != nil || len(v) != 3 || v[0] != strings.ToLower(cmd) {
			t.Fatalf("%s = %v, %v", cmd, v, err)
		}
		if got, err := conn.Ping(ctx).Result(); err != nil || got != "PONG" {
			t.Fatalf("PING after %s = %q, %v", cmd, got, err)
		}
	}
}

// The UNSUBSCRIBE family's messages come whatever CLIENT REPLY says, in
// RESP2 and RESP3, and a push of another kind before them (a tracking
// invalidation) is not one of them: each reply stays matched to its
// request, so a fault drawn by a later request lands in its place.
func TestUnsubscribeRepliesStayMatched(t *testing.T) {
	srv := testenv.Redis(t)
	fail := &protocoltest.Fixed{E: errorEffect("")}
	p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, fail, "GET"))})
	for _, proto := range []string{"2", "3"} {
		rc := dialRaw(t, p.Addr)
		rc.send("HELLO", proto)
		rc.read()
		unsub := "*3\r\n$11\r\nunsubscribe\r\n$1\r\nq\r\n:0\r\n"
		if proto == "3" {
			unsub = ">3\r\n$11\r\nunsubscribe\r\n$1\r\nq\r\n:0\r\n"
		}
		rc.write(command("CLIENT", "REPLY", "OFF") + command("UNSUBSCRIBE", "q") + command("PING") +
			command("CLIENT", "REPLY", "ON") + command("GET", "k"))
		rc.expect(unsub)
		rc.expect("+OK\r\n")
		rc.expect("-" + DefaultErrorMessage + "\r\n")
		if proto == "2" {
			continue
		}
		rc.send("CLIENT", "TRACKING", "ON")
		rc.expect("+OK\r\n")
		rc.send("MGET", "tracked")
		rc.expect("*1\r\n_\r\n")
		other := dialRaw(t, srv.Addr)
		other.send("SET", "tracked", "1")
		other.expect("+OK\r\n")
		protocoltest.WaitFor(t, 5*time.Second, "the invalidation to be sent", func() bool {
			other.send("CLIENT", "INFO")
			return strings.Contains(other.read(), "tot-mem") // a round trip after the SET
		})
		rc.write(command("UNSUBSCRIBE", "q") + command("GET", "k"))
		rc.expect(">2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\ntracked\r\n")
		rc.expect(unsub)
		rc.expect("-" + DefaultErrorMessage + "\r\n")
	}
}

// An inline SYNC, as redis' own tests attach to the replication stream:
// the RDB's length line after keep-alive newlines, the RDB without a CRLF
// after it, then the commands the master runs.
func TestInlineSyncStreams(t *testing.T) {
	srv := testenv.Start(t, "redis-server", "--port", "{port}", "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no",
		"--repl-diskless-sync", "no", "--repl-ping-replica-period", "3600", "--dir", t.TempDir())
	p := startProxy(t, srv.Addr, proxyConfig{})
	rc := dialRaw(t, p.Addr)
	rc.write("SYNC\r\n")
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line := "\n"
	for line == "\n" {
		var err error
		if line, err = rc.r.ReadString('\n'); err != nil {
			t.Fatalf("read the RDB's length: %v", err)
		}
	}
	var n int
	if _, err := fmt.Sscanf(line, "$%d\r\n", &n); err != nil {
		t.Fatalf("length line %q: %v", line, err)
	}
	rdb := make([]byte, n)
	if _, err := io.ReadFull(rc.r, rdb); err != nil || !strings.HasPrefix(string(rdb), "REDIS") {
		t.Fatalf("read the RDB (%d bytes): %.10q, %v", n, rdb, err)
	}
	m := dialRaw(t, srv.Addr)
	m.send("SET", "streamed", "v")
	m.expect("+OK\r\n")
	rc.expect(command("SELECT", "0"))
	rc.expect(command("SET", "streamed", "v"))
}
