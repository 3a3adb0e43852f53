package tlsroute

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/filewatch"
)

// Client originates TLS to a route's backend.
type Client struct {
	cfg        atomic.Pointer[tls.Config] // swapped whole when the CA file changes
	serverName string
	timeout    time.Duration
	pair       *keyPair // the client certificate, nil for none
	caFile     string
}

// NewClient builds the origination of a route from its backend_tls
// block's values. alpn lists the application protocols offered.
func NewClient(v chaos.Values, alpn []string) (*Client, error) {
	if msg := CheckBackend(v); msg != "" {
		return nil, errors.New(msg)
	}
	c := &Client{serverName: v.String("server_name"), timeout: v.Duration("handshake_timeout"), caFile: v.String("ca")}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         alpn,
		InsecureSkipVerify: v.Bool("insecure_skip_verify"),
	}
	if c.caFile != "" {
		pool, err := loadCA(c.caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if cert := v.String("cert"); cert != "" {
		pair, err := loadKeyPair(cert, v.String("key"))
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.pair = pair
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return pair.get() }
	}
	c.cfg.Store(cfg)
	return c, nil
}

func loadCA(file string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read backend CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("read backend CA %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// Watch reloads the client certificate and the CA after each change of
// their files, until ctx ends; loaded hears of each reload (nil when it
// took, else the previous one stays).
func (c *Client) Watch(ctx context.Context, loaded func(error)) error {
	if c.caFile != "" {
		w, err := filewatch.New(c.caFile, filewatch.DefaultDebounce)
		if err != nil {
			return fmt.Errorf("watch %s: %w", c.caFile, err)
		}
		go func() {
			defer w.Close()
			for {
				select {
				case <-ctx.Done():
					return
				case <-w.Errors:
					continue
				case <-w.C:
				}
				pool, err := loadCA(c.caFile)
				if err == nil {
					cfg := c.cfg.Load().Clone()
					cfg.RootCAs = pool
					c.cfg.Store(cfg)
				}
				loaded(err)
			}
		}()
	}
	if c.pair == nil {
		return nil
	}
	return c.pair.watch(ctx, loaded)
}

// Handshake makes conn, dialed to backend (host:port), a TLS connection
// and completes the handshake. The caller closes conn on an error.
func (c *Client) Handshake(ctx context.Context, conn net.Conn, backend string) (*tls.Conn, error) {
	cfg := c.cfg.Load()
	name := c.serverName
	if name == "" {
		if host, _, err := net.SplitHostPort(backend); err == nil {
			name = host
		}
	}
	if name != "" {
		cfg = cfg.Clone()
		cfg.ServerName = name
	}
	conn.SetDeadline(time.Now().Add(c.timeout))
	defer conn.SetDeadline(time.Time{})
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("tls handshake with backend %q: %w", backend, err)
	}
	return tc, nil
}
