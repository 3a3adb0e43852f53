package experiment

import (
	"context"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/client"
)

// Remote is the Target of a vaurien driven through its admin API.
type Remote struct{ C *client.Client }

// Route reads a route through GET /routes/{name}.
func (t Remote) Route(ctx context.Context, name string) (RouteState, error) {
	r, err := t.C.Route(ctx, name)
	if err != nil {
		return RouteState{}, err
	}
	return RouteState{Mix: r.Mix, RevertsAt: r.RevertsAt, RevertsTo: r.RevertsTo, Requests: r.Stats.Requests, Faults: r.Stats.Faults}, nil
}

// SetMix changes a mix through PUT /routes/{name}/mix.
func (t Remote) SetMix(ctx context.Context, route string, c api.SetMix) error {
	_, err := t.C.ChangeMix(ctx, route, c)
	return err
}

// String names the vaurien by its admin API's address.
func (t Remote) String() string { return t.C.Addr() }

// Publish reports the run through PUT /experiments/{name}/run.
func (t Remote) Publish(ctx context.Context, st api.ExperimentStatus, lease time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return t.C.ReportExperimentRun(ctx, st, lease)
}
