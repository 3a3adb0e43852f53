package chaos_test

import (
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// nop is a behavior whose effect changes nothing and never touches Rand,
// the cheapest thing Draw can call.
type nop struct{}

func (nop) Effect(*chaos.Unit) chaos.Effect { return chaos.Effect{} }

// effectFunc adapts a function to chaos.Behavior.
type effectFunc func(*chaos.Unit) chaos.Effect

func (f effectFunc) Effect(u *chaos.Unit) chaos.Effect { return f(u) }

func ptr[T any](v T) *T { return &v }

func entry(name string, percent float64) chaos.Entry {
	return chaos.Entry{Name: name, Percent: percent, Behavior: nop{}}
}

func mustMix(tb testing.TB, entries ...chaos.Entry) *chaos.Mix {
	tb.Helper()
	m, err := chaos.NewMix(entries)
	if err != nil {
		tb.Fatalf("NewMix: %v", err)
	}
	return m
}

// drawNames draws n times from m and returns the names drawn, in order.
func drawNames(m *chaos.Mix, src *chaos.Source, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = m.Draw(src, nil).Name
	}
	return out
}

// wantErr reports a mismatch between err and the substrings it must hold;
// no substrings means err must be nil.
func wantErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

// panicOf runs f and returns what it panicked with, or nil.
func panicOf(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}
