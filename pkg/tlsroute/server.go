package tlsroute

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// BadCerts are the faulty certificates tls_bad_cert serves.
var BadCerts = []string{"expired", "not_yet_valid", "wrong_host", "self_signed"}

// WrongHost is the only name in the wrong_host certificate.
const WrongHost = "wrong-host.invalid"

// Server terminates TLS on a route's listener.
type Server struct {
	cfg     *tls.Config
	timeout time.Duration
	names   []string // the names of the served certificate, for bad certs
	pair    *keyPair // nil when generated
	ca      *authority
	caFiles [2]string // ca_cert and ca_key, loaded for the first bad cert

	badOnce [4]sync.Once
	bad     [4]*tls.Config
	badErr  [4]error
}

// NewServer builds the termination of a route from its tls block's
// values: it loads or generates the certificate and, with ca_out, writes
// the CA. alpn lists the application protocols offered ("http/1.1" on
// http routes).
func NewServer(v chaos.Values, alpn []string) (*Server, error) {
	if msg := Check(v); msg != "" {
		return nil, errors.New(msg)
	}
	s := &Server{timeout: v.Duration("handshake_timeout"), caFiles: [2]string{v.String("ca_cert"), v.String("ca_key")}}
	s.cfg = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: alpn}
	if v.Bool("generate") {
		ca, err := generated(v.String("ca_out"))
		if err != nil {
			return nil, err
		}
		s.ca, s.names = ca, v.Strings("names")
		now := time.Now()
		cert, err := leaf(ca, s.names, now.Add(-time.Hour), now.AddDate(1, 0, 0))
		if err != nil {
			return nil, err
		}
		if out := v.String("ca_out"); out != "" {
			if err := writeCA(out, ca); err != nil {
				return nil, err
			}
		}
		s.cfg.Certificates = []tls.Certificate{cert}
		return s, nil
	}
	pair, err := loadKeyPair(v.String("cert"), v.String("key"))
	if err != nil {
		return nil, err
	}
	s.pair = pair
	s.cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return pair.get() }
	return s, nil
}

// CA returns the PEM certificate of the generated CA, nil when the
// certificate was loaded from files.
func (s *Server) CA() []byte {
	if s.pair != nil || s.ca == nil {
		return nil
	}
	return s.ca.pem
}

// Watch reloads a certificate loaded from files after each change of
// them, until ctx ends; loaded hears of each reload (nil when it took).
// A generated certificate has nothing to watch.
func (s *Server) Watch(ctx context.Context, loaded func(error)) error {
	if s.pair == nil {
		return nil
	}
	return s.pair.watch(ctx, loaded)
}

