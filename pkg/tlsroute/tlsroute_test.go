package tlsroute

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func TestCheck(t *testing.T) {
	for _, tt := range []struct {
		in   map[string]any
		want string // in the message; "" for none
	}{
		{map[string]any{"generate": true}, ""},
		{map[string]any{"cert": "c.pem", "key": "k.pem"}, ""},
		{map[string]any{"cert": "c.pem", "key": "k.pem", "ca_cert": "ca.pem", "ca_key": "ca.key"}, ""},
		{map[string]any{}, "needs cert and key"},
		{map[string]any{"cert": "c.pem"}, "needs cert and key"},
		{map[string]any{"generate": true, "key": "k.pem"}, "not both"},
		{map[string]any{"generate": true, "names": []any{}}, "at least one name"},
		{map[string]any{"cert": "c.pem", "key": "k.pem", "ca_out": "ca.pem"}, "needs generate = true"},
		{map[string]any{"generate": true, "ca_cert": "ca.pem", "ca_key": "ca.key"}, "the generated CA signs them"},
		{map[string]any{"cert": "c.pem", "key": "k.pem", "ca_cert": "ca.pem"}, "go together"},
	} {
		v, err := ServerOptions.Resolve("tls", tt.in)
		if err != nil {
			t.Fatal(err)
		}
		got := Check(v)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("Check(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for in, want := range map[string]string{"": "", "c.pem": "both cert and key"} {
		v, _ := BackendOptions.Resolve("backend_tls", map[string]any{"cert": in})
		if got := CheckBackend(v); !strings.Contains(got, want) || (want == "") != (got == "") {
			t.Errorf("CheckBackend(cert %q) = %q, want %q", in, got, want)
		}
	}
}

func TestReason(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&InjectedError{Alert: 48}, ReasonInjected},
		{fmt.Errorf("wrapped: %w", os.ErrDeadlineExceeded), ReasonTimeout},
		{context.Canceled, ReasonCanceled},
		{io.EOF, ReasonClosed},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, ReasonClosed},
		{errNotTLS, ReasonNotTLS},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, ReasonNotTLS},
		{x509.UnknownAuthorityError{}, ReasonUnknownCA},
		{&tls.CertificateVerificationError{Err: x509.HostnameError{Host: "x"}}, ReasonWrongHost},
		{x509.CertificateInvalidError{Reason: x509.Expired}, ReasonExpired},
		{errors.New("tls: client offered only unsupported versions: [302 301]"), ReasonVersion},
		{errors.New("tls: no cipher suite supported by both client and server"), ReasonCipher},
		{errors.New("tls: client didn't provide a certificate"), ReasonNoCert},
		{errors.New("something new"), ReasonOther},
	} {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// serverHandshake runs a server with a generated certificate through one
// handshake with client, which dials addr in a goroutine of its own, and
// returns the server's error once it has closed its connection.
func serverHandshake(t *testing.T, client func(addr string)) error {
	t.Helper()
	v, _ := ServerOptions.Resolve("tls", map[string]any{"generate": true})
	s, err := NewServer(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go client(ln.Addr().String())
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = s.Handshake(context.Background(), a, chaos.Handshake{})
	return err
}

// TestReasonOfARealAlert checks the one reason read from crypto/tls's
// unexported alert type: a client that rejects the server's certificate.
func TestReasonOfARealAlert(t *testing.T) {
	err := serverHandshake(t, func(addr string) {
		// No CA given: the generated one is unknown to the client.
		if c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost"}); err == nil {
			c.Close()
		}
	})
	if got := Reason(err); got != "alert_bad_certificate" {
		t.Errorf("Reason(%v) = %q, want alert_bad_certificate", err, got)
	}
	if !slicesContain(Reasons(), "alert_bad_certificate") {
		t.Error("Reasons does not list alert_bad_certificate")
	}
}

// TestReasonOfAPlainTextAlert: a TLS 1.3 client that rejects the
// certificate with an alert in plain text, as OpenSSL does, where
// crypto/tls expects an encrypted record and sees only a bad one; the
// reason names the alert.
func TestReasonOfAPlainTextAlert(t *testing.T) {
	hello := testenv.ClientHello(t)
	client := make(chan error, 1)
	err := serverHandshake(t, func(addr string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			client <- err
			return
		}
		defer c.Close()
		if _, err := c.Write(hello); err != nil {
			client <- err
			return
		}
		// The server's hello in plain text, then its encrypted flight.
		var hdr [5]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 0x16 {
			client <- fmt.Errorf("the server's hello: %x, %v", hdr, err)
			return
		}
		// certificate_expired, fatal, in plain text.
		_, err = c.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 2, 45})
		io.Copy(io.Discard, c)
		client <- err
	})
	if cerr := <-client; cerr != nil {
		t.Fatal(cerr)
	}
	if got := Reason(err); got != "alert_certificate_expired" {
		t.Errorf("Reason(%v) = %q, want alert_certificate_expired", err, got)
	}
}

