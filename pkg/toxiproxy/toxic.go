package toxiproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	// The toxics map onto the standard behaviors.
	_ "github.com/vaurien-go/vaurien/pkg/behavior"
	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// The toxic types Toxiproxy ships, all of which vaurien carries out.
const (
	typeLatency   = "latency"
	typeBandwidth = "bandwidth"
	typeSlowClose = "slow_close"
	typeTimeout   = "timeout"
	typeResetPeer = "reset_peer"
	typeSlicer    = "slicer"
	typeLimitData = "limit_data"
)

// Toxiproxy's stream names.
const (
	streamUpstream   = "upstream"   // client → backend
	streamDownstream = "downstream" // backend → client
)

// The attribute sets of each toxic type, with Toxiproxy's JSON names and
// integer types: a client sending "100" for a number is refused, as
// Toxiproxy refuses it.
type (
	latencyAttrs struct {
		Latency int64 `json:"latency"` // ms
		Jitter  int64 `json:"jitter"`  // ms
	}
	bandwidthAttrs struct {
		Rate int64 `json:"rate"` // KB/s
	}
	slowCloseAttrs struct {
		Delay int64 `json:"delay"` // ms
	}
	timeoutAttrs struct {
		Timeout int64 `json:"timeout"` // ms
	}
	resetPeerAttrs struct {
		Timeout int64 `json:"timeout"` // ms
	}
	slicerAttrs struct {
		AverageSize   int64 `json:"average_size"`   // bytes
		SizeVariation int64 `json:"size_variation"` // bytes
		Delay         int64 `json:"delay"`          // µs
	}
	limitDataAttrs struct {
		Bytes int64 `json:"bytes"`
	}
)

// newAttrs returns the zero attributes of a toxic type, or nil for a type
// Toxiproxy does not know.
func newAttrs(typ string) any {
	switch typ {
	case typeLatency:
		return &latencyAttrs{}
	case typeBandwidth:
		return &bandwidthAttrs{}
	case typeSlowClose:
		return &slowCloseAttrs{}
	case typeTimeout:
		return &timeoutAttrs{}
	case typeResetPeer:
		return &resetPeerAttrs{}
	case typeSlicer:
		return &slicerAttrs{}
	case typeLimitData:
		return &limitDataAttrs{}
	}
	return nil
}

// cloneAttrs copies attributes, so that an update never changes a toxic
// that live connections already hold.
func cloneAttrs(a any) any {
	switch x := a.(type) {
	case *latencyAttrs:
		c := *x
		return &c
	case *bandwidthAttrs:
		c := *x
		return &c
	case *slowCloseAttrs:
		c := *x
		return &c
	case *timeoutAttrs:
		c := *x
		return &c
	case *resetPeerAttrs:
		c := *x
		return &c
	case *slicerAttrs:
		c := *x
		return &c
	case *limitDataAttrs:
		c := *x
		return &c
	}
	return a
}

// attrRange ties a numeric attribute to the vaurien option it maps onto,
// whose declared range bounds it: per is how many of the option's units
// (seconds, bytes, bytes a second) one unit of the attribute makes. An
// attribute with noMax takes any size, as Toxiproxy takes it, and vaurien
// fits it to what it can do.
type attrRange struct {
	behavior, option string
	per              float64
	noMax            bool
}

// attrRanges are keyed by toxic type and attribute name.
var attrRanges = map[string]attrRange{
	typeLatency + ".latency":       {"delay", "sleep", 1e-3, false},
	typeLatency + ".jitter":        {"delay", "jitter", 1e-3, false},
	typeBandwidth + ".rate":        {"bandwidth", "rate", 1000, false},
	typeSlowClose + ".delay":       {"slow_close", "delay", 1e-3, false},
	typeTimeout + ".timeout":       {"timeout", "timeout", 1e-3, false},
	typeResetPeer + ".timeout":     {"reset_peer", "timeout", 1e-3, false},
	typeSlicer + ".average_size":   {"slicer", "average_size", 1, true},
	typeSlicer + ".size_variation": {"slicer", "size_variation", 1, true},
	typeSlicer + ".delay":          {"slicer", "delay", 1e-6, false},
	typeLimitData + ".bytes":       {"limit_data", "bytes", 1, false},
}

