package metrics

import (
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaurien-go/vaurien/pkg/proxy"
	"github.com/vaurien-go/vaurien/pkg/tlsroute"
)

// tlsMetrics count the TLS handshakes of routes that speak TLS. Their
// series appear with a route's first handshake, so that routes without
// TLS show none.
type tlsMetrics struct {
	handshakes *prometheus.CounterVec
	failures   *prometheus.CounterVec
	reloads    *prometheus.CounterVec
}

func newTLSMetrics() tlsMetrics {
	return tlsMetrics{
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "tls_handshakes_total",
			Help: "TLS handshakes a route finished, successful or not, by side: client (terminated on the listener) or backend (originated to the backend).",
		}, []string{LabelRoute, LabelSide}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "tls_handshake_failures_total",
			Help: "TLS handshakes that failed, by side and reason: injected (tls_handshake_fail), timeout, closed, not_tls, version, no_shared_cipher, no_certificate, unknown_ca, wrong_host, expired, canceled, alert_NAME for an alert the peer sent, other.",
		}, []string{LabelRoute, LabelSide, LabelReason}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "tls_certificate_reloads_total",
			Help: "Reloads of a route's certificate files after they changed, by result (success, failure: the previous certificate stays).",
		}, []string{LabelRoute, LabelResult}),
	}
}

var _ proxy.TLSObserver = (*route)(nil)

// tlsReasons are the failure reasons a route may report.
var tlsReasons = tlsroute.Reasons()

func (r *route) Handshake(side string, _ time.Duration, reason string, err error) {
	r.m.tls.handshakes.WithLabelValues(r.name, side).Inc()
	if err == nil {
		return
	}
	if !slices.Contains(tlsReasons, reason) {
		reason = ReasonOther
	}
	r.m.tls.failures.WithLabelValues(r.name, side, reason).Inc()
}

func (r *route) CertReloaded(err error) {
	result := ResultSuccess
	if err != nil {
		result = ResultFailure
	}
	r.m.tls.reloads.WithLabelValues(r.name, result).Inc()
}
