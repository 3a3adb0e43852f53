package experiment

import (
	"encoding/xml"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// sampleResult is a run as a report shows it: two steps on a route, a
// probe that slowed down then failed, and SLOs held and failed.
func sampleResult() *Result {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	v := func(f float64) *float64 { return &f }
	res := &Result{Experiment: "cache<chaos>", Run: "abc", Seed: 7, State: api.StateFailed, Started: at(0), Ended: at(10),
		Phases: []PhaseResult{
			{Name: "steady_state", Kind: "steady_state", Start: at(0), End: at(2), Routes: []RouteCount{{"cache", 50, 0}}},
			{Name: "slow", Kind: "step", Start: at(2), End: at(5), Mixes: []RouteMix{{"cache", []api.Behavior{{Name: "delay", Percent: 100, Options: map[string]any{"sleep": "60ms"}}}}}, Routes: []RouteCount{{"cache", 60, 60}}},
			{Name: "flaky", Kind: "step", Start: at(5), End: at(7), Mixes: []RouteMix{{"cache", []api.Behavior{{Name: "error", Percent: 30}}}}, Routes: []RouteCount{{"cache", 50, 15}}},
			{Name: "recovery", Kind: "recovery", Start: at(7), End: at(9), Routes: []RouteCount{{"cache", 50, 0}}},
			{Name: "steady_state", Kind: "steady_state", Start: at(9), End: at(10), Routes: []RouteCount{{"cache", 25, 0}}},
		},
		SLOs: []api.SLOResult{
			{Name: "fast", Probe: "app", During: "slow", OK: true, Checks: []api.SLOCheck{{Measure: "p99", Limit: 0.5, Value: v(0.09), OK: true, Text: "p99 90ms ≤ 500ms"}}},
			{Name: "no-errors", Probe: "app", During: "flaky", OK: false, Checks: []api.SLOCheck{{Measure: "error_rate", Limit: 0.05, Value: v(0.3), Text: "error_rate 0.3 > 0.05"}}},
		},
	}
	p := ProbeResult{Name: "app", Kind: "http", Interval: api.Duration(40 * time.Millisecond), Concurrency: 2, FirstErrors: []string{"status 500"}}
	for s := range 10 {
		sec := Second{T: s, Requests: 25, P50: 3, P95: 5, P99: 6}
		if s >= 2 && s < 5 {
			sec.P50, sec.P95, sec.P99 = 62, 70, 90
		}
		if s >= 5 && s < 7 {
			sec.Errors = 8
		}
		p.Seconds = append(p.Seconds, sec)
		p.Requests += 25
		p.Errors += sec.Errors
	}
	res.Probes = []ProbeResult{p}
	return res
}

func TestHTML(t *testing.T) {
	page := HTML(sampleResult())
	if d := os.Getenv("VAURIEN_DUMP_REPORT"); d != "" {
		os.WriteFile(d, []byte(page), 0o644)
	}
	for _, want := range []string{
		"<title>cache&lt;chaos&gt;: failed</title>", // names are escaped
		`class="badge failed"`,
		"✘ failed", "error_rate 0.3 &gt; 0.05", "✔ held",
		`class="fault"`, `class="latency"`, `class="errors"`,
		"100% delay (sleep=60ms)",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	// Self-contained: nothing is fetched.
	for _, bad := range []string{"<script", "src=", "href=", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("report.html holds %q: it must need nothing else", bad)
		}
	}
	// The timeline is well-formed XML.
	start, end := strings.Index(page, "<svg"), strings.Index(page, "</svg>")
	if start < 0 || end < 0 {
		t.Fatal("no svg")
	}
	d := xml.NewDecoder(strings.NewReader(page[start : end+len("</svg>")]))
	for {
		_, err := d.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("the svg is not well-formed: %v", err)
			}
			break
		}
	}
}

// The report's picture in docs/ comes from a real run (go test
// ./internal/e2e -run TestExperimentReportRenders -args -update); it must
// show a report, not a blank page.
func TestDocsScreenshot(t *testing.T) {
	data, err := os.ReadFile("../../docs/experiment-report.png")
	if err != nil {
		t.Fatal(err)
	}
	testenv.CheckPicture(t, data)
}
