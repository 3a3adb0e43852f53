package chaos_test

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

const (
	expectBool     = `want a bool (true or false)`
	expectInt      = `want an integer`
	expectFloat    = `want a number`
	expectDuration = `want a duration (a string such as "500ms" or a number of seconds)`
	expectString   = `want a string`
	expectStrings  = `want a list of strings`
	expectInts     = `want a list of integers`
)

var (
	optBool     = chaos.Option{Name: "flag", Kind: chaos.Bool}
	optInt      = chaos.Option{Name: "count", Kind: chaos.Int}
	optFloat    = chaos.Option{Name: "ratio", Kind: chaos.Float}
	optDuration = chaos.Option{Name: "sleep", Kind: chaos.Duration}
	optString   = chaos.Option{Name: "message", Kind: chaos.String}
	optChoice   = chaos.Option{Name: "direction", Kind: chaos.String, Choices: chaos.DirectionChoices}
	optStrings  = chaos.Option{Name: "commands", Kind: chaos.Strings}
	optInts     = chaos.Option{Name: "codes", Kind: chaos.Ints}
	optNoKind   = chaos.Option{Name: "broken"}

	optMinInt      = chaos.Option{Name: "count", Kind: chaos.Int, Min: ptr(1.0)}
	optMinFloat    = chaos.Option{Name: "ratio", Kind: chaos.Float, Min: ptr(0.5)}
	optMinDuration = chaos.Option{Name: "sleep", Kind: chaos.Duration, Min: ptr(0.0)}
	optMinSecond   = chaos.Option{Name: "sleep", Kind: chaos.Duration, Min: ptr(1.0)}

	optRangeInt      = chaos.Option{Name: "count", Kind: chaos.Int, Min: ptr(1.0), Max: ptr(10.0)}
	optRangeInts     = chaos.Option{Name: "codes", Kind: chaos.Ints, Min: ptr(400.0), Max: ptr(599.0)}
	optRangeFloat    = chaos.Option{Name: "ratio", Kind: chaos.Float, Min: ptr(0.0), Max: ptr(1.0)}
	optRangeDuration = chaos.Option{Name: "sleep", Kind: chaos.Duration, Min: ptr(0.0), Max: ptr(chaos.MaxDuration.Seconds())}
)

func TestKindString(t *testing.T) {
	tests := []struct {
		kind chaos.Kind
		want string
	}{
		{chaos.Bool, "bool"},
		{chaos.Int, "int"},
		{chaos.Float, "number"},
		{chaos.Duration, "duration"},
		{chaos.String, "string"},
		{chaos.Strings, "list of strings"},
		{chaos.Ints, "list of ints"},
		{0, "unknown"},
		{200, "unknown"},
	}
	for _, tt := range tests {
		if got := tt.kind.String(); got != tt.want {
			t.Errorf("Kind(%d).String() = %q, want %q", tt.kind, got, tt.want)
		}
	}
}

