package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

var errBoom = errors.New("boom")

// The registry is global and outlives a test, so the test behaviors are
// registered once per process: `go test -count=N` must keep passing.
func registerTestPlugins() {
	registerBehaviorOnce(chaos.BehaviorSpec{
		Name: "zz_test_sleepy",
		Doc:  "Waits.",
		Options: chaos.Options{
			{Name: "sleep", Kind: chaos.Duration, Default: time.Second, Min: ptr(0.0)},
			{Name: "jitter", Kind: chaos.Duration, Default: time.Duration(0)},
		},
		New: func(v chaos.Values) (chaos.Behavior, error) {
			d := v.Duration("sleep")
			return effectFunc(func(*chaos.Unit) chaos.Effect { return chaos.Effect{Delay: d} }), nil
		},
	})
	registerBehaviorOnce(chaos.BehaviorSpec{
		Name: "zz_test_plain",
		New:  func(chaos.Values) (chaos.Behavior, error) { return nop{}, nil },
	})
	registerBehaviorOnce(chaos.BehaviorSpec{
		Name: "zz_test_broken",
		New:  func(chaos.Values) (chaos.Behavior, error) { return nil, errBoom },
	})
	if _, ok := chaos.LookupProtocol("zz_test_proto"); !ok {
		chaos.RegisterProtocol(chaos.ProtocolSpec{
			Name:    "zz_test_proto",
			Options: chaos.Options{{Name: "strict", Kind: chaos.Bool, Default: false}},
			New:     func(chaos.Values) (chaos.Protocol, error) { return serveNothing{}, nil },
		})
	}
}

func registerBehaviorOnce(s chaos.BehaviorSpec) {
	if _, ok := chaos.LookupBehavior(s.Name); !ok {
		chaos.RegisterBehavior(s)
	}
}

type serveNothing struct{}

func (serveNothing) Serve(context.Context, chaos.Session) error { return nil }

func newFunc(chaos.Values) (chaos.Behavior, error) { return nop{}, nil }

func TestRegisterBehaviorPanics(t *testing.T) {
	registerTestPlugins()
	tests := []struct {
		name string
		spec chaos.BehaviorSpec
		want string // a substring of the panic message
	}{
		{"empty name", chaos.BehaviorSpec{Name: "", New: newFunc}, `behavior name "" is not lowercase snake_case`},
		{"upper case", chaos.BehaviorSpec{Name: "zz_Test_upper", New: newFunc}, `behavior name "zz_Test_upper" is not lowercase snake_case`},
		{"dash", chaos.BehaviorSpec{Name: "zz-test-dash", New: newFunc}, "is not lowercase snake_case"},
		{"leading digit", chaos.BehaviorSpec{Name: "9zz_test", New: newFunc}, "is not lowercase snake_case"},
		{"leading underscore", chaos.BehaviorSpec{Name: "_zz_test", New: newFunc}, "is not lowercase snake_case"},
		{"space", chaos.BehaviorSpec{Name: "zz test", New: newFunc}, "is not lowercase snake_case"},
		{"no constructor", chaos.BehaviorSpec{Name: "zz_test_no_new"}, `behavior "zz_test_no_new" has no constructor`},
		{
			"option twice",
			chaos.BehaviorSpec{Name: "zz_test_opt_twice", New: newFunc, Options: chaos.Options{
				{Name: "sleep", Kind: chaos.Duration}, {Name: "sleep", Kind: chaos.Int},
			}},
			`behavior "zz_test_opt_twice" declares option "sleep" twice or invalidly`,
		},
		{
			"option name invalid",
			chaos.BehaviorSpec{Name: "zz_test_opt_name", New: newFunc, Options: chaos.Options{{Name: "Sleep", Kind: chaos.Duration}}},
			`declares option "Sleep" twice or invalidly`,
		},
		{
			"option without kind",
			chaos.BehaviorSpec{Name: "zz_test_opt_kind", New: newFunc, Options: chaos.Options{{Name: "sleep"}}},
			`declares option "sleep" twice or invalidly`,
		},
		{"registered twice", chaos.BehaviorSpec{Name: "zz_test_plain", New: newFunc}, `behavior "zz_test_plain" registered twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := panicOf(func() { chaos.RegisterBehavior(tt.spec) })
			msg, _ := p.(string)
			if !strings.Contains(msg, tt.want) {
				t.Fatalf("RegisterBehavior panicked with %#v, want a message containing %q", p, tt.want)
			}
			if tt.name != "registered twice" {
				if _, ok := chaos.LookupBehavior(tt.spec.Name); ok {
					t.Errorf("rejected behavior %q was registered anyway", tt.spec.Name)
				}
			}
		})
	}
}

func TestRegisterProtocolPanics(t *testing.T) {
	registerTestPlugins()
	newProto := func(chaos.Values) (chaos.Protocol, error) { return serveNothing{}, nil }
	tests := []struct {
		name string
		spec chaos.ProtocolSpec
		want string
	}{
		{"bad name", chaos.ProtocolSpec{Name: "ZZ", New: newProto}, `protocol name "ZZ" is not lowercase snake_case`},
		{"no constructor", chaos.ProtocolSpec{Name: "zz_test_proto_nonew"}, `protocol "zz_test_proto_nonew" has no constructor`},
		{"option twice", chaos.ProtocolSpec{Name: "zz_test_proto_opts", New: newProto, Options: chaos.Options{
			{Name: "a", Kind: chaos.Bool}, {Name: "a", Kind: chaos.Bool},
		}}, `declares option "a" twice or invalidly`},
		{"registered twice", chaos.ProtocolSpec{Name: "zz_test_proto", New: newProto}, `protocol "zz_test_proto" registered twice`},
		{"commands without a catch-all", chaos.ProtocolSpec{Name: "zz_test_proto_cmds", New: newProto, Commands: []string{"GET", "OTHER"}},
			`protocol "zz_test_proto_cmds" declares commands without its catch-all among them (OtherCommand "")`},
		{"catch-all outside the commands", chaos.ProtocolSpec{Name: "zz_test_proto_other", New: newProto, Commands: []string{"GET"}, OtherCommand: "OTHER"},
			`(OtherCommand "OTHER")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := panicOf(func() { chaos.RegisterProtocol(tt.spec) })
			if msg, _ := p.(string); !strings.Contains(msg, tt.want) {
				t.Fatalf("RegisterProtocol panicked with %#v, want a message containing %q", p, tt.want)
			}
		})
	}
}

