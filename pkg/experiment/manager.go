package experiment

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/config"
)

// Manager serves the admin API's /experiments: it lists the experiments of
// the configuration file and the board's runs, starts the file's
// experiments in-process, stops runs and takes the reports of runners
// outside vaurien.
type Manager struct {
	board       *Board
	target      Target
	experiments func() []config.Experiment
	log         zerolog.Logger

	mu      sync.Mutex
	cancels map[int]context.CancelFunc // of in-process runs
	seq     int
	wg      sync.WaitGroup
	reports map[string]string // the directory of each experiment's last report
}

// NewManager returns a manager whose in-process runs act on target and
// report to board; experiments returns the configuration file's.
func NewManager(board *Board, target Target, experiments func() []config.Experiment, log zerolog.Logger) *Manager {
	return &Manager{board: board, target: target, experiments: experiments, log: log, cancels: map[int]context.CancelFunc{}, reports: map[string]string{}}
}

// UnknownExperimentError is a start of an experiment the file does not
// declare: 404.
type UnknownExperimentError struct{ Name string }

func (e *UnknownExperimentError) Error() string {
	return fmt.Sprintf("the configuration file declares no experiment named %q", e.Name)
}
func (e *UnknownExperimentError) StatusCode() int { return http.StatusNotFound }

// List returns the file's experiments and those on the board, by name.
func (m *Manager) List() []api.Experiment {
	var out []api.Experiment
	seen := map[string]int{}
	for _, e := range m.experiments() {
		seen[e.Name] = len(out)
		out = append(out, api.Experiment{Name: e.Name, InConfig: true, Routes: e.Routes(), Duration: api.Duration(e.Duration())})
	}
	for _, st := range m.board.Runs() {
		st := m.linked(st)
		if i, ok := seen[st.Experiment]; ok {
			out[i].Last = &st
			continue
		}
		out = append(out, api.Experiment{Name: st.Experiment, Routes: st.Routes, Last: &st})
	}
	if out == nil {
		out = []api.Experiment{}
	}
	return out
}

// Status returns an experiment's current or latest run.
func (m *Manager) Status(name string) (api.ExperimentStatus, error) {
	if st, ok := m.board.Status(name); ok {
		return m.linked(st), nil
	}
	for _, e := range m.experiments() {
		if e.Name == name {
			return api.ExperimentStatus{Experiment: name, State: api.StateIdle, Routes: e.Routes(), Seed: e.Seed, Probes: []api.ProbeStatus{}}, nil
		}
	}
	return api.ExperimentStatus{}, &NotFoundError{name}
}

// Start runs an experiment of the file in the background and returns its
// first status once it has claimed its routes.
func (m *Manager) Start(name string) (api.ExperimentStatus, error) {
	var exp *config.Experiment
	for _, e := range m.experiments() {
		if e.Name == name {
			exp = &e
			break
		}
	}
	if exp == nil {
		return api.ExperimentStatus{}, &UnknownExperimentError{name}
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan error, 1)
	var once sync.Once
	m.mu.Lock()
	m.seq++
	id := m.seq
	m.cancels[id] = cancel
	m.mu.Unlock()
	m.wg.Go(func() {
		defer func() {
			cancel()
			m.mu.Lock()
			delete(m.cancels, id)
			m.mu.Unlock()
		}()
		res, err := Run(ctx, *exp, Options{Targets: []Target{m.target}, Progress: func(api.ExperimentStatus) {
			once.Do(func() { started <- nil })
		}})
		once.Do(func() { started <- err })
		if err != nil {
			return
		}
		ev := m.log.Info()
		if !res.Passed() {
			ev = m.log.Warn()
		}
		ev.Str("experiment", name).Str("state", res.State).Str("error", res.Error).Msg("experiment finished")
		if exp.Report == "" {
			return
		}
		if err := WriteReport(exp.Report, res); err != nil {
			m.log.Error().Str("experiment", name).Err(err).Msg("experiment report not written")
			return
		}
		m.mu.Lock()
		m.reports[name] = exp.Report
		m.mu.Unlock()
	})
	if err := <-started; err != nil {
		var conflict *ConflictError
		if errors.As(err, &conflict) {
			return api.ExperimentStatus{}, conflict
		}
		return api.ExperimentStatus{}, err
	}
	m.log.Info().Str("experiment", name).Msg("experiment started")
	st, _ := m.board.Status(name)
	return st, nil
}

// linked adds the link to the experiment's last report to its status.
func (m *Manager) linked(st api.ExperimentStatus) api.ExperimentStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.reports[st.Experiment]; ok {
		st.Report = api.ReportPath(st.Experiment, api.ReportFiles[0])
	}
	return st
}

// ReportFile returns the path of a file of the experiment's last report:
// one of api.ReportFiles.
func (m *Manager) ReportFile(name, file string) (string, error) {
	m.mu.Lock()
	dir, ok := m.reports[name]
	m.mu.Unlock()
	switch {
	case !slices.Contains(api.ReportFiles, file):
		return "", &noReportError{fmt.Sprintf("a report holds %s; there is no %q", strings.Join(api.ReportFiles, ", "), file)}
	case !ok:
		return "", &noReportError{fmt.Sprintf("no report of experiment %q: vaurien writes one when a run it started ends and the experiment sets a report directory", name)}
	}
	return filepath.Join(dir, file), nil
}

// noReportError is a report file that does not exist: 404.
type noReportError struct{ msg string }

func (e *noReportError) Error() string   { return e.msg }
func (e *noReportError) StatusCode() int { return http.StatusNotFound }

// Stop asks a running experiment, in-process or remote, to stop.
func (m *Manager) Stop(name string) (api.ExperimentStatus, error) {
	st, err := m.board.Stop(name)
	if err == nil {
		m.log.Info().Str("experiment", name).Msg("experiment stop requested")
	}
	return st, err
}

// Report takes the report of a runner outside vaurien.
func (m *Manager) Report(run api.ExperimentRun) (api.ExperimentRunAnswer, error) {
	run.Status.Remote = true
	stop, err := m.board.Publish(run.Status, time.Duration(run.Lease))
	return api.ExperimentRunAnswer{Stop: stop}, err
}

// Close stops every in-process run and waits for their rollback.
func (m *Manager) Close() {
	m.mu.Lock()
	for _, c := range m.cancels {
		c()
	}
	m.mu.Unlock()
	m.wg.Wait()
}
