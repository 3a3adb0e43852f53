package compose_test

import (
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/config"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
)

// The example's experiment is valid against the example's routes, and
// its steps and SLOs are the ones the README walks through.
func TestExperimentFileIsValid(t *testing.T) {
	f, err := config.Load("vaurien/vaurien.hcl")
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, r := range f.Routes {
		routes = append(routes, r.Name)
	}
	exps, err := config.LoadExperiments("experiment.hcl", routes)
	if err != nil {
		t.Fatal(err)
	}
	if len(exps) != 1 {
		t.Fatalf("%d experiments", len(exps))
	}
	e := exps[0]
	if e.Name != "cache-trouble" || len(e.Steps) != 2 || e.Steps[0].Routes[0].Route != "redis" || e.Steps[1].Routes[0].Route != "memcached" {
		t.Errorf("experiment %+v", e)
	}
	if e.Duration() != 60*time.Second || len(e.SLOs) != 4 {
		t.Errorf("lasts %s with %d SLOs", e.Duration(), len(e.SLOs))
	}
}