func TestOptionConvert(t *testing.T) {
	tests := []struct {
		name string
		opt  chaos.Option
		in   any
		want any      // the converted value, of the option's Go type
		err  []string // substrings of the error; none means success
	}{
		{name: "bool true", opt: optBool, in: true, want: true},
		{name: "bool false", opt: optBool, in: false, want: false},
		{name: "bool from string", opt: optBool, in: "true", err: []string{`option "flag"`, expectBool, `got string "true"`}},
		{name: "bool from number", opt: optBool, in: 1.0, err: []string{`option "flag"`, expectBool, "got number 1"}},
		{name: "bool from null", opt: optBool, in: nil, err: []string{`option "flag"`, expectBool, "got null"}},

		{name: "int from float64", opt: optInt, in: 5.0, want: int64(5)},
		{name: "int from int", opt: optInt, in: 7, want: int64(7)},
		{name: "int from int64", opt: optInt, in: int64(-3), want: int64(-3)},
		{name: "int from int32", opt: optInt, in: int32(9), want: int64(9)},
		{name: "int from float32", opt: optInt, in: float32(4), want: int64(4)},
		{name: "int 2^53 exact", opt: optInt, in: float64(1 << 53), want: int64(1 << 53)},
		{name: "int beyond float precision", opt: optInt, in: float64(1<<53) * 4, err: []string{`option "count"`, expectInt}},
		{name: "int fraction", opt: optInt, in: 5.5, err: []string{`option "count"`, expectInt, "got number 5.5"}},
		{name: "int NaN", opt: optInt, in: math.NaN(), err: []string{`option "count"`, expectInt}},
		{name: "int infinity", opt: optInt, in: math.Inf(1), err: []string{`option "count"`, expectInt}},
		{name: "int from string", opt: optInt, in: "5", err: []string{`option "count"`, expectInt, `got string "5"`}},
		{name: "int from list", opt: optInt, in: []any{1.0}, err: []string{`option "count"`, expectInt, "got a list"}},
		{name: "int from object", opt: optInt, in: map[string]any{}, err: []string{`option "count"`, expectInt, "got an object"}},
		{name: "int at min", opt: optMinInt, in: 1, want: int64(1)},
		{name: "int below min", opt: optMinInt, in: 0, err: []string{`option "count"`, "0 is out of range; want at least 1"}},

		{name: "float from float64", opt: optFloat, in: 0.25, want: 0.25},
		{name: "float from int", opt: optFloat, in: 2, want: 2.0},
		{name: "float from int64", opt: optFloat, in: int64(3), want: 3.0},
		{name: "float from float32", opt: optFloat, in: float32(0.5), want: 0.5},
		{name: "float NaN", opt: optFloat, in: math.NaN(), err: []string{`option "ratio"`, expectFloat, "got number NaN"}},
		{name: "float -infinity", opt: optFloat, in: math.Inf(-1), err: []string{`option "ratio"`, expectFloat}},
		{name: "float from string", opt: optFloat, in: "0.5", err: []string{`option "ratio"`, expectFloat, `got string "0.5"`}},
		{name: "float from bool", opt: optFloat, in: true, err: []string{`option "ratio"`, expectFloat, "got bool true"}},
		{name: "float at min", opt: optMinFloat, in: 0.5, want: 0.5},
		{name: "float below min", opt: optMinFloat, in: 0.4, err: []string{`option "ratio"`, "0.4 is out of range; want at least 0.5"}},

		{name: "duration from seconds", opt: optDuration, in: 2.0, want: 2 * time.Second},
		{name: "duration from fractional seconds", opt: optDuration, in: 0.2, want: 200 * time.Millisecond},
		{name: "duration from int seconds", opt: optDuration, in: 3, want: 3 * time.Second},
		{name: "duration from int64 seconds", opt: optDuration, in: int64(1), want: time.Second},
		{name: "duration from zero", opt: optDuration, in: 0, want: time.Duration(0)},
		{name: "duration from time.Duration", opt: optDuration, in: 1500 * time.Millisecond, want: 1500 * time.Millisecond},
		{name: "time.Duration below min", opt: optMinDuration, in: -time.Nanosecond, err: []string{`option "sleep"`, "-1ns is out of range; want at least 0s"}},
		{name: "duration from Go string", opt: optDuration, in: "500ms", want: 500 * time.Millisecond},
		{name: "duration from compound string", opt: optDuration, in: "1m30s", want: 90 * time.Second},
		{name: "duration from seconds string", opt: optDuration, in: "2", want: 2 * time.Second},
		{name: "duration from fractional seconds string", opt: optDuration, in: "0.2", want: 200 * time.Millisecond},
		{name: "duration string with spaces", opt: optDuration, in: " 1s ", want: time.Second},
		{name: "duration seconds overflow", opt: optDuration, in: 1e300, err: []string{`option "sleep"`, "1e+300 seconds is out of range"}},
		{name: "duration negative seconds overflow", opt: optDuration, in: -1e300, err: []string{`option "sleep"`, "-1e+300 seconds is out of range"}},
		{name: "duration seconds above max", opt: optRangeDuration, in: 1e12, err: []string{`option "sleep"`, "1e+12 seconds is out of range; want from 0s to 100000h0m0s"}},
		{name: "duration string above max", opt: optRangeDuration, in: "100001h", err: []string{`option "sleep"`, "100001h0m0s is out of range; want from 0s to 100000h0m0s"}},
		{name: "duration string overflow", opt: optRangeDuration, in: "9999999h", err: []string{`option "sleep"`, `"9999999h" is out of range; want from 0s to 100000h0m0s`}},
		{name: "int above max", opt: optRangeInt, in: 11, err: []string{`option "count"`, "11 is out of range; want from 1 to 10"}},
		{name: "ints element above max", opt: optRangeInts, in: []any{500, 600}, err: []string{`option "codes"`, "600 is out of range; want from 400 to 599"}},
		{name: "float above max", opt: optRangeFloat, in: 1.5, err: []string{`option "ratio"`, "1.5 is out of range; want from 0 to 1"}},
		{name: "int at max", opt: optRangeInt, in: 10, want: int64(10)},
		{name: "duration bad string", opt: optDuration, in: "soon", err: []string{`option "sleep"`, expectDuration, `got "soon"`}},
		{name: "duration unit-less with suffix", opt: optDuration, in: "5 sec", err: []string{`option "sleep"`, expectDuration}},
		{name: "duration from bool", opt: optDuration, in: true, err: []string{`option "sleep"`, expectDuration, "got bool true"}},
		{name: "duration from NaN", opt: optDuration, in: math.NaN(), err: []string{`option "sleep"`, expectDuration}},
		{name: "duration from list", opt: optDuration, in: []any{"1s"}, err: []string{`option "sleep"`, expectDuration, "got a list"}},
		{name: "duration zero at min", opt: optMinDuration, in: "0s", want: time.Duration(0)},
		{name: "duration negative below min", opt: optMinDuration, in: "-1s", err: []string{`option "sleep"`, "-1s is out of range; want at least 0s"}},
		{name: "duration negative seconds below min", opt: optMinDuration, in: -0.5, err: []string{`option "sleep"`, "-500ms is out of range; want at least 0s"}},
		{name: "duration below min in seconds", opt: optMinSecond, in: "999ms", err: []string{`option "sleep"`, "999ms is out of range; want at least 1s"}},
		{name: "duration at min in seconds", opt: optMinSecond, in: 1, want: time.Second},

		{name: "string", opt: optString, in: "boom", want: "boom"},
		{name: "empty string", opt: optString, in: "", want: ""},
		{name: "string keeps spaces", opt: optString, in: " a ", want: " a "},
		{name: "string from number", opt: optString, in: 5, err: []string{`option "message"`, expectString, "got number 5"}},
		{name: "string from null", opt: optString, in: nil, err: []string{`option "message"`, expectString, "got null"}},
		{name: "choice accepted", opt: optChoice, in: "both", want: "both"},
		{name: "choice rejected", opt: optChoice, in: "sideways", err: []string{`option "direction"`, `"sideways" is not one of to_backend, to_client, both`}},
		{name: "choice is case sensitive", opt: optChoice, in: "BOTH", err: []string{`option "direction"`, "is not one of"}},
		{name: "choice wrong type", opt: optChoice, in: 1, err: []string{`option "direction"`, "want one of to_backend, to_client, both", "got number 1"}},

		{name: "strings from []string", opt: optStrings, in: []string{"GET", "SET"}, want: []string{"GET", "SET"}},
		{name: "strings from []any", opt: optStrings, in: []any{"GET", "SET"}, want: []string{"GET", "SET"}},
		{name: "strings from empty list", opt: optStrings, in: []any{}, want: []string{}},
		{name: "strings with a number", opt: optStrings, in: []any{"GET", 1.0}, err: []string{`option "commands"`, expectStrings, "got a list"}},
		{name: "strings from string", opt: optStrings, in: "GET", err: []string{`option "commands"`, expectStrings, `got string "GET"`}},
		{name: "strings from []int64", opt: optStrings, in: []int64{1}, err: []string{`option "commands"`, expectStrings, "got []int64"}},

		{name: "ints from []int64", opt: optInts, in: []int64{500, 503}, want: []int64{500, 503}},
		{name: "ints from mixed numbers", opt: optInts, in: []any{500.0, 502, int64(503), int32(504)}, want: []int64{500, 502, 503, 504}},
		{name: "ints from empty list", opt: optInts, in: []any{}, want: []int64{}},
		{name: "ints with a fraction", opt: optInts, in: []any{500.5}, err: []string{`option "codes"`, expectInts, "got a list"}},
		{name: "ints with a string", opt: optInts, in: []any{"500"}, err: []string{`option "codes"`, expectInts}},
		{name: "ints with NaN", opt: optInts, in: []any{math.NaN()}, err: []string{`option "codes"`, expectInts}},
		{name: "ints from number", opt: optInts, in: 500, err: []string{`option "codes"`, expectInts, "got number 500"}},
		{name: "ints from []string", opt: optInts, in: []string{"500"}, err: []string{`option "codes"`, expectInts, "got []string"}},

		{name: "kind not set", opt: optNoKind, in: true, err: []string{`option "broken"`, "want unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opt.Convert(tt.in)
			wantErr(t, err, tt.err...)
			if err != nil {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Convert(%#v) = %#v (%T), want %#v (%T)", tt.in, got, got, tt.want, tt.want)
			}
		})
	}
}

// TestOptionConvertCopiesLists checks that converted lists do not alias the
// caller's, so that a config or API value changed later cannot reach into a
// built behavior.
func TestOptionConvertCopiesLists(t *testing.T) {
	ss := []string{"GET"}
	got, err := optStrings.Convert(ss)
	wantErr(t, err)
	ss[0] = "DEL"
	if got.([]string)[0] != "GET" {
		t.Errorf("Convert([]string) aliases its input")
	}

	is := []int64{500}
	got, err = optInts.Convert(is)
	wantErr(t, err)
	is[0] = 200
	if got.([]int64)[0] != 500 {
		t.Errorf("Convert([]int64) aliases its input")
	}
}

// TestOptionConvertEdges holds inputs at the edges of the numeric types.
func TestOptionConvertEdges(t *testing.T) {
	t.Run("int64 beyond 2^53", func(t *testing.T) {
		got, err := optInt.Convert(int64(1 << 62))
		wantErr(t, err)
		if got != int64(1<<62) {
			t.Errorf("Convert(int64(1<<62)) = %v", got)
		}
	})
	t.Run("list element out of int64 range", func(t *testing.T) {
		_, err := optInts.Convert([]any{1e300})
		wantErr(t, err, `option "codes"`, expectInts)
	})
	t.Run("float32 NaN", func(t *testing.T) {
		_, err := optFloat.Convert(float32(math.NaN()))
		wantErr(t, err, `option "ratio"`, expectFloat)
	})
	t.Run("seconds at the int64 edge", func(t *testing.T) {
		_, err := optDuration.Convert(float64(math.MaxInt64) / float64(time.Second))
		wantErr(t, err, "out of range")
	})
}

func TestOptionParse(t *testing.T) {
	tests := []struct {
		name string
		opt  chaos.Option
		in   string
		want any
		err  []string
	}{
		{name: "bool true", opt: optBool, in: "true", want: true},
		{name: "bool 1", opt: optBool, in: "1", want: true},
		{name: "bool F", opt: optBool, in: "F", want: false},
		{name: "bool with spaces", opt: optBool, in: "  false\t", want: false},
		{name: "bool yes", opt: optBool, in: "yes", err: []string{`option "flag"`, expectBool, `got "yes"`}},
		{name: "bool empty", opt: optBool, in: "", err: []string{`option "flag"`, expectBool, `got ""`}},

		{name: "int", opt: optInt, in: "42", want: int64(42)},
		{name: "int negative", opt: optInt, in: "-7", want: int64(-7)},
		{name: "int plus sign", opt: optInt, in: "+3", want: int64(3)},
		{name: "int with spaces", opt: optInt, in: " 8 ", want: int64(8)},
		{name: "int max", opt: optInt, in: "9223372036854775807", want: int64(math.MaxInt64)},
		{name: "int overflow", opt: optInt, in: "9223372036854775808", err: []string{`option "count"`, expectInt}},
		{name: "int fraction", opt: optInt, in: "4.5", err: []string{`option "count"`, expectInt, `got "4.5"`}},
		{name: "int word", opt: optInt, in: "many", err: []string{`option "count"`, expectInt, `got "many"`}},
		{name: "int empty", opt: optInt, in: "", err: []string{`option "count"`, expectInt}},
		{name: "int below min", opt: optMinInt, in: "0", err: []string{`option "count"`, "0 is out of range; want at least 1"}},

		{name: "float", opt: optFloat, in: "0.25", want: 0.25},
		{name: "float exponent", opt: optFloat, in: "1e3", want: 1000.0},
		{name: "float integer", opt: optFloat, in: "2", want: 2.0},
		{name: "float NaN", opt: optFloat, in: "NaN", err: []string{`option "ratio"`, expectFloat, `got "NaN"`}},
		{name: "float Inf", opt: optFloat, in: "Inf", err: []string{`option "ratio"`, expectFloat}},
		{name: "float overflow", opt: optFloat, in: "1e400", err: []string{`option "ratio"`, expectFloat}},
		{name: "float word", opt: optFloat, in: "half", err: []string{`option "ratio"`, expectFloat}},
		{name: "float below min", opt: optMinFloat, in: "0.1", err: []string{`option "ratio"`, "0.1 is out of range; want at least 0.5"}},

		{name: "duration Go", opt: optDuration, in: "500ms", want: 500 * time.Millisecond},
		{name: "duration hours", opt: optDuration, in: "1.5h", want: 90 * time.Minute},
		{name: "duration seconds", opt: optDuration, in: "2", want: 2 * time.Second},
		{name: "duration fractional seconds", opt: optDuration, in: "0.2", want: 200 * time.Millisecond},
		{name: "duration with spaces", opt: optDuration, in: " 3s ", want: 3 * time.Second},
		{name: "duration bad", opt: optDuration, in: "3 seconds", err: []string{`option "sleep"`, expectDuration, `got "3 seconds"`}},
		{name: "duration NaN", opt: optDuration, in: "NaN", err: []string{`option "sleep"`, expectDuration}},
		{name: "duration out of range", opt: optDuration, in: "1e12", err: []string{`option "sleep"`, `"1e12" is out of range; ` + expectDuration}},
		{name: "duration empty", opt: optDuration, in: "", err: []string{`option "sleep"`, expectDuration}},
		{name: "duration below min", opt: optMinDuration, in: "-1", err: []string{`option "sleep"`, "-1s is out of range; want at least 0s"}},

		{name: "string trimmed", opt: optString, in: "  boom  ", want: "boom"},
		{name: "string empty", opt: optString, in: "", want: ""},
		{name: "choice", opt: optChoice, in: " to_client ", want: "to_client"},
		{name: "choice rejected", opt: optChoice, in: "up", err: []string{`option "direction"`, `"up" is not one of to_backend, to_client, both`}},

		{name: "strings", opt: optStrings, in: "GET, SET ,,DEL", want: []string{"GET", "SET", "DEL"}},
		{name: "strings one", opt: optStrings, in: "GET", want: []string{"GET"}},
		{name: "strings empty", opt: optStrings, in: "", want: []string{}},
		{name: "strings only commas", opt: optStrings, in: " , ,", want: []string{}},

		{name: "ints", opt: optInts, in: "500, 502,,503", want: []int64{500, 502, 503}},
		{name: "ints empty", opt: optInts, in: "", want: []int64{}},
		{name: "ints bad element", opt: optInts, in: "500,abc", err: []string{`option "codes"`, expectInts, `got "500,abc"`}},
		{name: "ints fraction", opt: optInts, in: "1.5", err: []string{`option "codes"`, expectInts}},

		{name: "kind not set", opt: optNoKind, in: "x", err: []string{`option "broken"`, "want unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opt.Parse(tt.in)
			wantErr(t, err, tt.err...)
			if err != nil {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) = %#v (%T), want %#v (%T)", tt.in, got, got, tt.want, tt.want)
			}
		})
	}
}

