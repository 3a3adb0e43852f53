package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// TestTLSMetricsServed: the running binary counts the handshakes of its
// TLS routes on both sides and their failures by reason, and serves them
// at the admin server's /metrics: curl through a route with TLS on both
// sides in front of an HTTPS backend, a client that speaks plain text to
// it, and curl refusing the expired certificate of another route.
func TestTLSMetricsServed(t *testing.T) {
	ca := testenv.NewCA(t)
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure "+r.URL.Path)
	}))
	backend.TLS = &tls.Config{Certificates: []tls.Certificate{ca.KeyPair(t, "127.0.0.1")}}
	backend.StartTLS()
	defer backend.Close()

	dir := t.TempDir()
	secure, faulty, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	caOut := filepath.Join(dir, "vaurien-ca.pem")
	path := filepath.Join(dir, "vaurien.hcl")
	writeConfig(t, path, fmt.Sprintf(`admin {
  listen = %q
}
log {
  level = "warn"
}
route "secure" {
  listen   = %q
  backend  = %q
  protocol = "http"
  tls {
    generate = true
    ca_out   = %q
  }
  backend_tls {
    ca = %q
  }
}
route "faulty" {
  listen   = %q
  backend  = %q
  protocol = "http"
  tls {
    generate = true
    ca_out   = %q
  }
  behavior "tls_bad_cert" {
    percent = 100
    cert    = "expired"
  }
}
`, admin, secure, backend.Listener.Addr(), caOut, ca.File, faulty, backend.Listener.Addr(), filepath.Join(dir, "faulty-ca.pem")))
	v := start(t, "", "run", "-c", path)
	// Ready once every route listens; dialing a route to find out would
	// count as a failed handshake.
	waitFor(t, "the admin server's /readyz", func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	http.DefaultClient.CloseIdleConnections()

	curl := testenv.LookPath(t, "curl")
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, curl, append([]string{"-sS"}, args...)...).CombinedOutput()
		return string(out), err
	}
	_, securePort, _ := net.SplitHostPort(secure)
	for i := range 3 {
		p := "/" + strconv.Itoa(i)
		if out, err := run("--cacert", caOut, "https://localhost:"+securePort+p); err != nil || out != "secure "+p {
			t.Fatalf("curl through TLS on both sides: %v: %q", err, out)
		}
	}
	c, err := net.Dial("tcp", secure)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, c)
	c.Close()
	_, faultyPort, _ := net.SplitHostPort(faulty)
	if out, err := run("--cacert", filepath.Join(dir, "faulty-ca.pem"), "https://localhost:"+faultyPort+"/"); err == nil || !strings.Contains(out, "certificate has expired") {
		t.Fatalf("curl to the expired certificate: %v: %q", err, out)
	}

	want := map[string]float64{
		`vaurien_tls_handshakes_total{route="secure",side="client"}`:                                            4,
		`vaurien_tls_handshakes_total{route="secure",side="backend"}`:                                           3,
		`vaurien_tls_handshake_failures_total{reason="not_tls",route="secure",side="client"}`:                   1,
		`vaurien_tls_handshakes_total{route="faulty",side="client"}`:                                            1,
		`vaurien_tls_handshake_failures_total{reason="alert_certificate_expired",route="faulty",side="client"}`: 1,
		`vaurien_faults_injected_total{behavior="tls_bad_cert",route="faulty"}`:                                 1,
	}
	var got map[string]float64
	waitFor(t, "the TLS series", func() bool {
		got = tlsSeries(t, admin)
		for k, n := range want {
			if got[k] != n {
				return false
			}
		}
		return true
	})
	var seen []string
	for k, n := range got {
		if n != 0 {
			seen = append(seen, fmt.Sprintf("%s %v", k, n))
		}
	}
	slices.Sort(seen)
	t.Logf("/metrics, the series above 0:\n%s", strings.Join(seen, "\n"))
	for k := range got {
		if _, ok := want[k]; !ok && strings.HasPrefix(k, "vaurien_tls_handshake_failures_total") {
			t.Errorf("a failure nobody caused: %s %v", k, got[k])
		}
	}
	if strings.Contains(v.output(), "panic") {
		t.Fatalf("vaurien crashed:\n%s", v.output())
	}
}

// tlsSeries reads the TLS series and the faults from the admin server's
// /metrics.
func tlsSeries(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "vaurien_tls_") && !strings.HasPrefix(line, "vaurien_faults_injected_total{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		n, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		out[line[:i]] = n
	}
	return out
}
