package chaos_test

import (
	"math"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func TestNewMix(t *testing.T) {
	tests := []struct {
		name    string
		entries []chaos.Entry
		err     string // the exact error; "" means success
	}{
		{name: "empty", entries: nil},
		{name: "one entry", entries: []chaos.Entry{entry("delay", 20)}},
		{name: "zero percent", entries: []chaos.Entry{entry("delay", 0)}},
		{name: "one entry at 100", entries: []chaos.Entry{entry("delay", 100)}},
		{name: "sum exactly 100", entries: []chaos.Entry{entry("a", 20), entry("b", 30), entry("c", 50)}},
		{name: "sum 100 in thirds", entries: []chaos.Entry{entry("a", 100.0/3), entry("b", 100.0/3), entry("c", 100.0/3)}},
		{name: "sum 100 in tenths", entries: []chaos.Entry{entry("a", 0.1), entry("b", 0.2), entry("c", 99.7)}},
		{
			name:    "negative",
			entries: []chaos.Entry{entry("delay", 10), entry("error", -5)},
			err:     `behavior "error": percent -5 is outside 0..100`,
		},
		{
			name:    "over 100 in one entry",
			entries: []chaos.Entry{entry("delay", 100.5)},
			err:     `behavior "delay": percent 100.5 is outside 0..100`,
		},
		{
			name:    "NaN",
			entries: []chaos.Entry{entry("delay", math.NaN())},
			err:     `behavior "delay": percent NaN is outside 0..100`,
		},
		{
			name:    "infinite",
			entries: []chaos.Entry{entry("delay", math.Inf(1))},
			err:     `behavior "delay": percent +Inf is outside 0..100`,
		},
		{
			name:    "sum over 100",
			entries: []chaos.Entry{entry("delay", 60), entry("error", 30), entry("hang", 20)},
			err:     "the behavior percentages add up to 110; the most is 100 (the rest is dummy)",
		},
		{
			name:    "sum just over 100",
			entries: []chaos.Entry{entry("delay", 50), entry("error", 50.001)},
			err:     "the behavior percentages add up to 100.001; the most is 100 (the rest is dummy)",
		},
		{
			name:    "behavior not built",
			entries: []chaos.Entry{{Name: "delay", Percent: 10}},
			err:     `behavior "delay": not built`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := chaos.NewMix(tt.entries)
			if tt.err == "" {
				if err != nil || m == nil {
					t.Fatalf("NewMix = %v, %v; want a mix", m, err)
				}
				if len(m.Entries()) != len(tt.entries) {
					t.Errorf("Entries() has %d entries, want %d", len(m.Entries()), len(tt.entries))
				}
				return
			}
			if err == nil || err.Error() != tt.err {
				t.Fatalf("NewMix error = %v, want %q", err, tt.err)
			}
			if m != nil {
				t.Errorf("NewMix returned a mix with an error")
			}
		})
	}
}

func TestMixPick(t *testing.T) {
	m := mustMix(t, entry("zero_first", 0), entry("a", 20), entry("zero_mid", 0), entry("b", 30), entry("zero_last", 0))
	tests := []struct {
		x    float64
		want string // "" for the dummy remainder
	}{
		{0, "a"},
		{math.SmallestNonzeroFloat64, "a"},
		{19.999999, "a"},
		{math.Nextafter(20, 0), "a"},
		{20, "b"},
		{49.999999, "b"},
		{50, ""},
		{99.999999, ""},
		{math.Nextafter(100, 0), ""},
	}
	for _, tt := range tests {
		e := m.Pick(tt.x)
		got := ""
		if e != nil {
			got = e.Name
		}
		if got != tt.want {
			t.Errorf("Pick(%v) = %q, want %q", tt.x, got, tt.want)
		}
	}

	full := mustMix(t, entry("a", 40), entry("b", 60), entry("zero", 0))
	if e := full.Pick(math.Nextafter(100, 0)); e == nil || e.Name != "b" {
		t.Errorf("Pick(just under 100) of a full mix = %v, want b", e)
	}
	if e := mustMix(t).Pick(0); e != nil {
		t.Errorf("Pick(0) of an empty mix = %v, want dummy", e)
	}
	only := mustMix(t, entry("zero", 0))
	for _, x := range []float64{0, 50, math.Nextafter(100, 0)} {
		if e := only.Pick(x); e != nil {
			t.Errorf("Pick(%v) picked the 0%% entry %q", x, e.Name)
		}
	}
}

