package chaos_test

import (
	"slices"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func TestEffectSteps(t *testing.T) {
	s := time.Second
	type st = chaos.Step
	tests := []struct {
		name   string
		effect chaos.Effect
		want   []chaos.Step
	}{
		{"nothing", chaos.Effect{}, nil},
		{"filters are no step", chaos.Effect{ToClient: chaos.FilterFunc(nil)}, nil},
		{"refuse comes before the wait", chaos.Effect{Fault: chaos.FaultRefuse, Delay: s, CloseDelay: 2 * s},
			[]st{{Kind: chaos.StepRefuse}}},
		{"close comes before the wait, held by the close delay", chaos.Effect{Fault: chaos.FaultClose, Delay: s, CloseDelay: 2 * s},
			[]st{{Kind: chaos.StepClose, D: 2 * s}}},
		{"wait then hang", chaos.Effect{Fault: chaos.FaultHang, Delay: s},
			[]st{{chaos.StepWait, s}, {Kind: chaos.StepHang}}},
		{"timeout strikes after After", chaos.Effect{Fault: chaos.FaultTimeout, After: 3 * s},
			[]st{{chaos.StepTimeout, 3 * s}}},
		{"reset strikes after After", chaos.Effect{Fault: chaos.FaultReset, After: 3 * s, Delay: s},
			[]st{{chaos.StepWait, s}, {chaos.StepReset, 3 * s}}},
		{"abort", chaos.Effect{Fault: chaos.FaultAbort}, []st{{Kind: chaos.StepAbort}}},
		{"everything in order", chaos.Effect{Fault: chaos.FaultError, Delay: s, ResponseDelay: 2 * s, CloseDelay: 3 * s},
			[]st{{chaos.StepWait, s}, {Kind: chaos.StepError}, {chaos.StepReplyDelay, 2 * s}, {chaos.StepCloseDelay, 3 * s}}},
		{"delays alone", chaos.Effect{ResponseDelay: 2 * s, CloseDelay: 3 * s},
			[]st{{chaos.StepReplyDelay, 2 * s}, {chaos.StepCloseDelay, 3 * s}}},
		{"after means nothing without a fault that strikes", chaos.Effect{After: s}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := tt.effect.Steps()
			if got := steps.List(); !slices.Equal(got, tt.want) {
				t.Errorf("Steps() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStepsAllocateNothing(t *testing.T) {
	e := chaos.Effect{Fault: chaos.FaultError, Delay: time.Second, ResponseDelay: time.Second, CloseDelay: time.Second}
	n := 0
	if a := testing.AllocsPerRun(100, func() {
		steps := e.Steps()
		n += len(steps.List())
	}); a != 0 {
		t.Errorf("Steps allocates %v times, want 0", a)
	}
}
