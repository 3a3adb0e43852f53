package toxiproxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/proxy"
	"github.com/vaurien-go/vaurien/pkg/version"
)

// Controller is what the Toxiproxy API needs from the running vaurien;
// the app implements it. Errors whose StatusCode() is 404 mean that no
// route has the name.
type Controller interface {
	// Routes returns the running routes sorted by name.
	Routes() []*proxy.Route
	// Route returns the running route named name.
	Route(name string) (*proxy.Route, error)
	// AddRoute starts a route that the file does not declare.
	AddRoute(r config.Route) error
	// RemoveRoute stops a route that AddRoute started, closing its
	// connections.
	RemoveRoute(name string) error
	// UpdateRoute changes the listen address and backend of a route that
	// AddRoute started, closing its connections, and enables or disables
	// it; its live mix stays. On error the route is as it was.
	UpdateRoute(r config.Route, enabled bool) error
	// IsDynamic reports whether AddRoute started the route.
	IsDynamic(name string) bool
	// SetEnabled disables or enables a route.
	SetEnabled(name string, on bool) error
	// SetBackend points a route's new connections at addr.
	SetBackend(name, addr string) error
	// SetMix replaces a route's live mix; d is 0 here.
	SetMix(name string, m *chaos.Mix, d time.Duration) error
	// ConfiguredMix is the mix the file gives a route.
	ConfiguredMix(name string) (*chaos.Mix, error)
	// Reset returns every route ("" for all) to its configuration and
	// enables it.
	Reset(name string) error
}

// Config configures the server.
type Config struct {
	Listen string // host:port
	// Token, when set, is the bearer token that every call other than
	// GET, HEAD and OPTIONS must send, as Toxiproxy 2.13 asks with
	// TOXIPROXY_AUTH_TOKEN.
	Token string
	Log   zerolog.Logger
}

// Limits of the API's HTTP server; requests are small JSON documents.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	bodyLimit         = 1 << 20
)

// Server is the Toxiproxy-compatible API.
type Server struct {
	ctl Controller
	cfg Config
	log zerolog.Logger

	mu       sync.Mutex // serializes the API's changes
	hubsMu   sync.Mutex
	hubs     map[string]*hub
	disabled map[string]bool // preloaded proxies that start disabled

	http *http.Server
	ln   net.Listener
	done chan struct{}
}

// New returns a server driving ctl; Listen, then Serve, start it.
func New(ctl Controller, cfg Config) *Server {
	s := &Server{ctl: ctl, cfg: cfg, log: cfg.Log, hubs: map[string]*hub{}, disabled: map[string]bool{}}
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          log.New(serverErrors{s.log}, "", 0),
	}
	return s
}

// serverErrors sends net/http's own complaints to the log.
type serverErrors struct{ log zerolog.Logger }