// share counts each name's share of draws, in percent.
func share(names []string) map[string]float64 {
	out := map[string]float64{}
	for _, n := range names {
		out[n] += 100 / float64(len(names))
	}
	return out
}

func TestMixDrawShares(t *testing.T) {
	const draws = 10000
	tests := []struct {
		name    string
		entries []chaos.Entry
		want    map[string]float64
	}{
		{
			name:    "20/30/50",
			entries: []chaos.Entry{entry("delay", 20), entry("error", 30), entry("hang", 50)},
			want:    map[string]float64{"delay": 20, "error": 30, "hang": 50},
		},
		{
			name:    "20/30 leaves dummy",
			entries: []chaos.Entry{entry("delay", 20), entry("error", 30)},
			want:    map[string]float64{"delay": 20, "error": 30, "dummy": 50},
		},
		{
			name:    "small share",
			entries: []chaos.Entry{entry("delay", 1), entry("error", 0)},
			want:    map[string]float64{"delay": 1, "dummy": 99},
		},
		{
			name:    "empty mix is all dummy",
			entries: nil,
			want:    map[string]float64{"dummy": 100},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustMix(t, tt.entries...)
			// Several fixed seeds: deterministic, yet not one lucky sequence.
			for seed := uint64(1); seed <= 10; seed++ {
				got := share(drawNames(m, chaos.NewSource(seed), draws))
				for name := range got {
					if _, ok := tt.want[name]; !ok {
						t.Errorf("seed %d: drew %q, which is not in the mix", seed, name)
					}
				}
				for name, want := range tt.want {
					if math.Abs(got[name]-want) > 2 {
						t.Errorf("seed %d: %q drawn %.2f%% of %d draws, want %v±2", seed, name, got[name], draws, want)
					}
				}
			}
		})
	}
}

func TestMixDrawZeroPercentNeverDrawn(t *testing.T) {
	const draws = 100000
	m := mustMix(t, entry("zero_first", 0), entry("a", 50), entry("zero_mid", 0), entry("b", 50), entry("zero_last", 0))
	src := chaos.NewSource(7)
	counts := map[string]int{}
	for range draws {
		counts[m.Draw(src, nil).Name]++
	}
	for _, name := range []string{"zero_first", "zero_mid", "zero_last", "dummy"} {
		if counts[name] != 0 {
			t.Errorf("%q drawn %d times in %d draws, want never", name, counts[name], draws)
		}
	}
	if counts["a"]+counts["b"] != draws {
		t.Errorf("counts = %v, want %d draws of a and b", counts, draws)
	}
}

func TestMixDrawSeeded(t *testing.T) {
	const n = 2000
	m := mustMix(t, entry("delay", 20), entry("error", 30), entry("hang", 10))

	a := drawNames(m, chaos.NewSource(42), n)
	b := drawNames(m, chaos.NewSource(42), n)
	if !slices.Equal(a, b) {
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("seed 42 repeated differently from draw %d: %q then %q", i+1, a[i], b[i])
			}
		}
	}
	// A new mix with the same shares draws the same sequence: the sequence
	// depends on the seed and the shares, not on the Mix value.
	m2 := mustMix(t, entry("delay", 20), entry("error", 30), entry("hang", 10))
	if c := drawNames(m2, chaos.NewSource(42), n); !slices.Equal(a, c) {
		t.Errorf("an equal mix with seed 42 draws another sequence")
	}

	for _, seed := range []uint64{1, 43, math.MaxUint64} {
		if other := drawNames(m, chaos.NewSource(seed), n); slices.Equal(a, other) {
			t.Errorf("seeds 42 and %d draw the same %d behaviors", seed, n)
		}
	}

	// Seed 0 asks for a time-based seed; such a source still draws from the mix.
	for _, name := range drawNames(m, chaos.NewSource(0), n) {
		if !slices.Contains([]string{"delay", "error", "hang", "dummy"}, name) {
			t.Fatalf("time-seeded source drew %q", name)
		}
	}
}

