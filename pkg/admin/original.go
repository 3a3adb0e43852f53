package admin

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/logging"
)

// The original Vaurien served PUT /behavior and PUT /backend with cornice,
// and its Python client reads their errors in cornice's shape: it takes
// errors[0]["name"] and raises ValueError(errors[0]["description"]) when
// the name is "name". So these two endpoints answer every error as
//
//	{"status": "error", "errors": [{"location": "body", "name": FIELD, "description": TEXT}]}
//
// with FIELD "name" for an unknown behavior, the option's name for a bad
// option value, and "" for a body that is not JSON or lacks its key. As in
// the original, keys they do not know are ignored; here they are also
// listed in the answer's "warnings" and in the log. The per-route
// endpoints keep their strict checks and {"error": "..."} answers.

// fieldError is an error about one field of an original endpoint's body.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

// onField marks err, a 400 unless it carries its own status, as being about
// field.
func onField(field string, err error) error {
	if echo.StatusCode(err) == 0 {
		err = badRequest(err.Error())
	}
	return &fieldError{field: field, err: err}
}

// isOriginalWrite reports whether the request is one of the original's
// calls that answer in cornice's shape.
func isOriginalWrite(r *http.Request) bool {
	return r.Method == http.MethodPut && (r.URL.Path == "/behavior" || r.URL.Path == "/backend")
}

// originalErrorBody is an error answer of the original's endpoints.
func originalErrorBody(err error, msg string) api.OriginalErrors {
	field := ""
	var fe *fieldError
	if errors.As(err, &fe) {
		field = fe.field
	}
	return api.OriginalErrors{Status: "error", Errors: []api.OriginalError{{Location: "body", Name: field, Description: msg}}}
}

// readOriginalBody reads a JSON object and the string under key, which the
// original required.
func readOriginalBody(r io.Reader, key, example string) (map[string]any, string, error) {
	var body map[string]any
	if err := decodeReader(r, &body); err != nil {
		return nil, "", onField("", err)
	}
	raw, ok := body[key]
	if !ok {
		return nil, "", onField("", fmt.Errorf("the value should contain a %q key, as in %s", key, example))
	}
	s, ok := raw.(string)
	if !ok || s == "" {
		return nil, "", onField(key, fmt.Errorf("%q must be a non-empty string, as in %s", key, example))
	}
	delete(body, key)
	return body, s, nil
}

// readBehavior reads the body of the original's PUT /behavior:
// {"name": "delay", "sleep": 2} is delay at 100% with sleep = 2. Keys that
// are not options of the behavior are left out, each with a warning. The
// default route's protocol checks the error code it names.
func readBehavior(r io.Reader, protocol string) (*chaos.Mix, []string, error) {
	const example = `{"name": "delay", "sleep": 2}`
	opts, name, err := readOriginalBody(r, "name", example)
	if err != nil {
		return nil, nil, err
	}
	spec, ok := chaos.LookupBehavior(name)
	if !ok {
		return nil, nil, onField("name", &chaos.UnknownError{What: "behavior", Name: name, Valid: chaos.BehaviorNames()})
	}
	var warnings []string
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		o, known := spec.Options.Lookup(k)
		if !known {
			warnings = append(warnings, unknownOptionWarning(name, k, spec.Options))
			delete(opts, k)
			continue
		}
		if _, err := o.Convert(opts[k]); err != nil {
			return nil, nil, onField(k, fmt.Errorf("%s: %w", name, err))
		}
	}
	if err := checkErrorCode(name, protocol, spec.Options, opts, chaos.ErrorCodeOption); err != nil {
		return nil, nil, err
	}
	m, err := buildMix([]mixEntry{{Name: name, Percent: ptr(100.0), Options: opts}}, protocol)
	if err != nil {
		return nil, nil, onField("", err)
	}
	return m, warnings, nil
}

func unknownOptionWarning(behavior, key string, decl chaos.Options) string {
	w := fmt.Sprintf("%q is not an option of behavior %q: ignored", key, behavior)
	if len(decl) == 0 {
		return w + fmt.Sprintf("; %s takes no options", behavior)
	}
	w += "; its options are " + strings.Join(decl.Names(), ", ")
	if s := chaos.Closest(key, decl.Names()); s != "" {
		w += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return w
}

// readBackend reads the body of the original's PUT /backend; keys other
// than "backend" are ignored, each with a warning.
func readBackend(r io.Reader) (string, []string, error) {
	rest, addr, err := readOriginalBody(r, "backend", `{"backend": "127.0.0.1:6379"}`)
	if err != nil {
		return "", nil, err
	}
	if err := checkBackend(addr); err != nil {
		return "", nil, onField("backend", err)
	}
	var warnings []string
	for _, k := range slices.Sorted(maps.Keys(rest)) {
		warnings = append(warnings, fmt.Sprintf("%q is not a key of PUT /backend: ignored; the body is {\"backend\": \"host:port\"}", k))
	}
	return addr, warnings, nil
}

// originalOK answers a successful original call, with the keys it ignored.
func (s *Server) originalOK(c *echo.Context, warnings []string) error {
	if len(warnings) > 0 {
		s.log.Warn().Str(logging.FieldPath, c.Request().URL.Path).Strs(logging.FieldWarnings, warnings).Msg("unknown keys ignored")
	}
	return c.JSON(http.StatusOK, api.Status{Status: "ok", Warnings: warnings})
}
