package behavior_test

import (
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func build(t testing.TB, name string, opts map[string]any) chaos.Behavior {
	t.Helper()
	b, _, err := chaos.NewBehavior(name, opts)
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	return b
}

func unit(seq uint64) *chaos.Unit { return &chaos.Unit{Seq: seq} }

func TestEffects(t *testing.T) {
	type want struct {
		fault                   chaos.Fault
		delay, after, closeWait time.Duration
		toBackend, toClient     bool
	}
	tests := []struct {
		name string
		opts map[string]any
		want want
	}{
		{"blackout", nil, want{fault: chaos.FaultClose}},
		{"hang", nil, want{fault: chaos.FaultHang}},
		{"abort", nil, want{fault: chaos.FaultAbort}},
		{"down", nil, want{fault: chaos.FaultRefuse}},
		{"slow_open", nil, want{delay: time.Second}},
		{"slow_open", map[string]any{"delay": "250ms"}, want{delay: 250 * time.Millisecond}},
		{"slow_open", map[string]any{"delay": 2}, want{delay: 2 * time.Second}},
		{"slow_close", nil, want{closeWait: time.Second}},
		{"slow_close", map[string]any{"delay": "3s"}, want{closeWait: 3 * time.Second}},
		{"timeout", nil, want{fault: chaos.FaultTimeout}},
		{"timeout", map[string]any{"timeout": "10s"}, want{fault: chaos.FaultTimeout, after: 10 * time.Second}},
		{"reset_peer", nil, want{fault: chaos.FaultReset}},
		{"reset_peer", map[string]any{"timeout": 0.5}, want{fault: chaos.FaultReset, after: 500 * time.Millisecond}},
		{"error", nil, want{fault: chaos.FaultError, toClient: true}},
		{"error", map[string]any{"inject": true}, want{fault: chaos.FaultError, toClient: true}},
		{"transient", nil, want{fault: chaos.FaultError, toClient: true}},
		{"bandwidth", nil, want{toClient: true}},
		{"bandwidth", map[string]any{"direction": "to_backend"}, want{toBackend: true}},
		{"bandwidth", map[string]any{"direction": "both", "rate": 0}, want{toBackend: true, toClient: true}},
		{"slicer", nil, want{toClient: true}},
		{"slicer", map[string]any{"direction": "both"}, want{toBackend: true, toClient: true}},
		{"limit_data", nil, want{toClient: true}},
		{"limit_data", map[string]any{"direction": "to_backend", "bytes": 10}, want{toBackend: true}},
		{"corrupt", nil, want{toClient: true}},
		{"corrupt", map[string]any{"direction": "both"}, want{toBackend: true, toClient: true}},
		{"corrupt", map[string]any{"probability": 0}, want{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := build(t, tt.name, tt.opts).Effect(unit(1))
			got := want{
				fault: e.Fault, delay: e.Delay, after: e.After, closeWait: e.CloseDelay,
				toBackend: e.ToBackend != nil, toClient: e.ToClient != nil,
			}
			if got != tt.want {
				t.Errorf("opts %v: effect %+v, want %+v", tt.opts, got, tt.want)
			}
			if e.ResponseDelay != 0 {
				t.Errorf("ResponseDelay = %v, want 0", e.ResponseDelay)
			}
		})
	}
}

// Filters holding per-stream state must not be shared by the two
// directions, which run concurrently.
func TestBothDirectionsGetOwnFilters(t *testing.T) {
	for _, name := range []string{"slicer", "corrupt"} {
		e := build(t, name, map[string]any{"direction": "both"}).Effect(unit(1))
		if e.ToBackend == e.ToClient {
			t.Errorf("%s: both directions share one filter", name)
		}
	}
}

func TestInvalidOptions(t *testing.T) {
	tests := []struct {
		name string
		opts map[string]any
	}{
		{"bandwidth", map[string]any{"rate": -1}},
		{"bandwidth", map[string]any{"direction": "sideways"}},
		{"slicer", map[string]any{"average_size": 0}},
		{"slicer", map[string]any{"average_size": 8, "size_variation": 8}},
		{"slicer", map[string]any{"average_size": 1 << 20}},
		{"slicer", map[string]any{"delay": -1}},
		{"limit_data", map[string]any{"bytes": -5}},
		{"corrupt", map[string]any{"probability": 1.5}},
		{"corrupt", map[string]any{"probability": -0.1}},
		{"slow_open", map[string]any{"delay": "-1s"}},
		{"timeout", map[string]any{"timeout": -3}},
		{"error", map[string]any{"warmup": -1}},
		{"error", map[string]any{"status": []int64{200}}},
		{"error", map[string]any{"status": []int64{503, 600}}},
		{"error", map[string]any{"message": "two\r\nlines"}},
		{"error", map[string]any{"headers": []string{"no colon"}}},
		{"error", map[string]any{"headers": []string{": empty name"}}},
		{"error", map[string]any{"headers": []string{"Bad Name: v"}}},
		{"error", map[string]any{"code": "40 P01"}},
		{"transient", map[string]any{"code": "dead-lock"}},
		{"transient", map[string]any{"agitate": -1}},
		{"transient", map[string]any{"status": []int64{99}}},
	}
	for _, tt := range tests {
		if _, _, err := chaos.NewBehavior(tt.name, tt.opts); err == nil {
			t.Errorf("%s %v: no error", tt.name, tt.opts)
		} else {
			t.Logf("%s %v: %v", tt.name, tt.opts, err)
		}
	}
}
