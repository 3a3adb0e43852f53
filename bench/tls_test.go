package bench

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/proxy"
	"github.com/vaurien-go/vaurien/pkg/tlsroute"
)

// Settings of the vaurien-tls child.
const (
	tlsCertEnv = "BENCH_TLS_CERT"       // the route's tls block: cert and key files
	tlsKeyEnv  = "BENCH_TLS_KEY"        //
	tlsCAEnv   = "BENCH_TLS_BACKEND_CA" // set: the route originates TLS to the backend, trusting this CA
)

// serveVaurienTLS runs one tcp route that terminates TLS with the given
// certificate and, when a backend CA is given, originates TLS too.
func serveVaurienTLS(backend string) string {
	in, err := tlsroute.ServerOptions.Resolve("tls", map[string]any{"cert": os.Getenv(tlsCertEnv), "key": os.Getenv(tlsKeyEnv)})
	if err != nil {
		panic(err)
	}
	cfg := proxy.RouteConfig{Name: "bench", Listen: "127.0.0.1:0", Backend: backend, Protocol: "tcp", TLS: in}
	if ca := os.Getenv(tlsCAEnv); ca != "" {
		if cfg.BackendTLS, err = tlsroute.BackendOptions.Resolve("backend_tls", map[string]any{"ca": ca}); err != nil {
			panic(err)
		}
	}
	s := proxy.New(nil, time.Second)
	if err := s.Apply([]proxy.RouteConfig{cfg}); err != nil {
		panic(err)
	}
	return s.Route("bench").Addr()
}

// haproxyTLSConfig terminates TLS with HAProxy (OpenSSL) and, with a CA
// file, originates TLS to the server too, verifying it.
const haproxyTLSConfig = `global
	fd-hard-limit %[1]d
	maxconn %[2]d
	ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
	mode tcp
	maxconn %[2]d
	timeout connect 5s
	timeout client 1h
	timeout server 1h

frontend bench
	bind %[3]s ssl crt %[4]s
	default_backend bench

backend bench
	server backend %[5]s %[6]s
`

func startHAProxyTLS(b testing.TB, bin, backend, pem, backendCA string) *child {
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(b))
	conf := filepath.Join(b.TempDir(), "haproxy.cfg")
	server := ""
	if backendCA != "" {
		server = "ssl verify required ca-file " + backendCA + " sni str(127.0.0.1)"
	}
	if err := os.WriteFile(conf, fmt.Appendf(nil, haproxyTLSConfig, haproxyFDLimit, haproxyMaxConns, addr, pem, backend, server), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatalf("start haproxy: %v", err)
	}
	c := &child{name: "haproxy", cmd: cmd, addr: addr}
	b.Cleanup(c.stop)
	if err := testenv.WaitListening(addr, 10*time.Second); err != nil {
		c.stop()
		b.Fatalf("haproxy did not start: %v\n%s", err, out.String())
	}
	return c
}

// tlsSink accepts TLS connections and reads them to the end, counting the
// bytes.
type tlsSink struct {
	addr string
	got  atomic.Int64
}

func startTLSSink(b testing.TB, cert tls.Certificate) *tlsSink {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		b.Fatal(err)
	}
	s := &tlsSink{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					s.got.Add(int64(n))
					if err != nil {
						return
					}
				}
			})
		}
	})
	return s
}

// clientTLS is what the benchmark's clients offer: X25519 only, which
// both Go and Debian's OpenSSL 3.0 speak, so that the handshakes compared
// do the same work, and no session resumption.
func clientTLS(pool *testenv.CA) *tls.Config {
	return &tls.Config{RootCAs: pool.Pool, ServerName: "localhost", CurvePreferences: []tls.CurveID{tls.X25519},
		SessionTicketsDisabled: true}
}

