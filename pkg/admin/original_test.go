package admin_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// errValueError and errIndexError stand for the Python exceptions the
// original client raises.
var (
	errValueError = errors.New("ValueError")
	errIndexError = errors.New("IndexError")
)

// pythonSetBehavior is the original Python client's set_behavior
// (vaurienclient.Client), line for line: it PUTs the options and the name
// as a JSON body without a Content-Type, and on a 400 reads
// body["errors"][0]["name"], raising ValueError(description) when it is
// "name".
func pythonSetBehavior(e *env, behavior string, options map[string]any) error {
	options["name"] = behavior
	data, _ := json.Marshal(options)
	code, body, err := e.do(http.MethodPut, "/behavior", string(data), "")
	if err != nil {
		return err
	}
	if code == http.StatusBadRequest {
		var res map[string]any
		if err := json.Unmarshal([]byte(body), &res); err != nil {
			return fmt.Errorf("res.json(): %w", err)
		}
		errs, _ := res["errors"].([]any)
		status, ok := res["status"].(string)
		if !ok {
			status = "error"
		}
		if status == "error" {
			if len(errs) == 0 {
				return fmt.Errorf("%w: errors[0] of %s", errIndexError, body)
			}
			first, _ := errs[0].(map[string]any)
			if first["name"] == "name" {
				return fmt.Errorf("%w: %v", errValueError, first["description"])
			}
		}
	}
	if code >= 400 {
		return fmt.Errorf("HTTPError %d: %s", code, body)
	}
	return nil
}

// TestOriginalPythonClient runs the original client's own tests
// (test_client.py) against the API.
func TestOriginalPythonClient(t *testing.T) {
	e := startEnv(t, "")
	// test_set_valid_behavior
	if err := pythonSetBehavior(e, "blackout", map[string]any{}); err != nil {
		t.Fatalf("set_behavior('blackout'): %v", err)
	}
	// test_set_invlid_behavior: assertRaises(ValueError, ...)
	err := pythonSetBehavior(e, "invalid_behavior", map[string]any{})
	if !errors.Is(err, errValueError) || !strings.Contains(err.Error(), `unknown behavior "invalid_behavior"`) {
		t.Fatalf("set_behavior('invalid_behavior') = %v, want ValueError naming the behavior", err)
	}
	// test_set_behavior_with_options: unknown options are ignored.
	if err := pythonSetBehavior(e, "blackout", map[string]any{"foo": "foo", "bar": "bar"}); err != nil {
		t.Fatalf("set_behavior('blackout', foo='foo', bar='bar'): %v", err)
	}
	var b api.CurrentBehavior
	e.mustCall(t, http.MethodGet, "/behavior", "", http.StatusOK, &b)
	if b.Behavior != "blackout" {
		t.Fatalf("get_behavior() = %q, want blackout", b.Behavior)
	}
	// A known option with a bad value is still refused, naming the option.
	if err := pythonSetBehavior(e, "delay", map[string]any{"sleep": "soon"}); err == nil || errors.Is(err, errIndexError) {
		t.Fatalf("set_behavior('delay', sleep='soon') = %v, want a 400 in the original's shape", err)
	}
}

