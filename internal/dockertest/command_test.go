package dockertest

import (
	"strings"
	"testing"
	"time"
)

// TestCommandTimeoutSaysWhatAndHowLong: a command that outlives its limit
// is killed, promptly, and the error names the command and the limit, not
// only "signal: killed".
func TestCommandTimeoutSaysWhatAndHowLong(t *testing.T) {
	start := time.Now()
	_, err := command(time.Second, "", nil, "sleep", "30")
	took := time.Since(start)
	if err == nil {
		t.Fatal("sleep 30 with a 1s limit succeeded")
	}
	for _, want := range []string{"sleep 30", "timed out", "after 1s", "killed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if took > 20*time.Second {
		t.Errorf("the command was killed after %v, want soon after its 1s limit", took)
	}
}

// TestCommandErrorNamesCommand: a command that fails says which.
func TestCommandErrorNamesCommand(t *testing.T) {
	out, err := command(time.Minute, "", nil, "sh", "-c", "echo oops >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "sh -c echo oops >&2; exit 3: exit status 3") {
		t.Errorf("error %v, want it to name the command and its exit status", err)
	}
	if !strings.Contains(out, "oops") {
		t.Errorf("output %q, want the command's stderr", out)
	}
}

func TestTimeoutForLeavesTheTestDeadline(t *testing.T) {
	deadline, ok := t.Deadline()
	got := timeoutFor(t, 24*time.Hour)
	if !ok {
		if got != 24*time.Hour {
			t.Errorf("timeoutFor without a test deadline = %v, want the limit itself", got)
		}
		return
	}
	if end := time.Now().Add(got); end.After(deadline) {
		t.Errorf("timeoutFor = %v ends at %v, after the test's deadline %v", got, end, deadline)
	}
	if got := timeoutFor(t, time.Second); got != time.Second {
		t.Errorf("timeoutFor(1s) = %v, want 1s when the deadline is further", got)
	}
}
