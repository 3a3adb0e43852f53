package metrics_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/metrics"
	"github.com/vaurien-go/vaurien/pkg/proxy"
	"github.com/vaurien-go/vaurien/pkg/tlsroute"
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

// tlsRoute is a route that terminates TLS with a generated certificate,
// for localhost, in front of an HTTP backend; it returns the file of the
// generated CA.
func tlsRoute(t *testing.T, name, backend string, m *chaos.Mix) (proxy.RouteConfig, string) {
	t.Helper()
	caOut := filepath.Join(t.TempDir(), "ca.pem")
	v, err := tlsroute.ServerOptions.Resolve("tls", map[string]any{"generate": true, "ca_out": caOut})
	if err != nil {
		t.Fatal(err)
	}
	return proxy.RouteConfig{Name: name, Backend: backend, Protocol: "http", TLS: v, Mix: m}, caOut
}

func httpHello(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// TestTLSCurlRejectionsByAlert: curl (OpenSSL) refuses each certificate
// of tls_bad_cert, and the failures are counted by the alert it sent,
// which in TLS 1.3 reaches vaurien in plain text where crypto/tls expects
// an encrypted record. curl checks the host name after the handshake: a
// wrong host is a handshake that succeeded, and a connection curl closes.
func TestTLSCurlRejectionsByAlert(t *testing.T) {
	curl := testenv.LookPath(t, "curl")
	backend := httpHello(t)
	for _, tt := range []struct {
		cert, curl, reason string // reason "" for a handshake that succeeds
	}{
		{"expired", "certificate has expired", "alert_certificate_expired"},
		{"not_yet_valid", "certificate is not yet valid", "alert_bad_certificate"},
		{"self_signed", "self-signed certificate", "alert_unknown_ca"},
		{"wrong_host", "no alternative certificate subject name matches target host name 'localhost'", ""},
	} {
		for _, version := range []string{"1.3", "1.2"} {
			t.Run(tt.cert+"/TLS"+version, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				cfg, caOut := tlsRoute(t, "bad", backend, mix(t, "100:tls_bad_cert/cert="+tt.cert))
				s := serve(t, metrics.New(reg), cfg)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				out, err := exec.CommandContext(ctx, curl, "-sS", "--tlsv"+version, "--tls-max", version, "--cacert", caOut,
					"https://localhost:"+port(s.Route("bad").Addr())+"/").CombinedOutput()
				if err == nil || !strings.Contains(string(out), tt.curl) {
					t.Fatalf("curl: %v: %q; want an error saying %q", err, out, tt.curl)
				}
				eventually(t, "the handshake counted", func() bool {
					return sample(t, reg, "vaurien_tls_handshakes_total", labels{"route": "bad", "side": "client"}) == 1
				})
				failures := labels{"route": "bad", "side": "client"}
				if tt.reason != "" {
					failures["reason"] = tt.reason
				}
				got := sample(t, reg, "vaurien_tls_handshake_failures_total", failures)
				if tt.reason == "" && got != -1 || tt.reason != "" && got != 1 {
					t.Errorf("failures{reason=%q} = %v, want 1 (-1: no series); all: %v", tt.reason, got, failureReasons(t, reg))
				}
			})
		}
	}
}

// failureReasons lists the handshake failures counted, by reason.
func failureReasons(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	out := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vaurien_tls_handshake_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" {
					out[lp.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// TestTLSBehaviorsKeepTheirShares: tls_handshake_fail and tls_bad_cert are
// drawn once per connection and error once per request, from one mix. The
// failed handshakes Go's client sees fall near their shares, and match
// the fault and handshake-failure counts exactly; the requests' draws
// count the TLS behaviors as dummy, so that error keeps its share of the
// requests and no request is counted as a TLS fault.
func TestTLSBehaviorsKeepTheirShares(t *testing.T) {
	const conns, perConn = 300, 10
	reg := prometheus.NewRegistry()
	m := mix(t, "20:tls_handshake_fail/alert=handshake_failure,20:tls_bad_cert/cert=expired,30:error")
	cfg, caOut := tlsRoute(t, "share", httpHello(t), m)
	s := serve(t, metrics.New(reg), cfg)
	pemBytes, err := os.ReadFile(caOut)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	addr := s.Route("share").Addr()

	var alerted, expired, served, requests, errored atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for next.Add(1) <= conns {
				c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
				var invalid x509.CertificateInvalidError
				switch {
				case err == nil:
					served.Add(1)
				case strings.Contains(err.Error(), "remote error: tls: handshake failure"):
					alerted.Add(1)
					continue
				case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
					expired.Add(1)
					continue
				default:
					t.Errorf("handshake: %v", err)
					return
				}
				// Requests until an error answer, which closes the
				// connection.
				br := bufio.NewReader(c)
				for range perConn {
					if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
						t.Error(err)
						break
					}
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Error(err)
						break
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					requests.Add(1)
					if resp.StatusCode >= 500 {
						errored.Add(1)
						break
					}
				}
				c.Close()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	share := func(n, of int64) float64 { return 100 * float64(n) / float64(of) }
	t.Logf("%d connections: %d alerts (%.1f%%), %d expired certificates (%.1f%%), %d served; %d requests, %d errors (%.1f%%)",
		conns, alerted.Load(), share(alerted.Load(), conns), expired.Load(), share(expired.Load(), conns), served.Load(),
		requests.Load(), errored.Load(), share(errored.Load(), requests.Load()))
	for _, tt := range []struct {
		what     string
		got      float64
		low, top float64
	}{
		{"tls_handshake_fail, of the connections", share(alerted.Load(), conns), 10, 30},
		{"tls_bad_cert, of the connections", share(expired.Load(), conns), 10, 30},
		{"error, of the requests", share(errored.Load(), requests.Load()), 20, 40},
	} {
		if tt.got < tt.low || tt.got > tt.top {
			t.Errorf("%s: %.1f%%, want %v-%v%%", tt.what, tt.got, tt.low, tt.top)
		}
	}

	eventually(t, "every handshake counted", func() bool {
		return sample(t, reg, "vaurien_tls_handshakes_total", labels{"route": "share", "side": "client"}) == conns
	})
	for _, tt := range []struct {
		name   string
		labels labels
		want   int64
	}{
		{"vaurien_tls_handshake_failures_total", labels{"side": "client", "reason": "injected"}, alerted.Load()},
		{"vaurien_tls_handshake_failures_total", labels{"side": "client", "reason": "alert_bad_certificate"}, expired.Load()},
		{"vaurien_faults_injected_total", labels{"behavior": "tls_handshake_fail"}, alerted.Load()},
		{"vaurien_faults_injected_total", labels{"behavior": "tls_bad_cert"}, expired.Load()},
		{"vaurien_faults_injected_total", labels{"behavior": "error"}, errored.Load()},
	} {
		tt.labels["route"] = "share"
		if got := sample(t, reg, tt.name, tt.labels); got != float64(tt.want) {
			t.Errorf("%s%v = %v, want %d as the client saw", tt.name, tt.labels, got, tt.want)
		}
	}
	if failures := failureReasons(t, reg); len(failures) != 2 {
		t.Errorf("handshake failures by reason %v, want injected and alert_bad_certificate only", failures)
	}
}
