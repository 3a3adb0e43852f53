package experiment_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/experiment"
	"github.com/vaurien-go/vaurien/pkg/vaurientest"
)

// cacheRoute is a redis route whose own mix already fails some commands:
// the commands sent before a run move its draws along, and only a seeded
// step can start them again.
const cacheRoute = `
seed = 99
route "cache" {
  listen   = "127.0.0.1:0"
  backend  = %q
  protocol = "redis"
  behavior "error" {
    percent = 30
  }
}`

// flaky is an experiment whose one step fails 40% of the cache's commands
// for longer than any test waits: the test stops the run once its client
// is done.
func flaky(t *testing.T, seed uint64, probeAddr string) config.Experiment {
	t.Helper()
	exps, err := config.ParseExperiments(fmt.Appendf(nil, `
experiment "flaky" {
  seed = %d
  probe "backend" {
    tcp {
      address = %q
    }
    interval = "1s"
  }
  step "flaky" {
    duration = "1m"
    route "cache" {
      behavior "error" {
        percent = 40
      }
    }
  }
}`, seed, probeAddr), "flaky.hcl", []string{"cache"})
	if err != nil {
		t.Fatal(err)
	}
	return exps[0]
}

// during runs the experiment, calls fn once its step "flaky" is in force,
// then stops the run and waits for its rollback.
func during(t *testing.T, e config.Experiment, fn func(ctx context.Context), targets ...experiment.Target) {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	inStep := make(chan struct{})
	var once sync.Once
	done := make(chan *experiment.Result, 1)
	go func() {
		res, err := experiment.Run(ctx, e, experiment.Options{Targets: targets, Progress: func(st api.ExperimentStatus) {
			if st.Step == "flaky" {
				once.Do(func() { close(inStep) })
			}
		}})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	select {
	case <-inStep:
	case res := <-done:
		t.Fatalf("the run ended before its step: %+v", res)
	}
	fn(ctx)
	stop()
	if res := <-done; res != nil && res.State != api.StateStopped {
		t.Fatalf("the run ended %s (%s), want stopped", res.State, res.Error)
	}
}

// faulted runs the experiment and, while its step is in force, sends n
// GETs one after the other through the route with a real redis client; it
// returns the indexes of the commands that met an injected error.
func faulted(t *testing.T, e config.Experiment, n int, rdb *redis.Client, targets ...experiment.Target) []int {
	t.Helper()
	var out []int
	during(t, e, func(ctx context.Context) {
		for i := range n {
			if err := rdb.Get(ctx, "missing").Err(); err != nil && !errors.Is(err, redis.Nil) {
				out = append(out, i)
			}
		}
	}, targets...)
	return out
}

func TestSeededStepRepeatsItsFaults(t *testing.T) {
	backend := testenv.Redis(t)
	p := vaurientest.Start(t, fmt.Sprintf(cacheRoute, backend.Addr))
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr("cache"), MaxRetries: -1, PoolSize: 1, DisableIdentity: true, Protocol: 2})
	t.Cleanup(func() { rdb.Close() })
	local, remote := p.App.ExperimentTarget(), experiment.Remote{C: p.Client}
	const n = 40

	// Commands before each run draw from the route's own sequence, each
	// time further along it.
	warm := func(k int) {
		for range k {
			rdb.Get(t.Context(), "missing")
		}
	}
	warm(5)
	first := faulted(t, flaky(t, 7, backend.Addr), n, rdb, local)
	warm(13)
	// The same seed through the admin API, as vaurien experiment run
	// --admin drives it.
	again := faulted(t, flaky(t, 7, backend.Addr), n, rdb, remote)
	warm(3)
	other := faulted(t, flaky(t, 8, backend.Addr), n, rdb, remote)

	if len(first) == 0 || len(first) == n {
		t.Fatalf("a step failing 40%% of %d commands faulted %v", n, first)
	}
	if !slices.Equal(first, again) {
		t.Fatalf("seed 7 faulted commands %v in process and %v through the admin API: want the same", first, again)
	}
	if slices.Equal(first, other) {
		t.Fatalf("seeds 7 and 8 faulted the same commands %v", first)
	}
	// The route is back to its file's mix, and the run left no timed change.
	r, err := p.Client.Route(t.Context(), "cache")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Mix) != 1 || r.Mix[0].Name != "error" || r.Mix[0].Percent != 30 || r.RevertsAt != nil {
		t.Fatalf("after the runs the route runs %+v (reverts at %v), want its file's error 30%%", r.Mix, r.RevertsAt)
	}
}