// TestRecordConnFollowsRecords: the last record is told whatever the
// reads cut the stream into.
func TestRecordConnFollowsRecords(t *testing.T) {
	handshake := append([]byte{0x16, 0x03, 0x03, 0x00, 0x04}, 1, 2, 3, 4)
	encrypted := append([]byte{0x17, 0x03, 0x03, 0x00, 0x13}, make([]byte, 0x13)...)
	alert := []byte{0x15, 0x03, 0x03, 0x00, 0x02, 2, 48}
	empty := []byte{0x17, 0x03, 0x03, 0x00, 0x00}
	for _, tt := range []struct {
		stream [][]byte
		want   uint8 // 0 for no alert
	}{
		{[][]byte{handshake, alert}, 48},
		{[][]byte{handshake, empty, alert}, 48},
		{[][]byte{handshake, encrypted}, 0},
		{[][]byte{alert, handshake}, 0},
		{[][]byte{handshake, alert[:6]}, 0},                                                // cut short
		{[][]byte{append([]byte{0x15, 0x03, 0x03, 0x00, 0x1a}, make([]byte, 0x1a)...)}, 0}, // an encrypted alert (TLS 1.2)
	} {
		var all []byte
		for _, r := range tt.stream {
			all = append(all, r...)
		}
		for size := 1; size <= len(all); size++ {
			c := &recordConn{}
			for p := all; len(p) > 0; {
				n := min(size, len(p))
				c.follow(p[:n])
				p = p[n:]
			}
			got, ok := c.alert()
			if ok != (tt.want != 0) || got != tt.want {
				t.Errorf("%x read %d bytes at a time: alert %d, %v; want %d", all, size, got, ok, tt.want)
				break
			}
		}
	}
}

func TestAlerts(t *testing.T) {
	for _, name := range AlertNames() {
		code, ok := AlertCode(name)
		if !ok || AlertName(code) != name {
			t.Errorf("alert %q: code %d, back to %q", name, code, AlertName(code))
		}
	}
	if c, _ := AlertCode("unknown_ca"); c != 48 {
		t.Errorf("unknown_ca is %d, want 48 (RFC 8446)", c)
	}
	if _, ok := AlertCode("nope"); ok || AlertName(200) != "other" {
		t.Error("an unknown alert has a name")
	}
}

// TestAlertAnswersTheHello checks the record tls_handshake_fail sends:
// crypto/tls, as a client, reads it as the alert.
func TestAlertAnswersTheHello(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		done <- sendAlert(c, 112)
	}()
	_, err = tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: "localhost"})
	if err == nil || !strings.Contains(err.Error(), "remote error: tls: unrecognized name") {
		t.Errorf("client: %v, want the unrecognized_name alert", err)
	}
	var inj *InjectedError
	if err := <-done; !errors.As(err, &inj) || inj.Alert != 112 {
		t.Errorf("sendAlert: %v", err)
	}
}

func slicesContain(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
