package toxiproxy

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func none(string) bool { return false }

func TestNewToxic(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		exists bool
		want   string // the toxic's JSON, or the error's
		status int
	}{
		{"defaults", `{"type":"latency","attributes":{"latency":100}}`, false,
			`{"attributes":{"latency":100,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}`, 0},
		{"all given", `{"name":"slow","type":"bandwidth","stream":"upstream","toxicity":0.25,"attributes":{"rate":10}}`, false,
			`{"attributes":{"rate":10},"name":"slow","type":"bandwidth","stream":"upstream","toxicity":0.25}`, 0},
		{"toxicity zero is kept", `{"type":"timeout","toxicity":0}`, false,
			`{"attributes":{"timeout":0},"name":"timeout_downstream","type":"timeout","stream":"downstream","toxicity":0}`, 0},
		{"slicer", `{"type":"slicer","attributes":{"average_size":8,"size_variation":2,"delay":10}}`, false,
			`{"attributes":{"average_size":8,"size_variation":2,"delay":10},"name":"slicer_downstream","type":"slicer","stream":"downstream","toxicity":1}`, 0},
		{"unknown attributes are ignored", `{"type":"limit_data","attributes":{"bytes":5,"other":"x"}}`, false,
			`{"attributes":{"bytes":5},"name":"limit_data_downstream","type":"limit_data","stream":"downstream","toxicity":1}`, 0},
		{"reset_peer", `{"type":"reset_peer","stream":"UPSTREAM","attributes":{"timeout":20}}`, false,
			`{"attributes":{"timeout":20},"name":"reset_peer_UPSTREAM","type":"reset_peer","stream":"UPSTREAM","toxicity":1}`, 0},
		{"slow_close", `{"type":"slow_close","attributes":{"delay":20}}`, false,
			`{"attributes":{"delay":20},"name":"slow_close_downstream","type":"slow_close","stream":"downstream","toxicity":1}`, 0},
		{"bad json", `{"type":`, false, "bad request body: unexpected end of JSON input", 400},
		{"string for a number", `{"type":"latency","attributes":{"latency":"100"}}`, false, "bad request body: json: cannot unmarshal string", 400},
		{"fraction for an integer", `{"type":"latency","attributes":{"latency":1.5}}`, false, "bad request body: json: cannot unmarshal number 1.5", 400},
		{"negative", `{"type":"bandwidth","attributes":{"rate":-1}}`, false, `bad request body: attribute "rate" is -1`, 400},
		{"toxicity as text", `{"type":"latency","toxicity":"1"}`, false, "bad request body", 400},
		{"empty stream", `{"type":"latency","stream":""}`, false, "stream was invalid, can be either upstream or downstream", 400},
		{"bad stream", `{"type":"latency","stream":"sideways"}`, false, "stream was invalid", 400},
		{"unknown type", `{"type":"nope"}`, false, "invalid toxic type", 400},
		{"missing type", `{}`, false, "invalid toxic type", 400},
		{"name taken", `{"type":"latency","attributes":{"latency":5}}`, true, "toxic already exists", 409},
		{"bad type before a taken name", `{"type":"latency","attributes":{"latency":"bad"}}`, true, "cannot unmarshal string", 400},
		{"latency that would overflow", `{"type":"latency","attributes":{"latency":9223372036855}}`, false, `attribute "latency" is 9223372036855, out of range; want from 0 to 360000000000`, 400},
		{"jitter that would overflow", `{"type":"latency","attributes":{"jitter":9223372036854775807}}`, false, `attribute "jitter" is 9223372036854775807, out of range`, 400},
		{"negative timeout", `{"type":"timeout","attributes":{"timeout":-1}}`, false, `attribute "timeout" is -1, out of range; want from 0 to 360000000000`, 400},
		{"slicer delay in µs", `{"type":"slicer","attributes":{"average_size":1,"delay":360000000000001}}`, false, `attribute "delay" is 360000000000001, out of range; want from 0 to 360000000000000`, 400},
		{"bandwidth in KB/s", `{"type":"bandwidth","attributes":{"rate":9007199254741}}`, false, `attribute "rate" is 9007199254741, out of range; want from 0 to 9007199254740`, 400},
		{"slicer average_size 0", `{"type":"slicer","attributes":{"average_size":0}}`, false, `attribute "average_size" is 0; it must be at least 1`, 400},
		{"slicer without attributes", `{"type":"slicer"}`, false, `attribute "average_size" is 0; it must be at least 1`, 400},
		{"slicer average_size over a buffer, fitted", `{"type":"slicer","attributes":{"average_size":1000000}}`, false,
			`{"attributes":{"average_size":1000000,"size_variation":0,"delay":0},"name":"slicer_downstream","type":"slicer","stream":"downstream","toxicity":1}`, 0},
		{"toxicity above 1", `{"type":"latency","toxicity":1.5}`, false, "toxicity 1.5 is out of range; want from 0 to 1", 400},
		{"toxicity below 0", `{"type":"latency","toxicity":-0.1}`, false, "toxicity -0.1 is out of range; want from 0 to 1", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tox, err := newToxic([]byte(tt.body), func(string) bool { return tt.exists })
			if tt.status != 0 {
				var ae *apiError
				if !errors.As(err, &ae) {
					t.Fatalf("got %v, want an API error", err)
				}
				if ae.Status != tt.status || !strings.Contains(ae.Message, tt.want) {
					t.Errorf("got %d %q, want %d containing %q", ae.Status, ae.Message, tt.status, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(tox)
			if string(b) != tt.want {
				t.Errorf("got  %s\nwant %s", b, tt.want)
			}
			if tox.beh == nil {
				t.Error("no behavior built")
			}
		})
	}
}

func TestToxicUpdateKeepsWhatItDoesNotSay(t *testing.T) {
	old, err := newToxic([]byte(`{"type":"latency","toxicity":0.5,"attributes":{"latency":100,"jitter":10}}`), none)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		body, want string
	}{
		{`{"attributes":{"jitter":20}}`, `{"attributes":{"latency":100,"jitter":20},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":0.5}`},
		{`{"toxicity":1}`, `{"attributes":{"latency":100,"jitter":10},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}`},
		{`{"name":"other","type":"bandwidth","stream":"upstream"}`, `{"attributes":{"latency":100,"jitter":10},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":0.5}`},
	}
	for _, tt := range tests {
		n, err := old.updated([]byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(n); string(b) != tt.want {
			t.Errorf("%s:\n got  %s\n want %s", tt.body, b, tt.want)
		}
		if n.id == old.id || n.origin != old.origin {
			t.Errorf("%s: an update must be a new version of the same toxic", tt.body)
		}
	}
	if b, _ := json.Marshal(old); !strings.Contains(string(b), `"jitter":10`) || !strings.Contains(string(b), `"toxicity":0.5`) {
		t.Errorf("the old version changed: %s", b)
	}
	if _, err := old.updated([]byte(`{"attributes":{"latency":"x"}}`)); err == nil {
		t.Error("a bad update was accepted")
	}
}

func TestSlicerSizesFitVaurien(t *testing.T) {
	tests := []struct{ avg, vary, wantAvg, wantVary int64 }{
		{64, 0, 64, 0},
		{0, 0, 1, 0},
		{10, 50, 10, 9},
		{1 << 30, 5, maxSlice, 5},
	}
	for _, tt := range tests {
		avg, vary := slicerSizes(&slicerAttrs{AverageSize: tt.avg, SizeVariation: tt.vary})
		if avg != tt.wantAvg || vary != tt.wantVary {
			t.Errorf("slicerSizes(%d, %d) = %d, %d; want %d, %d", tt.avg, tt.vary, avg, vary, tt.wantAvg, tt.wantVary)
		}
	}
}

func TestSwitchReader(t *testing.T) {
	changed := make(chan struct{})
	r := &switchReader{src: iotest.OneByteReader(strings.NewReader("abcdef")), changed: changed}
	buf := make([]byte, 10)
	if n, err := r.Read(buf); n != 1 || err != nil || buf[0] != 'a' {
		t.Fatalf("first read: %d %v", n, err)
	}
	close(changed)
	// The change ends this chain's input...
	if n, err := r.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("after the change: %d %v, want EOF", n, err)
	}
	if r.ended() {
		t.Fatal("src has not ended")
	}
	// ...and the next chain gets the rest, nothing lost.
	r.changed = make(chan struct{})
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "bcdef" || !r.ended() {
		t.Fatalf("next chain read %q, %v, ended %v", rest, err, r.ended())
	}
}

