package chaos_test

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func TestDirection(t *testing.T) {
	tests := []struct {
		text string
		dir  chaos.Direction
	}{
		{"to_backend", chaos.ToBackend},
		{"to_client", chaos.ToClient},
		{"both", chaos.Both},
	}
	for _, tt := range tests {
		got, err := chaos.ParseDirection(tt.text)
		if err != nil || got != tt.dir {
			t.Errorf("ParseDirection(%q) = %v, %v; want %v", tt.text, got, err, tt.dir)
		}
		if s := tt.dir.String(); s != tt.text {
			t.Errorf("%d.String() = %q, want %q", tt.dir, s, tt.text)
		}
	}
	if len(chaos.DirectionChoices) != len(tests) {
		t.Errorf("DirectionChoices = %v, want the %d names above", chaos.DirectionChoices, len(tests))
	}
	for _, c := range chaos.DirectionChoices {
		d, err := chaos.ParseDirection(c)
		if err != nil || d.String() != c {
			t.Errorf("choice %q does not round-trip: %v, %v", c, d, err)
		}
	}
}

func TestParseDirectionInvalid(t *testing.T) {
	for _, in := range []string{"", "Both", "BOTH", "none", "to-client", " both", "upstream"} {
		d, err := chaos.ParseDirection(in)
		wantErr(t, err, "invalid direction "+strconv.Quote(in), "want one of to_backend, to_client, both")
		if d != 0 {
			t.Errorf("ParseDirection(%q) = %v with an error, want 0", in, d)
		}
	}
}

func TestDirectionStringNone(t *testing.T) {
	for _, d := range []chaos.Direction{0, 4, 7, 255} {
		if s := d.String(); s != "none" {
			t.Errorf("Direction(%d).String() = %q, want none", d, s)
		}
	}
}

func TestDirectionHas(t *testing.T) {
	tests := []struct {
		d, x chaos.Direction
		want bool
	}{
		{chaos.Both, chaos.ToBackend, true},
		{chaos.Both, chaos.ToClient, true},
		{chaos.ToBackend, chaos.ToBackend, true},
		{chaos.ToBackend, chaos.ToClient, false},
		{chaos.ToClient, chaos.ToBackend, false},
		{0, chaos.ToClient, false},
	}
	for _, tt := range tests {
		if got := tt.d.Has(tt.x); got != tt.want {
			t.Errorf("%v.Has(%v) = %v, want %v", tt.d, tt.x, got, tt.want)
		}
	}
}

func TestFaultString(t *testing.T) {
	tests := []struct {
		f    chaos.Fault
		want string
	}{
		{chaos.NoFault, "none"},
		{chaos.FaultRefuse, "refuse"},
		{chaos.FaultClose, "close"},
		{chaos.FaultHang, "hang"},
		{chaos.FaultAbort, "abort"},
		{chaos.FaultError, "error"},
		{chaos.FaultReset, "reset"},
		{chaos.FaultTimeout, "timeout"},
		{chaos.FaultTimeout + 1, "unknown"},
		{255, "unknown"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("Fault(%d).String() = %q, want %q", tt.f, got, tt.want)
		}
	}
}

