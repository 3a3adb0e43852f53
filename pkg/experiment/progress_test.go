package experiment

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// progressRun is a run as the runner reports it, read at offsets from t0:
// 3 s of steady state, a 5 s step "slow", then the end.
type progressRun struct {
	t0  time.Time
	now time.Time
}

func (r *progressRun) clock() time.Time { return r.now }

func (r *progressRun) status(at time.Duration, state, phase, step string, phaseEnds time.Duration, requests, errors int, p99 time.Duration) api.ExperimentStatus {
	r.now = r.t0.Add(at)
	ends := r.t0.Add(phaseEnds)
	return api.ExperimentStatus{
		Experiment: "cache-slow", State: state, Phase: phase, Step: step, PhaseEnds: &ends,
		Ends:   r.t0.Add(10 * time.Second),
		Probes: []api.ProbeStatus{{Name: "app", Requests: requests, Errors: errors, P99: api.Duration(p99)}},
	}
}

// On a pipe or a file (CI logs), the progress is plain lines: one at each
// change of phase with its length and the time the run has left, the
// probes' figures at most every 5 s, and the final state.
func TestProgressPlainLines(t *testing.T) {
	r := &progressRun{t0: time.Date(2026, 3, 4, 15, 4, 5, 0, time.Local)}
	var out strings.Builder
	p := &progress{w: &out, now: r.clock}
	p.show(r.status(0, api.StateRunning, "steady_state", "", 3*time.Second, 0, 0, 0))
	p.show(r.status(2*time.Second, api.StateRunning, "steady_state", "", 3*time.Second, 20, 0, 3*time.Millisecond))
	p.show(r.status(3*time.Second, api.StateRunning, "slow", "slow", 8*time.Second, 30, 0, 3*time.Millisecond))
	p.show(r.status(7900*time.Millisecond, api.StateRunning, "slow", "slow", 8*time.Second, 79, 4, 201*time.Millisecond))
	p.show(r.status(8*time.Second, api.StateRunning, "slow", "slow", 8*time.Second, 80, 5, 201234*time.Microsecond))
	p.show(r.status(8*time.Second, api.StateRunning, "recovery", "", 10*time.Second, 80, 5, 201234*time.Microsecond))
	p.show(r.status(10*time.Second, api.StateFailed, "recovery", "", 10*time.Second, 100, 5, 201234*time.Microsecond))
	want := `15:04:05 cache-slow: steady state for 3s (run ends in 10s)
15:04:08 cache-slow: step "slow" for 5s (run ends in 7s)
15:04:13 cache-slow: probe app: 80 requests, 5 errors, p99 201.2ms
15:04:13 cache-slow: recovery for 2s (run ends in 2s)
15:04:15 cache-slow: failed
`
	if out.String() != want {
		t.Errorf("plain progress:\n%s\nwant:\n%s", out.String(), want)
	}
}

// On a terminal, the progress is one display redrawn in place at every
// call: the phase, its time left and the run's, a line per probe; the
// final one stays on the screen.
func TestProgressTerminalRedrawsInPlace(t *testing.T) {
	r := &progressRun{t0: time.Date(2026, 3, 4, 15, 4, 5, 0, time.Local)}
	var out strings.Builder
	p := &progress{w: &out, terminal: true, now: r.clock}
	screen := func(st api.ExperimentStatus, want ...string) {
		t.Helper()
		p.show(st)
		if got := testenv.Screen("before\n" + out.String()); !slices.Equal(got, append([]string{"before"}, want...)) {
			t.Errorf("the terminal shows\n%s\nwant\nbefore\n%s\n(written: %q)", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String())
		}
	}
	screen(r.status(0, api.StateRunning, "steady_state", "", 3*time.Second, 0, 0, 0),
		"cache-slow  steady state, 3s left (run ends in 10s)",
		"  probe app: 0 requests, 0 errors, p99 0s")
	screen(r.status(4250*time.Millisecond, api.StateRunning, "slow", "slow", 8*time.Second, 42, 3, 201234*time.Microsecond),
		`cache-slow  step "slow", 3.8s left (run ends in 6s)`,
		"  probe app: 42 requests, 3 errors, p99 201.2ms")
	screen(r.status(10*time.Second, api.StatePassed, "recovery", "", 10*time.Second, 100, 3, 201234*time.Microsecond),
		"cache-slow  passed",
		"  probe app: 100 requests, 3 errors, p99 201.2ms")
	if !strings.Contains(out.String(), "\x1b[1mcache-slow\x1b[0m") {
		t.Errorf("the experiment's name is not in bold: %q", out.String())
	}
	// What follows the final display goes below it, not over it.
	out.WriteString("summary\n")
	if got := testenv.Screen(out.String()); got[len(got)-1] != "summary" || got[len(got)-3] != "cache-slow  passed" {
		t.Errorf("after the run the terminal shows\n%s", strings.Join(got, "\n"))
	}
}
