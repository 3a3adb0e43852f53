// Package metrics owns vaurien's Prometheus metrics: the collectors, kept on
// a registry the program owns rather than the global default, the proxy
// observer that feeds them from the engine's events, and the HTTP handler
// that exposes them. Label values come only from the configuration (route
// names) or from fixed sets (behavior and protocol names from the
// registries, directions, refusal reasons, reload results), never from
// clients, keys or error texts, so the number of series stays bounded.
package metrics

import (
	"crypto/sha256"
	"encoding/binary"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/proxy"
	"github.com/vaurien-go/vaurien/pkg/version"
)

// Namespace prefixes every vaurien metric.
const Namespace = "vaurien"

// Label names.
const (
	LabelRoute     = "route"
	LabelProtocol  = "protocol"
	LabelBehavior  = "behavior"
	LabelDirection = "direction"
	LabelReason    = "reason"
	LabelResult    = "result"
	LabelSide      = "side"
	LabelCommand   = "command"
)

// Values of the result label of vaurien_config_reloads_total.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// dummy is the pass-through behavior, which holds the rest of every mix.
const dummy = "dummy"

// ReasonOther stands for a refusal reason outside the known set, so that a
// protocol passing an unexpected text cannot grow the label set.
const ReasonOther = "other"

// reasons are the refusal reasons a route reports.
var reasons = []string{proxy.RefusedLimit, proxy.RefusedDown, proxy.RefusedBadRequest, proxy.RefusedLoop}

// DurationBuckets are the request duration histogram's upper bounds in
// seconds: from a fast local backend (1 ms) up to the minute-long waits a
// hang or timeout behavior produces.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Metrics holds vaurien's collectors. It is a proxy.Observer: give it to
// proxy.New (through proxy.Observers next to the logging observer).
type Metrics struct {
	accepted   *prometheus.CounterVec
	active     *prometheus.GaugeVec
	refused    *prometheus.CounterVec
	dialErrors *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	faults     *prometheus.CounterVec
	statements statementVecs
	mix        *prometheus.GaugeVec
	tls        tlsMetrics
	reloads    *prometheus.CounterVec
	loadedAt   prometheus.Gauge
	hash       prometheus.Gauge
	exp        experiments

	handler http.Handler

	// A route replaced by a reload (new listen address or protocol) gets a
	// new observer before the old one has drained: series are shared by
	// name and deleted when the last observer of the name stops.
	mu        sync.Mutex
	names     map[string]int
	protocols map[routeProtocol]int
}

type routeProtocol struct{ route, protocol string }

var _ proxy.Observer = (*Metrics)(nil)

// counterVec and gaugeVec declare vaurien's collectors: its namespace,
// a name, the help text and the labels.
func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
}

func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
}

