package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/labstack/echo/v5"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/logging"
)

// ctxError is where the error handler leaves the message it sent, for the
// request log.
const ctxError = "vaurien.admin.error"

func badRequest(msg string) error { return echo.NewHTTPError(http.StatusBadRequest, msg) }

// handleError is the one place errors become responses: every error is
// {"error": "..."} with the status the error carries, except on the
// original's PUT /behavior and PUT /backend, which answer in the original's
// shape (see original.go).
func (s *Server) handleError(c *echo.Context, err error) {
	if resp, _ := echo.UnwrapResponse(c.Response()); resp != nil && resp.Committed {
		return
	}
	code, msg := s.describe(c, err)
	c.Set(ctxError, msg)
	if code >= http.StatusInternalServerError {
		s.log.Error().Err(err).Str(logging.FieldMethod, c.Request().Method).Str(logging.FieldPath, c.Request().URL.Path).Msg("admin request failed")
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	if isOriginalWrite(c.Request()) {
		_ = c.JSON(code, originalErrorBody(err, msg))
		return
	}
	body := api.Error{Error: msg}
	var fe *fieldError
	if errors.As(err, &fe) {
		body.Field = fe.field
	}
	var d diagnosed
	if errors.As(err, &d) {
		body.Diagnostics = d.Diagnostics()
	}
	_ = c.JSON(code, body)
}

// diagnosed is an error that lists a configuration's problems, such as a
// refused reload's; the answer carries the list.
type diagnosed interface {
	error
	Diagnostics() []string
}

func (s *Server) describe(c *echo.Context, err error) (int, string) {
	req := c.Request()
	var he *echo.HTTPError
	switch {
	case errors.Is(err, echo.ErrNotFound):
		return http.StatusNotFound, fmt.Sprintf("no endpoint %s %s; GET /openapi.yaml describes the API", req.Method, req.URL.Path)
	case errors.Is(err, echo.ErrMethodNotAllowed):
		return http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s; allowed: %s", req.Method, req.URL.Path, c.Response().Header().Get(echo.HeaderAllow))
	case errors.Is(err, echo.ErrStatusRequestEntityTooLarge):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", s.cfg.BodyLimit)
	case errors.As(err, &he):
		msg := he.Message
		if msg == "" {
			msg = strings.ToLower(http.StatusText(he.Code))
		}
		return he.Code, msg
	}
	if code := echo.StatusCode(err); code != 0 {
		return code, err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

// decodeJSON reads one JSON document into v, refusing unknown keys and
// trailing data, with errors a person can act on.
func decodeJSON(c *echo.Context, v any) error {
	return decodeReader(c.Request().Body, v)
}

func decodeReader(r io.Reader, v any) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err // the body limit's 413, or the client went away
	}
	if key, ok := duplicateKey(body); ok {
		// encoding/json keeps the last of two equal keys; a person who wrote
		// both meant one of them, and the API cannot tell which.
		return badRequest(fmt.Sprintf("invalid JSON body: the key %q appears twice in one object", key))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
			return err
		}
		return badRequest("invalid JSON body: unexpected data after the JSON document")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, echo.ErrStatusRequestEntityTooLarge):
		return err
	case errors.Is(err, io.EOF):
		return badRequest("the request body is empty: send a JSON document")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid JSON body: it ends in the middle of a value")
	case errors.As(err, &syn):
		return badRequest(fmt.Sprintf("invalid JSON body at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: ")))
	case errors.As(err, &typ):
		where := "the body"
		if typ.Field != "" {
			where = fmt.Sprintf("%q", typ.Field)
		}
		return badRequest(fmt.Sprintf("invalid JSON body: %s must be %s, not %s", where, jsonKind(typ.Type), article(typ.Value)))
	}
	return badRequest("invalid JSON body: " + strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names a Go type the way a JSON author thinks of it.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a bool"
	case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int64, reflect.Int32:
		return "a number"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return t.String()
}

// article names a JSON value kind as json.UnmarshalTypeError.Value gives it.
func article(v string) string {
	switch v {
	case "array":
		return "a list"
	case "object":
		return "an object"
	case "string", "bool", "number":
		return "a " + v
	}
	return v
}

// jsonSerializer writes answers without HTML escaping, so that messages
// read the same in a terminal as in the code ("<token>", not "\u003ctoken\u003e").
type jsonSerializer struct{ echo.DefaultJSONSerializer }

func (jsonSerializer) Serialize(c *echo.Context, v any, indent string) error {
	enc := json.NewEncoder(c.Response())
	enc.SetEscapeHTML(false)
	if indent != "" {
		enc.SetIndent("", indent)
	}
	return enc.Encode(v)
}

// duplicateKey reports the first key that appears twice in one object of a
// JSON document. A document that is not valid JSON has none: decoding it
// reports the syntax error.
func duplicateKey(doc []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	type object struct {
		keys      map[string]bool
		expectKey bool
	}
	var stack []*object
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.expectKey {
			if key, ok := tok.(string); ok {
				if top.keys[key] {
					return key, true
				}
				top.keys[key] = true
				top.expectKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &object{keys: map[string]bool{}, expectKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &object{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: the object that holds it, if any, expects a key.
		if len(stack) > 0 && stack[len(stack)-1].keys != nil {
			stack[len(stack)-1].expectKey = true
		}
	}
}
