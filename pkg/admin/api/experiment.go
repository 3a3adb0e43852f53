package api

import (
	"net/url"
	"time"
)

// The states of an experiment run.
const (
	StateIdle    = "idle"    // declared in the file; not run since vaurien started
	StateRunning = "running" // steps and probes under way
	StatePassed  = "passed"  // finished; every SLO held
	StateFailed  = "failed"  // finished; an SLO failed
	StateStopped = "stopped" // stopped early (stop call, signal); rolled back
	StateError   = "error"   // could not go on (lost admin API, bad target); rolled back
	StateLost    = "lost"    // its runner stopped reporting; timed mixes revert by themselves
)

// ExperimentStatus is the live state of an experiment run, and its final
// state once it is over: the body of GET /experiments/{name}.
type ExperimentStatus struct {
	Experiment string `json:"experiment"`
	// Run tells runs of one experiment apart; the runner picks it.
	Run   string `json:"run"`
	State string `json:"state"`
	// Phase is "steady_state", a step's name, or "recovery"; Step is the
	// step's name while one runs, else "".
	Phase     string     `json:"phase,omitempty"`
	Step      string     `json:"step,omitempty"`
	PhaseEnds *time.Time `json:"phase_ends,omitempty"`
	// Routes are the routes the experiment's steps touch: no other
	// experiment may run on them meanwhile.
	Routes  []string      `json:"routes"`
	Seed    uint64        `json:"seed"`
	Started time.Time     `json:"started"`
	Ends    time.Time     `json:"ends"`
	Probes  []ProbeStatus `json:"probes"`
	// SLOs are the verdicts, once the run is over.
	SLOs []SLOResult `json:"slos,omitempty"`
	// Error says why a run ended in the error or stopped state.
	Error string `json:"error,omitempty"`
	// Remote is true for a run driven by a runner outside vaurien
	// (vaurien experiment run --admin) rather than started in-process.
	Remote bool `json:"remote"`
	// Report is the admin API's path to report.html of the experiment's
	// last run that vaurien wrote a report of (the experiment's report
	// directory); results.json and report.md sit next to it.
	Report string `json:"report,omitempty"`
}

// ReportFiles are the files of an experiment's report, as
// GET /experiments/{name}/report/{file} serves them.
var ReportFiles = []string{"report.html", "report.md", "results.json"}

// ReportPath is the admin API's path to a file of an experiment's last
// report.
func ReportPath(experiment, file string) string {
	return "/experiments/" + url.PathEscape(experiment) + "/report/" + file
}

// ProbeStatus sums up a probe's attempts so far.
type ProbeStatus struct {
	Name     string   `json:"name"`
	Requests int      `json:"requests"`
	Errors   int      `json:"errors"`
	P99      Duration `json:"p99"`
}

// SLOResult is an SLO's verdict and what was measured.
type SLOResult struct {
	Name   string     `json:"name"`
	Probe  string     `json:"probe"`
	During string     `json:"during"` // "" for the whole run
	OK     bool       `json:"ok"`
	Checks []SLOCheck `json:"checks"`
}

// SLOCheck is one limit of an SLO: the measure, its limit and the value
// measured (seconds for latencies and recovery, a ratio otherwise). Value
// is absent when nothing could be measured (no attempt in the phase, or a
// probe that never recovered); Text says it in words.
type SLOCheck struct {
	Measure string   `json:"measure"`
	Limit   float64  `json:"limit"`
	Value   *float64 `json:"value,omitempty"`
	OK      bool     `json:"ok"`
	Text    string   `json:"text"`
}

// ExperimentRun is the body of PUT /experiments/{name}/run, with which a
// runner outside vaurien claims the routes of its experiment and reports
// its progress. The claim lapses when Lease passes without another report.
type ExperimentRun struct {
	Status ExperimentStatus `json:"status"`
	Lease  Duration         `json:"lease"`
}

// ExperimentRunAnswer answers a report: Stop asks the runner to stop and
// roll back (someone called POST /experiments/{name}/stop).
type ExperimentRunAnswer struct {
	Stop bool `json:"stop"`
}

// Experiment is one experiment as GET /experiments lists it: those of the
// configuration file, which POST /experiments/{name}/start runs, and those
// that runners outside vaurien have reported.
type Experiment struct {
	Name string `json:"name"`
	// InConfig is true for an experiment of the configuration file.
	InConfig bool     `json:"in_config"`
	Routes   []string `json:"routes"`
	Duration Duration `json:"duration,omitempty"`
	// Last is the current or latest run, if any.
	Last *ExperimentStatus `json:"last,omitempty"`
}

// Experiments is the body of GET /experiments.
type Experiments struct {
	Experiments []Experiment `json:"experiments"`
}
