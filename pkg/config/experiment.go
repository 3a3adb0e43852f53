package config

import (
	"fmt"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/probe"
)

// Phase names that an slo's during argument takes besides step names.
const (
	// PhaseSteadyState is the steady state measured before the first step
	// and again after recovery.
	PhaseSteadyState = "steady_state"
	// PhaseRecovery is the time the system has after the last step to get
	// back to its steady state.
	PhaseRecovery = "recovery"
)

// Experiment is a repeatable chaos experiment: a steady state, ordered
// steps that set mixes on routes for a while, a recovery and the steady
// state again, with probes measuring the system under test throughout and
// SLOs judging what they measured.
type Experiment struct {
	Name        string
	Seed        uint64 // restarts the draws of the routes each step touches; 0: a random seed, recorded with the run
	Probes      []Probe
	SteadyState time.Duration // run before the first step and after recovery
	Steps       []Step        // in file order
	Recovery    time.Duration // after the last step
	SLOs        []SLO
	// Report is the directory its report goes to when vaurien runs it
	// (POST /experiments/NAME/start), and when vaurien experiment run has
	// no --report; "" for none. A relative path is taken from the
	// directory of the file that declares the experiment.
	Report string
}

// Probe measures the system under test with a registered probe kind.
type Probe struct {
	Name        string
	Kind        string       // a kind registered in package probe
	Options     chaos.Values // the kind's options, defaults filled in
	Interval    time.Duration
	Concurrency int
}

// Step sets mixes on routes for its duration.
type Step struct {
	Name     string
	Duration time.Duration
	Routes   []StepRoute
}

// StepRoute is the mix a step gives one route.
type StepRoute struct {
	Route     string
	Behaviors []Behavior
}

// SLO asserts limits on measures of one probe's samples in one phase.
type SLO struct {
	Name   string
	Probe  string
	During string // a step name, PhaseSteadyState, PhaseRecovery, or "" for the whole run
	Limits []Limit
}

// Limit is one measure of an SLO and its limit: seconds for durations, a
// ratio from 0 to 1 otherwise.
type Limit struct {
	Measure string // a measure of package probe
	Value   float64
}

// Duration is how long the experiment runs: the steady state twice, every
// step and the recovery.
func (e *Experiment) Duration() time.Duration {
	d := 2*e.SteadyState + e.Recovery
	for _, s := range e.Steps {
		d += s.Duration
	}
	return d
}

// Routes lists the routes the steps touch, sorted.
func (e *Experiment) Routes() []string {
	var out []string
	for _, s := range e.Steps {
		for _, r := range s.Routes {
			if !slices.Contains(out, r.Route) {
				out = append(out, r.Route)
			}
		}
	}
	sort.Strings(out)
	return out
}

type rawExperimentFile struct {
	Experiments []rawExperiment `hcl:"experiment,block"`
}

type rawExperiment struct {
	Name        string         `hcl:"name,label"`
	NameRange   hcl.Range      `hcl:"name,label_range"`
	Seed        hcl.Expression `hcl:"seed,optional"`
	Recovery    hcl.Expression `hcl:"recovery,optional"`
	Report      hcl.Expression `hcl:"report,optional"`
	Probes      []rawProbe     `hcl:"probe,block"`
	SteadyState *rawSteady     `hcl:"steady_state,block"`
	Steps       []rawStep      `hcl:"step,block"`
	SLOs        []rawSLO       `hcl:"slo,block"`
}

type rawProbe struct {
	Name        string         `hcl:"name,label"`
	NameRange   hcl.Range      `hcl:"name,label_range"`
	DefRange    hcl.Range      `hcl:",def_range"`
	Interval    hcl.Expression `hcl:"interval,optional"`
	Concurrency hcl.Expression `hcl:"concurrency,optional"`
	Body        hcl.Body       `hcl:",remain"`
}

type rawSteady struct {
	Duration hcl.Expression `hcl:"duration"`
}

type rawStep struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	Duration  hcl.Expression `hcl:"duration"`
	Routes    []rawStepRoute `hcl:"route,block"`
}

type rawStepRoute struct {
	Name      string        `hcl:"name,label"`
	NameRange hcl.Range     `hcl:"name,label_range"`
	Behaviors []rawBehavior `hcl:"behavior,block"`
}

type rawSLO struct {
	Name      string         `hcl:"name,label"`
	NameRange hcl.Range      `hcl:"name,label_range"`
	Probe     hcl.Expression `hcl:"probe"`
	During    hcl.Expression `hcl:"during,optional"`
	Body      hcl.Body       `hcl:",remain"`
}

