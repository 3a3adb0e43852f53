package toxiproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzToxicBodies feeds creation and update bodies from the network: they
// never panic, a refusal is always an API error with a 4xx status, and an
// accepted toxic renders as Toxiproxy's JSON with non-negative attributes.
func FuzzToxicBodies(f *testing.F) {
	for _, s := range []string{
		`{"type":"latency","attributes":{"latency":100,"jitter":10}}`,
		`{"name":"x","type":"bandwidth","stream":"upstream","toxicity":0.5,"attributes":{"rate":0}}`,
		`{"type":"slicer","attributes":{"average_size":0,"size_variation":99,"delay":1}}`,
		`{"type":"limit_data","attributes":{"bytes":9007199254740993}}`,
		`{"type":"timeout","attributes":null}`,
		`{"type":"reset_peer","stream":"","attributes":{"timeout":-1}}`,
		`[]`, `null`, `{"toxicity":1e40}`,
	} {
		f.Add([]byte(s), []byte(`{"attributes":{"latency":5},"toxicity":0}`))
	}
	f.Fuzz(func(t *testing.T, create, update []byte) {
		tox, err := newToxic(create, func(string) bool { return false })
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 {
				t.Fatalf("refusal %v is not a 4xx API error", err)
			}
			return
		}
		check := func(tox *toxic) {
			b, err := json.Marshal(tox.attrs)
			if err != nil {
				t.Fatal(err)
			}
			var attrs map[string]int64
			if err := json.Unmarshal(b, &attrs); err != nil {
				t.Fatal(err)
			}
			for k, v := range attrs {
				if v < 0 {
					t.Fatalf("negative %s accepted: %s", k, b)
				}
			}
			if _, err := json.Marshal(tox); err != nil {
				t.Fatal(err)
			}
			if tox.beh == nil {
				t.Fatal("no behavior")
			}
		}
		check(tox)
		if up, err := tox.updated(update); err == nil {
			check(up)
		}
	})
}

// FuzzReadProxies feeds proxy lists (POST /populate, -config files).
func FuzzReadProxies(f *testing.F) {
	for _, s := range []string{
		`[{"name":"a","listen":"127.0.0.1:0","upstream":"x:1"}]`,
		`[{"name":"a","upstream":"x:1","enabled":false},{"name":"a","upstream":"y:2"}]`,
		`[{"name":"a/b","upstream":"x:1"}]`, `[{}]`, `{}`, `[`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := ReadProxies(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, p := range specs {
			if p.Name == "" || p.Upstream == "" || checkName(p.Name) != nil {
				t.Fatalf("accepted %+v", p)
			}
		}
	})
}