// New creates vaurien's collectors, with the Go runtime and process
// collectors and vaurien_build_info, and registers them all on reg (a new
// registry when reg is nil). It panics if reg already holds them: a program
// builds one Metrics per registry.
func New(reg *prometheus.Registry) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		accepted: counterVec("connections_accepted_total",
			"Client connections accepted by a route (refused ones excluded).",
			LabelRoute),
		active: gaugeVec("connections_active",
			"Client connections a route is serving now.",
			LabelRoute),
		refused: counterVec("connections_refused_total",
			"Client connections a route refused, by reason: closed at once when max_connections is reached or by the down behavior, or closed after answering a request it would not forward (bad_request).",
			LabelRoute, LabelReason),
		dialErrors: counterVec("backend_dial_errors_total",
			"Failed attempts to connect to a route's backend.",
			LabelRoute),
		bytes: counterVec("relayed_bytes_total",
			"Bytes a route relayed, by direction (to_backend, to_client); counted while connections are open.",
			LabelRoute, LabelDirection),
		requests: counterVec("requests_total",
			"Request/response exchanges completed on a protocol-aware route.",
			LabelRoute, LabelProtocol),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response on a protocol-aware route, injected delays included.",
			Buckets: DurationBuckets,
		}, []string{LabelRoute, LabelProtocol}),
		faults: counterVec("faults_injected_total",
			"Draws whose behavior changed the traffic (per connection on tcp, per request on protocol-aware routes).",
			LabelRoute, LabelBehavior),
		statements: newStatementVecs(),
		mix: gaugeVec("mix_weight_ratio",
			"Share of draws the route's live mix gives a behavior (0 to 1; dummy holds the pass-through rest).",
			LabelRoute, LabelBehavior),
		reloads: counterVec("config_reloads_total",
			"Configuration reloads, by result (success, failure).",
			LabelResult),
		loadedAt: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "config_last_reload_success_timestamp_seconds",
			Help: "When the configuration in force was loaded (at start or by a reload), in seconds since the epoch."}),
		hash: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "config_hash",
			Help: "The configuration file in force: the first 48 bits of its SHA-256, as a number (0 when started from flags)."}),
		tls:       newTLSMetrics(),
		exp:       newExperiments(),
		names:     map[string]int{},
		protocols: map[routeProtocol]int{},
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help: "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{
			"version":   version.Version,
			"revision":  orUnknown(version.Commit),
			"goversion": version.GoVersion(),
		},
	})
	build.Set(1)
	for _, r := range []string{ResultSuccess, ResultFailure} {
		m.reloads.WithLabelValues(r) // both results show from the start
	}
	reg.MustRegister(m.accepted, m.active, m.refused, m.dialErrors, m.bytes, m.requests,
		m.duration, m.faults, m.statements.requests, m.statements.duration, m.statements.faults, m.mix, m.tls.handshakes, m.tls.failures, m.tls.reloads,
		m.reloads, m.loadedAt, m.hash, m.exp.running, m.exp.sloOK, build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:          reg,
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}))
	return m
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// Handler serves the registry in the Prometheus text or OpenMetrics format;
// the admin server mounts it at /metrics.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Reloaded counts one configuration reload, successful or not.
func (m *Metrics) Reloaded(ok bool) {
	r := ResultFailure
	if ok {
		r = ResultSuccess
	}
	m.reloads.WithLabelValues(r).Inc()
}

// ConfigLoaded records the configuration now in force, by the SHA-256 of
// its file's bytes. Replicas that read the same file show the same
// vaurien_config_hash, so a fleet's convergence is one count_values away.
func (m *Metrics) ConfigLoaded(sum [sha256.Size]byte) {
	m.loadedAt.SetToCurrentTime()
	m.hash.Set(float64(HashPrefix(sum)))
}

// HashPrefix is the value of vaurien_config_hash for a file's SHA-256: its
// first 48 bits, which a float64 holds exactly. It is the number that
// printf '%d' 0x$(sha256sum FILE | cut -c1-12) prints.
func HashPrefix(sum [sha256.Size]byte) uint64 {
	var b [8]byte
	copy(b[2:], sum[:6])
	return binary.BigEndian.Uint64(b[:])
}

// Route creates the route's series (every behavior's fault counter and mix
// weight at 0, so that a dashboard shows when chaos is switched on) and
// returns an observer holding them, so that the hot path never looks a
// series up.
func (m *Metrics) Route(name, protocol string) proxy.RouteObserver {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.names[name]++
	m.protocols[routeProtocol{name, protocol}]++
	r := &route{
		m: m, name: name, protocol: protocol,
		accepted:   m.accepted.WithLabelValues(name),
		active:     m.active.WithLabelValues(name),
		dialErrors: m.dialErrors.WithLabelValues(name),
		bytes: [2]prometheus.Counter{
			m.bytes.WithLabelValues(name, chaos.ToBackend.String()),
			m.bytes.WithLabelValues(name, chaos.ToClient.String()),
		},
		requests: m.requests.WithLabelValues(name, protocol),
		duration: m.duration.WithLabelValues(name, protocol),
		refused:  make(map[string]prometheus.Counter, len(reasons)),
		faults:   map[string]prometheus.Counter{},
		weights:  map[string]prometheus.Gauge{},
	}
	for _, reason := range reasons {
		r.refused[reason] = m.refused.WithLabelValues(name, reason)
	}
	if spec, ok := chaos.LookupProtocol(protocol); ok && len(spec.Commands) > 0 {
		r.commands = newRouteCommands(&m.statements, name, spec.Commands, spec.OtherCommand)
	}
	for _, b := range chaos.BehaviorNames() {
		if b != dummy { // dummy never changes the traffic
			r.faults[b] = m.faults.WithLabelValues(name, b)
		}
		r.weights[b] = m.mix.WithLabelValues(name, b)
	}
	return r
}

