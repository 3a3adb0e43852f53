package catalog_test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/catalog"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
)

var update = flag.Bool("update", false, "rewrite docs/behaviors.md, docs/protocols.md, docs/probes.md and docs/tls.md from the declarations")

// TestDocsUpToDate keeps the reference pages under docs/ equal to what the
// declarations in the code render, so that they never drift apart.
func TestDocsUpToDate(t *testing.T) {
	docs := []struct {
		path   string // from the module root
		render func(io.Writer)
	}{
		{"docs/behaviors.md", catalog.BehaviorsMarkdown},
		{"docs/protocols.md", catalog.ProtocolsMarkdown},
		{"docs/probes.md", catalog.ProbesMarkdown},
		{"docs/tls.md", catalog.TLSMarkdown},
	}
	for _, d := range docs {
		var want bytes.Buffer
		d.render(&want)
		file := filepath.Join("..", "..", filepath.FromSlash(d.path))
		if *update {
			if err := os.WriteFile(file, want.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("%s is missing: run go test ./pkg/catalog -update (%v)", d.path, err)
			continue
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s is stale: run go test ./pkg/catalog -update\n%s", d.path, firstDiff(string(got), want.String()))
		}
	}
}

// firstDiff describes the first line where the file on disk and the
// rendered text differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			return fmt.Sprintf("line %d:\n  on disk:  %q\n  rendered: %q", i+1, gl, wl)
		}
	}
	return "the files differ"
}

// TestBehaviorsText checks that `vaurien behaviors` lists every registered
// behavior, and under it every option with its type and default.
func TestBehaviorsText(t *testing.T) {
	var out bytes.Buffer
	catalog.BehaviorsText(&out)
	checkListing(t, out.String(), specsOf(chaos.Behaviors()))
}

// TestProtocolsText does the same for `vaurien protocols`.
func TestProtocolsText(t *testing.T) {
	var out bytes.Buffer
	catalog.ProtocolsText(&out)
	var specs []spec
	for _, p := range chaos.Protocols() {
		specs = append(specs, spec{p.Name, p.Options})
	}
	checkListing(t, out.String(), specs)
}

type spec struct {
	name    string
	options chaos.Options
}

func specsOf(bs []chaos.BehaviorSpec) []spec {
	var out []spec
	for _, b := range bs {
		out = append(out, spec{b.Name, b.Options})
	}
	return out
}

// checkListing finds each spec's name on a line of its own, then each of
// its options with its default before the next spec starts.
func checkListing(t *testing.T, text string, specs []spec) {
	t.Helper()
	if len(specs) == 0 {
		t.Fatal("nothing is registered")
	}
	lines := strings.Split(text, "\n")
	at := 0
	for _, s := range specs {
		start := indexFrom(lines, at, func(l string) bool { return l == s.name })
		if start < 0 {
			t.Errorf("%s is not listed in order", s.name)
			continue
		}
		end := indexFrom(lines, start+1, func(l string) bool { return l != "" && l[0] != ' ' })
		if end < 0 {
			end = len(lines)
		}
		block := strings.Join(lines[start:end], "\n")
		if len(s.options) == 0 && !strings.Contains(block, "options: none") {
			t.Errorf("%s: listed without \"options: none\":\n%s", s.name, block)
		}
		for _, o := range s.options {
			entry := fmt.Sprintf("      %s (", o.Name)
			def := fmt.Sprintf(", default %s)", catalog.Default(o))
			if indexFrom(lines[start:end], 0, func(l string) bool {
				return strings.HasPrefix(l, entry) && strings.HasSuffix(l, def)
			}) < 0 {
				t.Errorf("%s: option %s with %q is not listed:\n%s", s.name, o.Name, def, block)
			}
		}
		at = end
	}
}

func indexFrom(lines []string, from int, match func(string) bool) int {
	for i := from; i < len(lines); i++ {
		if match(lines[i]) {
			return i
		}
	}
	return -1
}

// TestDefault pins how defaults are written: as a user writes them in HCL.
func TestDefault(t *testing.T) {
	tests := []struct {
		behavior, option, want string
	}{
		{"delay", "sleep", `"1s"`},
		{"delay", "before", "true"},
		{"delay", "jitter", `"0s"`},
		{"error", "inject", "false"},
		{"error", "warmup", "0"},
		{"error", "status", "[]"},
		{"error", "message", `""`},
		{"bandwidth", "rate", "1048576"},
		{"bandwidth", "direction", `"to_client"`},
		{"corrupt", "probability", "0.01"},
		{"transient", "agitate", "1"},
	}
	for _, tt := range tests {
		s, ok := chaos.LookupBehavior(tt.behavior)
		if !ok {
			t.Errorf("behavior %s is not registered", tt.behavior)
			continue
		}
		o, ok := s.Options.Lookup(tt.option)
		if !ok {
			t.Errorf("%s has no option %s", tt.behavior, tt.option)
			continue
		}
		if got := catalog.Default(o); got != tt.want {
			t.Errorf("Default(%s.%s) = %s, want %s", tt.behavior, tt.option, got, tt.want)
		}
	}
	lists := []struct {
		opt  chaos.Option
		want string
	}{
		{chaos.Option{Name: "hosts", Kind: chaos.Strings, Default: []string{"a", "b"}}, `["a", "b"]`},
		{chaos.Option{Name: "codes", Kind: chaos.Ints, Default: []int64{502, 503}}, `[502, 503]`},
		{chaos.Option{Name: "rate", Kind: chaos.Float, Default: 0.5}, `0.5`},
	}
	for _, tt := range lists {
		if got := catalog.Default(tt.opt); got != tt.want {
			t.Errorf("Default(%v) = %s, want %s", tt.opt.Default, got, tt.want)
		}
	}
}

