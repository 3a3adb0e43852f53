package experiment

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

type events []string

func (e *events) StepRunning(exp, step string, on bool) {
	*e = append(*e, fmt.Sprintf("%s/%s running=%v", exp, step, on))
}
func (e *events) SLOHeld(exp, slo string, ok bool) {
	*e = append(*e, fmt.Sprintf("%s/%s ok=%v", exp, slo, ok))
}

func TestBoard(t *testing.T) {
	var ev events
	b := NewBoard(&ev)
	now := time.Unix(1000, 0)
	b.now = func() time.Time { return now }
	run := func(exp, id, state, step string, routes ...string) api.ExperimentStatus {
		return api.ExperimentStatus{Experiment: exp, Run: id, State: state, Step: step, Routes: routes}
	}
	mustPublish := func(st api.ExperimentStatus) {
		t.Helper()
		if _, err := b.Publish(st, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	mustPublish(run("a", "1", api.StateRunning, "", "cache", "web"))
	mustPublish(run("a", "1", api.StateRunning, "slow", "cache", "web"))
	mustPublish(run("a", "1", api.StateRunning, "down", "cache", "web"))

	var conflict *ConflictError
	if _, err := b.Publish(run("b", "2", api.StateRunning, "", "db", "web"), time.Second); !errors.As(err, &conflict) || conflict.Msg != `route "web" is in experiment "a", which is running (run 1); one experiment at a time may touch a route` {
		t.Errorf("claim of a held route: %v", err)
	}
	if _, err := b.Publish(run("a", "3", api.StateRunning, ""), time.Second); !errors.As(err, &conflict) {
		t.Errorf("second run of a running experiment: %v", err)
	}
	mustPublish(run("b", "2", api.StateRunning, "", "db"))

	if _, err := b.Stop("a"); err != nil {
		t.Fatal(err)
	}
	if stop, _ := b.Publish(run("a", "1", api.StateRunning, "down", "cache", "web"), 5*time.Second); !stop {
		t.Error("the stop request did not reach the runner")
	}
	final := run("a", "1", api.StateFailed, "", "cache", "web")
	final.SLOs = []api.SLOResult{{Name: "fast", OK: false}, {Name: "up", OK: true}}
	mustPublish(final)
	mustPublish(run("c", "4", api.StateRunning, "", "web")) // a is over: its routes are free

	// b goes quiet: its lease lapses and it shows as lost.
	now = now.Add(4 * time.Second)
	if st, _ := b.Status("b"); st.State != api.StateRunning {
		t.Errorf("b within its lease: %+v", st)
	}
	now = now.Add(2 * time.Second)
	if st, _ := b.Status("b"); st.State != api.StateLost {
		t.Errorf("b after its lease: %+v", st)
	}
	mustPublish(run("d", "5", api.StateRunning, "", "db")) // and its route is free
	want := events{
		"a/slow running=true",
		"a/slow running=false", "a/down running=true",
		"a/down running=false", "a/fast ok=false", "a/up ok=true",
	}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("observer saw\n%q\nwant\n%q", ev, want)
	}
}