func (w serverErrors) Write(p []byte) (int, error) {
	w.log.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Handler is the API's routing, for tests and embedding.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", s.handleVersion)
	mux.HandleFunc("POST /reset", s.handleReset)
	mux.HandleFunc("GET /proxies", s.handleProxies)
	mux.HandleFunc("POST /proxies", s.handleCreate)
	mux.HandleFunc("POST /populate", s.handlePopulate)
	mux.HandleFunc("GET /proxies/{proxy}", s.handleShow)
	mux.HandleFunc("POST /proxies/{proxy}", s.handleUpdate)
	mux.HandleFunc("PATCH /proxies/{proxy}", s.handleUpdate)
	mux.HandleFunc("DELETE /proxies/{proxy}", s.handleDelete)
	mux.HandleFunc("GET /proxies/{proxy}/toxics", s.handleToxics)
	mux.HandleFunc("POST /proxies/{proxy}/toxics", s.handleToxicCreate)
	mux.HandleFunc("GET /proxies/{proxy}/toxics/{toxic}", s.handleToxicShow)
	mux.HandleFunc("POST /proxies/{proxy}/toxics/{toxic}", s.handleToxicUpdate)
	mux.HandleFunc("PATCH /proxies/{proxy}/toxics/{toxic}", s.handleToxicUpdate)
	mux.HandleFunc("DELETE /proxies/{proxy}/toxics/{toxic}", s.handleToxicDelete)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As Toxiproxy does: a web page must not be able to reconfigure the
		// proxies through the visitor's browser.
		if strings.HasPrefix(r.UserAgent(), "Mozilla/") {
			http.Error(w, "User agent not allowed", http.StatusForbidden)
			return
		}
		if !s.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="toxiproxy"`)
			writeError(w, errUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, bodyLimit)
		mux.ServeHTTP(w, r)
	})
}

// authorized reports whether r may go on: reads always may; with a token
// set, a call that changes something must carry it as a bearer token.
// Both sides are hashed before the comparison, so that it takes the same
// time whatever the header holds.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.Token == "" {
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	got, want := sha256.Sum256([]byte(strings.TrimSpace(cred))), sha256.Sum256([]byte(s.cfg.Token))
	return strings.EqualFold(scheme, "Bearer") && subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// Listen binds the API's address, so that a port clash fails before any
// route starts.
func (s *Server) Listen() error {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen for the Toxiproxy API on %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	return nil
}

// Serve takes over the routes that the API started before the server did
// (those of Preload) and answers requests. Call it after Listen, once the
// routes are up.
func (s *Server) Serve() error {
	if s.ln == nil {
		return errors.New("serve the Toxiproxy API: not listening")
	}
	s.mu.Lock()
	var errs []error
	for _, r := range s.ctl.Routes() {
		name := r.Name()
		if !s.ctl.IsDynamic(name) {
			continue
		}
		if err := s.install(name, nil); err != nil {
			errs = append(errs, err)
		}
		if s.disabled[name] {
			if err := s.ctl.SetEnabled(name, false); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.disabled = map[string]bool{}
	s.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("serve the Toxiproxy API: %w", err)
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("Toxiproxy API stopped")
		}
	}()
	return nil
}

// Addr is the bound address, with the real port when 0 was asked.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the API, letting requests in progress finish until ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) {
	if s.done == nil {
		if s.ln != nil {
			s.ln.Close()
		}
		return
	}
	if err := s.http.Shutdown(ctx); err != nil {
		s.http.Close()
	}
	<-s.done
}

// ProxySpec is one proxy of Toxiproxy's JSON proxy list (its -config file
// and POST /populate).
type ProxySpec struct {
	Name     string `json:"name"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	Enabled  *bool  `json:"enabled"` // absent means true
}

func (p ProxySpec) enabled() bool { return p.Enabled == nil || *p.Enabled }

// uniqueNames refuses a list that names a proxy twice: the API would
// create one and list two.
func uniqueNames(specs []ProxySpec) error {
	seen := map[string]bool{}
	for _, p := range specs {
		if seen[p.Name] {
			return badBody(fmt.Errorf("proxy %q is listed twice", p.Name))
		}
		seen[p.Name] = true
	}
	return nil
}

// ReadProxies reads and checks a JSON proxy list, as Toxiproxy does
// before it creates any of them.
func ReadProxies(r io.Reader) ([]ProxySpec, error) {
	var specs []ProxySpec
	if err := json.NewDecoder(r).Decode(&specs); err != nil {
		return nil, bodyError(err)
	}
	for i, p := range specs {
		if p.Name == "" {
			return nil, missing(fmt.Sprintf("name at proxy %d", i+1))
		}
		if p.Upstream == "" {
			return nil, missing(fmt.Sprintf("upstream at proxy %d", i+1))
		}
		if err := checkName(p.Name); err != nil {
			return nil, err
		}
	}
	return specs, nil
}

// Preload declares proxies before the app starts (Toxiproxy's -config
// file): they start with the other routes, and Serve installs their
// toxics. A later proxy of the same name replaces an earlier one.
func (s *Server) Preload(specs []ProxySpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	last := map[string]int{}
	for i, p := range specs {
		last[p.Name] = i
	}
	for i, p := range specs {
		if last[p.Name] != i {
			continue
		}
		if err := s.ctl.AddRoute(routeFor(p.Name, p.Listen, p.Upstream)); err != nil {
			return fmt.Errorf("preload proxy %q: %w", p.Name, err)
		}
		if !p.enabled() {
			s.disabled[p.Name] = true
		}
	}
	return nil
}

