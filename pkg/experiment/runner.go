// Package experiment runs chaos experiments: it drives the steps of an
// experiment (config.Experiment) on a vaurien — in this process or
// through its admin API — while probes measure the system under test,
// judges the SLOs, and always rolls back. It also keeps the board of runs
// that vaurien serves at /experiments, and writes the reports.
//
// Rollback is layered: the runner puts every touched route back to the
// mix it had when the run began at the end of each step, when the run
// ends, fails, is stopped or is signalled; and every step's mix is set as
// a timed change that vaurien reverts by itself shortly after the step
// should have ended, so that a runner that dies (kill -9, a lost
// connection) leaves no chaos behind.
package experiment

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/probe"
)

// Timing of the runner.
const (
	// Grace is how long after a step should have ended vaurien reverts
	// its mix by itself, should the runner not have done it.
	Grace = 2 * time.Second
	// Lease is how long the board holds a run's routes without news from
	// its runner.
	Lease = 5 * time.Second
	// tick is how often the runner reports progress.
	tick = 250 * time.Millisecond
	// lostAfter is how long reports may fail before the runner gives up:
	// the admin API is gone.
	lostAfter = 3 * time.Second
	// restoreWithin bounds the rollback's attempts.
	restoreWithin = 10 * time.Second
)

// Target is the vaurien an experiment acts on.
type Target interface {
	// Route returns a route's live mix and counters.
	Route(ctx context.Context, name string) (RouteState, error)
	// SetMix replaces a route's mix; with d > 0 vaurien puts the
	// previous mix back by itself after d.
	SetMix(ctx context.Context, route string, mix []api.Behavior, d time.Duration) error
	// Publish reports the run to the board (Board.Publish).
	Publish(ctx context.Context, st api.ExperimentStatus, lease time.Duration) (stop bool, err error)
}

// RouteState is what the runner reads of a route.
type RouteState struct {
	Mix      []api.Behavior
	Requests int64 // requests (or connections on tcp routes) so far
	Faults   int64 // faults injected so far
}

// Options configure a run.
type Options struct {
	Target Target
	// Progress, if set, is called with the status at every tick and at
	// every change of phase.
	Progress func(api.ExperimentStatus)
	// Remote marks a run driven through the admin API.
	Remote bool
}

// phase is one planned part of the run.
type phase struct {
	name, kind string // kind: steady_state, step or recovery
	step       *config.Step
	start, end time.Time
}

// Run runs the experiment and returns its result, also when it ends
// early (stopped, or an error midway: Result.State says which, and the
// routes have been rolled back). The error is for a run that could not
// start: a route that cannot be read, or a claim the board refuses.
func Run(ctx context.Context, e config.Experiment, o Options) (*Result, error) {
	r := &runner{exp: e, o: o, saved: map[string][]api.Behavior{}}
	return r.run(ctx)
}

type runner struct {
	exp    config.Experiment
	o      Options
	saved  map[string][]api.Behavior // the mixes to put back
	status api.ExperimentStatus
	rec    recorder
	res    Result
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	e := &r.exp
	seed := e.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.BigEndian.Uint64(b[:]) >> 1
	}
	routes := e.Routes()
	for _, name := range routes {
		st, err := r.o.Target.Route(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("read route %q: %w", name, err)
		}
		r.saved[name] = st.Mix
	}
	probers := make([]probe.Prober, len(e.Probes))
	for i, p := range e.Probes {
		spec, ok := probe.Lookup(p.Kind)
		if !ok {
			return nil, fmt.Errorf("probe %q: unknown kind %q", p.Name, p.Kind)
		}
		pr, err := spec.New(p.Options)
		if err != nil {
			return nil, fmt.Errorf("probe %q: %w", p.Name, err)
		}
		probers[i] = pr
		if c, ok := pr.(io.Closer); ok {
			defer c.Close()
		}
	}

	start := time.Now()
	plan := r.plan(start)
	r.status = api.ExperimentStatus{
		Experiment: e.Name, Run: runID(), State: api.StateRunning, Routes: routes,
		Seed: seed, Started: start, Ends: plan[len(plan)-1].end, Remote: r.o.Remote,
	}
	if _, err := r.o.Target.Publish(ctx, r.status, Lease); err != nil {
		return nil, fmt.Errorf("claim routes: %w", err)
	}
	r.res = Result{Experiment: e.Name, Run: r.status.Run, Seed: seed, Started: start}

	pctx, stopProbes := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	r.rec.samples = make([][]probe.Sample, len(probers))
	for i, pr := range probers {
		p := e.Probes[i]
		for w := range p.Concurrency {
			offset := p.Interval * time.Duration(w) / time.Duration(p.Concurrency)
			wg.Go(func() { r.rec.work(pctx, i, pr, p.Interval, offset) })
		}
	}

	state, why := r.phases(ctx, plan)
	stopProbes()
	wg.Wait()
	if err := r.rollback(ctx); err != nil {
		state, why = api.StateError, errors.Join(why, err)
	}
	r.finish(state, why)
	return &r.res, nil
}

// plan lays the phases out from start.
func (r *runner) plan(start time.Time) []phase {
	var out []phase
	t := start
	add := func(name, kind string, d time.Duration, s *config.Step) {
		if d <= 0 {
			return
		}
		out = append(out, phase{name: name, kind: kind, step: s, start: t, end: t.Add(d)})
		t = t.Add(d)
	}
	e := &r.exp
	add(config.PhaseSteadyState, config.PhaseSteadyState, e.SteadyState, nil)
	for i := range e.Steps {
		add(e.Steps[i].Name, "step", e.Steps[i].Duration, &e.Steps[i])
	}
	add(config.PhaseRecovery, config.PhaseRecovery, e.Recovery, nil)
	add(config.PhaseSteadyState, config.PhaseSteadyState, e.SteadyState, nil)
	return out
}