// Handshake completes the TLS handshake of an accepted connection,
// carrying out fault: it holds the handshake, answers with an alert, or
// serves a faulty certificate. It returns the TLS connection, or an error
// (the caller closes conn): ctx's when it ended during the wait, an
// *InjectedError when the fault answered with an alert.
func (s *Server) Handshake(ctx context.Context, conn net.Conn, fault chaos.Handshake) (*tls.Conn, error) {
	if fault.Delay > 0 {
		t := time.NewTimer(fault.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	conn.SetDeadline(time.Now().Add(s.timeout))
	defer conn.SetDeadline(time.Time{})
	if fault.Alert != 0 {
		return nil, sendAlert(conn, fault.Alert)
	}
	cfg := s.cfg
	if fault.Cert != "" {
		var err error
		if cfg, err = s.badConfig(fault.Cert); err != nil {
			return nil, err
		}
	}
	rc := &recordConn{Conn: conn}
	tc := tls.Server(rc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		if alert, ok := rc.alert(); ok {
			return nil, &PeerAlertError{Alert: alert, Err: err}
		}
		return nil, err
	}
	rc.done = true
	return tc, nil
}

// PeerAlertError is a handshake the client ended with an alert in plain
// text where crypto/tls expected an encrypted record, so that it saw only
// a bad record: OpenSSL (curl, psql...) sends the alert of a certificate
// it rejects that way in TLS 1.3, before it has keys of its own.
type PeerAlertError struct {
	Alert uint8
	Err   error // what crypto/tls made of it
}

func (e *PeerAlertError) Error() string {
	return fmt.Sprintf("tls handshake: the client answered with the alert %s (%v)", AlertName(e.Alert), e.Err)
}

func (e *PeerAlertError) Unwrap() error { return e.Err }

// recordConn follows the records a client sends during the handshake, to
// tell the plain-text alert that ends it; then it only passes reads on.
type recordConn struct {
	net.Conn
	done  bool    // the handshake is over
	hdr   [5]byte // the header of the last record read, as far as read
	nhdr  int
	body  [2]byte // the first bytes of its body
	nbody int
	left  int // the bytes of its body still to come
}

func (c *recordConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if !c.done {
		c.follow(b[:n])
	}
	return n, err
}

// NetConn returns the connection under c, for what acts on the socket
// itself (a reset).
func (c *recordConn) NetConn() net.Conn { return c.Conn }

func (c *recordConn) follow(p []byte) {
	for len(p) > 0 {
		if c.nhdr == len(c.hdr) && c.left == 0 {
			c.nhdr, c.nbody = 0, 0
		}
		if c.nhdr < len(c.hdr) {
			k := copy(c.hdr[c.nhdr:], p)
			c.nhdr, p = c.nhdr+k, p[k:]
			if c.nhdr == len(c.hdr) {
				c.left = int(binary.BigEndian.Uint16(c.hdr[3:]))
			}
			continue
		}
		k := min(len(p), c.left)
		c.nbody += copy(c.body[c.nbody:], p[:k])
		c.left, p = c.left-k, p[k:]
	}
}

// alert returns the alert of the last record read when that record is a
// whole alert in plain text: 2 bytes, level and code. An encrypted one is
// longer by its authentication tag at least.
func (c *recordConn) alert() (uint8, bool) {
	if c.nhdr == len(c.hdr) && c.left == 0 && c.hdr[0] == 0x15 && c.hdr[3] == 0 && c.hdr[4] == 2 && c.nbody == 2 {
		return c.body[1], true
	}
	return 0, false
}

// badConfig returns the configuration that serves the faulty certificate
// kind, made the first time it is asked for.
func (s *Server) badConfig(kind string) (*tls.Config, error) {
	i := -1
	for j, k := range BadCerts {
		if k == kind {
			i = j
		}
	}
	if i < 0 {
		return nil, fmt.Errorf("tls_bad_cert: unknown certificate %q", kind)
	}
	s.badOnce[i].Do(func() {
		cert, err := s.makeBad(kind)
		if err != nil {
			s.badErr[i] = fmt.Errorf("tls_bad_cert %s: %w", kind, err)
			return
		}
		cfg := s.cfg.Clone()
		cfg.GetCertificate, cfg.Certificates = nil, []tls.Certificate{cert}
		s.bad[i] = cfg
	})
	return s.bad[i], s.badErr[i]
}

// makeBad makes a faulty certificate for the names the route serves, so
// that the fault is the one kind asks for and nothing else: signed by the
// route's CA (a client that trusts it sees only the fault), with the
// served certificate's names unless the names are the fault.
func (s *Server) makeBad(kind string) (tls.Certificate, error) {
	ca, names := s.ca, s.names
	if s.pair != nil {
		c, err := s.pair.get()
		if err != nil {
			return tls.Certificate{}, err
		}
		if c.Leaf != nil {
			names = append(append([]string{}, c.Leaf.DNSNames...), ipStrings(c.Leaf.IPAddresses)...)
		}
	}
	if len(names) == 0 {
		names = []string{"localhost"}
	}
	if ca == nil {
		var err error
		if s.caFiles[0] != "" {
			ca, err = loadAuthority(s.caFiles[0], s.caFiles[1])
		} else {
			// No CA to sign with: the client will not know this one, and
			// says so besides the fault.
			ca, err = newAuthority()
		}
		if err != nil {
			return tls.Certificate{}, err
		}
	}
	now := time.Now()
	switch kind {
	case "expired":
		return leaf(ca, names, now.AddDate(-1, 0, 0), now.Add(-24*time.Hour))
	case "not_yet_valid":
		return leaf(ca, names, now.Add(24*time.Hour), now.AddDate(1, 0, 0))
	case "wrong_host":
		return leaf(ca, []string{WrongHost}, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	default: // self_signed
		return leaf(nil, names, now.Add(-time.Hour), now.AddDate(1, 0, 0))
	}
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}

// InjectedError is the end of a handshake that tls_handshake_fail
// answered with an alert.
type InjectedError struct{ Alert uint8 }

func (e *InjectedError) Error() string {
	return fmt.Sprintf("tls handshake: answered with the alert %s", AlertName(e.Alert))
}

// maxRecord bounds a TLS record's body: 2^14 bytes of plaintext plus the
// expansion RFC 8446 allows.
const maxRecord = 1<<14 + 256

// errNotTLS is a client that did not open with a TLS handshake record:
// plain text sent to a TLS port, say.
var errNotTLS = errors.New("tls handshake: the client did not send a TLS handshake record")

// sendAlert reads the client's first record (its hello) and answers with a
// fatal alert. Reading the hello first matters: closing a socket with
// unread input makes the kernel send a reset, which can destroy the alert
// before the client reads it.
func sendAlert(conn net.Conn, alert uint8) error {
	var hdr [5]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return fmt.Errorf("tls handshake: read the client hello: %w", err)
	}
	if hdr[0] != 0x16 {
		return errNotTLS
	}
	n := int(binary.BigEndian.Uint16(hdr[3:]))
	if n > maxRecord {
		return errNotTLS
	}
	if _, err := io.CopyN(io.Discard, conn, int64(n)); err != nil {
		return fmt.Errorf("tls handshake: read the client hello: %w", err)
	}
	// An alert record before any key is agreed goes in plain text; its
	// version is TLS 1.2's, as TLS 1.3 keeps it for compatibility.
	rec := [7]byte{0x15, 0x03, 0x03, 0x00, 0x02, 2, alert}
	if _, err := conn.Write(rec[:]); err != nil {
		return fmt.Errorf("tls handshake: send the alert: %w", err)
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		// Wait (within the handshake deadline) for the client to close
		// on reading the alert, so that the close is not a reset.
		io.Copy(io.Discard, io.LimitReader(conn, 1<<16))
	}
	return &InjectedError{Alert: alert}
}