// routeFor is the route a Toxiproxy proxy is: raw TCP with vaurien's
// defaults. An empty listen address asks for any port, as in Toxiproxy.
func routeFor(name, listen, upstream string) config.Route {
	if listen == "" {
		listen = ":0"
	}
	var opts chaos.Values
	if spec, ok := chaos.LookupProtocol(config.DefaultProtocol); ok {
		opts = spec.Options.Defaults()
	}
	return config.Route{
		Name: name, Listen: listen, Backend: upstream,
		Protocol: config.DefaultProtocol, ProtocolOptions: opts,
		ConnectTimeout: config.DefaultConnectTimeout,
	}
}

// checkName refuses names that cannot be addressed in the API's paths.
func checkName(name string) error {
	if len(name) > 255 || strings.ContainsAny(name, "/\\?#%") || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return badBody(fmt.Errorf("proxy name %q cannot be used in the API's paths", name))
	}
	return nil
}

// hub returns the toxics of a proxy, creating an empty set.
func (s *Server) hub(name string) *hub {
	s.hubsMu.Lock()
	defer s.hubsMu.Unlock()
	h := s.hubs[name]
	if h == nil {
		h = newHub()
		s.hubs[name] = h
	}
	return h
}

// toxicsOf returns a proxy's toxics without creating a hub.
func (s *Server) toxicsOf(name string) []*toxic {
	s.hubsMu.Lock()
	h := s.hubs[name]
	s.hubsMu.Unlock()
	if h == nil {
		return nil
	}
	return h.load().toxics
}

// install puts list in force on a proxy and gives its route the mix that
// carries it out. A route of the file with no toxic left gets the file's
// mix back; a route of the API keeps a "toxics" mix even with none, so
// that its connections follow the toxics added later.
func (s *Server) install(name string, list []*toxic) error {
	h := s.hub(name)
	h.mu.Lock()
	set := h.store(list)
	var m *chaos.Mix
	if len(list) == 0 && !s.ctl.IsDynamic(name) {
		cm, err := s.ctl.ConfiguredMix(name)
		if err != nil {
			cm, _ = chaos.NewMix(nil)
		}
		m = cm
		h.mix.Store(nil)
	} else {
		m = toxicsMix(h, set)
		h.mix.Store(m)
	}
	h.mu.Unlock()
	return s.ctl.SetMix(name, m, 0)
}

// toxicsMix is the mix of one "toxics" entry at 100% that stacks the set's
// toxics; its options list them, for vaurien's own API and dashboard.
func toxicsMix(h *hub, set *toxicSet) *chaos.Mix {
	opts := chaos.Values{}
	for _, t := range set.toxics {
		b, _ := json.Marshal(t.attrs)
		opts[t.name] = fmt.Sprintf("%s %s toxicity=%g %s", t.typ, t.stream, t.toxicity, b)
	}
	m, _ := chaos.NewMix([]chaos.Entry{{
		Name: "toxics", Percent: 100, Options: opts,
		Behavior: &toxicsBehavior{hub: h, set: set},
	}})
	return m
}

// mixChanged hears every mix a route gets. A mix the API did not install
// (vaurien's own API, a reload, a reset) ends the toxics: the route no
// longer carries them out.
func (s *Server) mixChanged(name string, m *chaos.Mix) {
	s.hubsMu.Lock()
	h := s.hubs[name]
	s.hubsMu.Unlock()
	if h == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mix.Load() == m || len(h.load().toxics) == 0 && h.mix.Load() == nil {
		return
	}
	h.mix.Store(nil)
	h.store(nil)
}

// Observer returns the engine observer through which the server hears of
// mix changes made elsewhere; pass it to the proxy server.
func (s *Server) Observer() proxy.Observer { return observer{s} }

type observer struct{ s *Server }

func (o observer) Route(name, _ string) proxy.RouteObserver { return routeObserver{o.s, name} }

type routeObserver struct {
	s    *Server
	name string
}

func (routeObserver) Accepted(net.Addr)                       {}
func (routeObserver) Closed(net.Addr, time.Duration, error)   {}
func (routeObserver) Refused(string)                          {}
func (routeObserver) DialFailed(string, error)                {}
func (routeObserver) Relayed(chaos.Direction, int64)          {}
func (routeObserver) Exchanged(*chaos.Request, time.Duration) {}
func (routeObserver) Injected(string, *chaos.Request)         {}
func (o routeObserver) MixChanged(m *chaos.Mix)               { o.s.mixChanged(o.name, m) }
func (routeObserver) Stopped()                                {}

