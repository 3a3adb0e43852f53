package probe

import (
	"math"
	"slices"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// Sample is the result of one attempt of a probe.
type Sample struct {
	At      time.Time     // when the attempt started
	Latency time.Duration // how long it took, failed or not
	Err     string        // why it failed; "" for a success
}

// Bound says which side of its limit a measure must stay on.
type Bound int

// The bounds of measures.
const (
	AtMost  Bound = iota // the measured value must not exceed the limit
	AtLeast              // the measured value must not fall below it
)

// Measure declares one thing an SLO can assert over a probe's samples in a
// phase: its name (the SLO block's argument), its kind (a duration or a
// ratio from 0 to 1), the side of the limit that holds, and how it is
// computed. The list drives the HCL checks, the docs and the runner.
type Measure struct {
	Name  string
	Doc   string
	Kind  chaos.Kind // chaos.Duration (value in seconds) or chaos.Float (a ratio)
	Bound Bound
	// RecoveryOnly marks a measure that makes sense only in the recovery
	// phase after the last step.
	RecoveryOnly bool
	// Of computes the value over the samples of a phase that starts at
	// from; false when there is nothing to compute it from.
	Of func(samples []Sample, from time.Time) (float64, bool)
}

// Measures lists what SLOs can assert, in the order docs show them.
func Measures() []Measure { return slices.Clone(measures) }

// LookupMeasure returns the measure named name.
func LookupMeasure(name string) (Measure, bool) {
	for _, m := range measures {
		if m.Name == name {
			return m, true
		}
	}
	return Measure{}, false
}

// MeasureOptions are the measures as option declarations, so that an slo
// block is decoded and checked like a behavior's options.
func MeasureOptions() chaos.Options {
	out := make(chaos.Options, len(measures))
	for i, m := range measures {
		out[i] = chaos.Option{Name: m.Name, Kind: m.Kind, Doc: m.Doc, Min: ptr(0.0)}
	}
	return out
}

var measures = []Measure{
	{Name: "error_rate", Kind: chaos.Float, Bound: AtMost, Of: errorRate,
		Doc: "The share of failed attempts, from 0 to 1, at most this."},
	{Name: "availability", Kind: chaos.Float, Bound: AtLeast,
		Doc: "The share of successful attempts, from 0 to 1, at least this.",
		Of: func(s []Sample, from time.Time) (float64, bool) {
			r, ok := errorRate(s, from)
			return 1 - r, ok
		}},
	{Name: "p50", Kind: chaos.Duration, Bound: AtMost, Of: percentile(0.50),
		Doc: "The median latency of the attempts, failed ones included, at most this."},
	{Name: "p95", Kind: chaos.Duration, Bound: AtMost, Of: percentile(0.95),
		Doc: "The 95th percentile latency, at most this."},
	{Name: "p99", Kind: chaos.Duration, Bound: AtMost, Of: percentile(0.99),
		Doc: "The 99th percentile latency, at most this."},
	{Name: "recovered_within", Kind: chaos.Duration, Bound: AtMost, RecoveryOnly: true, Of: recoveredWithin,
		Doc: "How long after the last step the probe kept failing: the time from the end of the last step to the end of the last failed attempt, at most this. A probe still failing when recovery ends has not recovered."},
}

func errorRate(s []Sample, _ time.Time) (float64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	n := 0
	for _, x := range s {
		if x.Err != "" {
			n++
		}
	}
	return float64(n) / float64(len(s)), true
}

// percentile returns the nearest-rank percentile of the latencies, in
// seconds.
func percentile(q float64) func([]Sample, time.Time) (float64, bool) {
	return func(s []Sample, _ time.Time) (float64, bool) {
		if len(s) == 0 {
			return 0, false
		}
		l := make([]time.Duration, len(s))
		for i, x := range s {
			l[i] = x.Latency
		}
		return Percentile(l, q).Seconds(), true
	}
}

// Percentile is the nearest-rank q-quantile (0 < q ≤ 1) of latencies,
// which it sorts in place; 0 for none.
func Percentile(l []time.Duration, q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	i := int(math.Ceil(q*float64(len(l)))) - 1
	return l[max(0, min(i, len(l)-1))]
}

func recoveredWithin(s []Sample, from time.Time) (float64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	if s[len(s)-1].Err != "" {
		return math.Inf(1), true
	}
	var last time.Time
	for _, x := range s {
		if end := x.At.Add(x.Latency); x.Err != "" && end.After(last) {
			last = end
		}
	}
	if last.IsZero() || !last.After(from) {
		return 0, true
	}
	return last.Sub(from).Seconds(), true
}