// checkAttrs refuses numbers outside the declared range of the vaurien
// option each maps onto, with the range in the attribute's own unit: a
// negative number, which Toxiproxy would read as zero or as nonsense, and
// one so large that its conversion would overflow (a latency of 2^63 ns
// would delay nothing).
func checkAttrs(typ string, a any) error {
	var vals map[string]int64
	switch x := a.(type) {
	case *latencyAttrs:
		vals = map[string]int64{"latency": x.Latency, "jitter": x.Jitter}
	case *bandwidthAttrs:
		vals = map[string]int64{"rate": x.Rate}
	case *slowCloseAttrs:
		vals = map[string]int64{"delay": x.Delay}
	case *timeoutAttrs:
		vals = map[string]int64{"timeout": x.Timeout}
	case *resetPeerAttrs:
		vals = map[string]int64{"timeout": x.Timeout}
	case *slicerAttrs:
		vals = map[string]int64{"average_size": x.AverageSize, "size_variation": x.SizeVariation, "delay": x.Delay}
	case *limitDataAttrs:
		vals = map[string]int64{"bytes": x.Bytes}
	}
	for _, name := range []string{"latency", "jitter", "rate", "delay", "timeout", "average_size", "size_variation", "bytes"} {
		v, ok := vals[name]
		if !ok {
			continue
		}
		r := attrRanges[typ+"."+name]
		spec, _ := chaos.LookupBehavior(r.behavior)
		o, _ := spec.Options.Lookup(r.option)
		lo := int64(math.Ceil(*o.Min / r.per))
		hi := int64(math.Floor(*o.Max / r.per))
		switch {
		case r.noMax && v < lo:
			return fmt.Errorf("attribute %q is %d; it must be at least %d", name, v, lo)
		case !r.noMax && (v < lo || v > hi):
			return fmt.Errorf("attribute %q is %d, out of range; want from %d to %d", name, v, lo, hi)
		}
	}
	return nil
}

// toxicSeq numbers toxic versions: a toxic gets a new id when it is created
// and each time it is updated, so that a live connection draws its
// toxicity again after an update, as Toxiproxy restarts an updated toxic.
var toxicSeq atomic.Uint64

// toxic is one immutable version of a toxic on a proxy.
type toxic struct {
	id       uint64
	origin   uint64 // the id it was created with, kept across updates
	name     string
	typ      string
	stream   string // as the client spelled it
	dir      chaos.Direction
	toxicity float32
	attrs    any // one of the *xxxAttrs types
	// beh is the vaurien behavior the toxic maps onto, for routes that draw
	// per request; stream routes run the toxic through live filters.
	beh chaos.Behavior
}

// MarshalJSON writes Toxiproxy's toxic object.
func (t *toxic) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Attributes any     `json:"attributes"`
		Name       string  `json:"name"`
		Type       string  `json:"type"`
		Stream     string  `json:"stream"`
		Toxicity   float32 `json:"toxicity"`
	}{t.attrs, t.name, t.typ, t.stream, t.toxicity})
}

// probability is the chance that a unit gets the toxic. A toxicity of 0
// never applies (Toxiproxy's issue 603), 1 or more always does.
func (t *toxic) probability() float64 {
	return min(max(float64(t.toxicity), 0), 1)
}

// parseStream maps a Toxiproxy stream name onto a vaurien direction.
func parseStream(s string) (chaos.Direction, bool) {
	switch strings.ToLower(s) {
	case streamUpstream:
		return chaos.ToBackend, true
	case streamDownstream:
		return chaos.ToClient, true
	}
	return 0, false
}

