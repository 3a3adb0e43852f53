package chaos_test

import (
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// drawMix is a full 3-entry mix of behaviors that neither build an effect
// nor touch Rand, so a draw costs only what Draw itself costs.
func drawMix(tb testing.TB) *chaos.Mix {
	return mustMix(tb, entry("a", 20), entry("b", 30), entry("c", 50))
}

// TestDrawAllocs pins the promise that drawing costs no allocation unless
// the behavior asks for one (u.Rand, a filter): Draw runs once per
// connection or per request on every route.
func TestDrawAllocs(t *testing.T) {
	t.Run("dummy", func(t *testing.T) {
		m, src := mustMix(t, entry("zero", 0)), chaos.NewSource(1)
		if n := testing.AllocsPerRun(1000, func() { m.Draw(src, nil) }); n != 0 {
			t.Errorf("a dummy draw allocates %v times", n)
		}
	})
	t.Run("unmatched", func(t *testing.T) {
		e := entry("a", 100)
		e.Match = func(*chaos.Request) bool { return false }
		m, src, req := mustMix(t, e), chaos.NewSource(1), &chaos.Request{Command: "GET"}
		if n := testing.AllocsPerRun(1000, func() { m.Draw(src, req) }); n != 0 {
			t.Errorf("an unmatched draw allocates %v times", n)
		}
	})
	t.Run("behavior", func(t *testing.T) {
		m, src := drawMix(t), chaos.NewSource(1)
		if n := testing.AllocsPerRun(1000, func() { m.Draw(src, nil) }); n != 0 {
			t.Errorf("a draw of a zero-effect behavior allocates %v times", n)
		}
	})
}

var sink chaos.Drawn

func BenchmarkDraw(b *testing.B) {
	m, src := drawMix(b), chaos.NewSource(42)
	b.ReportAllocs()
	for b.Loop() {
		sink = m.Draw(src, nil)
	}
}

// BenchmarkDrawDummy is the floor: a draw that lands on the dummy remainder
// never reaches a behavior.
func BenchmarkDrawDummy(b *testing.B) {
	m, src := mustMix(b, entry("zero", 0)), chaos.NewSource(42)
	b.ReportAllocs()
	for b.Loop() {
		sink = m.Draw(src, nil)
	}
}

// BenchmarkDrawRand shows the cost a behavior pays when it uses u.Rand.
func BenchmarkDrawRand(b *testing.B) {
	jitter := effectFunc(func(u *chaos.Unit) chaos.Effect {
		return chaos.Effect{Delay: time.Duration(u.Rand().Int64N(int64(time.Millisecond)))}
	})
	m := mustMix(b, chaos.Entry{Name: "jitter", Percent: 100, Behavior: jitter})
	src := chaos.NewSource(42)
	b.ReportAllocs()
	for b.Loop() {
		sink = m.Draw(src, nil)
	}
}

// BenchmarkDrawParallel draws from one shared source and mix, as all the
// connections of a busy route do.
func BenchmarkDrawParallel(b *testing.B) {
	m, src := drawMix(b), chaos.NewSource(42)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var d chaos.Drawn
		for pb.Next() {
			d = m.Draw(src, nil)
		}
		_ = d
	})
}
