package experiment

import (
	"reflect"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

func TestRouteStateAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	mix := func(name string) []api.Behavior { return []api.Behavior{{Name: name, Percent: 100}} }
	sec := func(s int) api.Duration { return api.Duration(time.Duration(s) * time.Second) }
	file := &api.SetMix{Behaviors: mix("file")}
	revertsAt := at(10)
	// b lasts 5 s once a's timed change ends, then a comes back for good
	// (no then: the mix in force before b).
	chain := &api.SetMix{Behaviors: mix("b"), Duration: sec(5), Seed: 3}
	for _, tc := range []struct {
		name string
		st   RouteState
		t    time.Time
		want api.SetMix
	}{
		{"no timed change", RouteState{Mix: mix("a")}, at(20), api.SetMix{Behaviors: mix("a")}},
		{"timed change still in force", RouteState{Mix: mix("a"), RevertsAt: &revertsAt, RevertsTo: file}, at(4),
			api.SetMix{Behaviors: mix("a"), Duration: sec(6), Then: file}},
		{"timed change over", RouteState{Mix: mix("a"), RevertsAt: &revertsAt, RevertsTo: file}, at(10), *file},
		{"inside what follows", RouteState{Mix: mix("a"), RevertsAt: &revertsAt, RevertsTo: chain}, at(12),
			api.SetMix{Behaviors: mix("b"), Duration: sec(3)}},
		{"past what follows", RouteState{Mix: mix("a"), RevertsAt: &revertsAt, RevertsTo: chain}, at(16), api.SetMix{Behaviors: mix("a")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.st.at(tc.t); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("at %v: %+v, want %+v", tc.t.Sub(t0), got, tc.want)
			}
		})
	}
}