func TestEffectIsZero(t *testing.T) {
	f := chaos.FilterFunc(func(context.Context, io.Writer, io.Reader) error { return nil })
	tests := []struct {
		name string
		e    chaos.Effect
		want bool
	}{
		{"zero", chaos.Effect{}, true},
		{"fault", chaos.Effect{Fault: chaos.FaultHang}, false},
		{"delay", chaos.Effect{Delay: time.Millisecond}, false},
		{"response delay", chaos.Effect{ResponseDelay: time.Millisecond}, false},
		{"after", chaos.Effect{After: time.Millisecond}, false},
		{"close delay", chaos.Effect{CloseDelay: time.Millisecond}, false},
		{"to backend filter", chaos.Effect{ToBackend: f}, false},
		{"to client filter", chaos.Effect{ToClient: f}, false},
		// An ErrorSpec means nothing without FaultError.
		{"error spec alone", chaos.Effect{Error: chaos.ErrorSpec{Status: 503}}, true},
	}
	for _, tt := range tests {
		if got := tt.e.IsZero(); got != tt.want {
			t.Errorf("%s: IsZero() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEffectSetFilter(t *testing.T) {
	upper := chaos.FilterFunc(func(_ context.Context, dst io.Writer, src io.Reader) error {
		b, err := io.ReadAll(src)
		if err != nil {
			return err
		}
		_, err = dst.Write(bytes.ToUpper(b))
		return err
	})
	tests := []struct {
		dir                 chaos.Direction
		toBackend, toClient bool
	}{
		{chaos.ToBackend, true, false},
		{chaos.ToClient, false, true},
		{chaos.Both, true, true},
		{0, false, false},
	}
	for _, tt := range tests {
		var e chaos.Effect
		e.SetFilter(tt.dir, upper)
		if (e.ToBackend != nil) != tt.toBackend || (e.ToClient != nil) != tt.toClient {
			t.Errorf("SetFilter(%v): ToBackend set %v, ToClient set %v", tt.dir, e.ToBackend != nil, e.ToClient != nil)
		}
		if (e.Filter(chaos.ToBackend) != nil) != tt.toBackend || (e.Filter(chaos.ToClient) != nil) != tt.toClient {
			t.Errorf("Filter() after SetFilter(%v) disagrees with the fields", tt.dir)
		}
	}

	var e chaos.Effect
	e.SetFilter(chaos.ToClient, upper)
	var out bytes.Buffer
	if err := e.Filter(chaos.ToClient).Relay(context.Background(), &out, strings.NewReader("pong")); err != nil || out.String() != "PONG" {
		t.Errorf("FilterFunc.Relay = %q, %v; want PONG", out.String(), err)
	}
}

func TestUnitRandSameUnit(t *testing.T) {
	u := &chaos.Unit{Seq: 7}
	r := u.Rand()
	if u.Rand() != r {
		t.Fatalf("Rand() returns a new source on each call; jitter and bytes of one unit must share one stream")
	}
	a := []uint64{r.Uint64(), r.Uint64(), r.Uint64()}

	v := &chaos.Unit{Seq: 7}
	b := []uint64{v.Rand().Uint64(), v.Rand().Uint64(), v.Rand().Uint64()}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("two units with the same seed and draw give %v and %v", a, b)
		}
	}
	if w := (&chaos.Unit{Seq: 8}).Rand().Uint64(); w == a[0] {
		t.Errorf("draws 7 and 8 start with the same number %d", w)
	}
}

// randRecorder returns a behavior that records, per draw number, the first
// number of the unit's Rand.
func randRecorder(n int) (chaos.Behavior, []uint64) {
	got := make([]uint64, n+1)
	return effectFunc(func(u *chaos.Unit) chaos.Effect {
		got[u.Seq] = u.Rand().Uint64()
		return chaos.Effect{}
	}), got
}

func TestUnitRandRepeatsPerSeed(t *testing.T) {
	const n = 1000
	run := func(src *chaos.Source) []uint64 {
		b, got := randRecorder(n)
		m := mustMix(t, chaos.Entry{Name: "rec", Percent: 100, Behavior: b})
		for range n {
			m.Draw(src, nil)
		}
		return got[1:]
	}
	a, b := run(chaos.NewSource(42)), run(chaos.NewSource(42))
	c := run(chaos.NewSource(43))
	seen := map[uint64]bool{}
	same := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d: seed 42 gave Rand %d then %d", i+1, a[i], b[i])
		}
		if a[i] == c[i] {
			same++
		}
		seen[a[i]] = true
	}
	if same > 0 {
		t.Errorf("seeds 42 and 43 give the same Rand on %d of %d draws", same, n)
	}
	if len(seen) != n {
		t.Errorf("%d draws gave only %d distinct Rand streams", n, len(seen))
	}
}
