package relay

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A loop that delays request after request waits on one timer: no
// allocation per wait, and a wait cut short by its context leaves the
// timer reusable.
func TestTimerReuse(t *testing.T) {
	var w Timer
	ctx := context.Background()
	start := time.Now()
	if err := w.Wait(ctx, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Fatalf("a 20ms wait took %v", took)
	}
	if allocs := testing.AllocsPerRun(50, func() { w.Wait(ctx, time.Microsecond) }); allocs != 0 {
		t.Fatalf("a wait allocates %.1f times", allocs)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Wait(cctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("a wait on an ended context returned %v", err)
	}
	start = time.Now()
	if err := w.Wait(ctx, 10*time.Millisecond); err != nil || time.Since(start) < 10*time.Millisecond {
		t.Fatalf("after a cancelled wait the timer waited %v (%v)", time.Since(start), err)
	}
}