// TestRunRestoresATimedChange: a route under a timed change when the run
// starts gets it back with the time it had left, and its own revert to the
// file's mix; one whose timed change ended during the run gets the file's
// mix. Meanwhile, the step's own revert (should the runner die) leads to
// the same place.
func TestRunRestoresATimedChange(t *testing.T) {
	backend := testenv.Redis(t)
	p := vaurientest.Start(t, fmt.Sprintf(cacheRoute, backend.Addr))
	c := p.Client
	delay := api.SetMix{Behaviors: []api.Behavior{{Name: "delay", Percent: 100, Options: map[string]any{"sleep": "1ms"}}}}
	for _, tc := range []struct {
		name    string
		lasts   time.Duration
		outlive bool // the run lasts until the timed change has ended
	}{
		{"lasts past the run", time.Hour, false},
		{"ends during the run", 500 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timed := delay
			timed.Duration = api.Duration(tc.lasts)
			before, err := c.ChangeMix(t.Context(), "cache", timed)
			if err != nil {
				t.Fatal(err)
			}
			if before.RevertsAt == nil || before.RevertsTo == nil {
				t.Fatalf("a timed change shows no revert: %+v", before)
			}
			during(t, flaky(t, 7, backend.Addr), func(ctx context.Context) {
				r, err := c.Route(ctx, "cache")
				if err != nil {
					t.Fatal(err)
				}
				// The step reverts by itself to the timed change for
				// what would be left of it then, or to the file's mix.
				then := r.RevertsTo
				if then == nil || r.Mix[0].Name != "error" {
					t.Fatalf("in the step the route runs %+v, reverting to %+v", r.Mix, then)
				}
				if tc.outlive {
					if then.Behaviors[0].Name != "error" || then.Behaviors[0].Percent != 30 || then.Duration != 0 {
						t.Fatalf("the step reverts to %+v, want the file's mix for good: the timed delay is over by then", then)
					}
					<-time.After(time.Until(before.RevertsAt.Add(100 * time.Millisecond)))
				} else if then.Behaviors[0].Name != "delay" || then.Duration <= 0 || then.Then == nil || then.Then.Behaviors[0].Name != "error" {
					t.Fatalf("the step reverts to %+v, want the timed delay for its time left, then the file's mix", then)
				}
			}, p.App.ExperimentTarget())
			after, err := c.Route(t.Context(), "cache")
			if err != nil {
				t.Fatal(err)
			}
			if tc.outlive {
				if after.RevertsAt != nil || len(after.Mix) != 1 || after.Mix[0].Name != "error" || after.Mix[0].Percent != 30 {
					t.Fatalf("after a timed change ended during the run the route runs %+v (reverts at %v), want the file's error 30%% for good", after.Mix, after.RevertsAt)
				}
				return
			}
			if after.RevertsAt == nil || after.Mix[0].Name != "delay" {
				t.Fatalf("after the run the route runs %+v (reverts at %v), want the timed delay back", after.Mix, after.RevertsAt)
			}
			if d := after.RevertsAt.Sub(*before.RevertsAt); d < -time.Second || d > time.Second {
				t.Fatalf("the timed delay reverts at %v after the run, %v before it: want the same moment", after.RevertsAt, before.RevertsAt)
			}
			if to := after.RevertsTo; to == nil || to.Behaviors[0].Name != "error" || to.Behaviors[0].Percent != 30 || to.Duration != 0 {
				t.Fatalf("the timed delay reverts to %+v after the run, want the file's mix for good", to)
			}
			if _, err := c.ResetRoute(t.Context(), "cache"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A step's behavior with a match block reaches only the matching
// requests, in process and through the admin API alike: during a step that
// fails GET, every SET goes through to redis and every GET fails, and only
// the GETs count as faults; after the run, the GETs find what the SETs
// wrote.
func TestStepMatchReachesOnlyMatchingRequests(t *testing.T) {
	backend := testenv.Redis(t)
	p := vaurientest.Start(t, fmt.Sprintf(`
route "cache" {
  listen   = "127.0.0.1:0"
  backend  = %q
  protocol = "redis"
}`, backend.Addr))
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr("cache"), MaxRetries: -1, PoolSize: 1, DisableIdentity: true, Protocol: 2})
	t.Cleanup(func() { rdb.Close() })
	exps, err := config.ParseExperiments(fmt.Appendf(nil, `
experiment "get-fails" {
  probe "backend" {
    tcp {
      address = %q
    }
    interval = "1s"
  }
  step "flaky" {
    duration = "1m"
    route "cache" {
      behavior "error" {
        percent = 100
        match {
          command = ["get"]
        }
      }
    }
  }
}`, backend.Addr), "match.hcl", []string{"cache"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	for k, tc := range []struct {
		name   string
		target experiment.Target
	}{{"in process", p.App.ExperimentTarget()}, {"through the admin API", experiment.Remote{C: p.Client}}} {
		before, err := p.Client.Route(t.Context(), "cache")
		if err != nil {
			t.Fatal(err)
		}
		key := fmt.Sprintf("run%d-", k)
		during(t, exps[0], func(ctx context.Context) {
			for i := range n {
				if err := rdb.Set(ctx, fmt.Sprint(key, i), i, 0).Err(); err != nil {
					t.Errorf("%s: SET %d in the step: %v, want it through", tc.name, i, err)
				}
				if v, err := rdb.Get(ctx, fmt.Sprint(key, i)).Result(); err == nil || errors.Is(err, redis.Nil) {
					t.Errorf("%s: GET %d in the step answered %q, %v: want the injected error", tc.name, i, v, err)
				}
			}
		}, tc.target)
		after, err := p.Client.Route(t.Context(), "cache")
		if err != nil {
			t.Fatal(err)
		}
		if faults, requests := after.Stats.Faults-before.Stats.Faults, after.Stats.Requests-before.Stats.Requests; faults != n || requests < 2*n {
			t.Errorf("%s: the step faulted %d of %d requests, want the %d GETs only", tc.name, faults, requests, n)
		}
		if len(after.Mix) != 0 || after.RevertsAt != nil {
			t.Errorf("%s: after the run the route runs %+v (reverts at %v), want no mix", tc.name, after.Mix, after.RevertsAt)
		}
		for i := range n {
			if v, err := rdb.Get(t.Context(), fmt.Sprint(key, i)).Result(); err != nil || v != fmt.Sprint(i) {
				t.Errorf("%s: GET %d after the run: %q, %v; want what the step's SET wrote", tc.name, i, v, err)
			}
		}
	}
}

// publishLog records the JSON of every status a run publishes.
type publishLog struct {
	experiment.Target
	mu  sync.Mutex
	out [][]byte
}

func (l *publishLog) Publish(ctx context.Context, st api.ExperimentStatus, lease time.Duration) (bool, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	l.out = append(l.out, b)
	l.mu.Unlock()
	return l.Target.Publish(ctx, st, lease)
}

// TestPublishedStatusListsProbes: from the claim that starts a run to its
// end, a published status has a list of probes, empty at first, never
// null: the web console draws the running p99 from it.
func TestPublishedStatusListsProbes(t *testing.T) {
	backend := testenv.Redis(t)
	p := vaurientest.Start(t, fmt.Sprintf(cacheRoute, backend.Addr))
	log := &publishLog{Target: p.App.ExperimentTarget()}
	during(t, flaky(t, 7, backend.Addr), func(context.Context) {}, log)
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.out) < 2 {
		t.Fatalf("the run published %d statuses; want the claim and more", len(log.out))
	}
	for i, b := range log.out {
		var st struct {
			Probes *[]api.ProbeStatus `json:"probes"`
		}
		if err := json.Unmarshal(b, &st); err != nil || st.Probes == nil {
			t.Errorf("status %d has no list of probes (%v): %s", i, err, b)
		}
	}
}
