// Package experiment runs chaos experiments: it drives the steps of an
// experiment (config.Experiment) on a vaurien — in this process or
// through its admin API — while probes measure the system under test,
// judges the SLOs, and always rolls back. It also keeps the board of runs
// that vaurien serves at /experiments, and writes the reports.
//
// Rollback is layered: the runner puts every touched route back where it
// would be had the run not touched it (its mix, or the rest of a timed
// change in force when the run began) at the end of each step, when the
// run ends, fails, is stopped or is signalled; and every step's mix is set
// as a timed change that vaurien reverts by itself to that same place
// shortly after the step should have ended, so that a runner that dies
// (kill -9, a lost connection) leaves no chaos behind.
//
// A run acts on one vaurien or on a fleet of replicas alike: every change
// goes to each at once, and each is rolled back to its own state.
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
	"sync/atomic"
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

// Target is a vaurien an experiment acts on.
type Target interface {
	// Route returns a route's live mix and counters.
	Route(ctx context.Context, name string) (RouteState, error)
	// SetMix changes a route's mix as PUT /routes/{name}/mix does: for a
	// timed change vaurien puts the previous mix, or c.Then, back by
	// itself.
	SetMix(ctx context.Context, route string, c api.SetMix) error
	// Publish reports the run to the board (Board.Publish).
	Publish(ctx context.Context, st api.ExperimentStatus, lease time.Duration) (stop bool, err error)
}

// RouteState is what the runner reads of a route.
type RouteState struct {
	Mix []api.Behavior
	// RevertsAt is when a timed change in force ends, if one is, and
	// RevertsTo what comes in force then.
	RevertsAt *time.Time
	RevertsTo *api.SetMix
	Requests  int64 // requests (or connections on tcp routes) so far
	Faults    int64 // faults injected so far
}

// at is the change that puts the route where it would be at t had the
// run not touched it: its mix, the rest of a timed change in force, or
// what that change has given way to by t. It never reseeds the draws.
func (s RouteState) at(t time.Time) api.SetMix {
	if s.RevertsAt == nil || s.RevertsTo == nil {
		return api.SetMix{Behaviors: s.Mix}
	}
	if s.RevertsAt.After(t) {
		return api.SetMix{Behaviors: s.Mix, Duration: api.Duration(s.RevertsAt.Sub(t)), Then: s.RevertsTo}
	}
	prev, end, c := s.Mix, *s.RevertsAt, *s.RevertsTo
	for c.Duration > 0 {
		next := end.Add(time.Duration(c.Duration))
		if next.After(t) {
			c.Duration = api.Duration(next.Sub(t))
			break
		}
		after := api.SetMix{Behaviors: prev}
		if c.Then != nil {
			after = *c.Then
		}
		prev, end, c = c.Behaviors, next, after
	}
	c.Seed = 0
	return c
}

// Options configure a run.
type Options struct {
	// Targets are the vaurien replicas the run acts on: each step's mixes
	// go to every one, and every one is rolled back.
	Targets []Target
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
	index      int // of the step
	start, end time.Time
}

// Run runs the experiment and returns its result, also when it ends
// early (stopped, or an error midway: Result.State says which, and the
// routes have been rolled back). The error is for a run that could not
// start: a route that cannot be read, or a claim the board refuses.
func Run(ctx context.Context, e config.Experiment, o Options) (*Result, error) {
	if len(o.Targets) == 0 {
		return nil, errors.New("no vaurien to run the experiment on")
	}
	r := &runner{exp: e, o: o, saved: make([]map[string]RouteState, len(o.Targets))}
	return r.run(ctx)
}

type runner struct {
	exp    config.Experiment
	o      Options
	saved  []map[string]RouteState // per target, the routes to put back
	status api.ExperimentStatus
	rec    recorder
	res    Result
}

