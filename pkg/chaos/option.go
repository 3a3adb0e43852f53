package chaos

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind is the type of an option's value.
type Kind uint8

// The kinds of option values. Values holds them as bool, int64, float64,
// time.Duration, string, []string and []int64 respectively.
const (
	Bool Kind = iota + 1
	Int
	Float
	Duration
	String
	Strings
	Ints
)

// String names the kind the way users see it in docs and error messages.
func (k Kind) String() string {
	switch k {
	case Bool:
		return "bool"
	case Int:
		return "int"
	case Float:
		return "number"
	case Duration:
		return "duration"
	case String:
		return "string"
	case Strings:
		return "list of strings"
	case Ints:
		return "list of ints"
	}
	return "unknown"
}

// Option declares one option of a behavior or protocol. The declaration is
// the single source for config validation, CLI flags, API checks and docs.
type Option struct {
	Name    string
	Kind    Kind
	Default any      // a value of the Go type that Kind names
	Doc     string   // one sentence for users
	Choices []string // for String options: the only accepted values, if set
	// Min and Max bound Int, Float and Duration (in seconds) values, and
	// each element of Ints: the range every way in (HCL, flags, .ini, the
	// APIs) accepts, and that error messages and docs state.
	Min, Max *float64
	// NoEffect, when set, says why the option changes nothing: it is
	// accepted so that the original Vaurien's configurations keep loading.
	NoEffect string
}

// Range returns a pointer to f, for Option.Min and Option.Max.
func Range(f float64) *float64 { return &f }

// MaxDuration is the longest duration an option may declare: far beyond
// any fault worth injecting, far below what a time.Duration holds, so that
// a value in range converts without overflow from seconds or milliseconds.
const MaxDuration = 100000 * time.Hour

// MaxInt is the largest integer an option may declare: the largest that a
// JSON number (a float64) carries exactly.
const MaxInt = 1 << 53

// Values are validated option values, keyed by option name, always holding
// every declared option (defaults filled in).
type Values map[string]any

// Bool returns a bool option's value.
func (v Values) Bool(name string) bool { b, _ := v[name].(bool); return b }

// Int returns an int option's value.
func (v Values) Int(name string) int64 { i, _ := v[name].(int64); return i }

// Float returns a number option's value.
func (v Values) Float(name string) float64 { f, _ := v[name].(float64); return f }

// Duration returns a duration option's value.
func (v Values) Duration(name string) time.Duration { d, _ := v[name].(time.Duration); return d }

// String returns a string option's value.
func (v Values) String(name string) string { s, _ := v[name].(string); return s }

// Strings returns a list-of-strings option's value.
func (v Values) Strings(name string) []string { s, _ := v[name].([]string); return s }

// Ints returns a list-of-ints option's value.
func (v Values) Ints(name string) []int64 { s, _ := v[name].([]int64); return s }

// Convert checks a typed value (from JSON or HCL, where numbers arrive as
// float64, int or int64) against the option and returns it as the option's Go type.
// A duration accepts a number of seconds or a Go duration string.
func (o Option) Convert(v any) (any, error) {
	out, err := o.convert(v)
	if err != nil {
		return nil, err
	}
	return out, o.check(out)
}

func (o Option) convert(v any) (any, error) {
	switch o.Kind {
	case Bool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case Int:
		if i, ok := integer(v); ok {
			return i, nil
		}
		if f, ok := number(v); ok {
			if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
				return nil, o.wrongType(v)
			}
			return int64(f), nil
		}
	case Float:
		if f, ok := number(v); ok {
			return f, nil
		}
	case Duration:
		if d, ok := v.(time.Duration); ok {
			return d, nil
		}
		if f, ok := number(v); ok {
			if math.Abs(f*float64(time.Second)) >= math.MaxInt64 {
				return nil, o.outOfRange(fmt.Sprintf("%g seconds", f))
			}
			return secondsToDuration(f), nil
		}
		if s, ok := v.(string); ok {
			return o.Parse(s)
		}
	case String:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case Strings:
		if l, ok := v.([]string); ok {
			return slices.Clone(l), nil
		}
		if l, ok := v.([]any); ok {
			out := make([]string, 0, len(l))
			for _, e := range l {
				s, ok := e.(string)
				if !ok {
					return nil, o.wrongType(v)
				}
				out = append(out, s)
			}
			return out, nil
		}
	case Ints:
		if l, ok := v.([]int64); ok {
			return slices.Clone(l), nil
		}
		if l, ok := v.([]any); ok {
			out := make([]int64, 0, len(l))
			for _, e := range l {
				if i, ok := integer(e); ok {
					out = append(out, i)
					continue
				}
				f, ok := number(e)
				if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
					return nil, o.wrongType(v)
				}
				out = append(out, int64(f))
			}
			return out, nil
		}
	}
	return nil, o.wrongType(v)
}

