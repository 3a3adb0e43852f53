package metrics_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vaurien-go/vaurien/pkg/metrics"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

func TestTLSHandshakesByReason(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	r := m.Route("web", "http").(proxy.TLSObserver)
	r.Handshake(proxy.SideClient, time.Millisecond, "", nil)
	r.Handshake(proxy.SideClient, time.Millisecond, "alert_unknown_ca", errors.New("remote error"))
	r.Handshake(proxy.SideBackend, time.Millisecond, "timeout", os.ErrDeadlineExceeded)
	// A reason outside the fixed set cannot grow the label values.
	r.Handshake(proxy.SideClient, time.Millisecond, "some text from a client", errors.New("odd"))
	r.CertReloaded(errors.New("bad pem"))

	for _, tt := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"vaurien_tls_handshakes_total", []string{"web", "client"}, 3},
		{"vaurien_tls_handshakes_total", []string{"web", "backend"}, 1},
		{"vaurien_tls_handshake_failures_total", []string{"web", "client", "alert_unknown_ca"}, 1},
		{"vaurien_tls_handshake_failures_total", []string{"web", "client", "other"}, 1},
		{"vaurien_tls_handshake_failures_total", []string{"web", "backend", "timeout"}, 1},
		{"vaurien_tls_certificate_reloads_total", []string{"web", "failure"}, 1},
	} {
		if got := gathered(t, reg, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
	// A route that stops takes its TLS series with it.
	m.Route("web", "http").Stopped()
	r.(proxy.RouteObserver).Stopped()
	if n := testutil.CollectAndCount(reg, "vaurien_tls_handshakes_total"); n != 0 {
		t.Errorf("%d handshake series left after the route stopped", n)
	}
}

// gathered returns the value of the series of name whose label values,
// in order, are labels.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels []string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, s := range mf.GetMetric() {
			if len(s.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range s.GetLabel() {
				found := false
				for _, l := range labels {
					found = found || lp.GetValue() == l
				}
				if !found {
					continue next
				}
			}
			return s.GetCounter().GetValue()
		}
	}
	return -1
}
