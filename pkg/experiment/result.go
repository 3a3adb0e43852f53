package experiment

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/probe"
)

// Result is what a run did and measured: the body of results.json.
type Result struct {
	Experiment string          `json:"experiment"`
	Run        string          `json:"run"`
	Seed       uint64          `json:"seed"`
	State      string          `json:"state"` // passed, failed, stopped or error
	Error      string          `json:"error,omitempty"`
	Started    time.Time       `json:"started"`
	Ended      time.Time       `json:"ended"`
	Phases     []PhaseResult   `json:"phases"`
	Probes     []ProbeResult   `json:"probes"`
	SLOs       []api.SLOResult `json:"slos"`
}

// PhaseResult is one phase as it ran: when, the mixes a step applied, and
// what the touched routes' counters saw meanwhile.
type PhaseResult struct {
	Name   string       `json:"name"`
	Kind   string       `json:"kind"` // steady_state, step or recovery
	Start  time.Time    `json:"start"`
	End    time.Time    `json:"end"`
	Mixes  []RouteMix   `json:"mixes,omitempty"`
	Routes []RouteCount `json:"routes"`
}

// RouteMix is the mix a step gave a route.
type RouteMix struct {
	Route string         `json:"route"`
	Mix   []api.Behavior `json:"mix"`
}

// RouteCount is how many requests a route served, and how many faults it
// injected, during a phase.
type RouteCount struct {
	Route    string `json:"route"`
	Requests int64  `json:"requests"`
	Faults   int64  `json:"faults"`
}

// ProbeResult sums a probe's attempts up, whole and per second.
type ProbeResult struct {
	Name        string       `json:"name"`
	Kind        string       `json:"kind"`
	Interval    api.Duration `json:"interval"`
	Concurrency int          `json:"concurrency"`
	Requests    int          `json:"requests"`
	Errors      int          `json:"errors"`
	// FirstErrors are the first few distinct failures, as examples.
	FirstErrors []string `json:"first_errors,omitempty"`
	Seconds     []Second `json:"seconds"`
}

// Second sums up the attempts that started in one second of the run;
// latencies in milliseconds.
type Second struct {
	T        int     `json:"t"` // seconds since the run started
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	P50      float64 `json:"p50_ms"`
	P95      float64 `json:"p95_ms"`
	P99      float64 `json:"p99_ms"`
}

// Passed reports whether the run finished and every SLO held.
func (r *Result) Passed() bool { return r.State == api.StatePassed }

// Wire turns a step's behaviors into the mix the admin API takes.
func Wire(bs []config.Behavior) []api.Behavior {
	out := make([]api.Behavior, 0, len(bs))
	for _, b := range bs {
		w := api.Behavior{Name: b.Name, Percent: b.Percent, Options: api.JSONOptions(b.Options)}
		if !b.Match.IsZero() {
			m := b.Match
			w.Match = &m
		}
		out = append(out, w)
	}
	return out
}