func TestOptionExpect(t *testing.T) {
	tests := []struct {
		opt  chaos.Option
		want string
	}{
		{optBool, "a bool (true or false)"},
		{optInt, "an integer"},
		{optFloat, "a number"},
		{optDuration, `a duration (a string such as "500ms" or a number of seconds)`},
		{optString, "a string"},
		{optChoice, "one of to_backend, to_client, both"},
		{optStrings, "a list of strings"},
		{optInts, "a list of integers"},
		{optNoKind, "unknown"},
	}
	for _, tt := range tests {
		if got := tt.opt.Expect(); got != tt.want {
			t.Errorf("%s option: Expect() = %q, want %q", tt.opt.Kind, got, tt.want)
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  []string
	}{
		{in: "0", want: 0},
		{in: "2", want: 2 * time.Second},
		{in: "0.2", want: 200 * time.Millisecond},
		{in: "1.5", want: 1500 * time.Millisecond},
		{in: "-1", want: -time.Second},
		{in: "1e-3", want: time.Millisecond},
		{in: "1e-10", want: 0},
		{in: "9e9", want: 9e9 * time.Second},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "1h2m3s", want: time.Hour + 2*time.Minute + 3*time.Second},
		{in: "-1.5s", want: -1500 * time.Millisecond},
		{in: "0s", want: 0},
		{in: "10us", want: 10 * time.Microsecond},
		{in: "", err: []string{`invalid duration ""`, `want a Go duration such as "500ms" or a number of seconds`}},
		{in: "soon", err: []string{`invalid duration "soon"`}},
		{in: "5 s", err: []string{`invalid duration "5 s"`}},
		{in: " 5s", err: []string{`invalid duration " 5s"`}},
		{in: "5d", err: []string{`invalid duration "5d"`}},
		{in: "NaN", err: []string{`duration "NaN" out of range`}},
		{in: "Inf", err: []string{`duration "Inf" out of range`}},
		{in: "-Inf", err: []string{`duration "-Inf" out of range`}},
		{in: "1e10", err: []string{`duration "1e10" out of range`}},
		{in: "-1e10", err: []string{`duration "-1e10" out of range`}},
		{in: "1e400", err: []string{`duration "1e400" out of range`}},
		{in: "9999999999h", err: []string{`duration "9999999999h" out of range`}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := chaos.ParseDuration(tt.in)
			wantErr(t, err, tt.err...)
			if err == nil && got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDurationInt64Edge(t *testing.T) {
	d, err := chaos.ParseDuration("9223372036.854775807")
	if err == nil && d < 0 {
		t.Errorf("ParseDuration(\"9223372036.854775807\") = %v, want an error or a positive duration", d)
	}
}

func TestValuesAccessors(t *testing.T) {
	v := chaos.Values{
		"b": true, "i": int64(3), "f": 0.5, "d": time.Second, "s": "x",
		"ss": []string{"a"}, "is": []int64{1},
	}
	if !v.Bool("b") || v.Int("i") != 3 || v.Float("f") != 0.5 || v.Duration("d") != time.Second ||
		v.String("s") != "x" || !reflect.DeepEqual(v.Strings("ss"), []string{"a"}) || !reflect.DeepEqual(v.Ints("is"), []int64{1}) {
		t.Errorf("accessors do not return the stored values: %v", v)
	}
	// A missing name or a value of another type reads as the zero value,
	// never a panic.
	if v.Bool("i") || v.Int("f") != 0 || v.Float("missing") != 0 || v.Duration("i") != 0 ||
		v.String("b") != "" || v.Strings("is") != nil || v.Ints("ss") != nil {
		t.Errorf("accessors of mismatched types are not zero")
	}
}

var resolveOpts = chaos.Options{
	{Name: "sleep", Kind: chaos.Duration, Default: time.Second, Min: ptr(0.0)},
	{Name: "jitter", Kind: chaos.Duration, Default: time.Duration(0)},
	{Name: "direction", Kind: chaos.String, Default: "both", Choices: chaos.DirectionChoices},
	{Name: "codes", Kind: chaos.Ints, Default: []int64{500}},
	{Name: "inject", Kind: chaos.Bool, Default: false},
}

func TestOptionsLookupNamesDefaults(t *testing.T) {
	if o, ok := resolveOpts.Lookup("jitter"); !ok || o.Kind != chaos.Duration {
		t.Errorf("Lookup(jitter) = %v, %v", o, ok)
	}
	if _, ok := resolveOpts.Lookup("nope"); ok {
		t.Errorf("Lookup(nope) found something")
	}
	if got, want := resolveOpts.Names(), []string{"codes", "direction", "inject", "jitter", "sleep"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	d := resolveOpts.Defaults()
	if len(d) != len(resolveOpts) || d.Duration("sleep") != time.Second || d.String("direction") != "both" {
		t.Errorf("Defaults() = %v", d)
	}
	if got := (chaos.Options{}).Names(); len(got) != 0 {
		t.Errorf("empty Options Names() = %v", got)
	}
}

func TestOptionsResolve(t *testing.T) {
	tests := []struct {
		name string
		opts chaos.Options
		in   map[string]any
		want chaos.Values
		err  []string
	}{
		{
			name: "nothing set gives defaults",
			opts: resolveOpts,
			in:   nil,
			want: chaos.Values{"sleep": time.Second, "jitter": time.Duration(0), "direction": "both", "codes": []int64{500}, "inject": false},
		},
		{
			name: "set values are converted, the rest defaulted",
			opts: resolveOpts,
			in:   map[string]any{"sleep": 0.5, "codes": []any{502.0, 503.0}},
			want: chaos.Values{"sleep": 500 * time.Millisecond, "jitter": time.Duration(0), "direction": "both", "codes": []int64{502, 503}, "inject": false},
		},
		{
			name: "every option set",
			opts: resolveOpts,
			in:   map[string]any{"sleep": "2s", "jitter": "100ms", "direction": "to_client", "codes": []int64{404}, "inject": true},
			want: chaos.Values{"sleep": 2 * time.Second, "jitter": 100 * time.Millisecond, "direction": "to_client", "codes": []int64{404}, "inject": true},
		},
		{
			name: "unknown option with a suggestion",
			opts: resolveOpts,
			in:   map[string]any{"jiter": "1s"},
			err:  []string{`delay: unknown option "jiter"; valid options: codes, direction, inject, jitter, sleep (did you mean "jitter"?)`},
		},
		{
			name: "unknown option without a suggestion",
			opts: resolveOpts,
			in:   map[string]any{"bandwidth": 1},
			err:  []string{`delay: unknown option "bandwidth"; valid options: codes, direction, inject, jitter, sleep`},
		},
		{
			name: "option on a behavior without options",
			opts: nil,
			in:   map[string]any{"sleep": 1},
			err:  []string{`delay: unknown option "sleep": delay takes no options`},
		},
		{
			name: "wrong type names the owner and option",
			opts: resolveOpts,
			in:   map[string]any{"inject": "yes"},
			err:  []string{`delay: option "inject": want a bool (true or false), got string "yes"`},
		},
		{
			name: "below min",
			opts: resolveOpts,
			in:   map[string]any{"sleep": -1},
			err:  []string{`delay: option "sleep": -1s is out of range; want at least 0s`},
		},
		{
			name: "bad choice",
			opts: resolveOpts,
			in:   map[string]any{"direction": "up"},
			err:  []string{`delay: option "direction": "up" is not one of to_backend, to_client, both`},
		},
		{
			// Keys are checked in sorted order, so the same bad input always
			// gives the same error.
			name: "first bad key in sorted order",
			opts: resolveOpts,
			in:   map[string]any{"zzz": 1, "inject": 2, "aaa": 3},
			err:  []string{`unknown option "aaa"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 3 { // map order must not matter
				got, err := tt.opts.Resolve("delay", tt.in)
				wantErr(t, err, tt.err...)
				if err != nil {
					if got != nil {
						t.Errorf("Resolve returned values with an error: %v", got)
					}
					continue
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("Resolve(%v) = %#v, want %#v", tt.in, got, tt.want)
				}
			}
		})
	}
}

func TestOptionsResolveText(t *testing.T) {
	tests := []struct {
		name string
		opts chaos.Options
		in   map[string]string
		want chaos.Values
		err  []string
	}{
		{
			name: "nothing set gives defaults",
			opts: resolveOpts,
			in:   map[string]string{},
			want: chaos.Values{"sleep": time.Second, "jitter": time.Duration(0), "direction": "both", "codes": []int64{500}, "inject": false},
		},
		{
			name: "text values are parsed",
			opts: resolveOpts,
			in:   map[string]string{"sleep": "0.5", "jitter": "10ms", "codes": "502, 503", "inject": "true", "direction": "to_backend"},
			want: chaos.Values{"sleep": 500 * time.Millisecond, "jitter": 10 * time.Millisecond, "direction": "to_backend", "codes": []int64{502, 503}, "inject": true},
		},
		{
			name: "unknown option with a suggestion",
			opts: resolveOpts,
			in:   map[string]string{"slep": "1"},
			err:  []string{`delay: unknown option "slep"; valid options:`, `(did you mean "sleep"?)`},
		},
		{
			name: "option on a behavior without options",
			opts: chaos.Options{},
			in:   map[string]string{"sleep": "1"},
			err:  []string{`delay: unknown option "sleep": delay takes no options`},
		},
		{
			name: "bad text names the owner and option",
			opts: resolveOpts,
			in:   map[string]string{"sleep": "later"},
			err:  []string{`delay: option "sleep": want a duration`, `got "later"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.ResolveText("delay", tt.in)
			wantErr(t, err, tt.err...)
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ResolveText(%v) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	names := []string{"delay", "error", "hang", "jitter", "sleep"}
	tests := []struct {
		name       string
		candidates []string
		want       string
	}{
		{"jiter", names, "jitter"},      // one deletion
		{"slep", names, "sleep"},        // one deletion
		{"delya", names, "delay"},       // a swap is two edits
		{"sleep", names, "sleep"},       // exact
		{"Sleep", names, "sleep"},       // case counts as an edit
		{"errrorr", names, "error"},     // two insertions
		{"bandwidth", names, ""},        // nothing near
		{"hangxyz", names, ""},          // three edits is too far
		{"", names, ""},                 // every name is too far
		{"x", []string{"ab", "y"}, "y"}, // the nearest wins, not the first
		{"ab", []string{"ax", "xb"}, "ax"},
		{"anything", nil, ""},
	}
	for _, tt := range tests {
		if got := chaos.Closest(tt.name, tt.candidates); got != tt.want {
			t.Errorf("Closest(%q, %v) = %q, want %q", tt.name, tt.candidates, got, tt.want)
		}
	}
}
