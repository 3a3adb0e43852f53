package api

import "time"

// Catalog is the body of GET /catalog: every registered behavior with its
// declared options, the declarations the API checks a mix against. The web
// console builds its forms from it.
type Catalog struct {
	Behaviors []BehaviorDecl `json:"behaviors"`
}

// BehaviorDecl is one registered behavior.
type BehaviorDecl struct {
	Name    string       `json:"name"`
	Doc     string       `json:"doc"`
	Options []OptionDecl `json:"options"`
}

// OptionDecl is one declared option. Kind is "bool", "int", "number",
// "duration", "string", "list of strings" or "list of ints"; Default is in
// the form the API accepts (durations as Go duration strings); Min and Max
// bound numbers and each list element, in seconds for durations, and
// Range says the same in words, as the API's errors and the docs do.
type OptionDecl struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"`
	Default  any      `json:"default"`
	Doc      string   `json:"doc"`
	Choices  []string `json:"choices,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	Max      *float64 `json:"max,omitempty"`
	Range    string   `json:"range,omitempty"`
	NoEffect string   `json:"no_effect,omitempty"`
}

// Snapshot is the data of each "state" event of GET /events: every route
// with its rates over the last interval, and the experiments.
type Snapshot struct {
	Time   time.Time    `json:"time"`
	Routes []RouteState `json:"routes"`
	// Experiments is absent when there are none, or when this process
	// serves no experiments.
	Experiments []Experiment `json:"experiments,omitempty"`
}

// RouteState is a route as GET /routes/{name} shows it, with its rates.
type RouteState struct {
	Route
	Rates Rates `json:"rates"`
	// Faults counts, per behavior, the draws that injected a fault since
	// vaurien started.
	Faults map[string]int64 `json:"faults"`
}

// Rates are per-second rates over the interval since the previous event;
// zero in the first event.
type Rates struct {
	Connections float64 `json:"connections"` // accepted connections
	Requests    float64 `json:"requests"`
	Bytes       float64 `json:"bytes"` // both directions
	// Faults is per behavior; a behavior that injected nothing is absent.
	Faults map[string]float64 `json:"faults"`
}
