package admin_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/client"
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

// An experiment with a report directory, started through the API, writes
// its report there when its run ends, and GET /experiments/{name} links
// to it on the admin API.
func TestExperimentStartedThroughTheAPIWritesItsReport(t *testing.T) {
	e := startEnv(t, "")
	if code, body := e.call(t, http.MethodGet, "/experiments/web/report/report.html", ""); code != http.StatusNotFound || !strings.Contains(body, "no report") {
		t.Fatalf("a report before any: %d %s", code, body)
	}
	// The report directory comes with a reload, relative to the file.
	cfg := fmt.Sprintf(envConfig, "", e.a.Listener.Addr().String(), e.b.Listener.Addr().String())
	e.writeFile(t, strings.Replace(cfg, `experiment "web" {`, `experiment "web" {
  report = "reports/web"`, 1))
	e.mustCall(t, http.MethodPost, "/reload", "", http.StatusOK, nil)
	dir := filepath.Join(filepath.Dir(e.file), "reports", "web")

	var st api.ExperimentStatus
	e.mustCall(t, http.MethodPost, "/experiments/web/start", "", http.StatusAccepted, &st)
	run := st.Run
	eventually(t, 5*time.Second, "the step's mix on route web", func() bool {
		r := e.route(t, "web")
		return len(r.Mix) == 1 && r.Mix[0].Name == "delay"
	})
	e.mustCall(t, http.MethodPost, "/experiments/web/stop", "", http.StatusAccepted, nil)
	eventually(t, 5*time.Second, "a link to the report", func() bool {
		e.mustCall(t, http.MethodGet, "/experiments/web", "", http.StatusOK, &st)
		return st.Report != ""
	})
	if st.Report != "/experiments/web/report/report.html" || st.State != api.StateStopped {
		t.Fatalf("after the run: report %q, state %s", st.Report, st.State)
	}
	var list api.Experiments
	e.mustCall(t, http.MethodGet, "/experiments", "", http.StatusOK, &list)
	if list.Experiments[0].Last == nil || list.Experiments[0].Last.Report != st.Report {
		t.Fatalf("GET /experiments does not link the report: %+v", list.Experiments[0].Last)
	}

	req, _ := http.NewRequest(http.MethodGet, e.admin+st.Report, nil)
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(html), "<svg") || !strings.Contains(string(html), run) {
		t.Fatalf("GET %s: %d %s, %d bytes: want the run's report.html", st.Report, resp.StatusCode, resp.Header.Get("Content-Type"), len(html))
	}
	c := client.New(e.admin)
	defer c.Close()
	js, err := c.ExperimentReport(t.Context(), "web", "results.json")
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Run, State string
	}
	if err := json.Unmarshal(js, &res); err != nil || res.Run != run || res.State != api.StateStopped {
		t.Fatalf("results.json through the API: %+v %v, want run %s stopped", res, err, run)
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	md, err := c.ExperimentReport(t.Context(), "web", "report.md")
	if err != nil || string(md) != string(onDisk) || !strings.Contains(string(md), "# Experiment web: STOPPED") {
		t.Fatalf("report.md through the API (%v) is not the one in %s:\n%s", err, dir, md)
	}
	if code, body := e.call(t, http.MethodGet, "/experiments/web/report/..%2Fvaurien.hcl", ""); code != http.StatusNotFound || strings.Contains(body, "route") {
		t.Fatalf("a file outside the report: %d %s", code, body)
	}
}
