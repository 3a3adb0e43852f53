package admin

import "testing"

func TestDuplicateKey(t *testing.T) {
	cases := []struct {
		doc, key string
	}{
		{`{"a": 1, "b": 2}`, ""},
		{`{"a": 1, "a": 2}`, "a"},
		{`{"a": {"b": 1}, "b": 2}`, ""},
		{`{"a": {"b": 1, "b": 2}}`, "b"},
		{`{"a": [{"b": 1}, {"b": 2}]}`, ""},
		{`{"a": [{"b": 1, "b": 2}]}`, "b"},
		{`{"a": ["a", "a"], "b": 1}`, ""},
		{`{"a": [], "c": {}, "a": 3}`, "a"},
		{`[{"x": 1}, {"x": 1}]`, ""},
		{`{"a": 1, "a"`, "a"},
		{`{"a": `, ""},
		{`"a"`, ""},
	}
	for _, c := range cases {
		key, ok := duplicateKey([]byte(c.doc))
		if key != c.key || ok != (c.key != "") {
			t.Errorf("duplicateKey(%s) = %q, %v; want %q", c.doc, key, ok, c.key)
		}
	}
}
