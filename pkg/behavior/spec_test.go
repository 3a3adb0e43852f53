package behavior_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"

	_ "github.com/vaurien-go/vaurien/pkg/behavior"
)

// The behaviors the package promises, the original's and the newer ones.
var builtins = []string{
	"abort", "bandwidth", "blackout", "corrupt", "down", "error", "hang",
	"limit_data", "reset_peer", "slicer", "slow_close", "slow_open", "timeout", "transient",
}

func TestBuiltinsRegistered(t *testing.T) {
	names := chaos.BehaviorNames()
	for _, n := range builtins {
		if !slices.Contains(names, n) {
			t.Errorf("behavior %q is not registered; have %v", n, names)
		}
	}
}

func TestSpecsDocumented(t *testing.T) {
	for _, s := range chaos.Behaviors() {
		t.Run(s.Name, func(t *testing.T) {
			if len(s.Doc) < 80 || !strings.HasSuffix(s.Doc, ".") {
				t.Errorf("Doc is not a few sentences: %q", s.Doc)
			}
			for _, o := range s.Options {
				if o.Doc == "" {
					t.Errorf("option %q has no Doc", o.Name)
				}
				if !defaultFits(o) {
					t.Errorf("option %q: Default %#v (%T) is not a %s", o.Name, o.Default, o.Default, o.Kind)
				}
				checkDefaultAccepted(t, o)
			}
			if _, err := s.New(s.Options.Defaults()); err != nil {
				t.Errorf("New with the defaults: %v", err)
			}
		})
	}
}

func defaultFits(o chaos.Option) bool {
	switch o.Kind {
	case chaos.Bool:
		_, ok := o.Default.(bool)
		return ok
	case chaos.Int:
		_, ok := o.Default.(int64)
		return ok
	case chaos.Float:
		_, ok := o.Default.(float64)
		return ok
	case chaos.Duration:
		_, ok := o.Default.(time.Duration)
		return ok
	case chaos.String:
		_, ok := o.Default.(string)
		return ok
	case chaos.Strings:
		_, ok := o.Default.([]string)
		return ok
	case chaos.Ints:
		_, ok := o.Default.([]int64)
		return ok
	}
	return false
}

// checkDefaultAccepted makes sure a default would pass the option's own
// validation, so that leaving an option out never means an invalid value.
func checkDefaultAccepted(t *testing.T, o chaos.Option) {
	t.Helper()
	if len(o.Choices) > 0 {
		if s, _ := o.Default.(string); !slices.Contains(o.Choices, s) {
			t.Errorf("option %q: default %q is not one of its choices %v", o.Name, s, o.Choices)
		}
	}
	if _, err := o.Convert(o.Default); err != nil {
		t.Errorf("option %q: default %v is not accepted: %v", o.Name, o.Default, err)
	}
}

var attrLine = regexp.MustCompile(`^\s*([a-z_]+)\s*=\s*(.+?)\s*$`)

// TestExamplesValid reads each Example the simple way (one attribute per
// line) and builds the behavior from it: an example that names an unknown
// option or a bad value would teach users an error.
func TestExamplesValid(t *testing.T) {
	for _, s := range chaos.Behaviors() {
		t.Run(s.Name, func(t *testing.T) {
			lines := strings.Split(strings.TrimSpace(s.Example), "\n")
			if head := `behavior "` + s.Name + `" {`; len(lines) < 2 || lines[0] != head || lines[len(lines)-1] != "}" {
				t.Fatalf("Example is not a %s block:\n%s", head, s.Example)
			}
			text := map[string]string{}
			sawPercent := false
			for _, l := range lines[1 : len(lines)-1] {
				m := attrLine.FindStringSubmatch(l)
				if m == nil {
					t.Fatalf("Example line %q is not an attribute", l)
				}
				if m[1] == "percent" {
					sawPercent = true
					continue
				}
				text[m[1]] = hclText(m[2])
			}
			if !sawPercent {
				t.Errorf("Example sets no percent")
			}
			v, err := s.Options.ResolveText(s.Name, text)
			if err != nil {
				t.Fatalf("Example options: %v", err)
			}
			if _, err := s.New(v); err != nil {
				t.Fatalf("New from the Example: %v", err)
			}
		})
	}
}

// hclText turns an HCL literal (string, number, bool or list) into the text
// form that Option.Parse reads.
func hclText(v string) string {
	v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	parts := strings.Split(v, ",")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"`)
	}
	return strings.Join(parts, ",")
}
