// Package probe owns the probes of chaos experiments — the small, bounded
// requests that measure the system under test while faults are injected —
// and the measures that SLOs apply to their results.
//
// Probe kinds follow the pattern of package chaos: one Spec per kind (name,
// documentation, typed options, example, constructor) drives the HCL
// checks, the docs and the runner. The built-in kinds (http, tcp, redis,
// command) register themselves here; another kind joins with Register.
package probe

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// Limits that keep a probe a probe and not a load test.
const (
	// MinInterval is the shortest pause between two requests of one
	// worker of a probe.
	MinInterval = 10 * time.Millisecond
	// MaxRate bounds a probe's requests per second: its concurrency
	// divided by its interval.
	MaxRate = 100.0
	// DefaultInterval and DefaultConcurrency apply when a probe leaves
	// them out.
	DefaultInterval    = time.Second
	DefaultConcurrency = 1
)

// Prober makes one attempt at the system under test and says whether it
// failed. It bounds its own attempt with its timeout option, and returns
// early when ctx ends. It is called from several goroutines at once when
// the probe's concurrency is above 1.
type Prober interface {
	Probe(ctx context.Context) error
}

// Spec declares a probe kind. Register it once, from an init function.
type Spec struct {
	Name    string
	Doc     string // what it does and what counts as a failure
	Options chaos.Options
	Example string // a probe block showing its use
	// New builds a prober from validated options, or says which option
	// is missing or wrong.
	New func(chaos.Values) (Prober, error)
}

var (
	mu        sync.RWMutex
	kinds     = map[string]Spec{}
	validName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Register makes a probe kind available by name. It panics on a
// programmer error: an invalid or duplicate name, or no constructor.
func Register(s Spec) {
	if !validName.MatchString(s.Name) || s.New == nil {
		panic(fmt.Sprintf("probe: kind %q has an invalid name or no constructor", s.Name))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := kinds[s.Name]; dup {
		panic(fmt.Sprintf("probe: kind %q registered twice", s.Name))
	}
	kinds[s.Name] = s
}

// Lookup returns the probe kind named name.
func Lookup(name string) (Spec, bool) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := kinds[name]
	return s, ok
}

// Specs lists the registered kinds sorted by name.
func Specs() []Spec {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]Spec, 0, len(kinds))
	for _, s := range kinds {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names lists the registered kind names, sorted.
func Names() []string {
	var out []string
	for _, s := range Specs() {
		out = append(out, s.Name)
	}
	return out
}

// New builds a prober of a registered kind from typed option values (as
// JSON or HCL give them), defaults filled in.
func New(kind string, opts map[string]any) (Prober, error) {
	s, ok := Lookup(kind)
	if !ok {
		return nil, &chaos.UnknownError{What: "probe kind", Name: kind, Valid: Names()}
	}
	v, err := s.Options.Resolve(kind, opts)
	if err != nil {
		return nil, err
	}
	return s.New(v)
}

// timeoutOption is the timeout every built-in kind declares, with its own
// default.
func timeoutOption(def time.Duration) chaos.Option {
	return chaos.Option{Name: "timeout", Kind: chaos.Duration, Default: def, Min: ptr(0.001),
		Doc: "How long one attempt may take before it counts as a failure."}
}

func ptr[T any](v T) *T { return &v }
