package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/vaurientest"
)

func TestCtlExperiments(t *testing.T) {
	a := namedBackend(t, "A")
	p := vaurientest.Start(t, fmt.Sprintf(`
route "web" {
  listen  = "127.0.0.1:0"
  backend = %q
}
experiment "web-down" {
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
}`, a))
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
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out, "phase       down") && time.Now().Before(deadline) {
		out = mustCtl(t, admin, "experiment", "web-down")
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{"phase       down", "left", "probe web", "errors"} {
		if !strings.Contains(out, want) {
			t.Errorf("ctl experiment lacks %q:\n%s", want, out)
		}
	}
	mustCtl(t, admin, "stop", "web-down")
	for !strings.Contains(out, "state       stopped") && time.Now().Before(deadline) {
		out = mustCtl(t, admin, "experiment", "web-down")
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out, "state       stopped") {
		t.Fatalf("ctl experiment after stop:\n%s", out)
	}
	if got, err := get(p.Addr("web")); err != nil || got != "A" {
		t.Fatalf("after the stop, route web answers %q %v; want it rolled back", got, err)
	}
}