func TestSourceFor(t *testing.T) {
	const n = 2000
	m := mustMix(t, entry("delay", 20), entry("error", 30), entry("hang", 10))
	routes := []string{"redis", "redis2", "memcache", "", "a", "b"}
	seqs := map[string][]string{}
	for _, r := range routes {
		seqs[r] = drawNames(m, chaos.SourceFor(42, r), n)
		if again := drawNames(m, chaos.SourceFor(42, r), n); !slices.Equal(seqs[r], again) {
			t.Errorf("route %q: SourceFor(42) does not repeat its draws", r)
		}
		if other := drawNames(m, chaos.SourceFor(43, r), n); slices.Equal(seqs[r], other) {
			t.Errorf("route %q: seeds 42 and 43 draw the same sequence", r)
		}
	}
	for i, r := range routes {
		for _, q := range routes[i+1:] {
			if slices.Equal(seqs[r], seqs[q]) {
				t.Errorf("routes %q and %q draw the same sequence with seed 42", r, q)
			}
		}
	}
	if slices.Equal(seqs["redis"], drawNames(m, chaos.NewSource(42), n)) {
		t.Errorf("SourceFor(42, redis) draws the same as NewSource(42)")
	}
	if chaos.SourceFor(0, "redis") == nil {
		t.Errorf("SourceFor(0) returned nil")
	}
}

// TestMixDrawConcurrent checks that draws from many goroutines on one source
// give each draw number exactly once, and the same behavior per draw number
// as a sequential run with the same seed.
func TestMixDrawConcurrent(t *testing.T) {
	const (
		workers = 8
		each    = 2000
		n       = workers * each
	)
	run := func(concurrent bool) []string {
		got := make([]string, n+1) // by draw number; each index written once
		record := func(name string) chaos.Behavior {
			return effectFunc(func(u *chaos.Unit) chaos.Effect {
				got[u.Seq] = name
				return chaos.Effect{}
			})
		}
		m := mustMix(t,
			chaos.Entry{Name: "a", Percent: 25, Behavior: record("a")},
			chaos.Entry{Name: "b", Percent: 25, Behavior: record("b")},
			chaos.Entry{Name: "c", Percent: 25, Behavior: record("c")},
		)
		src := chaos.NewSource(99)
		if !concurrent {
			for range n {
				m.Draw(src, nil)
			}
			return got[1:]
		}
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for range each {
					m.Draw(src, nil)
				}
			})
		}
		wg.Wait()
		return got[1:]
	}
	seq, par := run(false), run(true)
	if !slices.Equal(seq, par) {
		t.Errorf("concurrent draws differ from sequential ones with the same seed")
	}
}

