package behavior_test

import (
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// draws runs n draws of b and reports for each whether it failed.
func draws(b chaos.Behavior, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		e := b.Effect(unit(uint64(i + 1)))
		out[i] = e.Fault == chaos.FaultError
	}
	return out
}

func pattern(pass1, fail, pass2 int) []bool {
	return slices.Concat(make([]bool, pass1), slices.Repeat([]bool{true}, fail), make([]bool, pass2))
}

func TestFailingSequences(t *testing.T) {
	tests := []struct {
		name string
		opts map[string]any
		want []bool
	}{
		{"error", nil, pattern(0, 10, 0)},
		{"error", map[string]any{"warmup": 3}, pattern(3, 7, 0)},
		{"error", map[string]any{"warmup": 10}, pattern(10, 0, 0)},
		{"transient", nil, pattern(0, 1, 9)},
		{"transient", map[string]any{"agitate": 4}, pattern(0, 4, 6)},
		{"transient", map[string]any{"agitate": 4, "warmup": 2}, pattern(2, 4, 4)},
		{"transient", map[string]any{"agitate": 0}, pattern(0, 0, 10)},
	}
	for _, tt := range tests {
		b := build(t, tt.name, tt.opts)
		if got := draws(b, len(tt.want)); !slices.Equal(got, tt.want) {
			t.Errorf("%s %v: failed draws %v, want %v", tt.name, tt.opts, got, tt.want)
		}
	}
}

// Draws come from many connections at once; the counts must stay exact.
func TestFailingCountsConcurrent(t *testing.T) {
	tests := []struct {
		name      string
		opts      map[string]any
		wantFails int64
	}{
		{"error", map[string]any{"warmup": 100}, 1000 - 100},
		{"transient", map[string]any{"warmup": 50, "agitate": 200}, 200},
	}
	for _, tt := range tests {
		b := build(t, tt.name, tt.opts)
		var fails atomic.Int64
		var wg sync.WaitGroup
		for g := range 10 {
			wg.Go(func() {
				for i := range 100 {
					if b.Effect(unit(uint64(g*100+i+1))).Fault == chaos.FaultError {
						fails.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if got := fails.Load(); got != tt.wantFails {
			t.Errorf("%s %v: %d of 1000 draws failed, want %d", tt.name, tt.opts, got, tt.wantFails)
		}
	}
}

func TestErrorSpec(t *testing.T) {
	tests := []struct {
		opts map[string]any
		want chaos.ErrorSpec
	}{
		{nil, chaos.ErrorSpec{}},
		{map[string]any{"inject": true}, chaos.ErrorSpec{Inject: true}},
		{map[string]any{"status": []int64{418}, "message": "I'm a teapot"},
			chaos.ErrorSpec{Status: 418, Message: "I'm a teapot"}},
		{map[string]any{"headers": []string{"retry-after: 5", "X-Chaos:yes", "X-Empty:"}},
			chaos.ErrorSpec{Headers: map[string]string{"Retry-After": "5", "X-Chaos": "yes", "X-Empty": ""}}},
		{map[string]any{"code": "40P01"}, chaos.ErrorSpec{Code: "40P01"}},
		{map[string]any{"code": "deadlock", "message": "stuck"}, chaos.ErrorSpec{Code: "deadlock", Message: "stuck"}},
	}
	for _, name := range []string{"error", "transient"} {
		for _, tt := range tests {
			e := build(t, name, tt.opts).Effect(unit(1))
			if !reflect.DeepEqual(e.Error, tt.want) {
				t.Errorf("%s %v: ErrorSpec %+v, want %+v", name, tt.opts, e.Error, tt.want)
			}
		}
	}
}

func TestErrorStatusPicked(t *testing.T) {
	statuses := []int64{500, 502, 503, 429}
	b := build(t, "error", map[string]any{"status": statuses})
	seen := map[int]int{}
	for i := range 400 {
		seen[b.Effect(unit(uint64(i+1))).Error.Status]++
	}
	got := slices.Sorted(maps.Keys(seen))
	if !slices.Equal(got, []int{429, 500, 502, 503}) {
		t.Fatalf("statuses drawn %v, want each of %v", seen, statuses)
	}
	for s, n := range seen {
		if n < 50 {
			t.Errorf("status %d drawn %d times of 400, want about 100", s, n)
		}
	}
	// The pick follows the draw's seed, so seeded runs repeat it.
	if a, b := b.Effect(unit(77)).Error.Status, b.Effect(unit(77)).Error.Status; a != b {
		t.Errorf("the same draw picked %d then %d", a, b)
	}
}