// TestOriginalEndpointsAnswerInTheOriginalShape pins the exact JSON of the
// original's PUT /behavior and PUT /backend, and that a refused call
// changes nothing.
func TestOriginalEndpointsAnswerInTheOriginalShape(t *testing.T) {
	e := startEnv(t, "")
	e.mustCall(t, http.MethodPut, "/behavior", `{"name": "delay", "sleep": 0.01}`, http.StatusOK, nil)
	before := e.route(t, "web")
	cases := []struct {
		name, path, body string
		code             int
		field, want      string
	}{
		{"unknown behavior", "/behavior", `{"name": "nope"}`, 400, "name", `unknown behavior "nope"; valid behaviors: abort, `},
		{"name not a string", "/behavior", `{"name": 5}`, 400, "name", `"name" must be a non-empty string`},
		{"no name", "/behavior", `{"sleep": 2}`, 400, "", `the value should contain a "name" key`},
		{"not JSON", "/behavior", `{"name": `, 400, "", "invalid JSON"},
		{"not an object", "/behavior", `["delay"]`, 400, "", "invalid JSON"},
		{"empty body", "/behavior", ``, 400, "", "empty"},
		{"bad option value", "/behavior", `{"name": "delay", "before": "yes"}`, 400, "before", `option "before": want a bool`},
		{"bad duration", "/behavior", `{"name": "delay", "sleep": "soon"}`, 400, "sleep", `option "sleep"`},
		{"no backend", "/backend", `{"host": "x"}`, 400, "", `the value should contain a "backend" key`},
		{"bad backend", "/backend", `{"backend": "nowhere"}`, 400, "backend", "want host:port"},
		{"backend not JSON", "/backend", `backend`, 400, "", "invalid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := e.call(t, http.MethodPut, c.path, c.body)
			var got api.OriginalErrors
			dec := json.NewDecoder(strings.NewReader(body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil || code != c.code || got.Status != "error" || len(got.Errors) != 1 {
				t.Fatalf("PUT %s %s: %d %s; want %d {\"status\": \"error\", \"errors\": [one error]}", c.path, c.body, code, body, c.code)
			}
			ge := got.Errors[0]
			if ge.Location != "body" || ge.Name != c.field || !strings.Contains(ge.Description, c.want) {
				t.Fatalf("PUT %s %s: error %+v; want location body, name %q, description with %q", c.path, c.body, ge, c.field, c.want)
			}
			after := e.route(t, "web")
			after.Stats, before.Stats = api.Stats{}, api.Stats{}
			if fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("a refused call changed the route:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}

	// The exact bytes, as the original's cornice wrote them.
	_, body := e.call(t, http.MethodPut, "/behavior", `{"name": "delya"}`)
	var raw map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"status": "error", "errors": []any{map[string]any{
		"location": "body", "name": "name", "description": raw["errors"].([]any)[0].(map[string]any)["description"],
	}}}
	if !reflect.DeepEqual(raw, want) {
		t.Fatalf("body %s, want exactly the keys status and errors[location, name, description]", body)
	}

	// The per-route endpoints keep their strict {"error": ...}.
	code, body := e.call(t, http.MethodPut, "/routes/web/mix", `{"behaviors": [{"name": "nope", "percent": 5}]}`)
	var strict api.Error
	if err := json.Unmarshal([]byte(body), &strict); code != 400 || err != nil || strict.Error == "" {
		t.Fatalf("PUT /routes/web/mix: %d %s, want 400 {\"error\": ...}", code, body)
	}
}

// TestOriginalEndpointsIgnoreUnknownKeys: as in the original, keys that
// are not options are ignored; the answer and the log list them.
func TestOriginalEndpointsIgnoreUnknownKeys(t *testing.T) {
	e := startEnv(t, "")
	var st api.Status
	e.mustCall(t, http.MethodPut, "/behavior", `{"name": "delay", "sleep": 0.2, "foo": "foo", "slep": 1}`, http.StatusOK, &st)
	if st.Status != "ok" || len(st.Warnings) != 2 ||
		!strings.Contains(st.Warnings[0], `"foo" is not an option of behavior "delay": ignored`) ||
		!strings.Contains(st.Warnings[1], `did you mean "sleep"?`) {
		t.Fatalf("answer %+v, want ok with a warning for foo and for slep", st)
	}
	r := e.route(t, "web")
	if len(r.Mix) != 1 || r.Mix[0].Name != "delay" || r.Mix[0].Options["sleep"] != "200ms" {
		t.Fatalf("mix %+v, want delay with sleep 200ms", r.Mix)
	}
	if !strings.Contains(e.log.String(), `"foo\" is not an option`) || !strings.Contains(e.log.String(), `"message":"unknown keys ignored"`) {
		t.Fatalf("the log does not list the ignored keys:\n%s", e.log.String())
	}

	st = api.Status{}
	e.mustCall(t, http.MethodPut, "/backend", fmt.Sprintf(`{"backend": %q, "weight": 3}`, e.b.Listener.Addr()), http.StatusOK, &st)
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], `"weight" is not a key of PUT /backend: ignored`) {
		t.Fatalf("answer %+v, want ok with a warning for weight", st)
	}
	if got := e.route(t, "web").Backend; got != e.b.Listener.Addr().String() {
		t.Fatalf("backend %s after PUT /backend", got)
	}
	// No warnings, no key: the original's {"status": "ok"}.
	_, body := e.call(t, http.MethodPut, "/behavior", `{"name": "dummy"}`)
	if strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Fatalf("body %s, want {\"status\":\"ok\"}", body)
	}
}