// Parse reads an option from text (a CLI flag, an .ini file). Lists are
// comma-separated; durations are Go durations or plain seconds.
func (o Option) Parse(s string) (any, error) {
	s = strings.TrimSpace(s)
	var out any
	switch o.Kind {
	case Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, o.badText(s)
		}
		out = b
	case Int:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, o.badText(s)
		}
		out = i
	case Float:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, o.badText(s)
		}
		out = f
	case Duration:
		d, err := ParseDuration(s)
		if errors.Is(err, errDurationRange) {
			return nil, o.outOfRange(strconv.Quote(s))
		}
		if err != nil {
			return nil, o.badText(s)
		}
		out = d
	case String:
		out = s
	case Strings:
		l := []string{}
		for _, e := range strings.Split(s, ",") {
			if e = strings.TrimSpace(e); e != "" {
				l = append(l, e)
			}
		}
		out = l
	case Ints:
		l := []int64{}
		for _, e := range strings.Split(s, ",") {
			if e = strings.TrimSpace(e); e == "" {
				continue
			}
			i, err := strconv.ParseInt(e, 10, 64)
			if err != nil {
				return nil, o.badText(s)
			}
			l = append(l, i)
		}
		out = l
	default:
		return nil, o.badText(s)
	}
	return out, o.check(out)
}

// ParseDuration reads a Go duration ("500ms") or a plain number of seconds
// ("2", "0.2"), the original Vaurien's unit.
func ParseDuration(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("duration %q out of range", s)
		}
		if math.Abs(f*float64(time.Second)) >= math.MaxInt64 {
			return 0, fmt.Errorf("duration %q %w", s, errDurationRange)
		}
		return secondsToDuration(f), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if strings.Contains(err.Error(), "invalid duration") && durationShape.MatchString(s) {
			// Well formed, but more than a time.Duration holds.
			return 0, fmt.Errorf("duration %q %w", s, errDurationRange)
		}
		return 0, fmt.Errorf("invalid duration %q: want a Go duration such as \"500ms\" or a number of seconds", s)
	}
	return d, nil
}

// errDurationRange is a duration longer than a time.Duration holds.
var errDurationRange = errors.New("out of range")

// durationShape matches what time.ParseDuration reads, so that an
// overflow can be told from a typo.
var durationShape = regexp.MustCompile(`^[-+]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))*$`)

func secondsToDuration(f float64) time.Duration {
	ns := f * float64(time.Second)
	switch {
	case ns >= math.MaxInt64:
		return math.MaxInt64
	case ns <= math.MinInt64:
		return math.MinInt64
	}
	return time.Duration(ns)
}

func (o Option) check(v any) error {
	if len(o.Choices) > 0 {
		if s, _ := v.(string); !slices.Contains(o.Choices, s) {
			return fmt.Errorf("option %q: %q is not one of %s", o.Name, s, strings.Join(o.Choices, ", "))
		}
	}
	if o.Min == nil && o.Max == nil {
		return nil
	}
	var vals []float64
	switch x := v.(type) {
	case int64:
		vals = []float64{float64(x)}
	case float64:
		vals = []float64{x}
	case time.Duration:
		vals = []float64{x.Seconds()}
	case []int64:
		for _, e := range x {
			vals = append(vals, float64(e))
		}
	}
	for i, f := range vals {
		if o.Min != nil && f < *o.Min || o.Max != nil && f > *o.Max {
			shown := fmt.Sprint(v)
			if l, ok := v.([]int64); ok {
				shown = fmt.Sprint(l[i])
			}
			return o.outOfRange(shown)
		}
	}
	return nil
}