func TestRegistryListings(t *testing.T) {
	registerTestPlugins()
	names := chaos.BehaviorNames()
	if !slices.IsSorted(names) {
		t.Errorf("BehaviorNames() not sorted: %v", names)
	}
	for _, want := range []string{"zz_test_broken", "zz_test_plain", "zz_test_sleepy"} {
		if !slices.Contains(names, want) {
			t.Errorf("BehaviorNames() = %v, missing %q", names, want)
		}
	}
	specs := chaos.Behaviors()
	if len(specs) != len(names) {
		t.Fatalf("Behaviors() has %d specs, BehaviorNames() %d names", len(specs), len(names))
	}
	for i, s := range specs {
		if s.Name != names[i] {
			t.Errorf("Behaviors()[%d] = %q, BehaviorNames()[%d] = %q", i, s.Name, i, names[i])
		}
	}
	s, ok := chaos.LookupBehavior("zz_test_sleepy")
	if !ok || s.Doc != "Waits." || len(s.Options) != 2 {
		t.Errorf("LookupBehavior(zz_test_sleepy) = %+v, %v", s, ok)
	}
	if _, ok := chaos.LookupBehavior("zz_test_missing"); ok {
		t.Errorf("LookupBehavior found an unregistered name")
	}

	pnames := chaos.ProtocolNames()
	if !slices.IsSorted(pnames) || !slices.Contains(pnames, "zz_test_proto") {
		t.Errorf("ProtocolNames() = %v", pnames)
	}
	if ps := chaos.Protocols(); len(ps) != len(pnames) {
		t.Errorf("Protocols() has %d specs, ProtocolNames() %d names", len(ps), len(pnames))
	}
	if _, ok := chaos.LookupProtocol("zz_test_proto"); !ok {
		t.Errorf("LookupProtocol(zz_test_proto) not found")
	}
}

