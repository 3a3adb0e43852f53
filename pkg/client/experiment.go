package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// The experiment wire types, under the client's name.
type (
	// Experiment is an experiment as GET /experiments lists it.
	Experiment = api.Experiment
	// ExperimentStatus is the live or final state of an experiment run.
	ExperimentStatus = api.ExperimentStatus
)

func experimentPath(name string, rest ...string) string {
	p := "/experiments/" + url.PathEscape(name)
	for _, r := range rest {
		p += r
	}
	return p
}

// Experiments lists the experiments of the configuration file and those
// that runners have reported, with their current or latest run.
func (c *Client) Experiments(ctx context.Context) ([]Experiment, error) {
	var out api.Experiments
	err := c.do(ctx, http.MethodGet, "/experiments", nil, &out)
	return out.Experiments, err
}

// Experiment returns the current or latest run of an experiment.
func (c *Client) Experiment(ctx context.Context, name string) (*ExperimentStatus, error) {
	return c.experimentCall(ctx, http.MethodGet, experimentPath(name))
}

// StartExperiment starts an experiment of the configuration file inside
// vaurien. A route that another running experiment touches makes it fail
// with an *Error of status 409 that names that experiment.
func (c *Client) StartExperiment(ctx context.Context, name string) (*ExperimentStatus, error) {
	return c.experimentCall(ctx, http.MethodPost, experimentPath(name, "/start"))
}

// StopExperiment asks a running experiment to stop; it rolls back.
func (c *Client) StopExperiment(ctx context.Context, name string) (*ExperimentStatus, error) {
	return c.experimentCall(ctx, http.MethodPost, experimentPath(name, "/stop"))
}

func (c *Client) experimentCall(ctx context.Context, method, path string) (*ExperimentStatus, error) {
	var out ExperimentStatus
	if err := c.do(ctx, method, path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ExperimentReport returns a file of the report vaurien wrote of an
// experiment's last run it started (api.ReportFiles names them): an
// *Error of status 404 when it wrote none.
func (c *Client) ExperimentReport(ctx context.Context, name, file string) ([]byte, error) {
	var out []byte
	err := c.do(ctx, http.MethodGet, api.ReportPath(name, file), nil, &out)
	return out, err
}

// ReportExperimentRun is how a runner outside vaurien claims its routes
// and reports progress; the claim lapses after lease without a report.
// It answers whether the run was asked to stop.
func (c *Client) ReportExperimentRun(ctx context.Context, st ExperimentStatus, lease time.Duration) (stop bool, err error) {
	var out api.ExperimentRunAnswer
	err = c.do(ctx, http.MethodPut, experimentPath(st.Experiment, "/run"), api.ExperimentRun{Status: st, Lease: api.Duration(lease)}, &out)
	return out.Stop, err
}
