package chaos

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
)

// BehaviorSpec declares a behavior: its name, documentation, options and
// constructor. Register it once, from an init function.
type BehaviorSpec struct {
	Name    string
	Doc     string // what it does, in a few sentences, for users
	Options Options
	Example string // an HCL behavior block showing its use
	// New builds a configured behavior from validated options. It is called
	// each time a mix that uses the behavior is built.
	New func(Values) (Behavior, error)
	// Handshake marks a behavior that acts on the TLS handshake only (its
	// effects set Effect.Handshake alone): it needs a route that
	// terminates TLS.
	Handshake bool
}

// ProtocolSpec declares a protocol the same way.
type ProtocolSpec struct {
	Name    string
	Doc     string
	Options Options
	Example string
	New     func(Values) (Protocol, error)
	// ALPN lists the application protocols a route offers, and asks its
	// backend for, when it speaks TLS (http: "http/1.1").
	ALPN []string
	// Commands, when set, is the closed set of values the protocol gives
	// Request.Command whatever clients send (a database's statement
	// keywords, with a catch-all): metrics then count requests, their
	// durations and faults by command. A protocol whose clients can name
	// any command leaves it nil.
	Commands []string
	// OtherCommand is the catch-all among Commands, which metrics count a
	// command outside the set as. Required with Commands.
	OtherCommand string
	// InnerTLS marks a protocol that negotiates TLS inside its own
	// exchange (PostgreSQL's SSLRequest): the engine leaves the route's
	// tls and backend_tls blocks to it, and its sessions implement
	// TLSUpgrader.
	InnerTLS bool
	// TLSBoth, when set, says why an InnerTLS protocol speaks TLS on both
	// sides at once or on neither: a route takes tls and backend_tls
	// together.
	TLSBoth string
	// CheckErrorCode, when set, says whether code, the code option of an
	// error behavior (ErrorSpec.Code), names an error the protocol can
	// answer, with the lookup its faults use; the error says what the
	// protocol takes instead. Config files and the admin API check a
	// route's mixes with it, so that a code the route could only answer as
	// an unknown error is refused where it is written. Protocols whose
	// errors carry no code leave it nil.
	CheckErrorCode func(code string) error
}

var (
	regMu     sync.RWMutex
	behaviors = map[string]BehaviorSpec{}
	protocols = map[string]ProtocolSpec{}
	validName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// RegisterBehavior makes a behavior available by name to config files, flags
// and the API. It panics on a programmer error: an invalid or duplicate name,
// or a missing constructor.
func RegisterBehavior(s BehaviorSpec) {
	mustValid("behavior", s.Name, s.New == nil, s.Options)
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := behaviors[s.Name]; dup {
		panic(fmt.Sprintf("chaos: behavior %q registered twice", s.Name))
	}
	behaviors[s.Name] = s
}

// RegisterProtocol makes a protocol available by name, with the same rules;
// a protocol that declares Commands names its catch-all among them.
func RegisterProtocol(s ProtocolSpec) {
	mustValid("protocol", s.Name, s.New == nil, s.Options)
	if len(s.Commands) > 0 && !slices.Contains(s.Commands, s.OtherCommand) {
		panic(fmt.Sprintf("chaos: protocol %q declares commands without its catch-all among them (OtherCommand %q)", s.Name, s.OtherCommand))
	}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := protocols[s.Name]; dup {
		panic(fmt.Sprintf("chaos: protocol %q registered twice", s.Name))
	}
	protocols[s.Name] = s
}

func mustValid(what, name string, noNew bool, opts Options) {
	if !validName.MatchString(name) {
		panic(fmt.Sprintf("chaos: %s name %q is not lowercase snake_case", what, name))
	}
	if noNew {
		panic(fmt.Sprintf("chaos: %s %q has no constructor", what, name))
	}
	seen := map[string]bool{}
	for _, o := range opts {
		if !validName.MatchString(o.Name) || seen[o.Name] || o.Kind == 0 {
			panic(fmt.Sprintf("chaos: %s %q declares option %q twice or invalidly", what, name, o.Name))
		}
		seen[o.Name] = true
	}
}

// LookupBehavior returns the registered behavior named name.
func LookupBehavior(name string) (BehaviorSpec, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	s, ok := behaviors[name]
	return s, ok
}

// LookupProtocol returns the registered protocol named name.
func LookupProtocol(name string) (ProtocolSpec, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	s, ok := protocols[name]
	return s, ok
}

// Behaviors lists the registered behaviors sorted by name.
func Behaviors() []BehaviorSpec {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]BehaviorSpec, 0, len(behaviors))
	for _, s := range behaviors {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Protocols lists the registered protocols sorted by name.
func Protocols() []ProtocolSpec {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]ProtocolSpec, 0, len(protocols))
	for _, s := range protocols {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// BehaviorNames lists the registered behavior names, sorted.
func BehaviorNames() []string {
	var names []string
	for _, s := range Behaviors() {
		names = append(names, s.Name)
	}
	return names
}

// ProtocolNames lists the registered protocol names, sorted.
func ProtocolNames() []string {
	var names []string
	for _, s := range Protocols() {
		names = append(names, s.Name)
	}
	return names
}

// UnknownError reports a name that is not registered, listing the valid
// ones and the closest match.
type UnknownError struct {
	What  string // "behavior" or "protocol"
	Name  string
	Valid []string
}

func (e *UnknownError) Error() string {
	msg := fmt.Sprintf("unknown %s %q; valid %ss: %s", e.What, e.Name, e.What, strings.Join(e.Valid, ", "))
	if s := Closest(e.Name, e.Valid); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

// NewBehavior looks up a behavior, resolves its options from typed values
// and builds it.
func NewBehavior(name string, opts map[string]any) (Behavior, Values, error) {
	s, ok := LookupBehavior(name)
	if !ok {
		return nil, nil, &UnknownError{What: "behavior", Name: name, Valid: BehaviorNames()}
	}
	v, err := s.Options.Resolve(name, opts)
	if err != nil {
		return nil, nil, err
	}
	b, err := s.New(v)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, v, nil
}

// NewProtocol looks up a protocol, resolves its options and builds it.
func NewProtocol(name string, opts map[string]any) (Protocol, Values, error) {
	s, ok := LookupProtocol(name)
	if !ok {
		return nil, nil, &UnknownError{What: "protocol", Name: name, Valid: ProtocolNames()}
	}
	v, err := s.Options.Resolve(name, opts)
	if err != nil {
		return nil, nil, err
	}
	p, err := s.New(v)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, v, nil
}
