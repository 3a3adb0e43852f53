package chaos

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Entry is one behavior of a mix with its share.
type Entry struct {
	Name     string
	Percent  float64 // 0 to 100
	Options  Values
	Behavior Behavior
	// Match limits the behavior to matching requests; nil matches all.
	// A drawn entry that does not match passes the request through as dummy.
	Match func(*Request) bool
	// MatchSpec is what Match was built from, for listings.
	MatchSpec MatchSpec
}

// NewEntry builds a mix entry from a registered behavior's name, its
// options as typed values (from JSON or HCL), its share and its match spec.
func NewEntry(name string, percent float64, opts map[string]any, match MatchSpec) (Entry, error) {
	b, vals, err := NewBehavior(name, opts)
	if err != nil {
		return Entry{}, err
	}
	m, err := match.Matcher()
	if err != nil {
		return Entry{}, fmt.Errorf("%s: %w", name, err)
	}
	return Entry{Name: name, Percent: percent, Options: vals, Behavior: b, Match: m, MatchSpec: match}, nil
}

// Mix is an immutable weighted set of behaviors. The share not given to any
// entry is dummy (pass-through), as in the original Vaurien.
type Mix struct {
	entries []Entry
	bounds  []float64 // cumulative percents
}

// NewMix checks the shares (each 0–100, sum at most 100) and builds a mix.
func NewMix(entries []Entry) (*Mix, error) {
	m := &Mix{entries: entries, bounds: make([]float64, len(entries))}
	sum := 0.0
	for i, e := range entries {
		if math.IsNaN(e.Percent) || e.Percent < 0 || e.Percent > 100 {
			return nil, fmt.Errorf("behavior %q: percent %v is outside 0..100", e.Name, e.Percent)
		}
		if e.Behavior == nil {
			return nil, fmt.Errorf("behavior %q: not built", e.Name)
		}
		sum += e.Percent
		m.bounds[i] = sum
	}
	if sum > 100+1e-9 {
		return nil, fmt.Errorf("the behavior percentages add up to %v; the most is 100 (the rest is dummy)", trimFloat(sum))
	}
	return m, nil
}

// Entries returns the mix's entries in order.
func (m *Mix) Entries() []Entry { return m.entries }

// Same reports whether o draws exactly as m: the same behaviors with the
// same shares, options and matches, in the same order. Setting a mix that
// is the same as the live one is no change for the connections already
// open. An entry whose behavior is a Continuer may differ in options.
func (m *Mix) Same(o *Mix) bool {
	if m == o {
		return true
	}
	if m == nil || o == nil || len(m.entries) != len(o.entries) {
		return false
	}
	for i := range m.entries {
		a, b := &m.entries[i], &o.entries[i]
		if a.Name != b.Name || a.Percent != b.Percent || !reflect.DeepEqual(a.MatchSpec, b.MatchSpec) {
			return false
		}
		if c, ok := b.Behavior.(Continuer); ok && c.Continues(a.Behavior) {
			continue
		}
		if !reflect.DeepEqual(a.Options, b.Options) {
			return false
		}
	}
	return true
}

// Continuer is a behavior that carries its own changes to the connections
// that drew its predecessor, such as the Toxiproxy API's toxics: replacing
// the predecessor by it is no change of the mix for them.
type Continuer interface {
	Continues(prev Behavior) bool
}

// Weights returns each behavior's percent, dummy's included, for reporting.
func (m *Mix) Weights() map[string]float64 {
	w := map[string]float64{}
	sum := 0.0
	for _, e := range m.entries {
		w[e.Name] += e.Percent
		sum += e.Percent
	}
	w["dummy"] += math.Max(0, 100-sum)
	return w
}

// String renders the mix in the original's --behavior syntax, e.g. "20:delay,5:error".
func (m *Mix) String() string {
	parts := make([]string, 0, len(m.entries))
	for _, e := range m.entries {
		parts = append(parts, trimFloat(e.Percent)+":"+e.Name)
	}
	if len(parts) == 0 {
		return "100:dummy"
	}
	return strings.Join(parts, ",")
}

func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Pick returns the entry whose share holds x, a number in [0, 100), or nil
// for the dummy remainder. A 0% entry is never picked.
func (m *Mix) Pick(x float64) *Entry {
	for i, b := range m.bounds {
		if x < b {
			return &m.entries[i]
		}
	}
	return nil
}

// Draw picks a behavior for one unit using the next number of src.
func (m *Mix) Draw(src *Source, req *Request) Drawn {
	d := Drawn{Name: "dummy"}
	m.DrawTo(src, req, &d)
	return d
}

// DrawTo is Draw into d, which it leaves alone when no behavior is picked,
// and reports whether the draw changes anything (see Effect.IsZero): the
// per-request path copies no Drawn when nothing is drawn.
func (m *Mix) DrawTo(src *Source, req *Request, d *Drawn) bool {
	if len(m.bounds) == 0 || m.bounds[len(m.bounds)-1] == 0 {
		// Nothing to draw: leaving the shared source alone keeps
		// pass-through routes free of a cache line every core writes.
		return false
	}
	seq, r := src.next()
	e := m.Pick(float64(r>>11) / (1 << 53) * 100)
	if e == nil || (e.Match != nil && (req == nil || !e.Match(req))) {
		return false
	}
	// Units are pooled: passing one through the Behavior interface would
	// otherwise move it to the heap on every draw.
	u := unitPool.Get().(*Unit)
	*u = Unit{Seq: seq, Request: req, seed: r}
	d.Name, d.Effect = e.Name, e.Behavior.Effect(u)
	*u = Unit{}
	unitPool.Put(u)
	return !d.Effect.IsZero()
}

var unitPool = sync.Pool{New: func() any { return new(Unit) }}

// Source is a seedable, lock-free random source for draws: draw number n
// of a route always yields the same value for the same seed, so a seeded run
// repeats its sequence of behaviors exactly.
type Source struct {
	seed uint64
	n    atomic.Uint64
}

// NewSource returns a source. Seed 0 means a time-based seed.
func NewSource(seed uint64) *Source {
	if seed == 0 {
		seed = uint64(time.Now().UnixNano()) | 1
	}
	return &Source{seed: seed}
}

// SourceFor derives a route's own source from the global seed and the route
// name, so routes draw independently yet reproducibly.
func SourceFor(seed uint64, route string) *Source {
	if seed == 0 {
		return NewSource(0)
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(route); i++ {
		h = (h ^ uint64(route[i])) * 1099511628211
	}
	return &Source{seed: splitmix(seed ^ h)}
}

func (s *Source) next() (seq, r uint64) {
	seq = s.n.Add(1)
	return seq, splitmix(s.seed + seq*0x9e3779b97f4a7c15)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Share is one "PERCENT:NAME" item of the original's --behavior syntax.
type Share struct {
	Percent float64
	Name    string
}

// ParseShares reads the original Vaurien's mix syntax, "20:delay,5:error".
// A bare name means 100 percent. Names are not checked against the registry.
func ParseShares(s string) ([]Share, error) {
	var out []Share
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		pct, name, found := strings.Cut(item, ":")
		if !found {
			out = append(out, Share{Percent: 100, Name: item})
			continue
		}
		name = strings.TrimSpace(name)
		p, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
		if err != nil || name == "" || math.IsNaN(p) || p < 0 || p > 100 {
			return nil, fmt.Errorf("behavior %q: want PERCENT:NAME with a percent from 0 to 100, as in \"20:delay,5:error\"", item)
		}
		out = append(out, Share{Percent: p, Name: name})
	}
	return out, nil
}
