package admin

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/proxy"
	"github.com/vaurien-go/vaurien/pkg/version"
)

// routes registers every endpoint. The middleware runs before routing
// (echo's Pre), so that the token check and the body limit cover every
// request, including ones to paths that do not exist: no endpoint added
// here can skip them.
func (s *Server) routes() *echo.Echo {
	e := echo.NewWithConfig(echo.Config{
		Logger:           newSlog(s.log),
		HTTPErrorHandler: s.handleError,
		JSONSerializer:   jsonSerializer{},
	})
	e.Pre(s.logRequests, s.recoverPanics, s.guardBrowsers)
	if s.cfg.Token != "" {
		e.Pre(requireToken(s.cfg.Token))
	}
	e.Pre(middleware.BodyLimit(s.cfg.BodyLimit), s.pokeEvents)

	// The original Vaurien's API, acting on the default route.
	e.GET("/behavior", s.getBehavior)
	e.PUT("/behavior", s.putBehavior)
	e.GET("/behaviors", s.getBehaviors)
	e.GET("/catalog", s.getCatalog)
	e.GET("/backend", s.getBackend)
	e.PUT("/backend", s.putBackend)

	e.GET("/routes", s.listRoutes)
	e.GET("/routes/:name", s.getRoute)
	e.PUT("/routes/:name/mix", s.putMix)
	e.PUT("/routes/:name/backend", s.putRouteBackend)
	e.POST("/routes/:name/reset", s.resetRoute)
	e.POST("/routes/:name/disable", s.toggle(false))
	e.POST("/routes/:name/enable", s.toggle(true))
	e.POST("/reset", s.resetAll)
	e.POST("/reload", s.reload)
	s.experimentRoutes(e)
	e.GET("/events", s.events)
	s.consoleRoutes(e)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/version", s.version)
	e.GET("/metrics", s.metrics)
	e.GET("/openapi.yaml", s.openapi)
	return e
}

func (s *Server) defaultRoute() (*proxy.Route, error) {
	r, err := s.ctl.DefaultRoute()
	if err != nil {
		if echo.StatusCode(err) != 0 {
			return nil, err
		}
		return nil, echo.NewHTTPError(http.StatusNotFound, err.Error())
	}
	return r, nil
}

// route looks up the route named in the path.
func (s *Server) route(c *echo.Context) (*proxy.Route, error) {
	name := c.Param("name")
	r, err := s.ctl.Route(name)
	if err != nil {
		if echo.StatusCode(err) != 0 {
			return nil, err
		}
		return nil, echo.NewHTTPError(http.StatusNotFound, err.Error())
	}
	return r, nil
}

func (s *Server) getBehavior(c *echo.Context) error {
	r, err := s.defaultRoute()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.CurrentBehavior{Behavior: behaviorText(r.Mix())})
}

// behaviorText is the original's answer to GET /behavior, stretched to
// mixes: the name alone when one behavior takes every draw.
func behaviorText(m *chaos.Mix) string {
	es := m.Entries()
	switch {
	case len(es) == 0:
		return "dummy"
	case len(es) == 1 && es[0].Percent == 100:
		return es[0].Name
	}
	return m.String()
}

// putBehavior is the original's PUT /behavior: {"name": "delay", "sleep": 2}
// sets the default route's mix to that behavior for every draw.
func (s *Server) putBehavior(c *echo.Context) error {
	r, err := s.defaultRoute()
	if err != nil {
		return err
	}
	m, warnings, err := readBehavior(c.Request().Body, r.Config().Protocol)
	if err != nil {
		return err
	}
	if err := s.ctl.ChangeMix(r.Name(), MixChange{Mix: m}); err != nil {
		return err
	}
	return s.originalOK(c, warnings)
}

func (s *Server) getBehaviors(c *echo.Context) error {
	return c.JSON(http.StatusOK, api.BehaviorNames{Behaviors: chaos.BehaviorNames()})
}

func (s *Server) getBackend(c *echo.Context) error {
	r, err := s.defaultRoute()
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, api.CurrentBackend{Backend: r.Config().Backend})
}

