package chaos_test

import (
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// FuzzParseDuration checks that any text either fails with an error naming
// it or gives the duration it says: numbers are seconds with their sign
// kept, anything else is a Go duration.
func FuzzParseDuration(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzParseDuration.
	f.Fuzz(func(t *testing.T, s string) {
		d, err := chaos.ParseDuration(s)
		if err != nil {
			if !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("error %q does not quote the input %q", err, s)
			}
			return
		}
		if secs, ferr := strconv.ParseFloat(s, 64); ferr == nil {
			ns := secs * float64(time.Second)
			if (secs > 0 && d < 0) || (secs < 0 && d > 0) {
				t.Fatalf("ParseDuration(%q) = %v: the sign flipped", s, d)
			}
			if diff := math.Abs(float64(d) - ns); diff > 1+math.Abs(ns)*1e-15 {
				t.Fatalf("ParseDuration(%q) = %v, want %v seconds (%v ns)", s, d, secs, ns)
			}
		} else if want, werr := time.ParseDuration(s); werr != nil || d != want {
			t.Fatalf("ParseDuration(%q) = %v, time.ParseDuration gives %v, %v", s, d, want, werr)
		}
		// What a duration prints must read back as the same duration, so
		// that docs, the API and config files agree.
		back, err := chaos.ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v, which reads back as %v, %v", s, d, back, err)
		}
	})
}

// fuzzOptions has an option of every Kind, with and without checks, and
// two invalid kinds.
var fuzzOptions = chaos.Options{
	optBool, optInt, optFloat, optDuration, optString, optChoice, optStrings, optInts,
	optMinInt, optMinFloat, optMinDuration, optMinSecond,
	optNoKind, {Name: "alien", Kind: 99},
}

// FuzzOptionParse checks that Parse never panics on any text for any Kind,
// that its errors name the option, and that what it accepts has the Kind's
// Go type, passes the option's checks, and converts back unchanged.
func FuzzOptionParse(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzOptionParse.
	f.Fuzz(func(t *testing.T, s string) {
		for _, o := range fuzzOptions {
			v, err := o.Parse(s)
			if err != nil {
				if !strings.Contains(err.Error(), strconv.Quote(o.Name)) {
					t.Fatalf("%s option: error %q does not name the option", o.Kind, err)
				}
				continue
			}
			checkParsed(t, o, s, v)
		}
	})
}

func checkParsed(t *testing.T, o chaos.Option, s string, v any) {
	t.Helper()
	lo := math.Inf(-1)
	if o.Min != nil {
		lo = *o.Min
	}
	var back any = v // what Convert must turn into v again
	switch o.Kind {
	case chaos.Bool:
		if _, ok := v.(bool); !ok {
			t.Fatalf("bool option: Parse(%q) = %#v", s, v)
		}
	case chaos.Int:
		i, ok := v.(int64)
		if !ok || float64(i) < lo {
			t.Fatalf("%s: Parse(%q) = %#v, min %v", o.Name, s, v, lo)
		}
		if i > 1<<53 || i < -1<<53 {
			return // Convert takes numbers through float64 (see TestOptionConvertBugs)
		}
	case chaos.Float:
		x, ok := v.(float64)
		if !ok || math.IsNaN(x) || math.IsInf(x, 0) || x < lo {
			t.Fatalf("%s: Parse(%q) = %#v, min %v", o.Name, s, v, lo)
		}
	case chaos.Duration:
		d, ok := v.(time.Duration)
		if !ok || d.Seconds() < lo {
			t.Fatalf("%s: Parse(%q) = %#v, min %v", o.Name, s, v, lo)
		}
		back = d.String()
	case chaos.String:
		x, ok := v.(string)
		if !ok || x != strings.TrimSpace(s) {
			t.Fatalf("%s: Parse(%q) = %#v, want the trimmed text", o.Name, s, v)
		}
		if len(o.Choices) > 0 && !slices.Contains(o.Choices, x) {
			t.Fatalf("%s: Parse(%q) = %q, not one of %v", o.Name, s, x, o.Choices)
		}
	case chaos.Strings:
		l, ok := v.([]string)
		if !ok || l == nil {
			t.Fatalf("%s: Parse(%q) = %#v", o.Name, s, v)
		}
		for _, e := range l {
			if e == "" || e != strings.TrimSpace(e) || strings.Contains(e, ",") {
				t.Fatalf("%s: Parse(%q) has element %q", o.Name, s, e)
			}
		}
	case chaos.Ints:
		if l, ok := v.([]int64); !ok || l == nil {
			t.Fatalf("%s: Parse(%q) = %#v", o.Name, s, v)
		}
	default:
		t.Fatalf("kind %d: Parse(%q) = %#v, want an error", o.Kind, s, v)
	}
	got, err := o.Convert(back)
	if err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("%s: Parse(%q) = %#v, but Convert(%#v) = %#v, %v", o.Name, s, v, back, got, err)
	}
}
