package experiment

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// WriteReport writes results.json, report.md and report.html into dir,
// creating it if needed.
func WriteReport(dir string, res *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{
		{"results.json", append(js, '\n')},
		{"report.md", []byte(Markdown(res))},
		{"report.html", []byte(HTML(res))},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

// Markdown is report.md: the verdict, the SLOs with what was measured,
// the timeline of phases with the mixes applied and the faults counted,
// and the probes' totals — a summary for a CI job's page.
func Markdown(res *Result) string {
	var b strings.Builder
	icon := map[bool]string{true: "✅", false: "❌"}
	fmt.Fprintf(&b, "# Experiment %s: %s\n\n", res.Experiment, strings.ToUpper(res.State))
	fmt.Fprintf(&b, "Run %s, seed %d, from %s for %s.\n\n", res.Run, res.Seed, res.Started.UTC().Format(time.RFC3339), res.Ended.Sub(res.Started).Round(100*time.Millisecond))
	if res.Error != "" {
		fmt.Fprintf(&b, "> %s\n\n", res.Error)
	}
	if len(res.SLOs) > 0 {
		b.WriteString("## SLOs\n\n| | SLO | probe | during | measured |\n|---|---|---|---|---|\n")
		for _, s := range res.SLOs {
			var checks []string
			for _, c := range s.Checks {
				checks = append(checks, c.Text)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", icon[s.OK], s.Name, s.Probe, orAll(s.During), strings.Join(checks, "; "))
		}
		b.WriteString("\n")
	}
	b.WriteString("## Timeline\n\n| phase | from | for | mixes | route counters (requests / faults) |\n|---|---|---|---|---|\n")
	for _, p := range res.Phases {
		var mixes, counts []string
		for _, m := range p.Mixes {
			mixes = append(mixes, fmt.Sprintf("%s: %s", m.Route, MixText(m.Mix)))
		}
		for _, c := range p.Routes {
			counts = append(counts, fmt.Sprintf("%s: %d / %d", c.Route, c.Requests, c.Faults))
		}
		fmt.Fprintf(&b, "| %s | +%s | %s | %s | %s |\n", p.Name, p.Start.Sub(res.Started).Round(100*time.Millisecond),
			p.End.Sub(p.Start).Round(100*time.Millisecond), orDash(strings.Join(mixes, "; ")), orDash(strings.Join(counts, "; ")))
	}
	b.WriteString("\n## Probes\n\n| probe | kind | attempts | errors | examples of errors |\n|---|---|---|---|---|\n")
	for _, p := range res.Probes {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %s |\n", p.Name, p.Kind, p.Requests, p.Errors, orDash(strings.ReplaceAll(strings.Join(p.FirstErrors, "; "), "|", "\\|")))
	}
	return b.String()
}

// MixText writes a mix as "100% delay (sleep=200ms)".
func MixText(mix []api.Behavior) string {
	if len(mix) == 0 {
		return "pass-through"
	}
	var parts []string
	for _, b := range mix {
		s := fmt.Sprintf("%g%% %s", b.Percent, b.Name)
		// Options left at their defaults would only hide the ones set.
		spec, _ := chaos.LookupBehavior(b.Name)
		defaults := api.JSONOptions(spec.Options.Defaults())
		var opts []string
		for _, k := range sortedKeys(b.Options) {
			if d, ok := defaults[k]; ok && fmt.Sprint(d) == fmt.Sprint(b.Options[k]) {
				continue
			}
			opts = append(opts, fmt.Sprintf("%s=%v", k, b.Options[k]))
		}
		if len(opts) > 0 {
			s += " (" + strings.Join(opts, ", ") + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func orAll(s string) string {
	if s == "" {
		return "whole run"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// Summary writes the verdict and each SLO in a few plain lines, for the
// end of a run in a terminal or a CI log.
func Summary(w io.Writer, res *Result) {
	fmt.Fprintf(w, "experiment %s: %s", res.Experiment, res.State)
	if res.Error != "" {
		fmt.Fprintf(w, " (%s)", res.Error)
	}
	fmt.Fprintln(w)
	for _, s := range res.SLOs {
		verdict := "ok  "
		if !s.OK {
			verdict = "FAIL"
		}
		var checks []string
		for _, c := range s.Checks {
			checks = append(checks, c.Text)
		}
		fmt.Fprintf(w, "  %s slo %s (probe %s, during %s): %s\n", verdict, s.Name, s.Probe, orAll(s.During), strings.Join(checks, "; "))
	}
}