func (o Option) outOfRange(shown string) error {
	want := o.Range()
	if want == "" {
		want = o.Expect()
	}
	return fmt.Errorf("option %q: %s is out of range; want %s", o.Name, shown, want)
}

// Range describes the accepted values of a bounded option ("from 0s to
// 24h0m0s", "at least 1"), or "" for one without bounds.
func (o Option) Range() string {
	text := func(f float64) string {
		switch o.Kind {
		case Duration:
			return secondsToDuration(f).String()
		case Int, Ints:
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	switch {
	case o.Min != nil && o.Max != nil:
		return "from " + text(*o.Min) + " to " + text(*o.Max)
	case o.Min != nil:
		return "at least " + text(*o.Min)
	case o.Max != nil:
		return "at most " + text(*o.Max)
	}
	return ""
}

func (o Option) wrongType(v any) error {
	return fmt.Errorf("option %q: want %s, got %s", o.Name, o.Expect(), describe(v))
}

func (o Option) badText(s string) error {
	return fmt.Errorf("option %q: want %s, got %q", o.Name, o.Expect(), s)
}

// Expect describes the accepted values, for error messages, with the
// range of a bounded option.
func (o Option) Expect() string {
	if r := o.Range(); r != "" {
		return o.expect() + " " + r
	}
	return o.expect()
}

func (o Option) expect() string {
	switch o.Kind {
	case Duration:
		return "a duration (a string such as \"500ms\" or a number of seconds)"
	case Strings:
		return "a list of strings"
	case Ints:
		return "a list of integers"
	case Bool:
		return "a bool (true or false)"
	case Int:
		return "an integer"
	case Float:
		return "a number"
	case String:
		if len(o.Choices) > 0 {
			return "one of " + strings.Join(o.Choices, ", ")
		}
		return "a string"
	}
	return o.Kind.String()
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return fmt.Sprintf("bool %v", x)
	case string:
		return fmt.Sprintf("string %q", x)
	case float64, float32, int, int64, int32:
		return fmt.Sprintf("number %v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case int32:
		return int64(x), true
	}
	return 0, false
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case float32:
		f := float64(x)
		return f, !math.IsNaN(f) && !math.IsInf(f, 0)
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	}
	return 0, false
}

// Options is a list of declarations, the set a behavior or protocol accepts.
type Options []Option

// Lookup returns the declaration named name.
func (os Options) Lookup(name string) (Option, bool) {
	for _, o := range os {
		if o.Name == name {
			return o, true
		}
	}
	return Option{}, false
}

// Names lists the declared option names, sorted.
func (os Options) Names() []string {
	names := make([]string, len(os))
	for i, o := range os {
		names[i] = o.Name
	}
	sort.Strings(names)
	return names
}

// Defaults returns the values when nothing is set.
func (os Options) Defaults() Values {
	v := make(Values, len(os))
	for _, o := range os {
		v[o.Name] = o.Default
	}
	return v
}

// Resolve validates typed values (from JSON or HCL) and fills in defaults.
// owner names the behavior or protocol in error messages.
func (os Options) Resolve(owner string, in map[string]any) (Values, error) {
	out := os.Defaults()
	for _, name := range sortedKeys(in) {
		o, ok := os.Lookup(name)
		if !ok {
			return nil, os.unknown(owner, name)
		}
		v, err := o.Convert(in[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", owner, err)
		}
		out[name] = v
	}
	return out, nil
}

// ResolveText is Resolve for values given as text (CLI flags, .ini files).
func (os Options) ResolveText(owner string, in map[string]string) (Values, error) {
	out := os.Defaults()
	for _, name := range sortedKeys(in) {
		o, ok := os.Lookup(name)
		if !ok {
			return nil, os.unknown(owner, name)
		}
		v, err := o.Parse(in[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", owner, err)
		}
		out[name] = v
	}
	return out, nil
}

func (os Options) unknown(owner, name string) error {
	if len(os) == 0 {
		return fmt.Errorf("%s: unknown option %q: %s takes no options", owner, name, owner)
	}
	msg := fmt.Sprintf("%s: unknown option %q; valid options: %s", owner, name, strings.Join(os.Names(), ", "))
	if s := Closest(name, os.Names()); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return fmt.Errorf("%s", msg)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Closest returns the candidate nearest to name by edit distance when it is
// close enough to be a likely typo, or "".
func Closest(name string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
