package config

import (
	"fmt"
	"maps"
	"math"
	"math/big"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// envFunc is env("NAME") or env("NAME", "default"). An unset variable
// without a default is an error rather than "", so that a forgotten export
// does not silently turn into an empty token or address.
var envFunc = function.New(&function.Spec{
	Description: "Returns the value of an environment variable, or the default when it is unset.",
	Params:      []function.Parameter{{Name: "name", Type: cty.String}},
	VarParam:    &function.Parameter{Name: "default", Type: cty.String},
	Type: func(args []cty.Value) (cty.Type, error) {
		if len(args) > 2 {
			return cty.NilType, function.NewArgErrorf(2, "env takes a variable name and an optional default value, not %d arguments", len(args))
		}
		return cty.String, nil
	},
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		name := args[0].AsString()
		if v, ok := os.LookupEnv(name); ok {
			return cty.StringVal(v), nil
		}
		if len(args) == 2 {
			return args[1], nil
		}
		return cty.NilVal, fmt.Errorf("the environment variable %q is not set; set it, or give a default as in env(%q, \"value\")", name, name)
	},
})

func evalContext() *hcl.EvalContext {
	return &hcl.EvalContext{Functions: map[string]function.Function{
		"env": envFunc,
		// env() gives strings; these turn one into a bool or number option.
		"tobool":   stdlib.MakeToFunc(cty.Bool),
		"tonumber": stdlib.MakeToFunc(cty.Number),
	}}
}

// state tells an attribute that was left out (or set to null, which HCL
// treats the same) from one whose value was bad, so that a bad value is
// reported once and not again as missing or invalid further on.
type state int

const (
	absent state = iota
	failed
	present
)

// decoder evaluates attributes and collects diagnostics.
type decoder struct {
	ctx   *hcl.EvalContext
	diags hcl.Diagnostics
	// exprs, set when converting an .ini file, collects the env() expressions
	// that stand for values read through ${NAME}, by Format's paths.
	exprs map[string]string
	// protocols are the protocols of the file's routes by name, for the
	// error codes of its experiments' steps; nil for an experiment file
	// read on its own, which knows its routes by name only.
	protocols map[string]string
}

func (d *decoder) add(diags ...*hcl.Diagnostic) { d.diags = append(d.diags, diags...) }

func (d *decoder) errorf(subject hcl.Range, summary, detail string, args ...any) {
	d.add(errorDiag(subject, summary, detail, args...))
}

// value evaluates expr. A nil expr is absent.
func (d *decoder) value(expr hcl.Expression) (cty.Value, state) {
	if expr == nil {
		return cty.NilVal, absent
	}
	v, diags := expr.Value(d.ctx)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, failed
	}
	v, _ = v.UnmarkDeep()
	if v.IsNull() {
		return v, absent
	}
	if !v.IsWhollyKnown() {
		d.errorf(expr.Range(), "Unknown value", "This value cannot be known when the file is read. Use a literal value or env().")
		return cty.NilVal, failed
	}
	return v, present
}

// typed evaluates expr and converts it to ty, as HCL does (a number is
// accepted where a string is wanted, a "5" where a number is).
func (d *decoder) typed(expr hcl.Expression, name string, ty cty.Type, example string) (cty.Value, state) {
	v, st := d.value(expr)
	if st != present {
		return v, st
	}
	out, err := convert.Convert(v, ty)
	if err != nil {
		d.errorf(expr.Range(), "Incorrect attribute value type",
			"The argument %q takes %s, such as %s; this is %s.", name, aType(ty), example, aType(v.Type()))
		return cty.NilVal, failed
	}
	return out, present
}

func (d *decoder) str(expr hcl.Expression, name, example string) (string, state) {
	v, st := d.typed(expr, name, cty.String, example)
	if st != present {
		return "", st
	}
	return v.AsString(), present
}

func (d *decoder) boolean(expr hcl.Expression, name string) (bool, state) {
	v, st := d.typed(expr, name, cty.Bool, "true")
	if st != present {
		return false, st
	}
	return v.True(), present
}

