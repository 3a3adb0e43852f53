package api

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationJSON(t *testing.T) {
	cases := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{`"30s"`, 30 * time.Second, false},
		{`"1m30s"`, 90 * time.Second, false},
		{`1.5`, 1500 * time.Millisecond, false},
		{`"2"`, 2 * time.Second, false},
		{`0`, 0, false},
		{`null`, 0, false},
		{`"-1s"`, -time.Second, false},
		{`"soon"`, 0, true},
		{`1e300`, 0, true},
		{`"NaN"`, 0, true},
		{`true`, 0, true},
		{`[1]`, 0, true},
	}
	for _, c := range cases {
		var d Duration
		err := json.Unmarshal([]byte(c.in), &d)
		if (err != nil) != c.wantErr || (err == nil && time.Duration(d) != c.want) {
			t.Errorf("%s: got %v, %v; want %v, error %v", c.in, time.Duration(d), err, c.want, c.wantErr)
		}
	}
	b, err := json.Marshal(SetMix{Behaviors: []Behavior{}, Duration: Duration(90 * time.Second)})
	if err != nil || string(b) != `{"behaviors":[],"duration":"1m30s"}` {
		t.Fatalf("marshal: %s %v", b, err)
	}
}