// TestMarkdownListsEverything checks the pages themselves: a section per
// behavior and protocol, a table row per option and the HCL example.
func TestMarkdownListsEverything(t *testing.T) {
	var b, p bytes.Buffer
	catalog.BehaviorsMarkdown(&b)
	catalog.ProtocolsMarkdown(&p)
	for _, s := range chaos.Behaviors() {
		checkSection(t, b.String(), s.Name, s.Options, s.Example)
	}
	for _, s := range chaos.Protocols() {
		checkSection(t, p.String(), s.Name, s.Options, s.Example)
	}
}

func checkSection(t *testing.T, md, name string, opts chaos.Options, example string) {
	t.Helper()
	if !strings.Contains(md, "\n## "+name+"\n") {
		t.Errorf("no section for %s", name)
		return
	}
	for _, o := range opts {
		row := fmt.Sprintf("| `%s` |", o.Name)
		def := fmt.Sprintf("| `%s` |", catalog.Default(o))
		if !strings.Contains(md, row) || !strings.Contains(md, def) {
			t.Errorf("%s: no table row for option %s with default %s", name, o.Name, catalog.Default(o))
		}
	}
	if example != "" && !strings.Contains(md, "```hcl\n"+example+"\n```") {
		t.Errorf("%s: the example is missing", name)
	}
}

// TestProtocolsSayWhichOptionsHaveNoEffect: `vaurien protocols` and the
// docs mark the options kept from the original that change nothing, and
// say why.
func TestProtocolsSayWhichOptionsHaveNoEffect(t *testing.T) {
	var text, md bytes.Buffer
	catalog.ProtocolsText(&text)
	catalog.ProtocolsMarkdown(&md)
	found := 0
	for _, p := range chaos.Protocols() {
		for _, o := range p.Options {
			if o.NoEffect == "" {
				continue
			}
			found++
			kind := o.Kind.String()
			if r := o.Range(); r != "" {
				kind += ", " + r
			}
			head := fmt.Sprintf("%s (%s, default %s)", o.Name, kind, catalog.Default(o))
			if !strings.Contains(text.String(), head) {
				t.Errorf("vaurien protocols lacks %q for %s", head, p.Name)
			}
			why := strings.Join(strings.Fields(o.NoEffect), " ")
			if !strings.Contains(strings.Join(strings.Fields(text.String()), " "), "No effect here: "+why) {
				t.Errorf("vaurien protocols does not say why %s's %s has no effect (%q)", p.Name, o.Name, why)
			}
			if !strings.Contains(md.String(), "No effect here: "+o.NoEffect) {
				t.Errorf("docs/protocols.md does not say why %s's %s has no effect", p.Name, o.Name)
			}
		}
	}
	if found < 3*6 {
		t.Errorf("%d options marked as without effect, want at least reuse_socket, buffer and keep_alive on the six protocols", found)
	}
}

// TestEveryNumberHasARange: each numeric option of every built-in behavior
// and protocol declares its range, within the bounds that keep its
// conversions from overflowing, and its default lies in it. The range is
// what HCL, flags, .ini files and both APIs check, and what the docs show.
func TestEveryNumberHasARange(t *testing.T) {
	var all []chaos.Option
	for _, s := range chaos.Behaviors() {
		all = append(all, s.Options...)
	}
	for _, s := range chaos.Protocols() {
		all = append(all, s.Options...)
	}
	for _, o := range all {
		switch o.Kind {
		case chaos.Int, chaos.Ints, chaos.Float, chaos.Duration:
		default:
			continue
		}
		limit := float64(chaos.MaxInt)
		if o.Kind == chaos.Duration {
			limit = chaos.MaxDuration.Seconds()
		}
		if o.Min == nil || o.Max == nil || *o.Min > *o.Max || *o.Max > limit || *o.Min < -limit {
			t.Errorf("option %q (%s) declares no range within ±%g", o.Name, o.Kind, limit)
			continue
		}
		if _, err := o.Convert(o.Default); err != nil {
			t.Errorf("option %q: default out of its range: %v", o.Name, err)
		}
	}
}