// LoadExperiments reads a file of experiment blocks whose steps act on the
// routes named (those of the vaurien they will drive).
func LoadExperiments(path string, routes []string) ([]Experiment, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read experiments: %w", err)
	}
	return ParseExperiments(src, path, routes)
}

// ParseExperiments reads experiment blocks in HCL; their steps may act on
// the routes named only. The error, if any, is hcl.Diagnostics.
func ParseExperiments(src []byte, filename string, routes []string) ([]Experiment, error) {
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, finish(diags)
	}
	d := &decoder{ctx: evalContext(), diags: diags}
	var raw rawExperimentFile
	d.add(gohcl.DecodeBody(file.Body, d.ctx, &raw)...)
	out := d.experiments(raw.Experiments, routes)
	if len(raw.Experiments) == 0 && !d.diags.HasErrors() {
		d.errorf(file.Body.(*hclsyntax.Body).SrcRange, "No experiment", "The file declares no experiment block. An experiment file holds blocks such as experiment \"cache-slow\" { ... }.")
	}
	if err := finish(d.diags); err != nil {
		return nil, err
	}
	return out, nil
}

func (d *decoder) experiments(raws []rawExperiment, routes []string) []Experiment {
	var out []Experiment
	names := map[string]hcl.Range{}
	for i := range raws {
		r := &raws[i]
		if prev, dup := names[r.Name]; dup {
			d.errorf(r.NameRange, "Duplicate experiment name", "An experiment named %q is already defined at %s. Give each experiment a unique name.", r.Name, prev)
		}
		names[r.Name] = r.NameRange
		out = append(out, d.experiment(r, routes))
	}
	return out
}

func (d *decoder) experiment(raw *rawExperiment, routes []string) Experiment {
	e := Experiment{Name: raw.Name}
	if checkRouteName(raw.Name) != nil {
		d.errorf(raw.NameRange, "Invalid experiment name", "The experiment name %q is used in API paths and metric labels, so it must start with a letter or digit and hold only letters, digits, '_', '-' and '.', at most 64 characters.", raw.Name)
	}
	if u, st := d.seed(raw.Seed, "7", "a random seed, recorded with the run"); st == present {
		e.Seed = u
	}
	if raw.SteadyState != nil {
		if v, st := d.duration(raw.SteadyState.Duration, "duration"); st == present {
			e.SteadyState = v
		}
	}
	if v, st := d.duration(raw.Recovery, "recovery"); st == present {
		e.Recovery = v
	}
	if v, st := d.str(raw.Report, "report", `"reports/cache-slow"`); st == present {
		if v == "" {
			d.errorf(raw.Report.Range(), "Empty report directory", "The report directory of experiment %q is empty: give a directory, such as \"reports/%s\", or leave report out.", raw.Name, raw.Name)
		} else if filepath.IsAbs(v) {
			e.Report = v
		} else {
			e.Report = filepath.Join(filepath.Dir(raw.NameRange.Filename), v)
		}
	}

	probes := map[string]hcl.Range{}
	for i := range raw.Probes {
		rp := &raw.Probes[i]
		if prev, dup := probes[rp.Name]; dup {
			d.errorf(rp.NameRange, "Duplicate probe name", "A probe named %q is already defined at %s.", rp.Name, prev)
			continue
		}
		probes[rp.Name] = rp.NameRange
		if p, ok := d.probe(rp); ok {
			e.Probes = append(e.Probes, p)
		}
	}

	steps := map[string]hcl.Range{}
	stepsOK := true
	for i := range raw.Steps {
		rs := &raw.Steps[i]
		if prev, dup := steps[rs.Name]; dup {
			d.errorf(rs.NameRange, "Duplicate step name", "A step named %q is already defined at %s.", rs.Name, prev)
			stepsOK = false
			continue
		}
		if rs.Name == PhaseSteadyState || rs.Name == PhaseRecovery {
			d.errorf(rs.NameRange, "Reserved step name", "%q names a phase of every experiment; SLOs could not tell the step from it. Choose another name.", rs.Name)
		}
		steps[rs.Name] = rs.NameRange
		s, ok := d.step(rs, routes)
		stepsOK = stepsOK && ok
		e.Steps = append(e.Steps, s)
	}

	sloNames := map[string]hcl.Range{}
	for i := range raw.SLOs {
		rs := &raw.SLOs[i]
		if prev, dup := sloNames[rs.Name]; dup {
			d.errorf(rs.NameRange, "Duplicate SLO name", "An SLO named %q is already defined at %s.", rs.Name, prev)
			continue
		}
		sloNames[rs.Name] = rs.NameRange
		if s, ok := d.slo(rs, &e, probes, steps); ok {
			e.SLOs = append(e.SLOs, s)
		}
	}

	if stepsOK && e.Duration() <= 0 && !d.diags.HasErrors() {
		d.errorf(raw.NameRange, "Experiment takes no time", "The experiment %q lasts 0s: give its steady_state, steps or recovery a duration.", raw.Name)
	}
	return e
}