// stopped deletes a route's series once no observer of its name (or of its
// name and protocol) is left.
func (m *Metrics) stopped(name, protocol string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := routeProtocol{name, protocol}
	if m.protocols[key]--; m.protocols[key] <= 0 {
		delete(m.protocols, key)
		l := prometheus.Labels{LabelRoute: name, LabelProtocol: protocol}
		m.requests.DeletePartialMatch(l)
		m.duration.DeletePartialMatch(l)
	}
	if m.names[name]--; m.names[name] > 0 {
		return
	}
	delete(m.names, name)
	l := prometheus.Labels{LabelRoute: name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.accepted, m.active, m.refused, m.dialErrors, m.bytes, m.faults, m.mix,
		m.statements.requests, m.statements.duration, m.statements.faults,
		m.tls.handshakes, m.tls.failures, m.tls.reloads,
	} {
		v.DeletePartialMatch(l)
	}
}

// route is one route's observer. Every field but weights is fixed once
// built, so the hot-path methods read them without a lock.
type route struct {
	m              *Metrics
	name, protocol string

	accepted   prometheus.Counter
	active     prometheus.Gauge
	dialErrors prometheus.Counter
	bytes      [2]prometheus.Counter // to_backend, to_client
	requests   prometheus.Counter
	duration   prometheus.Observer
	refused    map[string]prometheus.Counter // the known reasons; read-only
	faults     map[string]prometheus.Counter // every registered behavior but dummy; read-only
	commands   *routeCommands                // nil unless the protocol declares its commands

	mixMu   sync.Mutex // orders concurrent mix changes
	weights map[string]prometheus.Gauge

	stop sync.Once
}

func (r *route) Accepted(net.Addr) {
	r.accepted.Inc()
	r.active.Inc()
}

func (r *route) Closed(net.Addr, time.Duration, error) { r.active.Dec() }

func (r *route) Refused(reason string) {
	if c, ok := r.refused[reason]; ok {
		c.Inc()
		return
	}
	r.m.refused.WithLabelValues(r.name, ReasonOther).Inc()
}

func (r *route) DialFailed(string, error) { r.dialErrors.Inc() }

func (r *route) Relayed(d chaos.Direction, n int64) {
	if d == chaos.ToBackend {
		r.bytes[0].Add(float64(n))
	} else {
		r.bytes[1].Add(float64(n))
	}
}

func (r *route) Exchanged(req *chaos.Request, took time.Duration) {
	r.requests.Inc()
	r.duration.Observe(took.Seconds())
	if r.commands != nil && req != nil {
		r.commands.exchanged(req.Command, took)
	}
}

func (r *route) Injected(behavior string, req *chaos.Request) {
	if r.commands != nil && req != nil {
		r.commands.injected(behavior, req.Command)
	}
	if c, ok := r.faults[behavior]; ok {
		c.Inc()
		return
	}
	// A behavior registered after the route started: its name still comes
	// from the registry through the config, so the label set stays bounded.
	r.m.faults.WithLabelValues(r.name, behavior).Inc()
}

func (r *route) MixChanged(mix *chaos.Mix) {
	w := mix.Weights()
	r.mixMu.Lock()
	defer r.mixMu.Unlock()
	for b, g := range r.weights {
		g.Set(w[b] / 100)
	}
	for b, pct := range w {
		if _, ok := r.weights[b]; !ok {
			g := r.m.mix.WithLabelValues(r.name, b)
			r.weights[b] = g
			g.Set(pct / 100)
		}
	}
}

func (r *route) Stopped() {
	r.stop.Do(func() { r.m.stopped(r.name, r.protocol) })
}