// toxicInput is the body of a toxic creation; pointers tell an absent
// field from an empty one, as Toxiproxy's defaults do.
type toxicInput struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Stream     *string         `json:"stream"`
	Toxicity   *float32        `json:"toxicity"`
	Attributes json.RawMessage `json:"attributes"`
}

// toxicUpdate is the body of a toxic update: attributes given replace
// those of the toxic, the others stay.
type toxicUpdate struct {
	Toxicity   *float32        `json:"toxicity"`
	Attributes json.RawMessage `json:"attributes"`
}

// ignoredAttrs lists the attributes of a toxic body that its type does not
// have. Toxiproxy accepts and drops them, so its clients may send them; they
// are accepted here too, but said in the log rather than dropped silently.
func ignoredAttrs(typ string, body []byte) []string {
	var in struct {
		Attributes map[string]json.RawMessage `json:"attributes"`
	}
	a := newAttrs(typ)
	if a == nil || json.Unmarshal(body, &in) != nil {
		return nil
	}
	known := map[string]bool{}
	rt := reflect.TypeOf(a).Elem()
	for i := range rt.NumField() {
		known[strings.Split(rt.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	var ignored []string
	for k := range in.Attributes {
		if !known[k] {
			ignored = append(ignored, k)
		}
	}
	slices.Sort(ignored)
	return ignored
}

// decodeAttrs reads attributes into a, keeping the fields the JSON leaves
// out, and checks them all, those left out included.
func decodeAttrs(typ string, raw json.RawMessage, a any) error {
	if len(bytes.TrimSpace(raw)) != 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if err := json.Unmarshal(raw, a); err != nil {
			return err
		}
	}
	return checkAttrs(typ, a)
}

// newToxic validates a creation body and builds the toxic, checking in
// Toxiproxy's order so that each mistake gets Toxiproxy's answer; exists
// tells whether the proxy already has a toxic of that name.
func newToxic(body []byte, exists func(name string) bool) (*toxic, error) {
	var in toxicInput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, badBody(err)
	}
	stream := streamDownstream
	if in.Stream != nil {
		stream = *in.Stream
	}
	dir, ok := parseStream(stream)
	if !ok {
		return nil, errInvalidStream
	}
	t := &toxic{name: in.Name, typ: in.Type, stream: stream, dir: dir, toxicity: 1, origin: toxicSeq.Add(1)}
	if in.Toxicity != nil {
		t.toxicity = *in.Toxicity
	}
	if t.name == "" {
		t.name = t.typ + "_" + t.stream
	}
	if t.attrs = newAttrs(t.typ); t.attrs == nil {
		return nil, errInvalidToxicType
	}
	// The body is checked whole before the name: a toxic that could not be
	// created is a 400 whether or not its name is taken.
	if err := decodeAttrs(t.typ, in.Attributes, t.attrs); err != nil {
		return nil, badBody(err)
	}
	if err := checkToxicity(t.toxicity); err != nil {
		return nil, err
	}
	if exists(t.name) {
		return nil, errToxicExists
	}
	return t, t.build()
}

// updated returns a new version of t with an update body applied.
func (t *toxic) updated(body []byte) (*toxic, error) {
	var in toxicUpdate
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, badBody(err)
	}
	n := *t
	n.attrs = cloneAttrs(t.attrs)
	if in.Toxicity != nil {
		n.toxicity = *in.Toxicity
	}
	if err := decodeAttrs(n.typ, in.Attributes, n.attrs); err != nil {
		return nil, badBody(err)
	}
	if err := checkToxicity(n.toxicity); err != nil {
		return nil, err
	}
	return &n, n.build()
}

// checkToxicity refuses a chance that is not one: below 0 or above 1.
func checkToxicity(f float32) error {
	if !(f >= 0 && f <= 1) {
		return badBody(fmt.Errorf("toxicity %g is out of range; want from 0 to 1", f))
	}
	return nil
}