func TestNewBehavior(t *testing.T) {
	registerTestPlugins()
	tests := []struct {
		name   string
		plugin string
		opts   map[string]any
		values chaos.Values // the resolved values on success
		delay  time.Duration
		err    []string
	}{
		{
			name: "defaults", plugin: "zz_test_sleepy",
			values: chaos.Values{"sleep": time.Second, "jitter": time.Duration(0)}, delay: time.Second,
		},
		{
			name: "options", plugin: "zz_test_sleepy", opts: map[string]any{"sleep": "250ms", "jitter": 0.1},
			values: chaos.Values{"sleep": 250 * time.Millisecond, "jitter": 100 * time.Millisecond}, delay: 250 * time.Millisecond,
		},
		{
			name: "no options", plugin: "zz_test_plain", values: chaos.Values{},
		},
		{
			name: "option misspelt", plugin: "zz_test_sleepy", opts: map[string]any{"slep": 1},
			err: []string{`zz_test_sleepy: unknown option "slep"; valid options: jitter, sleep (did you mean "sleep"?)`},
		},
		{
			name: "option on a behavior without options", plugin: "zz_test_plain", opts: map[string]any{"sleep": 1},
			err: []string{`zz_test_plain: unknown option "sleep": zz_test_plain takes no options`},
		},
		{
			name: "wrong type", plugin: "zz_test_sleepy", opts: map[string]any{"sleep": true},
			err: []string{`zz_test_sleepy: option "sleep": want a duration`, "got bool true"},
		},
		{
			name: "constructor fails", plugin: "zz_test_broken",
			err: []string{"zz_test_broken: boom"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, v, err := chaos.NewBehavior(tt.plugin, tt.opts)
			wantErr(t, err, tt.err...)
			if err != nil {
				if b != nil || v != nil {
					t.Errorf("NewBehavior returned %v, %v with an error", b, v)
				}
				return
			}
			if !reflect.DeepEqual(v, tt.values) {
				t.Errorf("values = %#v, want %#v", v, tt.values)
			}
			if e := b.Effect(&chaos.Unit{Seq: 1}); e.Delay != tt.delay {
				t.Errorf("built behavior delays %v, want %v", e.Delay, tt.delay)
			}
		})
	}

	_, _, err := chaos.NewBehavior("zz_test_broken", nil)
	if !errors.Is(err, errBoom) {
		t.Errorf("constructor error %v does not wrap the cause", err)
	}
}

func TestNewBehaviorUnknown(t *testing.T) {
	registerTestPlugins()
	tests := []struct {
		name    string
		suggest string // "" when nothing is close
	}{
		{"zz_test_slepy", "zz_test_sleepy"},
		{"zz_test_plan", "zz_test_plain"},
		{"bandwidth_limit_xyz", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, v, err := chaos.NewBehavior(tt.name, map[string]any{"sleep": 1})
			if b != nil || v != nil {
				t.Errorf("unknown behavior built: %v, %v", b, v)
			}
			var ue *chaos.UnknownError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v (%T) is not an *UnknownError", err, err)
			}
			if ue.What != "behavior" || ue.Name != tt.name || !reflect.DeepEqual(ue.Valid, chaos.BehaviorNames()) {
				t.Errorf("UnknownError = %+v, want behavior %q with valid %v", ue, tt.name, chaos.BehaviorNames())
			}
			msg := err.Error()
			want := fmt.Sprintf("unknown behavior %q; valid behaviors: %s", tt.name, strings.Join(chaos.BehaviorNames(), ", "))
			if !strings.HasPrefix(msg, want) {
				t.Errorf("message %q does not start with %q", msg, want)
			}
			hint := fmt.Sprintf(" (did you mean %q?)", tt.suggest)
			if tt.suggest != "" && !strings.HasSuffix(msg, hint) {
				t.Errorf("message %q does not end with %q", msg, hint)
			}
			if tt.suggest == "" && strings.Contains(msg, "did you mean") {
				t.Errorf("message %q suggests a name though none is close", msg)
			}
		})
	}
}

func TestNewProtocol(t *testing.T) {
	registerTestPlugins()
	p, v, err := chaos.NewProtocol("zz_test_proto", map[string]any{"strict": true})
	if err != nil || p == nil || !v.Bool("strict") {
		t.Errorf("NewProtocol = %v, %v, %v", p, v, err)
	}
	_, _, err = chaos.NewProtocol("zz_test_proto", map[string]any{"strct": true})
	wantErr(t, err, `zz_test_proto: unknown option "strct"`, `(did you mean "strict"?)`)

	_, _, err = chaos.NewProtocol("zz_test_prot", nil)
	var ue *chaos.UnknownError
	if !errors.As(err, &ue) || ue.What != "protocol" {
		t.Fatalf("error %v is not an *UnknownError for a protocol", err)
	}
	wantErr(t, err, `unknown protocol "zz_test_prot"; valid protocols: `, `(did you mean "zz_test_proto"?)`)
}
