package metrics

import (
	"sync"
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
	known map[string]bool // the protocol's commands; read-only
	other string          // what a command outside them counts as
	by    sync.Map        // command → *commandSeries
}

type commandSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newRouteCommands(v *statementVecs, route string, commands []string) *routeCommands {
	rc := &routeCommands{v: v, route: route, known: make(map[string]bool, len(commands)), other: commands[len(commands)-1]}
	for _, c := range commands {
		rc.known[c] = true
	}
	return rc
}

// command bounds a command to the declared set: a protocol that reports
// another counts it as the last declared command, its catch-all.
func (rc *routeCommands) command(c string) string {
	if rc.known[c] {
		return c
	}
	return rc.other
}

func (rc *routeCommands) exchanged(command string, took time.Duration) {
	command = rc.command(command)
	s, ok := rc.by.Load(command)
	if !ok {
		s, _ = rc.by.LoadOrStore(command, &commandSeries{
			requests: rc.v.requests.WithLabelValues(rc.route, command),
			duration: rc.v.duration.WithLabelValues(rc.route, command),
		})
	}
	cs := s.(*commandSeries)
	cs.requests.Inc()
	cs.duration.Observe(took.Seconds())
}

func (rc *routeCommands) injected(behavior, command string) {
	rc.v.faults.WithLabelValues(rc.route, behavior, rc.command(command)).Inc()
}