// build gives the toxic a new id and its vaurien behavior.
func (t *toxic) build() error {
	t.id = toxicSeq.Add(1)
	b, err := t.behavior()
	if err != nil {
		return badBody(err)
	}
	t.beh = b
	return nil
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// behavior maps the toxic onto vaurien's behaviors: the registered ones
// where they mean the same, a per-chunk latency filter for latency (a
// vaurien delay waits once per unit, Toxiproxy's latency delays every
// chunk).
func (t *toxic) behavior() (chaos.Behavior, error) {
	dir := t.dir.String()
	switch a := t.attrs.(type) {
	case *latencyAttrs:
		return latencyBehavior{dir: t.dir, latency: ms(a.Latency), jitter: ms(a.Jitter)}, nil
	case *bandwidthAttrs:
		if a.Rate == 0 {
			return stopBehavior{dir: t.dir}, nil
		}
		return registered("bandwidth", map[string]any{"rate": a.Rate * 1000, "direction": dir})
	case *slowCloseAttrs:
		return registered("slow_close", map[string]any{"delay": ms(a.Delay)})
	case *timeoutAttrs:
		return registered("timeout", map[string]any{"timeout": ms(a.Timeout)})
	case *resetPeerAttrs:
		return registered("reset_peer", map[string]any{"timeout": ms(a.Timeout)})
	case *slicerAttrs:
		avg, vary := slicerSizes(a)
		return registered("slicer", map[string]any{
			"average_size": avg, "size_variation": vary,
			"delay": time.Duration(a.Delay) * time.Microsecond, "direction": dir,
		})
	case *limitDataAttrs:
		return registered("limit_data", map[string]any{"bytes": a.Bytes, "direction": dir})
	}
	return nil, errInvalidToxicType
}

// maxSlice is the largest piece vaurien's slicer writes: one read buffer.
const maxSlice = 32 << 10

// slicerSizes fits Toxiproxy's slicer sizes into vaurien's: pieces of at
// least one byte, at most one buffer, varying by less than their average.
func slicerSizes(a *slicerAttrs) (avg, vary int64) {
	avg = min(max(a.AverageSize, 1), maxSlice)
	vary = min(a.SizeVariation, avg-1)
	return avg, vary
}

func registered(name string, opts map[string]any) (chaos.Behavior, error) {
	b, _, err := chaos.NewBehavior(name, opts)
	if err != nil {
		return nil, fmt.Errorf("build %s toxic: %w", name, err)
	}
	return b, nil
}

// apiError is Toxiproxy's error answer, {"error": "...", "status": N}.
type apiError struct {
	Message string `json:"error"`
	Status  int    `json:"status"`
}

func (e *apiError) Error() string { return e.Message }

// Toxiproxy's errors, with its messages and status codes.
var (
	errMissingField     = &apiError{"missing required field", 400}
	errProxyNotFound    = &apiError{"proxy not found", 404}
	errProxyExists      = &apiError{"proxy already exists", 409}
	errInvalidStream    = &apiError{"stream was invalid, can be either upstream or downstream", 400}
	errInvalidToxicType = &apiError{"invalid toxic type", 400}
	errToxicExists      = &apiError{"toxic already exists", 409}
	errToxicNotFound    = &apiError{"toxic not found", 404}
	errUnauthorized     = &apiError{"unauthorized: this call needs the API token, sent as \"Authorization: Bearer <token>\"", http.StatusUnauthorized}
)

func badBody(err error) *apiError {
	return &apiError{"bad request body: " + err.Error(), 400}
}

func missing(field string) *apiError {
	return &apiError{errMissingField.Message + ": " + field, errMissingField.Status}
}

// asAPIError gives any error Toxiproxy's shape: its own errors keep their
// status, a missing route is a missing proxy, a refused request a 400, and
// the rest are 500s, as Toxiproxy answers a proxy that cannot listen.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) {
		switch sc.StatusCode() {
		case http.StatusNotFound:
			return errProxyNotFound
		case http.StatusBadRequest: // a request that cannot work, such as an upstream that is vaurien itself
			return &apiError{err.Error(), http.StatusBadRequest}
		}
	}
	return &apiError{err.Error(), 500}
}
