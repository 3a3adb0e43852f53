// Package client is the Go client of vaurien's admin API: typed,
// context-aware calls for every endpoint, errors that carry the server's
// message, and WithBehavior, which puts chaos on a route for the duration
// of a function and takes it off afterwards, whatever the function does —
// the original Vaurien's `with client.with_behavior('error'):`.
//
//	c := client.New("127.0.0.1:8080")
//	err := c.WithBehavior(ctx, "cache", client.Behavior{Name: "error"}, func() error {
//		return exerciseTheApp()
//	})
//
// It depends on the standard library and the API's wire types only.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// The API's wire types, under the client's name.
type (
	// Route is a running route: addresses, protocol, live and configured
	// mixes, counters.
	Route = api.Route
	// Stats are a route's counters since vaurien started.
	Stats = api.Stats
	// Version is the running binary's version.
	Version = api.Version
)

// Behavior is one behavior of a mix: its name, its share of the draws in
// percent, and its options (durations as strings such as "500ms" or
// numbers of seconds). Given alone where a mix is expected (WithBehavior,
// SetMix), a Behavior whose Percent is 0 takes every draw.
type Behavior api.Behavior

// Mix is a list of behaviors; the share they leave of 100% is dummy
// (pass-through). An empty Mix passes everything through.
type Mix []Behavior

// MixOf turns a route's Mix or ConfiguredMix into a Mix that SetMix and
// WithBehavior accept.
func MixOf(bs []api.Behavior) Mix {
	out := make(Mix, len(bs))
	for i, b := range bs {
		out[i] = Behavior(b)
	}
	return out
}

// Mixer is what WithBehavior and SetMix accept: a Behavior or a Mix.
type Mixer interface {
	wire() []api.Behavior
}

func (b Behavior) wire() []api.Behavior {
	if b.Percent == 0 {
		b.Percent = 100
	}
	return []api.Behavior{api.Behavior(b)}
}

func (m Mix) wire() []api.Behavior {
	out := make([]api.Behavior, len(m))
	for i, b := range m {
		out[i] = api.Behavior(b)
	}
	return out
}

func asMix(m Mixer) []api.Behavior {
	if m == nil {
		return []api.Behavior{}
	}
	return m.wire()
}

// Error is a call the server refused or failed: the HTTP status and the
// server's message.
type Error struct {
	Status  int
	Message string
	// Diagnostics, on a refused reload, lists every problem of the file
	// as "file:line:col: error: ..." lines.
	Diagnostics []string
	// Field names the field of the request body the error is about, when
	// it is about one: "behaviors[1].options.sleep", "duration", "backend".
	Field string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("vaurien admin API: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	if len(e.Diagnostics) > 0 && !strings.Contains(e.Message, e.Diagnostics[0]) {
		msg += "\n" + strings.Join(e.Diagnostics, "\n")
	}
	return msg
}

// Client calls one vaurien's admin API. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
	own   bool // the http client was made here and can be closed here
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends the admin token with every call (only mutating calls
// need it).
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient makes the client use hc, e.g. for TLS through a proxy.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.http, c.own = hc, false }
}

