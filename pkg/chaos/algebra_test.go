package chaos

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

type fixed Effect

func (f fixed) Effect(*Unit) Effect { return Effect(f) }

// upper is a filter that upper-cases, tagged to see the order of a chain.
type tagFilter struct{ tag string }

func (f tagFilter) Relay(_ context.Context, dst io.Writer, src io.Reader) error {
	b, err := io.ReadAll(src)
	if err != nil {
		return err
	}
	_, err = dst.Write([]byte(f.tag + "(" + string(b) + ")"))
	return err
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name    string
		effects []Effect
		want    Effect
	}{
		{"nothing", nil, Effect{}},
		{"delays add", []Effect{{Delay: time.Second, ResponseDelay: 2}, {Delay: 2 * time.Second, ResponseDelay: 3}},
			Effect{Delay: 3 * time.Second, ResponseDelay: 5}},
		{"longest close delay", []Effect{{CloseDelay: time.Second}, {CloseDelay: 3 * time.Second}, {CloseDelay: 2 * time.Second}},
			Effect{CloseDelay: 3 * time.Second}},
		{"reset beats timeout", []Effect{{Fault: FaultTimeout, After: time.Second}, {Fault: FaultReset, After: 5 * time.Second}},
			Effect{Fault: FaultReset, After: 5 * time.Second}},
		{"reset stays over a later timeout", []Effect{{Fault: FaultReset, After: 5 * time.Second}, {Fault: FaultTimeout}},
			Effect{Fault: FaultReset, After: 5 * time.Second}},
		{"two resets strike at the earlier", []Effect{{Fault: FaultReset, After: 5 * time.Second}, {Fault: FaultReset, After: time.Second}},
			Effect{Fault: FaultReset, After: time.Second}},
		{"refuse beats all", []Effect{{Fault: FaultReset}, {Fault: FaultRefuse}, {Fault: FaultError}},
			Effect{Fault: FaultRefuse}},
		{"error keeps its spec", []Effect{{Fault: FaultError, Error: ErrorSpec{Status: 503}}},
			Effect{Fault: FaultError, Error: ErrorSpec{Status: 503}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Effect
			for _, e := range tt.effects {
				Merge(&got, e)
			}
			if got.Fault != tt.want.Fault || got.After != tt.want.After || got.Delay != tt.want.Delay ||
				got.ResponseDelay != tt.want.ResponseDelay || got.CloseDelay != tt.want.CloseDelay ||
				got.Error.Status != tt.want.Error.Status {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMergeChainsFiltersInOrder(t *testing.T) {
	var e Effect
	Merge(&e, Effect{ToClient: tagFilter{"a"}})
	Merge(&e, Effect{ToBackend: tagFilter{"x"}})
	Merge(&e, Effect{ToClient: tagFilter{"b"}})
	Merge(&e, Effect{ToClient: tagFilter{"c"}})
	var out bytes.Buffer
	if err := e.ToClient.Relay(context.Background(), &out, strings.NewReader("data")); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "c(b(a(data)))"; got != want {
		t.Errorf("to client: got %q, want %q", got, want)
	}
	out.Reset()
	if err := e.ToBackend.Relay(context.Background(), &out, strings.NewReader("up")); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "x(up)"; got != want {
		t.Errorf("to backend: got %q, want %q", got, want)
	}
}

// failing ends with err after copying what it reads.
type failing struct{ err error }

func (f failing) Relay(_ context.Context, _ io.Writer, src io.Reader) error {
	var b [1]byte
	src.Read(b[:])
	return f.err
}

type copying struct{}

func (copying) Relay(_ context.Context, dst io.Writer, src io.Reader) error {
	_, err := io.Copy(dst, src)
	return err
}

func TestChainErrors(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name          string
		first, second Filter
		want          error
	}{
		{"first fails", failing{ErrClose}, copying{}, ErrClose},
		{"second fails", copying{}, failing{boom}, boom},
		{"both copy", copying{}, copying{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A source that never ends on its own unless the first filter
			// reads it: a big one, so that a stuck writer would show.
			src := strings.NewReader(strings.Repeat("x", 1<<20))
			err := Chain(tt.first, tt.second).Relay(context.Background(), io.Discard, src)
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestChainNil(t *testing.T) {
	if Chain(nil, nil) != nil {
		t.Error("two nils make a filter")
	}
	f := copying{}
	if Chain(nil, f) != f || Chain(f, nil) != f {
		t.Error("a nil side is not dropped")
	}
}

func TestChainPassesEveryByte(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 50_000)
	var out bytes.Buffer
	f := Chain(Chain(copying{}, copying{}), copying{})
	if err := f.Relay(context.Background(), &out, iotest.HalfReader(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Errorf("got %d bytes, want %d unchanged", out.Len(), len(data))
	}
}

func TestCompositeDrawsEachMember(t *testing.T) {
	c := Composite{
		{Name: "always", Behavior: fixed{Delay: time.Millisecond}, Probability: 1},
		{Name: "never", Behavior: fixed{Delay: time.Hour}, Probability: 0},
		{Name: "half", Behavior: fixed{ResponseDelay: time.Millisecond}, Probability: 0.5},
	}
	mix, err := NewMix([]Entry{{Name: "toxics", Percent: 100, Behavior: c}})
	if err != nil {
		t.Fatal(err)
	}
	src := NewSource(42)
	const draws = 2000
	half := 0
	for range draws {
		d := mix.Draw(src, nil)
		if d.Effect.Delay != time.Millisecond {
			t.Fatalf("delay %v: the always member must apply, the never one never", d.Effect.Delay)
		}
		if d.Effect.ResponseDelay > 0 {
			half++
		}
	}
	if half < draws*4/10 || half > draws*6/10 {
		t.Errorf("the 0.5 member applied %d times in %d draws", half, draws)
	}
}
