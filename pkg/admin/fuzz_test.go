package admin

import (
	"bytes"
	"strings"
	"testing"

	"github.com/labstack/echo/v5"

	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
)

// checkRefusal wants a rejected body to be a client error with a message:
// never a panic, never a 5xx.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	code := echo.StatusCode(err)
	if code < 400 || code > 499 {
		t.Fatalf("a bad body gave %v (status %d), want a 4xx", err, code)
	}
	if he, ok := err.(*echo.HTTPError); ok && he.Message == "" {
		t.Fatalf("a refusal without a message: %v", err)
	}
}

// FuzzMixBody feeds PUT /routes/{name}/mix bodies to the decoder and the
// mix builder.
func FuzzMixBody(f *testing.F) {
	f.Add([]byte(`{"behaviors": [{"name": "delay", "percent": 20, "options": {"sleep": "500ms"}}], "duration": "30s"}`))
	f.Add([]byte(`{"behaviors": []}`))
	f.Add([]byte(`{"behaviors": [], "duration": "1s", "seed": 7, "then": {"behaviors": [], "duration": "2s", "then": {"behaviors": []}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ch, err := readMix(bytes.NewReader(data), "")
		if err != nil {
			checkRefusal(t, err)
			return
		}
		for c := &ch; c != nil; c = c.Then {
			if c.For < 0 {
				t.Fatalf("accepted a negative duration %s", c.For)
			}
			if c.Then != nil && c.For == 0 {
				t.Fatalf("accepted a then after an untimed change")
			}
		}
		m := ch.Mix
		sum := 0.0
		for _, e := range m.Entries() {
			if e.Percent < 0 || e.Percent > 100 || e.Behavior == nil {
				t.Fatalf("accepted entry %+v", e)
			}
			sum += e.Percent
		}
		if sum > 100+1e-9 {
			t.Fatalf("accepted percentages adding up to %v", sum)
		}
		// What the API shows must build the same mix again.
		var entries []mixEntry
		for _, b := range mixView(m) {
			entries = append(entries, mixEntry{Name: b.Name, Percent: ptr(b.Percent), Options: b.Options})
		}
		m2, err := buildMix(entries, "")
		if err != nil {
			t.Fatalf("the mix as shown does not build again: %v", err)
		}
		if m2.String() != m.String() {
			t.Fatalf("round trip changed the mix: %s → %s", m, m2)
		}
	})
}

// FuzzBehaviorBody feeds the original's PUT /behavior bodies.
func FuzzBehaviorBody(f *testing.F) {
	f.Add([]byte(`{"name": "delay", "sleep": 2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, warnings, err := readBehavior(bytes.NewReader(data), "")
		if err != nil {
			checkRefusal(t, err)
			return
		}
		for _, w := range warnings {
			if !strings.Contains(w, "ignored") {
				t.Fatalf("warning %q does not say the key was ignored", w)
			}
		}
		if es := m.Entries(); len(es) != 1 || es[0].Percent != 100 {
			t.Fatalf("accepted %s", m)
		}
	})
}
