package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/client"
)

// The client reads the declarations, follows the event stream (a change
// shows in the next state) and tells which field an error is about.
func TestCatalogEventsAndFieldErrors(t *testing.T) {
	p, _, _ := start(t)
	ctx := t.Context()
	cat, err := p.Client.Catalog(ctx)
	if err != nil || len(cat.Behaviors) == 0 {
		t.Fatalf("Catalog: %v, %+v", err, cat)
	}

	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	stop := errors.New("seen")
	states := 0
	err = p.Client.Events(ctx, func(s api.Snapshot) error {
		states++
		for _, r := range s.Routes {
			if r.Name == "side" && len(r.Mix) == 1 && r.Mix[0].Name == "error" {
				return stop
			}
		}
		if states == 1 {
			if len(s.Routes) != 2 {
				t.Errorf("first state: %d routes", len(s.Routes))
			}
			if _, err := p.Client.SetMix(ctx, "side", client.Behavior{Name: "error", Percent: 50}, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Events: %v after %d states", err, states)
	}

	_, err = p.Client.SetMix(ctx, "side", client.Behavior{Name: "delay", Percent: 10, Options: map[string]any{"sleep": "soon"}}, 0)
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Field != "behaviors[0].options.sleep" {
		t.Fatalf("bad sleep: %v", err)
	}

	// A canceled stream ends without an error.
	ctx2, cancel2 := context.WithCancel(t.Context())
	n := 0
	if err := p.Client.Events(ctx2, func(api.Snapshot) error { n++; cancel2(); return nil }); err != nil || n != 1 {
		t.Fatalf("canceled Events: %v after %d states", err, n)
	}
}