func TestMixDrawUnit(t *testing.T) {
	var seqs []uint64
	var reqs []*chaos.Request
	b := effectFunc(func(u *chaos.Unit) chaos.Effect {
		seqs = append(seqs, u.Seq)
		reqs = append(reqs, u.Request)
		return chaos.Effect{Fault: chaos.FaultHang}
	})
	m := mustMix(t, chaos.Entry{Name: "hang", Percent: 100, Behavior: b})
	src := chaos.NewSource(5)
	req := &chaos.Request{Command: "GET"}
	for i := range 5 {
		var r *chaos.Request
		if i%2 == 1 {
			r = req
		}
		d := m.Draw(src, r)
		if d.Name != "hang" || d.Effect.Fault != chaos.FaultHang {
			t.Fatalf("Draw = %+v, want hang", d)
		}
	}
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("unit Seq = %v, want 1..5", seqs)
	}
	if !reflect.DeepEqual(reqs, []*chaos.Request{nil, req, nil, req, nil}) {
		t.Errorf("unit Request = %v, want the request passed to Draw", reqs)
	}
}

func TestMixDrawMatch(t *testing.T) {
	calls := 0
	hang := effectFunc(func(*chaos.Unit) chaos.Effect {
		calls++
		return chaos.Effect{Fault: chaos.FaultHang, Delay: time.Second, Error: chaos.ErrorSpec{Status: 503}}
	})
	onlySet := func(r *chaos.Request) bool { return r.Command == "SET" }
	tests := []struct {
		name  string
		match func(*chaos.Request) bool
		req   *chaos.Request
		drawn string
	}{
		{"no match func, no request", nil, nil, "hang"},
		{"no match func, request", nil, &chaos.Request{Command: "GET"}, "hang"},
		{"match true", onlySet, &chaos.Request{Command: "SET"}, "hang"},
		{"match false", onlySet, &chaos.Request{Command: "GET"}, "dummy"},
		// A tcp route has no request to match: the entry passes through.
		{"match func, no request", onlySet, nil, "dummy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls = 0
			m := mustMix(t, chaos.Entry{Name: "hang", Percent: 100, Behavior: hang, Match: tt.match})
			src := chaos.NewSource(1)
			for range 100 {
				d := m.Draw(src, tt.req)
				if d.Name != tt.drawn {
					t.Fatalf("Draw = %q, want %q", d.Name, tt.drawn)
				}
				if tt.drawn == "dummy" && !reflect.DeepEqual(d, chaos.Drawn{Name: "dummy"}) {
					t.Fatalf("unmatched draw = %+v, want a zero Effect", d)
				}
				if tt.drawn == "hang" && d.Effect.Fault != chaos.FaultHang {
					t.Fatalf("matched draw has effect %+v", d.Effect)
				}
			}
			if tt.drawn == "dummy" && calls != 0 {
				t.Errorf("Effect called %d times for requests that do not match", calls)
			}
		})
	}
}

func TestMixDrawDummyIsZero(t *testing.T) {
	m := mustMix(t, chaos.Entry{Name: "delay", Percent: 10, Behavior: effectFunc(func(*chaos.Unit) chaos.Effect {
		return chaos.Effect{Delay: time.Second}
	})})
	src := chaos.NewSource(3)
	dummies := 0
	for range 1000 {
		d := m.Draw(src, nil)
		switch d.Name {
		case "dummy":
			dummies++
			if !d.Effect.IsZero() || !reflect.DeepEqual(d.Effect, chaos.Effect{}) {
				t.Fatalf("dummy draw has effect %+v", d.Effect)
			}
		case "delay":
			if d.Effect.Delay != time.Second {
				t.Fatalf("delay draw has effect %+v", d.Effect)
			}
		default:
			t.Fatalf("drew %q", d.Name)
		}
	}
	if dummies == 0 {
		t.Errorf("no dummy in 1000 draws of a 10%% mix")
	}
}

