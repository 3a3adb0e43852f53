package tlsroute

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"syscall"
)

// alerts are the TLS alerts by name (RFC 8446 section 6 and RFC 5246 for
// those TLS 1.3 dropped), in code order.
var alerts = []struct {
	name string
	code uint8
}{
	{"unexpected_message", 10}, {"bad_record_mac", 20}, {"record_overflow", 22},
	{"handshake_failure", 40}, {"bad_certificate", 42}, {"unsupported_certificate", 43},
	{"certificate_revoked", 44}, {"certificate_expired", 45}, {"certificate_unknown", 46},
	{"illegal_parameter", 47}, {"unknown_ca", 48}, {"access_denied", 49},
	{"decode_error", 50}, {"decrypt_error", 51}, {"protocol_version", 70},
	{"insufficient_security", 71}, {"internal_error", 80}, {"inappropriate_fallback", 86},
	{"user_canceled", 90}, {"missing_extension", 109}, {"unsupported_extension", 110},
	{"unrecognized_name", 112}, {"bad_certificate_status_response", 113},
	{"unknown_psk_identity", 115}, {"certificate_required", 116}, {"no_application_protocol", 120},
}

// AlertNames lists the alerts tls_handshake_fail can answer with.
func AlertNames() []string {
	out := make([]string, len(alerts))
	for i, a := range alerts {
		out[i] = a.name
	}
	return out
}

// AlertCode returns the code of the alert named name.
func AlertCode(name string) (uint8, bool) {
	for _, a := range alerts {
		if a.name == name {
			return a.code, true
		}
	}
	return 0, false
}

// AlertName returns the name of an alert's code, "alert_N" for one
// outside the table.
func AlertName(code uint8) string {
	for _, a := range alerts {
		if a.code == code {
			return a.name
		}
	}
	return "other"
}

// Reasons a handshake failed, besides "alert_" followed by an alert's
// name (or "alert_other") for an alert the peer sent.
const (
	ReasonInjected  = "injected"         // tls_handshake_fail answered with its alert
	ReasonTimeout   = "timeout"          // the handshake timeout passed
	ReasonClosed    = "closed"           // the peer closed or reset the connection
	ReasonNotTLS    = "not_tls"          // the peer spoke something else than TLS
	ReasonVersion   = "version"          // no TLS version in common
	ReasonCipher    = "no_shared_cipher" // no cipher suite in common
	ReasonNoCert    = "no_certificate"   // a certificate was required and none was given
	ReasonUnknownCA = "unknown_ca"       // the peer's certificate is not signed by a trusted CA
	ReasonWrongHost = "wrong_host"       // the peer's certificate is not for the name asked
	ReasonExpired   = "expired"          // the peer's certificate is outside its validity
	ReasonCanceled  = "canceled"         // the route stopped
	ReasonOther     = "other"
)

// Reason names why a handshake failed, from a fixed set fit for a metric
// label.
func Reason(err error) string {
	var inj *InjectedError
	var pa *PeerAlertError
	var rh tls.RecordHeaderError
	var op *net.OpError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &inj):
		return ReasonInjected
	case errors.As(err, &pa):
		return "alert_" + AlertName(pa.Alert)
	case errors.Is(err, context.Canceled), errors.Is(err, net.ErrClosed):
		return ReasonCanceled
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	case errors.Is(err, errNotTLS), errors.As(err, &rh):
		return ReasonNotTLS
	case errors.As(err, &op) && op.Op == "remote error":
		// crypto/tls does not export its alert type; it is a uint8.
		if v := reflect.ValueOf(op.Err); v.Kind() == reflect.Uint8 {
			return "alert_" + AlertName(uint8(v.Uint()))
		}
		return "alert_other"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return ReasonClosed
	case errors.As(err, &ua):
		return ReasonUnknownCA
	case errors.As(err, &he):
		return ReasonWrongHost
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return ReasonExpired
	}
	// What crypto/tls says only in words.
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unsupported versions"), strings.Contains(msg, "protocol version not supported"):
		return ReasonVersion
	case strings.Contains(msg, "no cipher suite"):
		return ReasonCipher
	case strings.Contains(msg, "didn't provide a certificate"), strings.Contains(msg, "certificate required"):
		return ReasonNoCert
	}
	return ReasonOther
}

// Reasons lists every value Reason can return, for documentation and for
// metrics that want every series present.
func Reasons() []string {
	out := []string{ReasonInjected, ReasonTimeout, ReasonClosed, ReasonNotTLS, ReasonVersion, ReasonCipher,
		ReasonNoCert, ReasonUnknownCA, ReasonWrongHost, ReasonExpired, ReasonCanceled, ReasonOther}
	for _, a := range alerts {
		out = append(out, "alert_"+a.name)
	}
	return append(out, "alert_other")
}