func (d *decoder) number(expr hcl.Expression, name, example string) (*big.Float, state) {
	v, st := d.typed(expr, name, cty.Number, example)
	if st != present {
		return nil, st
	}
	return v.AsBigFloat(), present
}

// seed reads a seed, a whole number from 0 to 2^64-1; zero says what 0
// means where it is read.
func (d *decoder) seed(expr hcl.Expression, example, zero string) (uint64, state) {
	n, st := d.number(expr, "seed", example)
	if st != present {
		return 0, st
	}
	u, acc := n.Uint64()
	if !n.IsInt() || n.Sign() < 0 || acc != big.Exact {
		d.errorf(expr.Range(), "Invalid seed", "The seed must be a whole number from 0 to %d; 0 means %s. Got %s.", uint64(math.MaxUint64), zero, n.Text('g', 20))
		return 0, failed
	}
	return u, present
}

// oneOf reads a string that must be one of valid; what names it in the
// summary ("log level").
func (d *decoder) oneOf(expr hcl.Expression, name, example, what string, valid []string) (string, state) {
	s, st := d.str(expr, name, example)
	if st != present {
		return "", st
	}
	if !slices.Contains(valid, s) {
		d.errorf(expr.Range(), "Invalid "+what, "The %s must be %s; got %q.%s", what, quoteList(valid, "or"), s, didYouMean(s, valid))
		return "", failed
	}
	return s, present
}

// inFileOrder returns a map's attributes in the order the file gives them.
func inFileOrder[A any](m map[string]A, rng func(A) hcl.Range) []A {
	out := slices.Collect(maps.Values(m))
	sort.Slice(out, func(i, j int) bool { return rng(out[i]).Start.Byte < rng(out[j]).Start.Byte })
	return out
}

// duration reads a Go duration string ("500ms") or a number of seconds, the
// original Vaurien's unit. Negative durations are refused: every duration
// in a file is a wait or a limit.
func (d *decoder) duration(expr hcl.Expression, name string) (time.Duration, state) {
	v, st := d.value(expr)
	if st != present {
		return 0, st
	}
	const want = `a duration: a string such as "500ms" or "30s", or a number of seconds`
	var dur time.Duration
	switch {
	case v.Type() == cty.Number:
		f, _ := v.AsBigFloat().Float64()
		if math.IsInf(f, 0) || math.Abs(f) > math.MaxInt64/float64(time.Second) {
			d.errorf(expr.Range(), "Invalid duration", "The argument %q takes %s; %s seconds is out of range.", name, want, v.AsBigFloat().Text('g', 10))
			return 0, failed
		}
		dur = time.Duration(f * float64(time.Second))
	case v.Type() == cty.String:
		var err error
		if dur, err = chaos.ParseDuration(v.AsString()); err != nil {
			d.errorf(expr.Range(), "Invalid duration", "The argument %q takes %s; %q is not one.", name, want, v.AsString())
			return 0, failed
		}
	default:
		d.errorf(expr.Range(), "Invalid duration", "The argument %q takes %s; this is %s.", name, want, aType(v.Type()))
		return 0, failed
	}
	if dur < 0 {
		d.errorf(expr.Range(), "Invalid duration", "The argument %q must not be negative.", name)
		return 0, failed
	}
	return dur, present
}

// goValue converts a cty value to the Go values that chaos.Option.Convert
// accepts: bool, float64, string, []any and map[string]any.
func goValue(v cty.Value) any {
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	ty := v.Type()
	switch {
	case ty == cty.Bool:
		return v.True()
	case ty == cty.Number:
		f, _ := v.AsBigFloat().Float64()
		return f
	case ty == cty.String:
		return v.AsString()
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		out := make([]any, 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, goValue(e))
		}
		return out
	case ty.IsMapType() || ty.IsObjectType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			out[k.AsString()] = goValue(e)
		}
		return out
	}
	return nil
}

// aType names a type with its article, for diagnostic details.
func aType(ty cty.Type) string {
	switch {
	case ty == cty.String:
		return "a string"
	case ty == cty.Number:
		return "a number"
	case ty == cty.Bool:
		return "a bool"
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		return "a list"
	case ty.IsMapType() || ty.IsObjectType():
		return "an object"
	}
	return "a value of type " + ty.FriendlyName()
}
