package app

import (
	"context"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin"
	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/experiment"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// experiments are the app's board of experiment runs and the manager the
// admin API drives.
type experiments struct {
	board   *experiment.Board
	manager *experiment.Manager
}

func (a *App) newExperiments(observers []proxy.Observer) experiments {
	var obs experiment.Observer
	for _, o := range observers {
		if eo, ok := o.(experiment.Observer); ok {
			obs = eo
		}
	}
	board := experiment.NewBoard(obs)
	t := &Local{app: a, board: board}
	return experiments{board: board, manager: experiment.NewManager(board, t, func() []config.Experiment {
		return a.File().Experiments
	}, a.log)}
}

// ExperimentTarget is the target of experiments run inside this process:
// `vaurien experiment run --config` runs its experiment on it.
func (a *App) ExperimentTarget() experiment.Target { return &Local{app: a, board: a.exps.board} }

// Local is an experiment.Target acting on the app directly.
type Local struct {
	app   *App
	board *experiment.Board
}

// Route reads a running route.
func (t *Local) Route(_ context.Context, name string) (experiment.RouteState, error) {
	r, err := t.app.Route(name)
	if err != nil {
		return experiment.RouteState{}, err
	}
	st := r.Stats()
	out := experiment.RouteState{Mix: api.FromMix(r.Mix()), Requests: st.Requests, Faults: st.Faults}
	if until, then, ok := t.app.MixOverride(name); ok {
		out.RevertsAt, out.RevertsTo = &until, then.View()
	}
	return out, nil
}

// SetMix changes a route's mix as the admin API would.
func (t *Local) SetMix(_ context.Context, route string, c api.SetMix) error {
	ch, err := mixChange(c)
	if err != nil {
		return err
	}
	return t.app.ChangeMix(route, ch)
}

func mixChange(c api.SetMix) (admin.MixChange, error) {
	m, err := experiment.Mix(c.Behaviors)
	if err != nil {
		return admin.MixChange{}, err
	}
	ch := admin.MixChange{Mix: m, For: time.Duration(c.Duration), Seed: c.Seed}
	if c.Then != nil {
		then, err := mixChange(*c.Then)
		if err != nil {
			return admin.MixChange{}, err
		}
		ch.Then = &then
	}
	return ch, nil
}

// Publish reports to the app's board.
func (t *Local) Publish(_ context.Context, st api.ExperimentStatus, lease time.Duration) (bool, error) {
	return t.board.Publish(st, lease)
}
