package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

var experimentRoutes = []string{"cache", "web"}

func TestLoadExperiments(t *testing.T) {
	got, err := LoadExperiments(filepath.Join("testdata", "experiments", "valid.hcl"), experimentRoutes)
	if err != nil {
		t.Fatal(err)
	}
	want := []Experiment{{
		Name: "cache-slow",
		Seed: 7,
		Probes: []Probe{
			{Name: "app", Kind: "http", Interval: 100 * time.Millisecond, Concurrency: 1, Options: chaos.Values{
				"url": "http://127.0.0.1:9000/", "method": "GET", "status": []int64{200},
				"headers": []string{}, "body": "", "timeout": 2 * time.Second,
			}},
			{Name: "cache", Kind: "redis", Interval: 50 * time.Millisecond, Concurrency: 2, Options: chaos.Values{
				"address": "127.0.0.1:6380", "command": []string{"PING"}, "password": "", "db": int64(0), "timeout": time.Second,
			}},
		},
		SteadyState: 3 * time.Second,
		Steps: []Step{
			{Name: "slow", Duration: 5 * time.Second, Routes: []StepRoute{{Route: "cache", Behaviors: []Behavior{
				{Name: "test_delay", Percent: 100, Options: chaos.Values{"sleep": 200 * time.Millisecond, "before": true}},
			}}}},
			{Name: "down", Duration: 2 * time.Second, Routes: []StepRoute{
				{Route: "cache", Behaviors: []Behavior{{Name: "test_error", Percent: 30, Options: chaos.Values{"inject": false, "warmup": int64(0), "mode": "page"}}}},
				{Route: "web", Behaviors: []Behavior{{Name: "test_abort", Percent: 10, Options: chaos.Values{}}}},
			}},
		},
		Recovery: 5 * time.Second,
		SLOs: []SLO{
			{Name: "fast-while-slow", Probe: "app", During: "slow", Limits: []Limit{{"p99", 0.1}}},
			{Name: "no-errors", Probe: "app", During: PhaseSteadyState, Limits: []Limit{{"error_rate", 0.01}, {"p50", 0.05}}},
			{Name: "back", Probe: "cache", During: PhaseRecovery, Limits: []Limit{{"recovered_within", 2}}},
		},
		// Relative to the file's directory.
		Report: filepath.Join("testdata", "experiments", "reports", "cache-slow"),
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got\n%#v\nwant\n%#v", got, want)
	}
	if d := got[0].Duration(); d != 18*time.Second {
		t.Errorf("Duration = %s, want 18s (3s steady state twice, 7s of steps, 5s recovery)", d)
	}
	if r := got[0].Routes(); !reflect.DeepEqual(r, []string{"cache", "web"}) {
		t.Errorf("Routes = %v", r)
	}
}

// An experiment in the configuration file acts on the file's routes.
func TestExperimentInConfigFile(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "experiments", "valid.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	routes := `
route "cache" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:6379"
}
route "web" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:80"
}
`
	f, err := Parse(append([]byte(routes), src...), "vaurien.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Experiments) != 1 || f.Experiments[0].Name != "cache-slow" || len(f.Experiments[0].Steps) != 2 || f.Experiments[0].Report != filepath.Join("reports", "cache-slow") {
		t.Fatalf("experiments: %+v", f.Experiments)
	}
	// Without the routes, the steps name routes that do not exist.
	_, err = Parse(src, "vaurien.hcl")
	assertDiag(t, err, "vaurien.hcl", "26:11", `Unknown route: There is no route named "cache": the configuration declares no routes.`)
}

func TestLoadExperimentsInvalid(t *testing.T) {
	cases := []struct {
		file string
		pos  string
		want string
	}{
		{"unknown_route.hcl", "4:11", `Unknown route: There is no route named "cahce". Did you mean "cache"? The valid routes are "cache" and "web".`},
		{"unknown_behavior.hcl", "5:16", `Unknown behavior: There is no behavior named "test_dealy". Did you mean "test_delay"?`},
		{"slo_unknown_probe.hcl", "11:18", `Unknown probe: There is no probe named "ap". Did you mean "app"?`},
		{"slo_no_probe.hcl", "6:18", `Unknown probe: There is no probe named "app": the experiment declares no probe.`},
		{"zero_duration.hcl", "1:12", `Experiment takes no time: The experiment "nothing" lasts 0s`},
		{"probe_interval.hcl", "6:16", `Probe interval too short: The interval of probe "app" is 5ms; the shortest is 10ms`},
		{"probe_rate.hcl", "2:3", `Probe rate too high: Probe "app" would send 200 attempts a second`},
		{"probe_kind.hcl", "3:5", `Unknown probe kind: There is no probe kind named "htp". Did you mean "http"?`},
		{"probe_url.hcl", "3:5", `Invalid probe: The http probe "app": the url option is required`},
		{"slo_phase.hcl", "17:14", `Unknown phase: An SLO applies during a step or a phase: "slow", "steady_state" or "recovery"; there is no "slw". Did you mean "slow"?`},
		{"slo_measure.hcl", "12:5", `The slo "s" has no option named "p999". Did you mean "p99"?`},
		{"slo_ratio.hcl", "12:18", `Invalid SLO limit: error_rate is a share of the attempts, from 0 to 1`},
		{"recovered_no_recovery.hcl", "12:24", `No recovery to measure: recovered_within needs a recovery phase`},
		{"step_percent.hcl", "9:19", `Percentages over 100: The behaviors of route "cache" take 110%`},
		{"step_reserved.hcl", "2:8", `Reserved step name`},
		{"step_zero.hcl", "3:16", `Invalid step duration: Step "s" must last a positive time`},
		{"report_empty.hcl", "2:12", `Empty report directory: The report directory of experiment "r" is empty`},
	}
	covered := map[string]bool{}
	for _, tt := range cases {
		covered[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "experiments", "invalid", tt.file)
			e, err := LoadExperiments(path, experimentRoutes)
			if err == nil {
				t.Fatalf("LoadExperiments succeeded: %+v", e)
			}
			assertDiag(t, err, path, tt.pos, tt.want)
		})
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "experiments", "invalid", "*.hcl"))
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s has no case", f)
		}
	}
}