// Mix builds the engine's mix from the API's form, checked against the
// behaviors' declarations.
func Mix(bs []api.Behavior) (*chaos.Mix, error) {
	entries := make([]chaos.Entry, 0, len(bs))
	for _, b := range bs {
		var m chaos.MatchSpec
		if b.Match != nil {
			m = *b.Match
		}
		e, err := chaos.NewEntry(b.Name, b.Percent, b.Options, m)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	return chaos.NewMix(entries)
}

// recorder collects the probes' samples.
type recorder struct {
	mu      sync.Mutex
	samples [][]probe.Sample // per probe, in order of completion
}

// work runs one worker of probe i: an attempt, then a pause until one
// interval after the attempt began, so that a slow system gets fewer
// attempts rather than a pile of them.
func (rec *recorder) work(ctx context.Context, i int, p probe.Prober, interval, offset time.Duration) {
	t := time.NewTimer(offset)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	for {
		start := time.Now()
		err := p.Probe(ctx)
		lat := time.Since(start)
		if ctx.Err() != nil {
			return // cut short by the end of the run: not a sample
		}
		s := probe.Sample{At: start, Latency: lat}
		if err != nil {
			s.Err = err.Error()
		}
		rec.mu.Lock()
		rec.samples[i] = append(rec.samples[i], s)
		rec.mu.Unlock()
		t.Reset(time.Until(start.Add(interval)))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (rec *recorder) all() [][]probe.Sample {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := make([][]probe.Sample, len(rec.samples))
	for i, s := range rec.samples {
		out[i] = slices.Clone(s)
	}
	return out
}

func (rec *recorder) summary(ps []config.Probe) []api.ProbeStatus {
	all := rec.all()
	out := make([]api.ProbeStatus, len(ps))
	for i, p := range ps {
		st := api.ProbeStatus{Name: p.Name, Requests: len(all[i])}
		lat := make([]time.Duration, len(all[i]))
		for j, s := range all[i] {
			lat[j] = s.Latency
			if s.Err != "" {
				st.Errors++
			}
		}
		st.P99 = api.Duration(probe.Percentile(lat, 0.99))
		out[i] = st
	}
	return out
}

func (rec *recorder) results(ps []config.Probe, start time.Time) []ProbeResult {
	all := rec.all()
	out := make([]ProbeResult, len(ps))
	for i, p := range ps {
		r := ProbeResult{Name: p.Name, Kind: p.Kind, Interval: api.Duration(p.Interval), Concurrency: p.Concurrency, Seconds: []Second{}}
		buckets := map[int][]probe.Sample{}
		for _, s := range all[i] {
			r.Requests++
			if s.Err != "" {
				r.Errors++
				if len(r.FirstErrors) < 5 && !slices.Contains(r.FirstErrors, s.Err) {
					r.FirstErrors = append(r.FirstErrors, s.Err)
				}
			}
			t := int(s.At.Sub(start) / time.Second)
			buckets[t] = append(buckets[t], s)
		}
		for _, t := range sortedKeys(buckets) {
			b := buckets[t]
			sec := Second{T: t, Requests: len(b)}
			lat := make([]time.Duration, len(b))
			for j, s := range b {
				lat[j] = s.Latency
				if s.Err != "" {
					sec.Errors++
				}
			}
			sec.P50 = ms(probe.Percentile(lat, 0.50))
			sec.P95 = ms(probe.Percentile(lat, 0.95))
			sec.P99 = ms(probe.Percentile(lat, 0.99))
			r.Seconds = append(r.Seconds, sec)
		}
		out[i] = r
	}
	return out
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }

// judge evaluates every SLO over the samples of its probe in its phases.
func judge(e config.Experiment, phases []PhaseResult, samples [][]probe.Sample) []api.SLOResult {
	out := []api.SLOResult{}
	for _, slo := range e.SLOs {
		res := api.SLOResult{Name: slo.Name, Probe: slo.Probe, During: slo.During, OK: true}
		idx := slices.IndexFunc(e.Probes, func(p config.Probe) bool { return p.Name == slo.Probe })
		var in []probe.Sample
		var from time.Time
		ran := false
		for _, ph := range phases {
			if slo.During != "" && ph.Name != slo.During {
				continue
			}
			if !ran {
				from, ran = ph.Start, true
			}
			if idx < 0 {
				continue
			}
			for _, s := range samples[idx] {
				if !s.At.Before(ph.Start) && s.At.Before(ph.End) {
					in = append(in, s)
				}
			}
		}
		sort.Slice(in, func(i, j int) bool { return in[i].At.Before(in[j].At) })
		for _, l := range slo.Limits {
			m, _ := probe.LookupMeasure(l.Measure)
			c := api.SLOCheck{Measure: l.Measure, Limit: l.Value}
			v, has := m.Of(in, from)
			switch {
			case !ran:
				c.Text = fmt.Sprintf("%s: the run ended before %s", l.Measure, phaseWords(slo.During))
			case !has:
				c.Text = fmt.Sprintf("%s: no attempt of probe %q during %s", l.Measure, slo.Probe, phaseWords(slo.During))
			case math.IsInf(v, 1):
				c.Text = fmt.Sprintf("%s: not recovered (still failing when recovery ended; limit %s)", l.Measure, show(m, l.Value))
			default:
				c.Value = &v
				c.OK = v <= l.Value+1e-12
				if m.Bound == probe.AtLeast {
					c.OK = v >= l.Value-1e-12
				}
				op := map[bool]string{true: "≤", false: ">"}[c.OK]
				if m.Bound == probe.AtLeast {
					op = map[bool]string{true: "≥", false: "<"}[c.OK]
				}
				c.Text = fmt.Sprintf("%s %s %s %s", l.Measure, show(m, v), op, show(m, l.Value))
			}
			res.OK = res.OK && c.OK
			res.Checks = append(res.Checks, c)
		}
		out = append(out, res)
	}
	return out
}

func phaseWords(during string) string {
	if during == "" {
		return "the run"
	}
	return fmt.Sprintf("%q", during)
}

// show writes a measured value or limit the way the file writes it.
func show(m probe.Measure, v float64) string {
	if m.Kind == chaos.Duration {
		return time.Duration(v * float64(time.Second)).Round(100 * time.Microsecond).String()
	}
	return fmt.Sprintf("%.4g", v)
}

func sortedKeys[K int | string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
