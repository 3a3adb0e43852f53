package tlsroute

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// Client originates TLS to a route's backend.
type Client struct {
	cfg        *tls.Config
	serverName string
	timeout    time.Duration
	pair       *keyPair // the client certificate, nil for none
}

// NewClient builds the origination of a route from its backend_tls
// block's values. alpn lists the application protocols offered.
func NewClient(v chaos.Values, alpn []string) (*Client, error) {
	if msg := CheckBackend(v); msg != "" {
		return nil, errors.New(msg)
	}
	c := &Client{serverName: v.String("server_name"), timeout: v.Duration("handshake_timeout")}
	c.cfg = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         alpn,
		InsecureSkipVerify: v.Bool("insecure_skip_verify"),
	}
	if ca := v.String("ca"); ca != "" {
		pemBytes, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("read backend CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("read backend CA %s: no PEM certificate in it", ca)
		}
		c.cfg.RootCAs = pool
	}
	if cert := v.String("cert"); cert != "" {
		pair, err := loadKeyPair(cert, v.String("key"))
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.pair = pair
		c.cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return pair.get() }
	}
	return c, nil
}

// Watch reloads the client certificate after each change of its files,
// until ctx ends.
func (c *Client) Watch(ctx context.Context, loaded func(error)) error {
	if c.pair == nil {
		return nil
	}
	return c.pair.watch(ctx, loaded)
}

// Handshake makes conn, dialed to backend (host:port), a TLS connection
// and completes the handshake. The caller closes conn on an error.
func (c *Client) Handshake(ctx context.Context, conn net.Conn, backend string) (*tls.Conn, error) {
	cfg := c.cfg
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