// each calls fn on every target at once, so that a fleet of replicas
// changes together, and joins the errors, each named by its replica when
// there are several.
func (r *runner) each(fn func(i int, t Target) error) error {
	errs := make([]error, len(r.o.Targets))
	var wg sync.WaitGroup
	for i, t := range r.o.Targets {
		wg.Go(func() {
			err := fn(i, t)
			if err != nil && len(r.o.Targets) > 1 {
				err = fmt.Errorf("replica %s: %w", targetName(t, i), err)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func targetName(t Target, i int) string {
	if s, ok := t.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprint(i + 1)
}

// stepSeed is the seed of step i's draws: the run's seed makes the whole
// run repeat, and each step draws its own sequence.
func stepSeed(seed uint64, i int) uint64 {
	s := seed + uint64(i)
	if s == 0 {
		s = 1
	}
	return s
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	e := &r.exp
	seed := e.Seed
	if seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		seed = binary.BigEndian.Uint64(b[:])>>1 | 1
	}
	routes := e.Routes()
	err := r.each(func(i int, t Target) error {
		r.saved[i] = map[string]RouteState{}
		for _, name := range routes {
			st, err := t.Route(ctx, name)
			if err != nil {
				return fmt.Errorf("read route %q: %w", name, err)
			}
			r.saved[i][name] = st
		}
		return nil
	})
	if err != nil {
		return nil, err
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
		Probes: []api.ProbeStatus{}, // an empty list until the first summary, never null
	}
	if err := r.claim(ctx); err != nil {
		return nil, err
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
	add := func(name, kind string, d time.Duration, s *config.Step, index int) {
		if d <= 0 {
			return
		}
		out = append(out, phase{name: name, kind: kind, step: s, index: index, start: t, end: t.Add(d)})
		t = t.Add(d)
	}
	e := &r.exp
	add(config.PhaseSteadyState, config.PhaseSteadyState, e.SteadyState, nil, 0)
	for i := range e.Steps {
		add(e.Steps[i].Name, "step", e.Steps[i].Duration, &e.Steps[i], i)
	}
	add(config.PhaseRecovery, config.PhaseRecovery, e.Recovery, nil, 0)
	add(config.PhaseSteadyState, config.PhaseSteadyState, e.SteadyState, nil, 0)
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
			if err := r.applyStep(ctx, p); err != nil {
				r.res.Phases = append(r.res.Phases, pr)
				return api.StateError, err
			}
			for _, sr := range p.step.Routes {
				pr.Mixes = append(pr.Mixes, RouteMix{Route: sr.Route, Mix: Wire(sr.Behaviors)})
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
			if err := r.restore(ctx, p.step.Routes); err != nil && why == nil {
				state, why = api.StateError, fmt.Errorf("step %q: %w", p.name, err)
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
		stop, err := r.publish(ctx, Lease)
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

// claim publishes the run's first status on every target. A target that
// refuses (another experiment holds a route) fails the run before any
// change, and the targets that took the claim are told the run ended.
func (r *runner) claim(ctx context.Context) error {
	claimed := make([]bool, len(r.o.Targets))
	err := r.each(func(i int, t Target) error {
		if _, err := t.Publish(ctx, r.status, Lease); err != nil {
			return err
		}
		claimed[i] = true
		return nil
	})
	if err == nil {
		return nil
	}
	st := r.status
	st.State, st.Error = api.StateError, "claim routes: "+err.Error()
	for i, t := range r.o.Targets {
		if claimed[i] {
			_, _ = t.Publish(ctx, st, Lease)
		}
	}
	if len(r.o.Targets) == 1 {
		var conflict *ConflictError
		if errors.As(err, &conflict) {
			return conflict
		}
	}
	return fmt.Errorf("claim routes: %w", err)
}

// publish reports the status to every target; one that asks to stop
// stops the run.
func (r *runner) publish(ctx context.Context, lease time.Duration) (bool, error) {
	var stop atomic.Bool
	err := r.each(func(_ int, t Target) error {
		s, err := t.Publish(ctx, r.status, lease)
		if s {
			stop.Store(true)
		}
		return err
	})
	return stop.Load(), err
}

// applyStep sets the step's mixes on every target. Each reverts by itself
// shortly after the step's end to where the route would be then,
// whatever becomes of this runner; its draws start from the step's seed.
func (r *runner) applyStep(ctx context.Context, p *phase) error {
	revert := p.end.Add(Grace)
	seed := stepSeed(r.status.Seed, p.index)
	return r.each(func(i int, t Target) error {
		for _, sr := range p.step.Routes {
			then := r.saved[i][sr.Route].at(revert)
			c := api.SetMix{Behaviors: Wire(sr.Behaviors), Duration: api.Duration(time.Until(revert)), Seed: seed, Then: &then}
			if err := t.SetMix(ctx, sr.Route, c); err != nil {
				return fmt.Errorf("step %q: set the mix of route %q: %w", p.name, sr.Route, err)
			}
		}
		return nil
	})
}

// restore puts routes back, on every target, where they would be now had
// the run not touched them.
func (r *runner) restore(ctx context.Context, routes []config.StepRoute) error {
	return r.each(func(i int, t Target) error {
		var errs []error
		for _, sr := range routes {
			if err := t.SetMix(ctx, sr.Route, r.saved[i][sr.Route].at(time.Now())); err != nil {
				errs = append(errs, fmt.Errorf("put route %q back: %w", sr.Route, err))
			}
		}
		return errors.Join(errs...)
	})
}

// counters reads the touched routes' counters, summed over the targets.
func (r *runner) counters(ctx context.Context) (map[string]RouteState, error) {
	var mu sync.Mutex
	out := map[string]RouteState{}
	err := r.each(func(_ int, t Target) error {
		for _, name := range r.status.Routes {
			st, err := t.Route(ctx, name)
			if err != nil {
				return fmt.Errorf("read route %q: %w", name, err)
			}
			mu.Lock()
			sum := out[name]
			sum.Requests += st.Requests
			sum.Faults += st.Faults
			out[name] = sum
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// rollback puts every touched route of every target back where it would
// be had the run not touched it, retrying for a while: a signal or an
// expired context does not stop it.
func (r *runner) rollback(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreWithin)
	defer cancel()
	return r.each(func(i int, t Target) error {
		var errs []error
		for _, name := range r.status.Routes {
			for {
				err := t.SetMix(ctx, name, r.saved[i][name].at(time.Now()))
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
	})
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
	_, _ = r.publish(ctx, Lease) // the board notices a lost runner by itself
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
