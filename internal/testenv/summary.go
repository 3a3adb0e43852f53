package testenv

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/term"
)

// Runner is what a TestMain runs: *testing.M, or goleak's TestingM.
type Runner interface{ Run() int }

// WithSkipSummary wraps a package's tests so that, after they ran, one line
// says which of them Missing skipped and what to install:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(testenv.WithSkipSummary(m)) }
//
// go test shows a passing package's output only with -v, so when the line
// would be hidden (not verbose, the tests passed, the output is not a
// terminal) it goes to the terminal go test runs in as well. A result
// replayed from go test's cache ("(cached)") shows no output at all:
// -count=1 runs the tests again.
func WithSkipSummary(m Runner) Runner {
	return summarized{m: m, pkg: callerPackage()}
}

type summarized struct {
	m   Runner
	pkg string
}

func (s summarized) Run() int {
	code := s.m.Run()
	line := skipped.summary(s.pkg)
	if line == "" {
		return code
	}
	fmt.Fprintln(os.Stdout, line)
	if hiddenByGoTest(testing.Verbose(), term.IsTerminal(int(os.Stdout.Fd())), code) {
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			fmt.Fprintln(tty, line)
			tty.Close()
		}
	}
	return code
}

// hiddenByGoTest reports whether go test drops the test binary's output:
// it does for a package that passed, unless -v, or the output goes
// straight to a terminal (go test run on the current directory).
func hiddenByGoTest(verbose, stdoutTerminal bool, code int) bool {
	return !verbose && !stdoutTerminal && code == 0
}

// callerPackage is the import path of the package whose TestMain called
// WithSkipSummary.
func callerPackage() string {
	pc, _, _, ok := runtime.Caller(2)
	if !ok {
		return "this package"
	}
	name := runtime.FuncForPC(pc).Name() // e.g. example.com/x/pkg_test.TestMain
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		if j := strings.IndexByte(name[i:], '.'); j >= 0 {
			name = name[:i+j]
		}
	}
	return strings.TrimSuffix(name, "_test")
}

// skipped holds the skips of the running test binary.
var skipped skips

// skips are the tests Missing skipped, by what they needed.
type skips struct {
	mu     sync.Mutex
	byNeed map[need][]string // test names, in the order they skipped
}

type need struct{ what, install string }

func (s *skips) add(test, what, install string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byNeed == nil {
		s.byNeed = map[need][]string{}
	}
	s.byNeed[need{what, install}] = append(s.byNeed[need{what, install}], test)
}

// namesShown is how many test names a summary gives per need.
const namesShown = 3

// summary is the one line that says, for pkg, how many tests skipped for
// want of what, naming a few, and how to install it; "" when none did.
func (s *skips) summary(pkg string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byNeed) == 0 {
		return ""
	}
	needs := make([]need, 0, len(s.byNeed))
	total := 0
	for n, tests := range s.byNeed {
		needs = append(needs, n)
		total += len(tests)
	}
	sort.Slice(needs, func(i, j int) bool { return needs[i].what < needs[j].what })
	var b strings.Builder
	fmt.Fprintf(&b, "SKIP %s: %d %s skipped:", pkg, total, plural(total, "test", "tests"))
	for i, n := range needs {
		tests := s.byNeed[n]
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %d %s %s (", len(tests), plural(len(tests), "needs", "need"), n.what)
		writeNames(&b, tests)
		fmt.Fprintf(&b, "): %s", n.install)
	}
	fmt.Fprintf(&b, " (%s=1 makes them fail instead)", RequireEnv)
	return b.String()
}

func writeNames(w io.Writer, tests []string) {
	shown := tests[:min(len(tests), namesShown)]
	fmt.Fprint(w, strings.Join(shown, ", "))
	if more := len(tests) - len(shown); more > 0 {
		fmt.Fprintf(w, " and %d more", more)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
