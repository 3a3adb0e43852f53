package proxy

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/tlsroute"
)

// The sides of a route's TLS, for TLSObserver.
const (
	SideClient  = "client"  // termination: the handshake with a client, on the listener
	SideBackend = "backend" // origination: the handshake with the backend
)

// TLSObserver is implemented by route observers that hear of TLS: a route
// reports to its observer through it when the observer implements it.
type TLSObserver interface {
	// Handshake reports a finished handshake on side (SideClient or
	// SideBackend): err is nil when it succeeded, else reason names why,
	// from tlsroute.Reasons.
	Handshake(side string, took time.Duration, reason string, err error)
	// CertReloaded reports a reload of the route's certificate files
	// after they changed: err is nil when the new certificate is in force,
	// else the previous one still is.
	CertReloaded(err error)
}

func (m multiRoute) Handshake(side string, took time.Duration, reason string, err error) {
	for _, o := range m {
		if t, ok := o.(TLSObserver); ok {
			t.Handshake(side, took, reason, err)
		}
	}
}

func (m multiRoute) CertReloaded(err error) {
	for _, o := range m {
		if t, ok := o.(TLSObserver); ok {
			t.CertReloaded(err)
		}
	}
}

// startTLS builds the route's TLS sides and starts watching their
// certificate files for as long as the route lives.
func (r *Route) startTLS(cfg RouteConfig) error {
	var alpn []string
	if spec, ok := chaos.LookupProtocol(cfg.Protocol); ok {
		alpn, r.innerTLS = spec.ALPN, spec.InnerTLS
	}
	if cfg.TLS != nil {
		s, err := tlsroute.NewServer(cfg.TLS, alpn)
		if err != nil {
			return fmt.Errorf("route %q: tls: %w", r.name, err)
		}
		if err := s.Watch(r.ctx, r.certReloaded); err != nil {
			return fmt.Errorf("route %q: tls: %w", r.name, err)
		}
		r.tlsIn = s
	}
	if cfg.BackendTLS != nil {
		c, err := tlsroute.NewClient(cfg.BackendTLS, alpn)
		if err != nil {
			return fmt.Errorf("route %q: backend_tls: %w", r.name, err)
		}
		if err := c.Watch(r.ctx, r.certReloaded); err != nil {
			return fmt.Errorf("route %q: backend_tls: %w", r.name, err)
		}
		r.tlsOut = c
	}
	return nil
}

func (r *Route) certReloaded(err error) {
	if r.tlsObs != nil {
		r.tlsObs.CertReloaded(err)
	}
}

func (r *Route) handshook(side string, start time.Time, err error) {
	if r.tlsObs == nil {
		return
	}
	reason := ""
	if err != nil {
		reason = tlsroute.Reason(err)
	}
	r.tlsObs.Handshake(side, time.Since(start), reason, err)
}

// terminate completes the TLS handshake with the client before the
// protocol sees the connection. The handshake's faults are drawn here,
// once per connection, from the route's mix: a draw that falls on another
// behavior changes nothing here, and the protocol's own draws treat the
// TLS behaviors as dummy, so that each behavior keeps its share.
func (s *session) terminate(p *plan) error {
	tc, err := s.handshake(s.route.ctx, p, s.client)
	if err != nil {
		return err
	}
	s.client = tc
	return nil
}

func (s *session) handshake(ctx context.Context, p *plan, conn net.Conn) (net.Conn, error) {
	r := s.route
	d := p.mix.Draw(p.source, nil)
	fault := d.Effect.Handshake
	if !fault.IsZero() {
		r.faults.Add(1)
		r.obs.Injected(d.Name, nil)
	}
	start := time.Now()
	tc, err := r.tlsIn.Handshake(ctx, conn, fault)
	r.handshook(SideClient, start, err)
	if err != nil {
		return nil, err
	}
	return tc, nil
}

var _ chaos.TLSUpgrader = (*session)(nil)

// TLSSides implements chaos.TLSUpgrader.
func (s *session) TLSSides() (client, backend bool) {
	return s.route.tlsIn != nil, s.route.tlsOut != nil
}

// ServerTLS implements chaos.TLSUpgrader: the handshake, with its drawn
// faults, as at accept on the routes whose engine terminates TLS. The
// client connection is the TLS one from then on.
func (s *session) ServerTLS(ctx context.Context, client net.Conn) (net.Conn, error) {
	if s.route.tlsIn == nil {
		return nil, fmt.Errorf("tls handshake: route %q has no tls block", s.route.name)
	}
	tc, err := s.handshake(ctx, s.protocol, client)
	if err != nil {
		return nil, err
	}
	s.client = tc
	return tc, nil
}

// ClientTLS implements chaos.TLSUpgrader.
func (s *session) ClientTLS(ctx context.Context, backend net.Conn) (net.Conn, error) {
	if s.route.tlsOut == nil {
		return nil, fmt.Errorf("tls handshake: route %q has no backend_tls block", s.route.name)
	}
	name := ""
	if s.dialed != nil {
		name = s.dialed.backend
	}
	return s.originate(ctx, backend, name)
}

// originate makes a dialed backend connection a TLS one.
func (s *session) originate(ctx context.Context, c net.Conn, backend string) (net.Conn, error) {
	r := s.route
	start := time.Now()
	tc, err := r.tlsOut.Handshake(ctx, c, backend)
	r.handshook(SideBackend, start, err)
	if err != nil {
		c.Close()
		r.dialErrors.Add(1)
		r.obs.DialFailed(backend, err)
		return nil, err
	}
	return tc, nil
}