// BenchmarkTLS compares vaurien with HAProxy terminating TLS: bulk data
// over TLS on both sides (CPU per MB), and full handshakes (CPU per
// handshake, handshakes per second), each proxy in a process of its own,
// interleaved over 3 rounds; it reports the medians and the ratios.
func BenchmarkTLS(b *testing.B) {
	bin := haproxyBin()
	if bin == "" {
		b.Skip("haproxy is not installed (bench/run.sh installs it)")
	}
	ca := testenv.NewCA(b)
	certFile, keyFile := ca.Issue(b, "localhost", "127.0.0.1")
	pemFile := filepath.Join(b.TempDir(), "combined.pem")
	certPEM, _ := os.ReadFile(certFile)
	keyPEM, _ := os.ReadFile(keyFile)
	if err := os.WriteFile(pemFile, append(certPEM, keyPEM...), 0o600); err != nil {
		b.Fatal(err)
	}
	env := []string{tlsCertEnv + "=" + certFile, tlsKeyEnv + "=" + keyFile}

	b.Run("bulk", func(b *testing.B) {
		sinkSrv := startTLSSink(b, ca.KeyPair(b, "127.0.0.1"))
		vaur := startChild(b, "vaurien-tls", sinkSrv.addr, append(env, tlsCAEnv+"="+ca.File)...)
		hap := startHAProxyTLS(b, bin, sinkSrv.addr, pemFile, ca.File)
		total, streams := envInt("BENCH_TLS_BYTES", 1<<30), 4
		mb := float64(total) / 1e6
		var vRate, hRate, vCPU, hCPU []float64
		for round := 0; round < 3; round++ {
			for _, c := range []*child{vaur, hap} {
				before := c.cpu(b)
				took := sendTLS(b, c.addr, clientTLS(ca), total/int64(streams), streams, sinkSrv)
				rate, cpu := mb/took.Seconds(), float64((c.cpu(b)-before).Microseconds())/mb
				if c == vaur {
					vRate, vCPU = append(vRate, rate), append(vCPU, cpu)
				} else {
					hRate, hCPU = append(hRate, rate), append(hCPU, cpu)
				}
			}
		}
		b.ReportMetric(median(vRate), "vaurien-MB/s")
		b.ReportMetric(median(hRate), "haproxy-MB/s")
		b.ReportMetric(median(vCPU), "vaurien-cpu-µs/MB")
		b.ReportMetric(median(hCPU), "haproxy-cpu-µs/MB")
		b.ReportMetric(median(vCPU)/median(hCPU), "cpu-ratio")
	})

	b.Run("handshakes", func(b *testing.B) {
		echo := startEcho(b)
		vaur := startChild(b, "vaurien-tls", echo.addr, env...)
		hap := startHAProxyTLS(b, bin, echo.addr, pemFile, "")
		n, workers := int(envInt("BENCH_TLS_HANDSHAKES", 3000)), 8
		var vRate, hRate, vCPU, hCPU []float64
		for round := 0; round < 3; round++ {
			for _, c := range []*child{vaur, hap} {
				before := c.cpu(b)
				took := handshakes(b, c.addr, clientTLS(ca), n, workers)
				rate, cpu := float64(n)/took.Seconds(), float64((c.cpu(b)-before).Microseconds())/float64(n)
				if c == vaur {
					vRate, vCPU = append(vRate, rate), append(vCPU, cpu)
				} else {
					hRate, hCPU = append(hRate, rate), append(hCPU, cpu)
				}
			}
		}
		b.ReportMetric(median(vRate), "vaurien-handshakes/s")
		b.ReportMetric(median(hRate), "haproxy-handshakes/s")
		b.ReportMetric(median(vCPU), "vaurien-cpu-µs/handshake")
		b.ReportMetric(median(hCPU), "haproxy-cpu-µs/handshake")
		b.ReportMetric(median(vCPU)/median(hCPU), "cpu-ratio")
	})
}

// sendTLS writes n bytes over each of streams TLS connections to addr and
// returns the time until the sink behind the proxy has read them all.
func sendTLS(b testing.TB, addr string, cfg *tls.Config, n int64, streams int, s *tlsSink) time.Duration {
	buf := make([]byte, 256<<10)
	want := s.got.Load() + n*int64(streams)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < streams; i++ {
		wg.Go(func() {
			c, err := tls.Dial("tcp", addr, cfg)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			for left := n; left > 0; {
				m, err := c.Write(buf[:min(int64(len(buf)), left)])
				if err != nil {
					b.Error(err)
					return
				}
				left -= int64(m)
			}
			// Keep the connection until everything has arrived: a close
			// could cut what the proxy still holds.
			waitFor(time.Minute, func() bool { return s.got.Load() >= want })
		})
	}
	wg.Wait()
	if s.got.Load() < want {
		b.Fatalf("the sink read %d bytes, want %d", s.got.Load(), want)
	}
	return time.Since(start)
}

// handshakes makes n TLS connections to addr from workers at once, each a
// full handshake, one byte echoed through the proxy, and a close.
func handshakes(b testing.TB, addr string, cfg *tls.Config, n, workers int) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			one := make([]byte, 1)
			for next.Add(1) <= int64(n) {
				c, err := tls.Dial("tcp", addr, cfg)
				if err != nil {
					b.Error(err)
					return
				}
				if _, err := c.Write(one); err == nil {
					_, err = io.ReadFull(c, one)
				}
				c.Close()
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
