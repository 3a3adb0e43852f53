package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vaurien-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "vaurien")
	build := exec.Command("go", "build", "-o", binary, "github.com/vaurien-go/vaurien/cmd/vaurien")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build vaurien:", err)
		os.Exit(1)
	}
	code := testenv.WithSkipSummary(m).Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// vaurien is a running vaurien process.
type vaurien struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
	err  error
}

// start runs the binary with args; shell, when set, wraps it (e.g. to set a
// ulimit). It is killed at the end of the test if still running.
func start(t *testing.T, shell string, args ...string) *vaurien {
	t.Helper()
	var cmd *exec.Cmd
	if shell != "" {
		quoted := make([]string, len(args))
		for i, a := range args {
			quoted[i] = strconv.Quote(a)
		}
		cmd = exec.Command("/bin/sh", "-c", shell+"; exec "+binary+" "+strings.Join(quoted, " "))
	} else {
		cmd = exec.Command(binary, args...)
	}
	v := &vaurien{t: t, cmd: cmd, done: make(chan struct{})}
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			v.mu.Lock()
			v.logs.WriteString(sc.Text() + "\n")
			v.mu.Unlock()
		}
		v.err = cmd.Wait()
		close(v.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-v.done
		if t.Failed() {
			t.Logf("vaurien output:\n%s", v.output())
		}
	})
	return v
}

func (v *vaurien) output() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.logs.String()
}

// waitLog waits until the output contains s.
func (v *vaurien) waitLog(s string, within time.Duration) {
	v.t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(v.output(), s) {
		if time.Now().After(deadline) {
			v.t.Fatalf("vaurien did not log %q within %v", s, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (v *vaurien) signal(s syscall.Signal) {
	if err := v.cmd.Process.Signal(s); err != nil {
		v.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (v *vaurien) wait(within time.Duration) (int, time.Duration) {
	v.t.Helper()
	start := time.Now()
	select {
	case <-v.done:
	case <-time.After(within):
		v.t.Fatalf("vaurien still running after %v", within)
	}
	return v.cmd.ProcessState.ExitCode(), time.Since(start)
}

func (v *vaurien) pid() int { return v.cmd.Process.Pid }

// rss is the process's resident memory in bytes.
func (v *vaurien) rss() int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", v.pid()))
	if err != nil {
		v.t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// fds counts the process's open file descriptors.
func (v *vaurien) fds() int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", v.pid()))
	if err != nil {
		v.t.Skipf("no /proc: %v", err)
	}
	return len(ents)
}

// cpu is the process's user+system CPU time.
func (v *vaurien) cpu() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", v.pid()))
	if err != nil {
		v.t.Skipf("no /proc: %v", err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100
}

func writeConfig(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// oneRouteConfig writes a config with an admin on a free address, the given
// top-level settings and route a to backend, and returns the address route a
// listens on and the config's path.
func oneRouteConfig(t *testing.T, backend, settings string) (listen, path string) {
	t.Helper()
	listen = freeAddr(t)
	path = filepath.Join(t.TempDir(), "vaurien.hcl")
	writeConfig(t, path, fmt.Sprintf("admin {\n  listen = %q\n}\n", freeAddr(t))+settings+routeBlock("a", listen, backend, ""))
	return listen, path
}

func freeAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
}

// echoServer echoes every connection, half-closing back at EOF.
func echoServer(t *testing.T) string {
	return testenv.Echo(t).Addr
}

func dialOK(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
