package experiment

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// Observer is told what the board sees, for metrics: which step of an
// experiment runs, and each SLO's verdict once a run is over.
type Observer interface {
	StepRunning(experiment, step string, running bool)
	SLOHeld(experiment, slo string, ok bool)
}

// Board is vaurien's record of experiment runs, in-process and remote. It
// keeps two runs from touching one route at a time, carries stop requests
// to runners, and tells the observer about steps and verdicts.
type Board struct {
	obs Observer
	now func() time.Time

	mu   sync.Mutex
	runs map[string]*entry // by experiment name: the current or latest run
}

type entry struct {
	status  api.ExperimentStatus
	expires time.Time // a running entry not reported again by then is lost
	stop    bool
}

// NewBoard returns an empty board; obs may be nil.
func NewBoard(obs Observer) *Board {
	return &Board{obs: obs, now: time.Now, runs: map[string]*entry{}}
}

// ConflictError refuses a run that would touch a route another run holds,
// or a second run of an experiment that is running. The admin API answers
// it with 409 Conflict.
type ConflictError struct{ Msg string }

func (e *ConflictError) Error() string   { return e.Msg }
func (e *ConflictError) StatusCode() int { return http.StatusConflict }

// NotFoundError is a stop or status call for an experiment with no run:
// the admin API answers 404.
type NotFoundError struct{ Name string }

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no experiment named %q: the configuration file declares none, and no runner has reported one", e.Name)
}
func (e *NotFoundError) StatusCode() int { return http.StatusNotFound }

// Publish records a run's status: the first report of a run claims its
// routes, later ones are its progress, and a final state releases them.
// A running status holds its claim for lease; it answers whether someone
// asked the run to stop.
func (b *Board) Publish(st api.ExperimentStatus, lease time.Duration) (stop bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire()
	e := b.runs[st.Experiment]
	if e == nil || e.status.Run != st.Run {
		if st.State != api.StateRunning {
			return false, fmt.Errorf("experiment %q: run %q is not on the board; report it running first", st.Experiment, st.Run)
		}
		if e != nil && e.status.State == api.StateRunning {
			return false, &ConflictError{fmt.Sprintf("experiment %q is already running (run %s, started %s)", st.Experiment, e.status.Run, e.status.Started.Format(time.RFC3339))}
		}
		if msg := b.conflict(st); msg != "" {
			return false, &ConflictError{msg}
		}
		e = &entry{}
		b.runs[st.Experiment] = e
	}
	prev := e.status
	e.status = st
	e.expires = b.now().Add(lease)
	b.observe(prev, st)
	return e.stop, nil
}

// conflict names the first running experiment that holds one of st's
// routes, in name order, or returns "".
func (b *Board) conflict(st api.ExperimentStatus) string {
	names := make([]string, 0, len(b.runs))
	for n := range b.runs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		other := b.runs[n].status
		if other.State != api.StateRunning {
			continue
		}
		for _, r := range st.Routes {
			if slices.Contains(other.Routes, r) {
				return fmt.Sprintf("route %q is in experiment %q, which is running (run %s); one experiment at a time may touch a route", r, other.Experiment, other.Run)
			}
		}
	}
	return ""
}

// observe tells the observer what changed from prev to st.
func (b *Board) observe(prev, st api.ExperimentStatus) {
	if b.obs == nil {
		return
	}
	running := st.State == api.StateRunning
	if prev.Step != "" && (prev.Step != st.Step || !running) {
		b.obs.StepRunning(st.Experiment, prev.Step, false)
	}
	if running && st.Step != "" && st.Step != prev.Step {
		b.obs.StepRunning(st.Experiment, st.Step, true)
	}
	if !running && prev.State == api.StateRunning {
		for _, s := range st.SLOs {
			b.obs.SLOHeld(st.Experiment, s.Name, s.OK)
		}
	}
}

// expire marks running entries whose lease has passed as lost.
func (b *Board) expire() {
	now := b.now()
	for _, e := range b.runs {
		if e.status.State == api.StateRunning && now.After(e.expires) {
			prev := e.status
			e.status.State = api.StateLost
			e.status.Error = "the runner stopped reporting; timed mix changes revert by themselves"
			b.observe(prev, e.status)
		}
	}
}

// Stop asks the running run of an experiment to stop and roll back.
func (b *Board) Stop(name string) (api.ExperimentStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire()
	e := b.runs[name]
	if e == nil {
		return api.ExperimentStatus{}, &NotFoundError{name}
	}
	if e.status.State != api.StateRunning {
		return e.status, &ConflictError{fmt.Sprintf("experiment %q is not running: its last run is %s", name, e.status.State)}
	}
	e.stop = true
	return e.status, nil
}

// Status returns the current or latest run of an experiment.
func (b *Board) Status(name string) (api.ExperimentStatus, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire()
	e := b.runs[name]
	if e == nil {
		return api.ExperimentStatus{}, false
	}
	return e.status, true
}

// Runs returns the current or latest run of every experiment on the
// board, sorted by name.
func (b *Board) Runs() []api.ExperimentStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire()
	out := make([]api.ExperimentStatus, 0, len(b.runs))
	for _, e := range b.runs {
		out = append(out, e.status)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Experiment < out[j].Experiment })
	return out
}