func (s *Server) putBackend(c *echo.Context) error {
	r, err := s.defaultRoute()
	if err != nil {
		return err
	}
	addr, warnings, err := readBackend(c.Request().Body)
	if err != nil {
		return err
	}
	if err := s.ctl.SetBackend(r.Name(), addr); err != nil {
		return err
	}
	return s.originalOK(c, warnings)
}

func (s *Server) decodeBackend(c *echo.Context) (string, error) {
	var body api.SetBackend
	if err := decodeJSON(c, &body); err != nil {
		return "", err
	}
	if err := checkBackend(body.Backend); err != nil {
		return "", onField("backend", err)
	}
	return body.Backend, nil
}

// checkBackend accepts what a file's backend may be: host:port with an IP
// address or host name and a port from 1 to 65535, or the demo backend's
// name.
func checkBackend(addr string) error {
	if err := config.CheckBackend(addr); err != nil {
		return fmt.Errorf(`backend: %v; want host:port with a port from 1 to 65535, as in {"backend": "127.0.0.1:6379"}`, err)
	}
	return nil
}

func (s *Server) listRoutes(c *echo.Context) error {
	return c.JSON(http.StatusOK, s.viewAll())
}

func (s *Server) viewAll() api.Routes {
	routes := s.ctl.Routes()
	out := api.Routes{Routes: make([]api.Route, 0, len(routes))}
	def := ""
	if r, err := s.ctl.DefaultRoute(); err == nil {
		def = r.Name()
	}
	for _, r := range routes {
		out.Routes = append(out.Routes, s.view(r, def))
	}
	return out
}

func (s *Server) getRoute(c *echo.Context) error {
	r, err := s.route(c)
	if err != nil {
		return err
	}
	return s.sendRoute(c, r)
}

func (s *Server) sendRoute(c *echo.Context, r *proxy.Route) error {
	def := ""
	if d, err := s.ctl.DefaultRoute(); err == nil {
		def = d.Name()
	}
	return c.JSON(http.StatusOK, s.view(r, def))
}

// view renders a route. Mix and counters are read one after the other
// without a common lock: each is consistent on its own, which is what a
// dashboard needs.
func (s *Server) view(r *proxy.Route, defaultName string) api.Route {
	cfg := r.Config()
	v := api.Route{
		Name:     r.Name(),
		Listen:   r.Addr(),
		Backend:  cfg.Backend,
		Protocol: cfg.Protocol,
		Enabled:  r.Enabled(),
		Default:  r.Name() == defaultName,
		Mix:      mixView(cfg.Mix),
		Stats:    statsView(r.Stats()),
	}
	if m, err := s.ctl.ConfiguredMix(r.Name()); err == nil {
		v.ConfiguredMix = mixView(m)
	} else {
		v.ConfiguredMix = []api.Behavior{}
	}
	if until, then, ok := s.ctl.MixOverride(r.Name()); ok {
		v.RevertsAt, v.RevertsTo = &until, then.View()
	}
	return v
}

func statsView(st proxy.Stats) api.Stats {
	return api.Stats{
		Accepted: st.Accepted, Active: st.Active, Refused: st.Refused, DialErrors: st.DialErrors,
		BytesToBackend: st.BytesToBack, BytesToClient: st.BytesToCli,
		Requests: st.Requests, Faults: st.Faults,
	}
}

// setMixBody is api.SetMix as read: pointers tell a missing key from a
// zero value.
type setMixBody struct {
	Behaviors *[]mixEntry  `json:"behaviors"`
	Duration  api.Duration `json:"duration"`
	Seed      uint64       `json:"seed"`
	Then      *setMixBody  `json:"then"`
}

func (s *Server) putMix(c *echo.Context) error {
	r, err := s.route(c)
	if err != nil {
		return err
	}
	ch, err := readMix(c.Request().Body, r.Config().Protocol)
	if err != nil {
		return err
	}
	if err := s.ctl.ChangeMix(r.Name(), ch); err != nil {
		return err
	}
	return s.sendRoute(c, r)
}

// readMix reads and checks the body of PUT /routes/{name}/mix for a route
// of protocol.
func readMix(r io.Reader, protocol string) (MixChange, error) {
	var body setMixBody
	if err := decodeReader(r, &body); err != nil {
		return MixChange{}, err
	}
	return body.change("", protocol)
}