// proxyView is Toxiproxy's proxy object.
type proxyView struct {
	Name     string   `json:"name"`
	Listen   string   `json:"listen"`
	Upstream string   `json:"upstream"`
	Enabled  bool     `json:"enabled"`
	Toxics   []*toxic `json:"toxics"`
}

func (s *Server) view(r *proxy.Route) proxyView {
	return proxyView{
		Name: r.Name(), Listen: r.Addr(), Upstream: r.Config().Backend,
		Enabled: r.Enabled(), Toxics: ordered(s.toxicsOf(r.Name())),
	}
}

// ordered lists toxics as Toxiproxy does: upstream ones, then downstream
// ones, each in the order they were added. It is never nil.
func ordered(list []*toxic) []*toxic {
	out := make([]*toxic, 0, len(list))
	for _, d := range []chaos.Direction{chaos.ToBackend, chaos.ToClient} {
		for _, t := range list {
			if t.dir == d {
				out = append(out, t)
			}
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

func writeError(w http.ResponseWriter, err error) {
	ae := asAPIError(err)
	b, _ := json.Marshal(ae)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.Status)
	w.Write(append(b, '\n'))
}

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, bodyError(err)
	}
	return b, nil
}

// bodyError is a body that could not be read: 413 when it is over the
// limit, as vaurien's admin API answers, else a bad body.
func bodyError(err error) *apiError {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &apiError{fmt.Sprintf("request body too large: the limit is %d bytes", bodyLimit), http.StatusRequestEntityTooLarge}
	}
	return badBody(err)
}

// route finds the proxy named in the path.
func (s *Server) route(r *http.Request) (*proxy.Route, error) {
	rt, err := s.ctl.Route(r.PathValue("proxy"))
	if err != nil {
		return nil, errProxyNotFound
	}
	return rt, nil
}

func (s *Server) handleVersion(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	b, _ := json.Marshal(map[string]string{"version": version.Version})
	w.Write(append(b, '\n'))
}

func (s *Server) handleProxies(w http.ResponseWriter, _ *http.Request) {
	out := map[string]proxyView{}
	for _, r := range s.ctl.Routes() {
		out[r.Name()] = s.view(r)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleShow(w http.ResponseWriter, r *http.Request) {
	rt, err := s.route(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.view(rt))
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var in ProxySpec
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, badBody(err))
		return
	}
	switch {
	case in.Name == "":
		writeError(w, missing("name"))
		return
	case in.Upstream == "":
		writeError(w, missing("upstream"))
		return
	}
	if err := checkName(in.Name); err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.ctl.Route(in.Name); err == nil {
		writeError(w, errProxyExists)
		return
	}
	rt, err := s.create(in)
	if err != nil {
		writeError(w, err)
		return
	}
	s.log.Info().Str("proxy", in.Name).Str("listen", rt.Addr()).Str("upstream", in.Upstream).Msg("Toxiproxy API: proxy created")
	writeJSON(w, http.StatusCreated, s.view(rt))
}

// create starts a proxy's route with no toxic. Callers hold s.mu.
func (s *Server) create(in ProxySpec) (*proxy.Route, error) {
	if err := s.ctl.AddRoute(routeFor(in.Name, in.Listen, in.Upstream)); err != nil {
		return nil, err
	}
	if err := s.install(in.Name, nil); err != nil {
		return nil, err
	}
	if !in.enabled() {
		if err := s.ctl.SetEnabled(in.Name, false); err != nil {
			return nil, err
		}
	}
	return s.ctl.Route(in.Name)
}

