package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/experiment"
	"github.com/vaurien-go/vaurien/pkg/vaurientest"
)

func TestCtlExperiments(t *testing.T) {
	a := testenv.NamedHTTP(t, "A")
	p := vaurientest.Start(t, fmt.Sprintf(`
route "web" {
  listen  = "127.0.0.1:0"
  backend = %q
}
experiment "web-down" {
  report = %q
  probe "web" {
    tcp {
      address = "127.0.0.1:1"
    }
  }
  step "down" {
    duration = "30s"
    route "web" {
      behavior "blackout" {
        percent = 100
      }
    }
  }
}`, a, t.TempDir()))
	admin := "--admin=" + p.AdminAddr()
	out := mustCtl(t, admin, "experiments")
	for _, want := range []string{"EXPERIMENT", "web-down", "true", "web", "30s", "idle"} {
		if !strings.Contains(out, want) {
			t.Errorf("ctl experiments lacks %q:\n%s", want, out)
		}
	}
	out = mustCtl(t, admin, "start", "web-down")
	if !strings.Contains(out, "state       running") {
		t.Errorf("ctl start:\n%s", out)
	}
	if code, _, errs := ctl(t, admin, "start", "web-down"); code != 1 || !strings.Contains(errs, "is already running (run") || !strings.Contains(errs, "HTTP 409") {
		t.Errorf("second ctl start: exit %d: %s", code, errs)
	}
	// One bound for all the waits below.
	deadline := time.Now().Add(10 * time.Second)
	untilShown := func(want string) {
		for !strings.Contains(out, want) && time.Now().Before(deadline) {
			out = mustCtl(t, admin, "experiment", "web-down")
			time.Sleep(50 * time.Millisecond)
		}
	}
	untilShown("phase       down")
	for _, want := range []string{"phase       down", "left", "probe web", "errors"} {
		if !strings.Contains(out, want) {
			t.Errorf("ctl experiment lacks %q:\n%s", want, out)
		}
	}
	mustCtl(t, admin, "stop", "web-down")
	untilShown("state       stopped")
	if !strings.Contains(out, "state       stopped") {
		t.Fatalf("ctl experiment after stop:\n%s", out)
	}
	// The report is written once the run has rolled back.
	untilShown("report      /experiments/web-down/report/report.html")
	if !strings.Contains(out, "report      /experiments/web-down/report/report.html") {
		t.Fatalf("ctl experiment does not link the report:\n%s", out)
	}
	if got, err := testenv.Fetch(p.Addr("web")); err != nil || got != "A" {
		t.Fatalf("after the stop, route web answers %q %v; want it rolled back", got, err)
	}
}

// TestExperimentRunOnAFleet: vaurien experiment run with two --admin sets
// each step on both replicas, rolls both back to their own mixes, and the
// report counts their faults together.
func TestExperimentRunOnAFleet(t *testing.T) {
	a := testenv.NamedHTTP(t, "A")
	route := `
route "web" {
  listen  = "127.0.0.1:0"
  backend = %q
%s
}`
	own := `  behavior "delay" {
    percent = 0
    sleep   = "1ms"
  }`
	fleet := []*vaurientest.Proxy{
		vaurientest.Start(t, fmt.Sprintf(route, a, "")),
		vaurientest.Start(t, fmt.Sprintf(route, a, own)),
	}
	file := writeFile(t, "down.hcl", `
experiment "web-down" {
  probe "nothing" {
    tcp {
      address = "127.0.0.1:1"
    }
    interval = "1s"
  }
  step "down" {
    duration = "3s"
    route "web" {
      behavior "blackout" {
        percent = 100
      }
    }
  }
}`)
	report := t.TempDir()
	type exit struct {
		code     int
		out, err string
	}
	done := make(chan exit, 1)
	go func() {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"experiment", "run", file,
			"--admin", fleet[0].AdminAddr(), "--admin", fleet[1].AdminAddr(), "--report", report}, &out, &errb)
		done <- exit{code, out.String(), errb.String()}
	}()
	// Both replicas black the route out during the step.
	for i, p := range fleet {
		deadline := time.Now().Add(5 * time.Second)
		for {
			r, err := p.Client.Route(t.Context(), "web")
			if err == nil && len(r.Mix) == 1 && r.Mix[0].Name == "blackout" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d never ran the step's blackout: %+v %v", i, r, err)
			}
			<-time.After(20 * time.Millisecond)
		}
		if got, err := testenv.Fetch(p.Addr("web")); err == nil {
			t.Fatalf("replica %d let a request through during the step: %q", i, got)
		}
	}
	e := <-done
	if e.code != 0 {
		t.Fatalf("vaurien experiment run on two replicas: exit %d\n%s\n%s", e.code, e.out, e.err)
	}
	var faults int64
	for i, p := range fleet {
		r, err := p.Client.Route(t.Context(), "web")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.Mix, r.ConfiguredMix) || r.RevertsAt != nil {
			t.Fatalf("replica %d runs %+v after the run (reverts at %v), want its own file's %+v", i, r.Mix, r.RevertsAt, r.ConfiguredMix)
		}
		if got, err := testenv.Fetch(p.Addr("web")); err != nil || got != "A" {
			t.Fatalf("replica %d answers %q %v after the run", i, got, err)
		}
		faults += r.Stats.Faults
	}
	data, err := os.ReadFile(filepath.Join(report, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res experiment.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	var reported int64
	for _, ph := range res.Phases {
		for _, rc := range ph.Routes {
			reported += rc.Faults
		}
	}
	if faults < 2 || reported != faults {
		t.Fatalf("the report counts %d faults, the replicas %d together: want the same, at least one each", reported, faults)
	}
}

// An admin API that cannot be reached when the run starts is a connection
// error: exit 2 with the address, before any step, probe or report; a
// replica that could be reached is left as it was.
func TestExperimentRunWithoutItsAdminAPI(t *testing.T) {
	up := vaurientest.Start(t, fmt.Sprintf(`
route "web" {
  listen  = "127.0.0.1:0"
  backend = %q
}`, testenv.NamedHTTP(t, "A")))
	closed := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	file := writeFile(t, "down.hcl", `
experiment "web-down" {
  report = "never"
  probe "nothing" {
    tcp {
      address = "127.0.0.1:1"
    }
  }
  step "down" {
    duration = "3s"
    route "web" {
      behavior "blackout" {
        percent = 100
      }
    }
  }
}`)
	for _, admins := range [][]string{{closed}, {up.AdminAddr(), closed}} {
		args := []string{"experiment", "run", file}
		for _, a := range admins {
			args = append(args, "--admin", a)
		}
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb)
		want := "vaurien experiment run: read the routes of the vaurien at " + closed + ": "
		if code != 2 || !strings.HasPrefix(errb.String(), want) || !strings.Contains(errb.String(), "connection refused") || out.Len() != 0 {
			t.Errorf("--admin %v: exit %d, want 2 and %q:\n%s\n%s", admins, code, want, errb.String(), out.String())
		}
	}
	r, err := up.Client.Route(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Mix) != 0 || r.RevertsAt != nil || r.Stats.Requests != 0 {
		t.Errorf("the replica that was up runs %+v (reverts at %v, %d requests), want it untouched", r.Mix, r.RevertsAt, r.Stats.Requests)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(file), "never")); !os.IsNotExist(err) {
		t.Errorf("a report was written: %v", err)
	}
}
