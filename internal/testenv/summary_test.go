package testenv

import (
	"strings"
	"testing"
)

// TestMissingCountsSkips skips subtests through LookPath and Missing, as
// server tests do, and reads the package's summary line.
func TestMissingCountsSkips(t *testing.T) {
	t.Setenv(RequireEnv, "")
	var before skips
	skipped.mu.Lock()
	before.byNeed, skipped.byNeed = skipped.byNeed, nil
	skipped.mu.Unlock()
	t.Cleanup(func() {
		skipped.mu.Lock()
		skipped.byNeed = before.byNeed
		skipped.mu.Unlock()
	})

	for _, name := range []string{"a", "b", "c", "d", "e"} {
		t.Run(name, func(t *testing.T) { LookPath(t, "vaurien-no-such-server") })
	}
	t.Run("docker", func(t *testing.T) {
		Missing(t, "a Docker engine", "is not running", "start one")
	})
	t.Run("present", func(t *testing.T) { LookPath(t, "go") })

	got := skipped.summary("example.com/pkg")
	want := "SKIP example.com/pkg: 6 tests skipped:" +
		" 1 needs a Docker engine (TestMissingCountsSkips/docker): start one;" +
		" 5 need vaurien-no-such-server (TestMissingCountsSkips/a, TestMissingCountsSkips/b, TestMissingCountsSkips/c and 2 more): apt-get install vaurien-no-such-server (Debian)" +
		" (VAURIEN_REQUIRE_SERVERS=1 makes them fail instead)"
	if got != want {
		t.Errorf("summary:\n got %s\nwant %s", got, want)
	}
	if strings.Contains(got, "\n") {
		t.Errorf("summary spans lines: %q", got)
	}
}

func TestSummaryOfNoSkips(t *testing.T) {
	var s skips
	if got := s.summary("example.com/pkg"); got != "" {
		t.Errorf("summary with no skips: %q, want none", got)
	}
}

func TestHiddenByGoTest(t *testing.T) {
	tests := []struct {
		verbose, terminal bool
		code              int
		want              bool
	}{
		{false, false, 0, true},  // go test ./...: a passing package's output is dropped
		{true, false, 0, false},  // go test -v ./...: shown
		{false, false, 1, false}, // a failing package's output is shown
		{false, true, 0, false},  // go test in the package's directory: streamed to the terminal
	}
	for _, tt := range tests {
		if got := hiddenByGoTest(tt.verbose, tt.terminal, tt.code); got != tt.want {
			t.Errorf("hiddenByGoTest(verbose %v, terminal %v, code %d) = %v, want %v", tt.verbose, tt.terminal, tt.code, got, tt.want)
		}
	}
}