// change checks a body, or its "then" at path, and builds the change.
func (b *setMixBody) change(path, protocol string) (MixChange, error) {
	if b.Behaviors == nil {
		return MixChange{}, badRequest(path + `the "behaviors" list is required, as in {"behaviors": [{"name": "delay", "percent": 20, "options": {"sleep": "500ms"}}]}; [] passes everything through`)
	}
	if b.Duration < 0 {
		return MixChange{}, onField(fieldPath(path)+"duration", fmt.Errorf("%sduration %s is negative: give a positive duration, or none to keep the mix until changed", path, time.Duration(b.Duration)))
	}
	m, err := buildMix(*b.Behaviors, protocol)
	if err != nil {
		return MixChange{}, inThen(path, err)
	}
	ch := MixChange{Mix: m, For: time.Duration(b.Duration), Seed: b.Seed}
	if b.Then != nil {
		if ch.For == 0 {
			return MixChange{}, badRequest(path + `"then" follows a timed change: give a "duration" too, or leave "then" out`)
		}
		then, err := b.Then.change(path+"then: ", protocol)
		if err != nil {
			return MixChange{}, err
		}
		ch.Then = &then
	}
	return ch, nil
}

// fieldPath is the field path prefix of a "then" at path ("then: then: "
// is "then.then.").
func fieldPath(path string) string { return strings.ReplaceAll(path, "then: ", "then.") }

// inThen makes an error about a field of the "then" at path name it from
// the top of the body.
func inThen(path string, err error) error {
	var fe *fieldError
	if path == "" || !errors.As(err, &fe) {
		return err
	}
	return &fieldError{field: fieldPath(path) + fe.field, err: fe.err}
}

func (s *Server) putRouteBackend(c *echo.Context) error {
	r, err := s.route(c)
	if err != nil {
		return err
	}
	addr, err := s.decodeBackend(c)
	if err != nil {
		return err
	}
	if err := s.ctl.SetBackend(r.Name(), addr); err != nil {
		return err
	}
	return s.sendRoute(c, r)
}

func (s *Server) resetRoute(c *echo.Context) error {
	r, err := s.route(c)
	if err != nil {
		return err
	}
	if err := s.ctl.Reset(r.Name()); err != nil {
		return err
	}
	return s.sendRoute(c, r)
}

func (s *Server) resetAll(c *echo.Context) error {
	if err := s.ctl.Reset(""); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.viewAll())
}

func (s *Server) toggle(on bool) echo.HandlerFunc {
	return func(c *echo.Context) error {
		r, err := s.route(c)
		if err != nil {
			return err
		}
		if err := s.ctl.SetEnabled(r.Name(), on); err != nil {
			return err
		}
		return s.sendRoute(c, r)
	}
}

func (s *Server) reload(c *echo.Context) error {
	if err := s.ctl.Reload(); err != nil {
		if echo.StatusCode(err) != 0 {
			return err
		}
		return echo.NewHTTPError(http.StatusUnprocessableEntity, err.Error())
	}
	return c.JSON(http.StatusOK, s.viewAll())
}

func (s *Server) healthz(c *echo.Context) error {
	return c.JSON(http.StatusOK, api.Status{Status: "ok"})
}

func (s *Server) readyz(c *echo.Context) error {
	if err := s.ctl.Ready(); err != nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, err.Error())
	}
	return c.JSON(http.StatusOK, api.Status{Status: "ready"})
}

func (s *Server) version(c *echo.Context) error {
	return c.JSON(http.StatusOK, api.Version{Version: version.Version, Commit: version.Commit, Go: version.GoVersion()})
}

func (s *Server) metrics(c *echo.Context) error {
	if s.cfg.Metrics == nil {
		return echo.NewHTTPError(http.StatusNotFound, "metrics are not enabled in this build")
	}
	s.cfg.Metrics.ServeHTTP(c.Response(), c.Request())
	return nil
}

func (s *Server) openapi(c *echo.Context) error {
	return c.Blob(http.StatusOK, "application/yaml", OpenAPI)
}

func ptr[T any](v T) *T { return &v }
