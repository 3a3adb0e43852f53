// Package tlsroute owns the TLS of a route: the options of its tls block
// (termination on the listener) and backend_tls block (origination to the
// backend), declared once for the configuration, the docs and the API; the
// certificates a route serves, loaded from files and reloaded when they
// change, or generated with a CA of their own at start; the faults of the
// handshake (a held handshake, an alert instead of an answer, a faulty
// certificate made from the route's CA); and the reasons a handshake
// failed, as bounded names for metrics.
package tlsroute

import (
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// The options of a route's tls block.
var ServerOptions = chaos.Options{
	{Name: "cert", Kind: chaos.String, Default: "",
		Doc: "PEM file of the certificate chain served to clients, reloaded when it changes"},
	{Name: "key", Kind: chaos.String, Default: "",
		Doc: "PEM file of the certificate's private key, reloaded with it"},
	{Name: "generate", Kind: chaos.Bool, Default: false,
		Doc: "generate a CA and a certificate for names at start, instead of cert and key"},
	{Name: "names", Kind: chaos.Strings, Default: []string{"localhost", "127.0.0.1"},
		Doc: "the host names and IP addresses of the generated certificate"},
	{Name: "ca_out", Kind: chaos.String, Default: "",
		Doc: "file the generated CA's certificate is written to (PEM), for clients to trust; a reload that keeps it keeps the CA"},
	{Name: "ca_cert", Kind: chaos.String, Default: "",
		Doc: "with cert and key: PEM file of the CA that signs tls_bad_cert's certificates, so that clients that trust it see the very fault"},
	{Name: "ca_key", Kind: chaos.String, Default: "",
		Doc: "the private key of ca_cert"},
	{Name: "handshake_timeout", Kind: chaos.Duration, Default: 10 * time.Second, Min: chaos.Range(0.001), Max: chaos.Range(chaos.MaxDuration.Seconds()),
		Doc: "how long a client may take to complete the handshake"},
}

// The options of a route's backend_tls block.
var BackendOptions = chaos.Options{
	{Name: "server_name", Kind: chaos.String, Default: "",
		Doc: "the name sent (SNI) and verified in the backend's certificate; empty takes the backend address's host"},
	{Name: "ca", Kind: chaos.String, Default: "",
		Doc: "PEM file of the CAs that sign the backend's certificate, reloaded when it changes; empty trusts the system's"},
	{Name: "cert", Kind: chaos.String, Default: "",
		Doc: "PEM file of a client certificate, for a backend that requires one (mTLS); reloaded when it changes"},
	{Name: "key", Kind: chaos.String, Default: "",
		Doc: "PEM file of the client certificate's private key"},
	{Name: "insecure_skip_verify", Kind: chaos.Bool, Default: false,
		Doc: "accept any certificate from the backend (tests only: it verifies nothing)"},
	{Name: "handshake_timeout", Kind: chaos.Duration, Default: 10 * time.Second, Min: chaos.Range(0.001), Max: chaos.Range(chaos.MaxDuration.Seconds()),
		Doc: "how long the backend may take to complete the handshake"},
}

// Check returns what is wrong with a tls block's values as a whole, in a
// sentence that says how to fix it, or "" when nothing is.
func Check(v chaos.Values) string {
	cert, key, gen := v.String("cert"), v.String("key"), v.Bool("generate")
	switch {
	case gen && (cert != "" || key != ""):
		return "A tls block either generates its certificate (generate = true) or loads it (cert and key), not both."
	case !gen && (cert == "" || key == ""):
		return "A tls block needs cert and key (PEM files), or generate = true to make a CA and a certificate at start."
	case gen && len(v.Strings("names")) == 0:
		return "A generated certificate needs at least one name in names, such as [\"localhost\"]."
	case !gen && v.String("ca_out") != "":
		return "ca_out is where the generated CA is written: it needs generate = true."
	case gen && (v.String("ca_cert") != "" || v.String("ca_key") != ""):
		return "ca_cert and ca_key sign the faulty certificates when cert and key are given; with generate = true the generated CA signs them."
	case (v.String("ca_cert") == "") != (v.String("ca_key") == ""):
		return "ca_cert and ca_key go together."
	}
	return ""
}

// CheckBackend returns what is wrong with a backend_tls block's values as
// a whole, or "".
func CheckBackend(v chaos.Values) string {
	if (v.String("cert") == "") != (v.String("key") == "") {
		return "A client certificate needs both cert and key (PEM files)."
	}
	return ""
}