// New returns a client of the admin API at addr: "host:port" or a base URL
// such as "http://vaurien:8080".
func New(addr string, opts ...Option) *Client {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		u = &url.URL{Scheme: "http", Host: addr}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{
		base: u,
		http: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 30 * time.Second},
		own:  true,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Close releases the client's idle connections.
func (c *Client) Close() {
	if c.own {
		c.http.CloseIdleConnections()
	}
}

// Addr is the base URL the client calls.
func (c *Client) Addr() string { return c.base.String() }

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (nil to ignore it). A non-2xx answer becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	u := *c.base
	u.Path += path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{Status: resp.StatusCode}
		var msg api.Error
		var orig api.OriginalErrors // the original's PUT /behavior and /backend
		if json.Unmarshal(data, &msg) == nil && msg.Error != "" {
			e.Message, e.Diagnostics, e.Field = msg.Error, msg.Diagnostics, msg.Field
		} else if json.Unmarshal(data, &orig) == nil && len(orig.Errors) > 0 {
			e.Message = orig.Errors[0].Description
		} else {
			e.Message = strings.TrimSpace(string(data))
		}
		return e
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*o = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

func routePath(name string, rest ...string) string {
	return "/routes/" + url.PathEscape(name) + strings.Join(rest, "")
}

// Behavior returns the default route's behavior as the original reported
// it: one name when one behavior takes every draw, "dummy" for none, else
// the mix in the original's syntax ("20:delay,5:error").
func (c *Client) Behavior(ctx context.Context) (string, error) {
	var out api.CurrentBehavior
	err := c.do(ctx, http.MethodGet, "/behavior", nil, &out)
	return out.Behavior, err
}

// SetBehavior sets the default route's behavior for every draw, with
// options — the original's set_behavior(name, **options).
func (c *Client) SetBehavior(ctx context.Context, name string, options map[string]any) error {
	body := map[string]any{}
	for k, v := range options {
		body[k] = v
	}
	body["name"] = name
	return c.do(ctx, http.MethodPut, "/behavior", body, nil)
}

// Behaviors lists the registered behavior names, sorted.
func (c *Client) Behaviors(ctx context.Context) ([]string, error) {
	var out api.BehaviorNames
	err := c.do(ctx, http.MethodGet, "/behaviors", nil, &out)
	return out.Behaviors, err
}

// Backend returns the default route's backend address.
func (c *Client) Backend(ctx context.Context) (string, error) {
	var out api.CurrentBackend
	err := c.do(ctx, http.MethodGet, "/backend", nil, &out)
	return out.Backend, err
}

// SetBackend points the default route's new connections at addr.
func (c *Client) SetBackend(ctx context.Context, addr string) error {
	return c.do(ctx, http.MethodPut, "/backend", api.SetBackend{Backend: addr}, nil)
}

// Routes lists the running routes, sorted by name.
func (c *Client) Routes(ctx context.Context) ([]Route, error) {
	var out api.Routes
	err := c.do(ctx, http.MethodGet, "/routes", nil, &out)
	return out.Routes, err
}

// Route returns one route.
func (c *Client) Route(ctx context.Context, name string) (*Route, error) {
	return c.routeCall(ctx, http.MethodGet, routePath(name), nil)
}

// SetMix replaces a route's mix. With a positive d the previous mix comes
// back by itself after d (the server keeps the timer: it reverts even if
// this program dies).
func (c *Client) SetMix(ctx context.Context, route string, m Mixer, d time.Duration) (*Route, error) {
	return c.ChangeMix(ctx, route, api.SetMix{Behaviors: asMix(m), Duration: api.Duration(d)})
}

// ChangeMix is SetMix with every option of PUT /routes/{name}/mix: a seed
// that restarts the route's draws, and what follows a timed change.
func (c *Client) ChangeMix(ctx context.Context, route string, ch api.SetMix) (*Route, error) {
	return c.routeCall(ctx, http.MethodPut, routePath(route, "/mix"), ch)
}

// SetRouteBackend points a route's new connections at addr.
func (c *Client) SetRouteBackend(ctx context.Context, route, addr string) (*Route, error) {
	return c.routeCall(ctx, http.MethodPut, routePath(route, "/backend"), api.SetBackend{Backend: addr})
}

// ResetRoute returns a route to the file's mix and backend and enables it.
func (c *Client) ResetRoute(ctx context.Context, route string) (*Route, error) {
	return c.routeCall(ctx, http.MethodPost, routePath(route, "/reset"), nil)
}

// ResetAll returns every route to the file.
func (c *Client) ResetAll(ctx context.Context) ([]Route, error) {
	var out api.Routes
	err := c.do(ctx, http.MethodPost, "/reset", nil, &out)
	return out.Routes, err
}

// DisableRoute stops a route listening (clients get connection refused)
// and closes its live connections.
func (c *Client) DisableRoute(ctx context.Context, route string) (*Route, error) {
	return c.routeCall(ctx, http.MethodPost, routePath(route, "/disable"), nil)
}

// EnableRoute makes a disabled route listen again.
func (c *Client) EnableRoute(ctx context.Context, route string) (*Route, error) {
	return c.routeCall(ctx, http.MethodPost, routePath(route, "/enable"), nil)
}

func (c *Client) routeCall(ctx context.Context, method, path string, body any) (*Route, error) {
	var out Route
	if err := c.do(ctx, method, path, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Reload makes vaurien re-read its configuration file.
func (c *Client) Reload(ctx context.Context) ([]Route, error) {
	var out api.Routes
	err := c.do(ctx, http.MethodPost, "/reload", nil, &out)
	return out.Routes, err
}

// Health returns nil when the admin API answers GET /healthz.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil)
}

// Ready returns nil when vaurien's routes are listening; else an *Error
// with status 503 saying why.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil)
}

// Version returns the running binary's version.
func (c *Client) Version(ctx context.Context) (*Version, error) {
	var out Version
	if err := c.do(ctx, http.MethodGet, "/version", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Metrics returns the Prometheus text exposition.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	var out []byte
	err := c.do(ctx, http.MethodGet, "/metrics", nil, &out)
	return out, err
}

// OpenAPI returns the API's OpenAPI 3 document (YAML).
func (c *Client) OpenAPI(ctx context.Context) ([]byte, error) {
	var out []byte
	err := c.do(ctx, http.MethodGet, "/openapi.yaml", nil, &out)
	return out, err
}

// restoreTimeout bounds the call that restores a mix after WithBehavior's
// function, which runs even when the caller's context is done.
const restoreTimeout = 10 * time.Second

// WithBehavior applies m (a Behavior or a Mix) to route, runs fn, and
// restores the route's previous mix afterwards — when fn succeeds, when it
// returns an error and when it panics (the panic goes on once the mix is
// restored). The restore runs even if ctx is done by then. The error is
// fn's, joined with the restore's if that failed.
//
// The previous mix is restored as it was read before the change, for good:
// a timed change in force at that moment does not come back.
func (c *Client) WithBehavior(ctx context.Context, route string, m Mixer, fn func() error) (err error) {
	r, err := c.Route(ctx, route)
	if err != nil {
		return err
	}
	prev := MixOf(r.Mix)
	if _, err := c.SetMix(ctx, route, m, 0); err != nil {
		return err
	}
	defer func() {
		p := recover()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
		defer cancel()
		_, rerr := c.SetMix(rctx, route, prev, 0)
		if p != nil {
			panic(p)
		}
		if rerr != nil {
			err = errors.Join(err, fmt.Errorf("restore the mix of route %q: %w", route, rerr))
		}
	}()
	return fn()
}