func (d *decoder) probe(raw *rawProbe) (Probe, bool) {
	p := Probe{Name: raw.Name, Interval: probe.DefaultInterval, Concurrency: probe.DefaultConcurrency}
	ok := true
	if v, st := d.duration(raw.Interval, "interval"); st == present {
		if v < probe.MinInterval {
			d.errorf(raw.Interval.Range(), "Probe interval too short", "The interval of probe %q is %s; the shortest is %s: a probe measures the system, it must not load it.", raw.Name, v, probe.MinInterval)
			ok = false
		}
		p.Interval = v
	} else if st == failed {
		ok = false
	}
	if n, st := d.number(raw.Concurrency, "concurrency", "2"); st == present {
		i, acc := n.Int64()
		if !n.IsInt() || acc != big.Exact || i < 1 || i > 100 {
			d.errorf(raw.Concurrency.Range(), "Invalid concurrency", "The concurrency of probe %q is how many attempts may run at once, a whole number from 1 to 100; got %s.", raw.Name, n.Text('g', 10))
			ok = false
		} else {
			p.Concurrency = int(i)
		}
	} else if st == failed {
		ok = false
	}
	if rate := float64(p.Concurrency) / p.Interval.Seconds(); ok && rate > probe.MaxRate {
		d.errorf(raw.DefRange, "Probe rate too high", "Probe %q would send %.0f attempts a second (concurrency %d every %s); the most is %.0f. Lengthen the interval or lower the concurrency: a probe must not be a load test.", raw.Name, rate, p.Concurrency, p.Interval, probe.MaxRate)
		ok = false
	}

	// The kind is the one nested block: http { ... }, tcp { ... }, ...
	body, isSyntax := raw.Body.(*hclsyntax.Body)
	if !isSyntax {
		return p, false
	}
	kinds := probe.Names()
	for _, a := range inFileOrder(body.Attributes, func(a *hclsyntax.Attribute) hcl.Range { return a.SrcRange }) {
		if a.Name == "interval" || a.Name == "concurrency" {
			continue // decoded above; a remain body still lists them
		}
		d.errorf(a.NameRange, "Unknown probe argument", "A probe takes interval and concurrency besides its kind block (%s); %q is none of them.%s", quoteList(kinds, "or"), a.Name, didYouMean(a.Name, []string{"interval", "concurrency"}))
		ok = false
	}
	var kind *hclsyntax.Block
	for _, b := range body.Blocks {
		if _, known := probe.Lookup(b.Type); !known {
			d.errorf(b.TypeRange, "Unknown probe kind", "%s", unknownName("probe kind", b.Type, kinds))
			ok = false
			continue
		}
		if kind != nil {
			d.errorf(b.TypeRange, "More than one probe kind", "Probe %q already is a %s probe (at %s). Declare another probe for another kind.", raw.Name, kind.Type, kind.TypeRange)
			ok = false
			continue
		}
		kind = b
	}
	if kind == nil {
		if ok {
			d.errorf(raw.DefRange, "Missing probe kind", "Probe %q needs one block saying what it measures: %s, as in http { url = \"http://127.0.0.1:9000/\" }.", raw.Name, quoteList(kinds, "or"))
		}
		return p, false
	}
	spec, _ := probe.Lookup(kind.Type)
	p.Kind = kind.Type
	values, _, _, good := d.options(kind.Body, "probe kind", kind.Type, spec.Options, nil)
	if !good {
		return p, false
	}
	if _, err := spec.New(values); err != nil {
		d.errorf(kind.TypeRange, "Invalid probe", "The %s probe %q: %s.", kind.Type, raw.Name, err)
		return p, false
	}
	p.Options = values
	return p, ok
}