func TestMixString(t *testing.T) {
	tests := []struct {
		entries []chaos.Entry
		want    string
	}{
		{nil, "100:dummy"},
		{[]chaos.Entry{entry("delay", 20), entry("error", 5)}, "20:delay,5:error"},
		{[]chaos.Entry{entry("delay", 12.5)}, "12.5:delay"},
		{[]chaos.Entry{entry("delay", 0), entry("hang", 100)}, "0:delay,100:hang"},
		{[]chaos.Entry{entry("delay", 0.1), entry("delay", 0.2)}, "0.1:delay,0.2:delay"},
	}
	for _, tt := range tests {
		if got := mustMix(t, tt.entries...).String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestMixWeights(t *testing.T) {
	tests := []struct {
		name    string
		entries []chaos.Entry
		want    map[string]float64
	}{
		{"empty", nil, map[string]float64{"dummy": 100}},
		{"partial", []chaos.Entry{entry("delay", 20), entry("error", 30)}, map[string]float64{"delay": 20, "error": 30, "dummy": 50}},
		{"full", []chaos.Entry{entry("delay", 40), entry("error", 60)}, map[string]float64{"delay": 40, "error": 60, "dummy": 0}},
		{"repeated name adds up", []chaos.Entry{entry("delay", 10), entry("delay", 15)}, map[string]float64{"delay": 25, "dummy": 75}},
		{"explicit dummy adds to the rest", []chaos.Entry{entry("dummy", 10), entry("hang", 10)}, map[string]float64{"dummy": 90, "hang": 10}},
		{"zero entry listed", []chaos.Entry{entry("delay", 0)}, map[string]float64{"delay": 0, "dummy": 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustMix(t, tt.entries...).Weights()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Weights() = %v, want %v", got, tt.want)
			}
		})
	}
	// Float sums that land a hair over 100 must not report a negative dummy.
	w := mustMix(t, entry("a", 100.0/3), entry("b", 100.0/3), entry("c", 100.0/3)).Weights()
	if w["dummy"] < 0 || w["dummy"] > 1e-9 {
		t.Errorf("dummy weight of a full mix in thirds = %v", w["dummy"])
	}
}

func TestParseShares(t *testing.T) {
	const syntax = `want PERCENT:NAME with a percent from 0 to 100, as in "20:delay,5:error"`
	tests := []struct {
		in   string
		want []chaos.Share
		err  string // the exact error; "" means success
	}{
		{in: "20:delay,5:error", want: []chaos.Share{{Percent: 20, Name: "delay"}, {Percent: 5, Name: "error"}}},
		{in: " 12.5 : delay , , 0:hang ", want: []chaos.Share{{Percent: 12.5, Name: "delay"}, {Percent: 0, Name: "hang"}}},
		{in: "delay", want: []chaos.Share{{Percent: 100, Name: "delay"}}},
		{in: "100:delay", want: []chaos.Share{{Percent: 100, Name: "delay"}}},
		// Shares are checked one by one; their sum is NewMix's business.
		{in: "60:delay,60:error", want: []chaos.Share{{Percent: 60, Name: "delay"}, {Percent: 60, Name: "error"}}},
		{in: "", want: nil},
		{in: "x:delay", err: `behavior "x:delay": ` + syntax},
		{in: ":delay", err: `behavior ":delay": ` + syntax},
		{in: "-5:delay", err: `behavior "-5:delay": ` + syntax},
		{in: "101:delay", err: `behavior "101:delay": ` + syntax},
		{in: "NaN:delay", err: `behavior "NaN:delay": ` + syntax},
		{in: "Inf:delay", err: `behavior "Inf:delay": ` + syntax},
		{in: "20:delay,abc:error", err: `behavior "abc:error": ` + syntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := chaos.ParseShares(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("ParseShares(%q) error = %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseShares(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestParseSharesMixString checks that what Mix.String prints parses back
// to the same shares, the original's syntax both ways.
func TestParseSharesMixString(t *testing.T) {
	m := mustMix(t, entry("delay", 20), entry("error", 12.5), entry("hang", 0))
	got, err := chaos.ParseShares(m.String())
	want := []chaos.Share{{Percent: 20, Name: "delay"}, {Percent: 12.5, Name: "error"}, {Percent: 0, Name: "hang"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseShares(%q) = %+v, %v; want %+v", m.String(), got, err, want)
	}
}