// phases runs the plan and says how it ended: passed (SLOs not judged
// yet), stopped or error, with why.
func (r *runner) phases(ctx context.Context, plan []phase) (string, error) {
	lastOK := time.Now()
	for i := range plan {
		p := &plan[i]
		pr := PhaseResult{Name: p.name, Kind: p.kind, Start: time.Now()}
		before, err := r.counters(ctx)
		if err != nil {
			return api.StateError, err
		}
		if p.step != nil {
			for _, sr := range p.step.Routes {
				mix := Wire(sr.Behaviors)
				// The mix reverts by itself shortly after the step's end,
				// whatever becomes of this runner.
				if err := r.o.Target.SetMix(ctx, sr.Route, mix, time.Until(p.end)+Grace); err != nil {
					r.res.Phases = append(r.res.Phases, pr)
					return api.StateError, fmt.Errorf("step %q: set the mix of route %q: %w", p.name, sr.Route, err)
				}
				pr.Mixes = append(pr.Mixes, RouteMix{Route: sr.Route, Mix: mix})
			}
		}
		r.status.Phase = p.name
		r.status.Step = ""
		if p.step != nil {
			r.status.Step = p.name
		}
		end := p.end
		r.status.PhaseEnds = &end
		state, why := r.wait(ctx, p.end, &lastOK)
		if p.step != nil {
			for _, sr := range p.step.Routes {
				if err := r.o.Target.SetMix(ctx, sr.Route, r.saved[sr.Route], 0); err != nil && why == nil {
					state, why = api.StateError, fmt.Errorf("step %q: put route %q back: %w", p.name, sr.Route, err)
				}
			}
		}
		pr.End = time.Now()
		if after, err := r.counters(ctx); err == nil {
			pr.Routes = delta(before, after)
		}
		r.res.Phases = append(r.res.Phases, pr)
		if state != api.StateRunning {
			return state, why
		}
	}
	return api.StatePassed, nil
}

// wait reports progress until end, a stop request, a signal (ctx) or a
// lost admin API.
func (r *runner) wait(ctx context.Context, end time.Time, lastOK *time.Time) (string, error) {
	t := time.NewTicker(tick)
	defer t.Stop()
	timer := time.NewTimer(time.Until(end))
	defer timer.Stop()
	for {
		r.status.Probes = r.rec.summary(r.exp.Probes)
		if r.o.Progress != nil {
			r.o.Progress(r.status)
		}
		stop, err := r.o.Target.Publish(ctx, r.status, Lease)
		switch {
		case err == nil:
			*lastOK = time.Now()
		case ctx.Err() != nil:
		case time.Since(*lastOK) > lostAfter:
			return api.StateError, fmt.Errorf("lost the admin API: no report went through for %s: %w", time.Since(*lastOK).Round(time.Second), err)
		}
		if stop {
			return api.StateStopped, errors.New("stopped through the admin API")
		}
		select {
		case <-ctx.Done():
			return api.StateStopped, fmt.Errorf("interrupted: %w", context.Cause(ctx))
		case <-timer.C:
			return api.StateRunning, nil
		case <-t.C:
		}
	}
}

// counters reads the touched routes' counters.
func (r *runner) counters(ctx context.Context) (map[string]RouteState, error) {
	out := map[string]RouteState{}
	for name := range r.saved {
		st, err := r.o.Target.Route(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("read route %q: %w", name, err)
		}
		out[name] = st
	}
	return out, nil
}

// rollback puts every touched route back to its mix from before the run,
// retrying for a while: a signal or an expired context does not stop it.
func (r *runner) rollback(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreWithin)
	defer cancel()
	var errs []error
	for _, name := range r.status.Routes {
		for {
			err := r.o.Target.SetMix(ctx, name, r.saved[name], 0)
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				errs = append(errs, fmt.Errorf("put route %q back: %w; its last step's mix reverts by itself within %s of the step's end", name, err, Grace))
			case <-time.After(500 * time.Millisecond):
				continue
			}
			break
		}
	}
	return errors.Join(errs...)
}

// finish judges the SLOs, fills the result and reports the final state.
func (r *runner) finish(state string, why error) {
	r.res.Ended = time.Now()
	r.res.Probes = r.rec.results(r.exp.Probes, r.res.Started)
	r.res.SLOs = judge(r.exp, r.res.Phases, r.rec.all())
	if state == api.StatePassed {
		for _, s := range r.res.SLOs {
			if !s.OK {
				state = api.StateFailed
			}
		}
	}
	r.res.State = state
	if why != nil {
		r.res.Error = why.Error()
	}
	r.status.State, r.status.Error = state, r.res.Error
	r.status.Phase, r.status.Step, r.status.PhaseEnds = "", "", nil
	r.status.Probes = r.rec.summary(r.exp.Probes)
	r.status.SLOs = r.res.SLOs
	if r.o.Progress != nil {
		r.o.Progress(r.status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = r.o.Target.Publish(ctx, r.status, Lease) // the board notices a lost runner by itself
}

func delta(before, after map[string]RouteState) []RouteCount {
	var out []RouteCount
	for _, name := range sortedKeys(after) {
		out = append(out, RouteCount{Route: name,
			Requests: after[name].Requests - before[name].Requests,
			Faults:   after[name].Faults - before[name].Faults})
	}
	return out
}

func runID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