func (d *decoder) step(raw *rawStep, routes []string) (Step, bool) {
	s := Step{Name: raw.Name}
	ok := true
	if v, st := d.duration(raw.Duration, "duration"); st == present {
		if v <= 0 {
			d.errorf(raw.Duration.Range(), "Invalid step duration", "Step %q must last a positive time, such as \"30s\".", raw.Name)
			ok = false
		}
		s.Duration = v
	} else {
		ok = false
	}
	if len(raw.Routes) == 0 {
		d.errorf(raw.NameRange, "Step changes nothing", "Step %q has no route block. Give it at least one, as in route \"cache\" { behavior \"delay\" { percent = 100 } }.", raw.Name)
		ok = false
	}
	seen := map[string]hcl.Range{}
	for i := range raw.Routes {
		rr := &raw.Routes[i]
		if prev, dup := seen[rr.Name]; dup {
			d.errorf(rr.NameRange, "Duplicate route in step", "Step %q already sets route %q at %s; put all its behaviors in one block.", raw.Name, rr.Name, prev)
			ok = false
			continue
		}
		seen[rr.Name] = rr.NameRange
		if !slices.Contains(routes, rr.Name) {
			msg := unknownName("route", rr.Name, routes)
			if len(routes) == 0 {
				msg = fmt.Sprintf("There is no route named %q: the configuration declares no routes.", rr.Name)
			}
			d.errorf(rr.NameRange, "Unknown route", "%s", msg)
			ok = false
		}
		s.Routes = append(s.Routes, StepRoute{Route: rr.Name, Behaviors: d.mix(rr.Behaviors, rr.Name, d.protocols[rr.Name])})
	}
	return s, ok
}

func (d *decoder) slo(raw *rawSLO, e *Experiment, probes, steps map[string]hcl.Range) (SLO, bool) {
	s := SLO{Name: raw.Name}
	ok := true
	if name, st := d.str(raw.Probe, "probe", `"app"`); st == present {
		if _, known := probes[name]; !known {
			msg := unknownName("probe", name, slices.Sorted(maps.Keys(probes)))
			if len(probes) == 0 {
				msg = fmt.Sprintf("There is no probe named %q: the experiment declares no probe. Declare it in the experiment, as in probe %q { http { url = \"http://127.0.0.1:9000/\" } }.", name, name)
			}
			d.errorf(raw.Probe.Range(), "Unknown probe", "%s", msg)
			ok = false
		}
		s.Probe = name
	} else {
		ok = false
	}
	phases := append(slices.Sorted(maps.Keys(steps)), PhaseSteadyState, PhaseRecovery)
	if name, st := d.str(raw.During, "during", `"steady_state"`); st == present {
		if !slices.Contains(phases, name) {
			d.errorf(raw.During.Range(), "Unknown phase", "An SLO applies during a step or a phase: %s; there is no %q.%s", quoteList(phases, "or"), name, didYouMean(name, phases))
			ok = false
		}
		s.During = name
	} else if st == failed {
		ok = false
	}

	values, _, _, good := d.options(raw.Body, "slo", raw.Name, probe.MeasureOptions(), []hcl.AttributeSchema{{Name: "probe"}, {Name: "during"}})
	ok = ok && good
	for _, m := range probe.Measures() {
		v := values[m.Name]
		if v == nil {
			continue
		}
		var limit float64
		switch x := v.(type) {
		case time.Duration:
			limit = x.Seconds()
		case float64:
			limit = x
		}
		attr := attrRange(raw.Body, m.Name)
		if m.Kind == chaos.Float && limit > 1 {
			d.errorf(attr, "Invalid SLO limit", "%s is a share of the attempts, from 0 to 1 (0.01 is 1%%); got %v.", m.Name, limit)
			ok = false
		}
		if m.RecoveryOnly {
			switch {
			case s.During == "":
				s.During = PhaseRecovery
			case s.During != PhaseRecovery:
				d.errorf(attr, "Measure out of its phase", "%s measures the recovery after the last step; SLO %q applies during %q. Use during = %q or leave during out.", m.Name, raw.Name, s.During, PhaseRecovery)
				ok = false
			}
			if e.Recovery <= 0 {
				d.errorf(attr, "No recovery to measure", "%s needs a recovery phase: give the experiment recovery = \"10s\" or more.", m.Name)
				ok = false
			}
		}
		s.Limits = append(s.Limits, Limit{Measure: m.Name, Value: limit})
	}
	if good && len(s.Limits) == 0 {
		var names []string
		for _, m := range probe.Measures() {
			names = append(names, m.Name)
		}
		d.errorf(raw.NameRange, "SLO asserts nothing", "SLO %q needs at least one limit: %s.", raw.Name, quoteList(names, "or"))
		ok = false
	}
	return s, ok
}

// attrRange returns the range of an argument of a body, for diagnostics.
func attrRange(body hcl.Body, name string) hcl.Range {
	if sb, ok := body.(*hclsyntax.Body); ok {
		if a := sb.Attributes[name]; a != nil {
			return a.Expr.Range()
		}
		return sb.SrcRange
	}
	return body.MissingItemRange()
}
