package admin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// The file's experiment starts through the API, shows its live status,
// refuses a second claim on its route with a 409 naming it, stops on
// request and rolls its route back.
func TestExperimentsAPI(t *testing.T) {
	e := startEnv(t, "")
	var list api.Experiments
	e.mustCall(t, http.MethodGet, "/experiments", "", http.StatusOK, &list)
	if len(list.Experiments) != 1 || list.Experiments[0].Name != "web" || !list.Experiments[0].InConfig || list.Experiments[0].Last != nil {
		t.Fatalf("GET /experiments: %+v", list)
	}
	var st api.ExperimentStatus
	e.mustCall(t, http.MethodGet, "/experiments/web", "", http.StatusOK, &st)
	if st.State != api.StateIdle {
		t.Fatalf("before any run: %+v", st)
	}
	e.mustCall(t, http.MethodPost, "/experiments/web/start", "", http.StatusAccepted, &st)
	if st.State != api.StateRunning || fmt.Sprint(st.Routes) != "[web]" {
		t.Fatalf("started: %+v", st)
	}
	eventually(t, 5*time.Second, "the step's mix on route web", func() bool {
		r := e.route(t, "web")
		return len(r.Mix) == 1 && r.Mix[0].Name == "delay" && r.RevertsAt != nil
	})
	if code, body := e.call(t, http.MethodPost, "/experiments/web/start", ""); code != http.StatusConflict || !strings.Contains(body, `experiment \"web\" is already running`) {
		t.Errorf("second start: %d %s", code, body)
	}
	claim := api.ExperimentRun{Lease: api.Duration(time.Second), Status: api.ExperimentStatus{
		Experiment: "other", Run: "r1", State: api.StateRunning, Routes: []string{"side", "web"}}}
	body, _ := json.Marshal(claim)
	if code, resp := e.call(t, http.MethodPut, "/experiments/other/run", string(body)); code != http.StatusConflict || !strings.Contains(resp, `route \"web\" is in experiment \"web\"`) {
		t.Errorf("remote claim on a held route: %d %s", code, resp)
	}
	e.mustCall(t, http.MethodGet, "/experiments/web", "", http.StatusOK, &st)
	if st.State != api.StateRunning || st.Step != "slow" {
		t.Errorf("live status: %+v", st)
	}
	e.mustCall(t, http.MethodPost, "/experiments/web/stop", "", http.StatusAccepted, &st)
	eventually(t, 5*time.Second, "the run stopped and rolled back", func() bool {
		var now api.ExperimentStatus
		e.mustCall(t, http.MethodGet, "/experiments/web", "", http.StatusOK, &now)
		r := e.route(t, "web")
		return now.State == api.StateStopped && len(r.Mix) == 0 && r.RevertsAt == nil
	})
	// Once the route is free, another experiment may claim it.
	e.mustCall(t, http.MethodPut, "/experiments/other/run", string(body), http.StatusOK, nil)

	bad := []struct{ path, body, want string }{
		{"/experiments/x/run", string(body), "does not match"},
		{"/experiments/other/run", `{"status": {"experiment": "other", "run": "r2", "state": "running"}, "lease": "1h"}`, "lease 1h0m0s"},
		{"/experiments/other/run", `{"status": {"experiment": "other", "state": "running"}, "lease": "1s"}`, "status.run is required"},
	}
	for _, b := range bad {
		if code, resp := e.call(t, http.MethodPut, b.path, b.body); code != http.StatusBadRequest || !strings.Contains(resp, b.want) {
			t.Errorf("PUT %s %s: %d %s, want 400 with %q", b.path, b.body, code, resp, b.want)
		}
	}
	if code, _ := e.call(t, http.MethodPost, "/experiments/nope/start", ""); code != http.StatusNotFound {
		t.Errorf("start of an unknown experiment: %d, want 404", code)
	}
}