func TestSwitchReaderKeepsBytesReadAsTheChangeCame(t *testing.T) {
	changed := make(chan struct{})
	src := readFunc(func(p []byte) (int, error) {
		close(changed) // the change lands while the read is blocked
		return copy(p, "xyz"), io.EOF
	})
	r := &switchReader{src: src, changed: changed}
	if n, err := r.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("got %d %v, want the bytes kept back", n, err)
	}
	if r.ended() {
		t.Fatal("ended with bytes pending")
	}
	r.changed = make(chan struct{})
	rest, _ := io.ReadAll(r)
	if string(rest) != "xyz" || !r.ended() {
		t.Fatalf("got %q, ended %v", rest, r.ended())
	}
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

func TestHubClosesOnlyChangedDirections(t *testing.T) {
	h := newHub()
	s0 := h.load()
	up, err := newToxic([]byte(`{"type":"latency","stream":"upstream"}`), none)
	if err != nil {
		t.Fatal(err)
	}
	s1 := h.store([]*toxic{up})
	if !isClosed(s0.changed[0]) || isClosed(s0.changed[1]) {
		t.Fatal("adding an upstream toxic must signal upstream only")
	}
	if s1.changed[1] != s0.changed[1] {
		t.Fatal("the downstream channel was replaced")
	}
	down, _ := newToxic([]byte(`{"type":"bandwidth","attributes":{"rate":0}}`), none)
	s2 := h.store([]*toxic{up, down})
	if isClosed(s1.changed[0]) || !isClosed(s1.changed[1]) {
		t.Fatal("adding a downstream toxic must signal downstream only")
	}
	// The stop filter of a set is released by the set's own change.
	if sb, ok := s2.composite[1].Behavior.(stopBehavior); !ok || sb.flush != s2.changed[1] {
		t.Fatalf("stop behavior not bound to its set: %#v", s2.composite[1].Behavior)
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
