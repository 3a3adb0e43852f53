package experiment

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// Progress returns a Progress function that shows a run on w: on a
// terminal a live display redrawn in place (phase, time left, and per
// probe the attempts, errors and p99 so far); elsewhere (CI logs) plain
// lines, one at each change of phase and one every few seconds.
func Progress(w io.Writer, terminal bool) func(api.ExperimentStatus) {
	p := &progress{w: w, terminal: terminal, now: time.Now}
	return p.show
}

type progress struct {
	mu       sync.Mutex
	w        io.Writer
	terminal bool
	now      func() time.Time // the clock, which the tests set
	lines    int              // drawn last time, to redraw over
	phase    string
	last     time.Time
}

// plainEvery is how often plain output repeats the probes' figures.
const plainEvery = 5 * time.Second

func (p *progress) show(st api.ExperimentStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.terminal {
		p.draw(st, now)
		return
	}
	if st.State != api.StateRunning {
		fmt.Fprintf(p.w, "%s %s: %s\n", now.Format("15:04:05"), st.Experiment, st.State)
		return
	}
	if st.Phase != p.phase {
		p.phase = st.Phase
		left := ""
		if st.PhaseEnds != nil {
			left = fmt.Sprintf(" for %s", st.PhaseEnds.Sub(now).Round(100*time.Millisecond))
		}
		fmt.Fprintf(p.w, "%s %s: %s%s%s\n", now.Format("15:04:05"), st.Experiment, phaseLabel(st), left, ends(st, now))
		p.last = now
		return
	}
	if now.Sub(p.last) >= plainEvery {
		p.last = now
		for _, pr := range st.Probes {
			fmt.Fprintf(p.w, "%s %s: probe %s\n", now.Format("15:04:05"), st.Experiment, probeLine(pr))
		}
	}
}

func (p *progress) draw(st api.ExperimentStatus, now time.Time) {
	var b strings.Builder
	if p.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.lines) // back to the first line drawn
	}
	lines := []string{}
	if st.State == api.StateRunning {
		left := ""
		if st.PhaseEnds != nil {
			left = fmt.Sprintf(", %s left", st.PhaseEnds.Sub(now).Round(100*time.Millisecond))
		}
		lines = append(lines, fmt.Sprintf("\x1b[1m%s\x1b[0m  %s%s%s", st.Experiment, phaseLabel(st), left, ends(st, now)))
	} else {
		lines = append(lines, fmt.Sprintf("\x1b[1m%s\x1b[0m  %s", st.Experiment, st.State))
	}
	for _, pr := range st.Probes {
		lines = append(lines, "  probe "+probeLine(pr))
	}
	for _, l := range lines {
		b.WriteString("\r\x1b[K" + l + "\n")
	}
	p.lines = len(lines)
	if st.State != api.StateRunning {
		p.lines = 0 // the final display stays
	}
	io.WriteString(p.w, b.String())
}

func phaseLabel(st api.ExperimentStatus) string {
	if st.Step != "" {
		return fmt.Sprintf("step %q", st.Step)
	}
	return strings.ReplaceAll(st.Phase, "_", " ")
}

func ends(st api.ExperimentStatus, now time.Time) string {
	return fmt.Sprintf(" (run ends in %s)", st.Ends.Sub(now).Round(time.Second))
}

func probeLine(pr api.ProbeStatus) string {
	return fmt.Sprintf("%s: %d requests, %d errors, p99 %s", pr.Name, pr.Requests, pr.Errors, time.Duration(pr.P99).Round(100*time.Microsecond))
}
