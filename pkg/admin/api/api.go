// Package api holds the wire types of vaurien's admin HTTP API: the JSON
// bodies that the admin server sends and accepts. It has no server or
// client code, so that the Go client imports it without the web framework.
package api

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// Behavior is one entry of a mix: a registered behavior, its share of the
// draws in percent (0 to 100), and its options keyed by option name.
// Durations are sent as Go duration strings ("500ms"); the server also
// accepts a number of seconds.
type Behavior struct {
	Name    string           `json:"name"`
	Percent float64          `json:"percent"`
	Options map[string]any   `json:"options,omitempty"`
	Match   *chaos.MatchSpec `json:"match,omitempty"` // limits the behavior to matching requests
}

// Route is a running route as the API shows it.
type Route struct {
	Name     string `json:"name"`
	Listen   string `json:"listen"` // the bound address, with the real port
	Backend  string `json:"backend"`
	Protocol string `json:"protocol"`
	Enabled  bool   `json:"enabled"`
	// Default marks the route that the original single-route endpoints
	// (/behavior, /backend) act on.
	Default bool `json:"default"`
	// Mix is the live mix; the share no entry takes is dummy.
	Mix []Behavior `json:"mix"`
	// ConfiguredMix is the mix the configuration file gives the route, the
	// one a reset brings back.
	ConfiguredMix []Behavior `json:"configured_mix"`
	// RevertsAt is when a timed mix change ends by itself, if one is in
	// force, and RevertsTo what comes in force then.
	RevertsAt *time.Time `json:"reverts_at,omitempty"`
	RevertsTo *SetMix    `json:"reverts_to,omitempty"`
	Stats     Stats      `json:"stats"`
}

// Stats are a route's counters since vaurien started.
type Stats struct {
	Accepted       int64 `json:"accepted"`
	Active         int64 `json:"active"`
	Refused        int64 `json:"refused"`
	DialErrors     int64 `json:"dial_errors"`
	BytesToBackend int64 `json:"bytes_to_backend"`
	BytesToClient  int64 `json:"bytes_to_client"`
	Requests       int64 `json:"requests"`
	Faults         int64 `json:"faults"`
}

// Routes is the body of GET /routes and of a reset of every route.
type Routes struct {
	Routes []Route `json:"routes"`
}

// SetMix is the body of PUT /routes/{name}/mix. With a positive Duration
// the previous mix comes back by itself once it has passed, or Then if
// given. A Seed other than 0 restarts the route's draws from it: the same
// requests, in the same order, then meet the same behaviors.
type SetMix struct {
	Behaviors []Behavior `json:"behaviors"`
	Duration  Duration   `json:"duration,omitempty"`
	Seed      uint64     `json:"seed,omitempty"`
	Then      *SetMix    `json:"then,omitempty"`
}

// SetBackend is the body of PUT /backend and PUT /routes/{name}/backend.
type SetBackend struct {
	Backend string `json:"backend"`
}

// CurrentBehavior is the body of GET /behavior: one behavior name when the
// mix is that behavior at 100%, "dummy" for an empty mix, else the mix in
// the original's syntax ("20:delay,5:error").
type CurrentBehavior struct {
	Behavior string `json:"behavior"`
}

// BehaviorNames is the body of GET /behaviors.
type BehaviorNames struct {
	Behaviors []string `json:"behaviors"`
}

// CurrentBackend is the body of GET /backend.
type CurrentBackend struct {
	Backend string `json:"backend"`
}

// Status is the body of calls that only report success, and of the health
// endpoints. Warnings, on the original's PUT /behavior and PUT /backend,
// lists the keys of the request that were ignored.
type Status struct {
	Status   string   `json:"status"`
	Warnings []string `json:"warnings,omitempty"`
}

// Version is the body of GET /version.
type Version struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Go      string `json:"go"`
}

// Error is the body of every error response but those of the original's
// PUT /behavior and PUT /backend.
type Error struct {
	Error string `json:"error"`
	// Field, when the error is about one field of the request body, names
	// it as a path: "backend", "duration", "behaviors[0].percent",
	// "behaviors[1].options.sleep".
	Field string `json:"field,omitempty"`
	// Diagnostics, on a refused reload, lists every problem of the file,
	// each as "file:line:col: error: summary: detail", as `vaurien
	// validate` prints them.
	Diagnostics []string `json:"diagnostics,omitempty"`
}

// OriginalErrors is the body of an error response of the original's
// PUT /behavior and PUT /backend, in the shape the original Vaurien (and
// its Python client) used. Status is "error".
type OriginalErrors struct {
	Status string          `json:"status"`
	Errors []OriginalError `json:"errors"`
}

// OriginalError is one error of OriginalErrors. Name is the body key at
// fault: "name" for an unknown behavior, an option's name for a bad value,
// "" for a body that is not JSON or lacks its required key.
type OriginalError struct {
	Location    string `json:"location"` // always "body"
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("30s"); a number is read as seconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "1m30s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		*d = 0
		return nil
	case float64:
		ns := x * float64(time.Second)
		if math.IsNaN(ns) || math.Abs(ns) >= math.MaxInt64 {
			return fmt.Errorf("duration %v seconds is out of range", x)
		}
		*d = Duration(ns)
		return nil
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return d.UnmarshalJSON([]byte(strconv.FormatFloat(f, 'g', -1, 64)))
		}
		td, err := time.ParseDuration(x)
		if err != nil {
			return fmt.Errorf("invalid duration %q: want a Go duration such as \"30s\" or a number of seconds", x)
		}
		*d = Duration(td)
		return nil
	}
	return fmt.Errorf("invalid duration %s: want a string such as \"30s\" or a number of seconds", b)
}

// FromMix renders a mix as the API shows it; the result, sent back in a
// PUT /routes/{name}/mix, builds the same mix.
func FromMix(m *chaos.Mix) []Behavior {
	es := m.Entries()
	out := make([]Behavior, 0, len(es))
	for _, e := range es {
		b := Behavior{Name: e.Name, Percent: e.Percent, Options: JSONOptions(e.Options)}
		if !e.MatchSpec.IsZero() {
			b.Match = &e.MatchSpec
		}
		out = append(out, b)
	}
	return out
}

// JSONOptions turns option values into what JSON carries and the option
// declarations read back: durations become Go duration strings.
func JSONOptions(v chaos.Values) map[string]any {
	if len(v) == 0 {
		return nil
	}
	out := make(map[string]any, len(v))
	for k, x := range v {
		switch t := x.(type) {
		case nil:
			continue // absent reads back as the default
		case time.Duration:
			out[k] = t.String()
		default:
			out[k] = x
		}
	}
	return out
}
