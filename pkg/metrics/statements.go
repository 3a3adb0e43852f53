package metrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// statementVecs count requests, durations and faults by command on the
// routes of protocols that declare a closed set of commands
// (chaos.ProtocolSpec.Commands: a database's statement keywords), so that
// the label's values are bounded whatever clients send.
type statementVecs struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	faults   *prometheus.CounterVec
}

func newStatementVecs() statementVecs {
	return statementVecs{
		requests: counterVec("statements_total",
			"Statements completed on a database route, by command (the statement's first keyword, from the protocol's closed set).",
			LabelRoute, LabelCommand),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "statement_duration_seconds",
			Help:    "Time from a statement's arrival to the end of its answer on a database route, by command, injected delays included.",
			Buckets: DurationBuckets,
		}, []string{LabelRoute, LabelCommand}),
		faults: counterVec("statement_faults_injected_total",
			"Statements whose drawn behavior changed them on a database route, by behavior and command.",
			LabelRoute, LabelBehavior, LabelCommand),
	}
}

// routeCommands holds one route's series by command, made when a command
// is first seen: a route shows only the commands its clients send.
type routeCommands struct {
	v     *statementVecs
	route string
	// by has a slot for every command of the protocol's set and is never
	// written once made, so that a statement costs one lookup and no lock.
	by    map[string]*commandSlot
	other *commandSlot // the last declared command, the catch-all
}

// commandSlot is one command's place, with its series once it is seen.
type commandSlot struct {
	command string
	series  atomic.Pointer[commandSeries]
}

type commandSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newRouteCommands(v *statementVecs, route string, commands []string, other string) *routeCommands {
	rc := &routeCommands{v: v, route: route, by: make(map[string]*commandSlot, len(commands))}
	for _, c := range commands {
		rc.by[c] = &commandSlot{command: c}
	}
	rc.other = rc.by[other]
	return rc
}

// slot bounds a command to the declared set: a protocol that reports
// another counts it as its declared catch-all.
func (rc *routeCommands) slot(c string) *commandSlot {
	if s, ok := rc.by[c]; ok {
		return s
	}
	return rc.other
}

func (rc *routeCommands) exchanged(command string, took time.Duration) {
	s := rc.slot(command)
	cs := s.series.Load()
	if cs == nil {
		cs = &commandSeries{
			requests: rc.v.requests.WithLabelValues(rc.route, s.command),
			duration: rc.v.duration.WithLabelValues(rc.route, s.command),
		}
		if !s.series.CompareAndSwap(nil, cs) {
			cs = s.series.Load()
		}
	}
	cs.requests.Inc()
	cs.duration.Observe(took.Seconds())
}

func (rc *routeCommands) injected(behavior, command string) {
	rc.v.faults.WithLabelValues(rc.route, behavior, rc.slot(command).command).Inc()
}
