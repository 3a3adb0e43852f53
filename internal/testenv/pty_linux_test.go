package testenv

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestSkipSummaryShownWithoutVerbose runs go test on a package whose tests
// skip for want of a server, as a user does in a terminal: without -v, in
// package list mode, which drops a passing package's output. The summary
// line must reach the terminal.
func TestSkipSummaryShownWithoutVerbose(t *testing.T) {
	gobin := LookPath(t, "go")
	terminal, stdout := goTestInTerminal(t, gobin, "./testdata/skipping")
	const want = "SKIP github.com/vaurien-go/vaurien/internal/testenv/testdata/skipping: 2 tests skipped: 2 need vaurien-no-such-server (TestNeedsServer, TestNeedsServerToo): apt-get install vaurien-no-such-server (Debian)"
	if !strings.Contains(terminal, want) {
		t.Errorf("the terminal shows %q; want the line %q (go test's output: %q)", terminal, want, stdout)
	}
	if !strings.Contains(stdout, "ok  \tgithub.com/vaurien-go/vaurien/internal/testenv/testdata/skipping") {
		t.Errorf("go test printed %q, want its ok line", stdout)
	}
}

// goTestInTerminal runs `go test pkg` in a session whose controlling
// terminal is a new pseudo-terminal, with go test's own output going to a
// pipe, and returns what the terminal received and what go test printed.
func goTestInTerminal(t *testing.T, gobin, pkg string) (terminal, stdout string) {
	t.Helper()
	master, slave := Pty(t)

	var out bytes.Buffer
	cmd := exec.Command(gobin, "test", "-count=1", pkg)
	cmd.Env = append(os.Environ(), RequireEnv+"=", "GOFLAGS=")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatalf("go test %s: %v", pkg, err)
	}
	slave.Close() // the child holds it now: its end of the terminal closes with it
	read := make(chan string)
	go func() {
		b, _ := io.ReadAll(master) // ends with EIO once the child's side is closed
		read <- string(b)
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go test %s: %v\n%s", pkg, err, out.String())
	}
	return <-read, out.String()
}