func (s *Server) handlePopulate(w http.ResponseWriter, r *http.Request) {
	type answer struct {
		*apiError
		Proxies []proxyView `json:"proxies"`
	}
	specs, err := ReadProxies(r.Body)
	if err == nil {
		err = uniqueNames(specs)
	}
	if err != nil {
		ae := asAPIError(err)
		writeJSON(w, ae.Status, answer{apiError: ae})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var views []proxyView
	for _, p := range specs {
		rt, err := s.populateOne(p)
		if err != nil {
			ae := asAPIError(err)
			writeJSON(w, ae.Status, answer{apiError: ae, Proxies: views})
			return
		}
		views = append(views, s.view(rt))
	}
	s.log.Info().Int("proxies", len(specs)).Msg("Toxiproxy API: proxies populated")
	writeJSON(w, http.StatusCreated, answer{Proxies: views})
}

// populateOne creates a proxy, leaves an identical one untouched, or
// replaces one with another listen address or upstream (its toxics go).
func (s *Server) populateOne(p ProxySpec) (*proxy.Route, error) {
	rt, err := s.ctl.Route(p.Name)
	if err != nil {
		return s.create(p)
	}
	cfg := rt.Config()
	sameListen := p.Listen == cfg.Listen || p.Listen == rt.Addr() || p.Listen == "" && cfg.Listen == ":0"
	if sameListen && p.Upstream == cfg.Backend {
		return rt, nil
	}
	if err := s.replace(rt, p.Listen, p.Upstream, sameListen, p.enabled()); err != nil {
		return nil, err
	}
	if err := s.install(p.Name, nil); err != nil {
		return nil, err
	}
	return s.ctl.Route(p.Name)
}

// replace gives a proxy a new listen address or upstream, closing its
// connections as Toxiproxy restarts a changed proxy, and enables or
// disables it. A route of the file keeps its listen address: the file owns
// it. When the change cannot be made the proxy is left as it was.
func (s *Server) replace(rt *proxy.Route, listen, upstream string, sameListen, enabled bool) error {
	name := rt.Name()
	if s.ctl.IsDynamic(name) {
		if sameListen {
			listen = rt.Config().Listen
		}
		return s.ctl.UpdateRoute(routeFor(name, listen, upstream), enabled)
	}
	if !sameListen {
		return &apiError{fmt.Sprintf("proxy %q is a route of vaurien's configuration file: change its listen address there", name), http.StatusConflict}
	}
	// Listening again is what can fail (the address was taken meanwhile):
	// it comes first, so that a failure changes nothing.
	reopened := enabled && !rt.Enabled()
	if reopened {
		if err := s.ctl.SetEnabled(name, true); err != nil {
			return err
		}
	}
	if err := s.ctl.SetBackend(name, upstream); err != nil {
		if reopened {
			err = errors.Join(err, s.ctl.SetEnabled(name, false))
		}
		return err
	}
	// Live connections go to the old upstream: close them.
	rt.CloseConnections()
	if !enabled && rt.Enabled() {
		return s.ctl.SetEnabled(name, false)
	}
	return nil
}

func (s *Server) handleUpdate(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, err := s.route(r)
	if err != nil {
		writeError(w, err)
		return
	}
	cfg := rt.Config()
	in := struct {
		Listen   *string `json:"listen"`
		Upstream *string `json:"upstream"`
		Enabled  *bool   `json:"enabled"`
	}{}
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, badBody(err))
		return
	}
	listen, upstream, enabled := rt.Addr(), cfg.Backend, rt.Enabled()
	if in.Listen != nil {
		listen = *in.Listen
	}
	if in.Upstream != nil {
		upstream = *in.Upstream
	}
	if in.Enabled != nil {
		enabled = *in.Enabled
	}
	sameListen := listen == rt.Addr() || listen == cfg.Listen
	switch {
	case !sameListen || upstream != cfg.Backend:
		err = s.replace(rt, listen, upstream, sameListen, enabled)
	case rt.Enabled() != enabled:
		err = s.ctl.SetEnabled(rt.Name(), enabled)
	}
	if err == nil {
		rt, err = s.ctl.Route(rt.Name())
	}
	if err != nil {
		writeError(w, err)
		return
	}
	s.log.Info().Str("proxy", rt.Name()).Str("listen", rt.Addr()).Str("upstream", upstream).Bool("enabled", enabled).Msg("Toxiproxy API: proxy updated")
	writeJSON(w, http.StatusOK, s.view(rt))
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, err := s.route(r)
	if err != nil {
		writeError(w, err)
		return
	}
	name := rt.Name()
	if !s.ctl.IsDynamic(name) {
		writeError(w, &apiError{fmt.Sprintf("proxy %q is a route of vaurien's configuration file: remove it there", name), http.StatusConflict})
		return
	}
	if err := s.ctl.RemoveRoute(name); err != nil {
		writeError(w, err)
		return
	}
	s.hubsMu.Lock()
	h := s.hubs[name]
	delete(s.hubs, name)
	s.hubsMu.Unlock()
	if h != nil {
		h.mu.Lock()
		h.store(nil)
		h.mu.Unlock()
	}
	s.log.Info().Str("proxy", name).Msg("Toxiproxy API: proxy deleted")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleReset(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The routes first: a reset that cannot enable every route changes
	// nothing, toxics included.
	if len(s.ctl.Routes()) > 0 {
		if err := s.ctl.Reset(""); err != nil {
			writeError(w, err)
			return
		}
	}
	s.hubsMu.Lock()
	hubs := make([]*hub, 0, len(s.hubs))
	for _, h := range s.hubs {
		hubs = append(hubs, h)
	}
	s.hubsMu.Unlock()
	for _, h := range hubs {
		h.mu.Lock()
		h.mix.Store(nil)
		h.store(nil)
		h.mu.Unlock()
	}
	var errs []error
	for _, r := range s.ctl.Routes() {
		if s.ctl.IsDynamic(r.Name()) {
			errs = append(errs, s.install(r.Name(), nil))
		}
	}
	if err := errors.Join(errs...); err != nil {
		writeError(w, err)
		return
	}
	s.log.Info().Msg("Toxiproxy API: reset")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleToxics(w http.ResponseWriter, r *http.Request) {
	rt, err := s.route(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ordered(s.toxicsOf(rt.Name())))
}

func (s *Server) handleToxicShow(w http.ResponseWriter, r *http.Request) {
	rt, err := s.route(r)
	if err != nil {
		writeError(w, err)
		return
	}
	list := s.toxicsOf(rt.Name())
	i := indexOf(list, r.PathValue("toxic"))
	if i < 0 {
		writeError(w, errToxicNotFound)
		return
	}
	writeJSON(w, http.StatusOK, list[i])
}

func indexOf(list []*toxic, name string) int {
	return slices.IndexFunc(list, func(t *toxic) bool { return t.name == name })
}

func (s *Server) handleToxicCreate(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, err := s.route(r)
	if err != nil {
		writeError(w, err)
		return
	}
	name := rt.Name()
	list := s.toxicsOf(name)
	t, err := newToxic(body, func(n string) bool { return indexOf(list, n) >= 0 })
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.install(name, append(slices.Clip(list), t)); err != nil {
		writeError(w, err)
		return
	}
	s.log.Info().Str("proxy", name).Str("toxic", t.name).Str("type", t.typ).Str("stream", t.stream).Msg("Toxiproxy API: toxic added")
	s.warnIgnored(name, t, body)
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) handleToxicUpdate(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, err := s.route(r)
	if err != nil {
		writeError(w, err)
		return
	}
	name := rt.Name()
	list := s.toxicsOf(name)
	i := indexOf(list, r.PathValue("toxic"))
	if i < 0 {
		writeError(w, errToxicNotFound)
		return
	}
	t, err := list[i].updated(body)
	if err != nil {
		writeError(w, err)
		return
	}
	next := slices.Clone(list)
	next[i] = t
	if err := s.install(name, next); err != nil {
		writeError(w, err)
		return
	}
	s.log.Info().Str("proxy", name).Str("toxic", t.name).Msg("Toxiproxy API: toxic updated")
	s.warnIgnored(name, t, body)
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) handleToxicDelete(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, err := s.route(r)
	if err != nil {
		writeError(w, err)
		return
	}
	name := rt.Name()
	list := s.toxicsOf(name)
	i := indexOf(list, r.PathValue("toxic"))
	if i < 0 {
		writeError(w, errToxicNotFound)
		return
	}
	if err := s.install(name, slices.Delete(slices.Clone(list), i, i+1)); err != nil {
		writeError(w, err)
		return
	}
	s.log.Info().Str("proxy", name).Str("toxic", r.PathValue("toxic")).Msg("Toxiproxy API: toxic removed")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) warnIgnored(proxy string, t *toxic, body []byte) {
	if ignored := ignoredAttrs(t.typ, body); len(ignored) > 0 {
		s.log.Warn().Str("proxy", proxy).Str("toxic", t.name).Str("type", t.typ).Strs("ignored", ignored).Msg("Toxiproxy API: unknown toxic attributes ignored")
	}
}
