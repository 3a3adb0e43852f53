package app_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/vaurien-go/vaurien/pkg/config"
)

// The TLS checks that need the real behaviors and protocols, which the
// config package's own tests replace by fakes.
func TestTLSConfigNeedsTermination(t *testing.T) {
	for _, tt := range []struct {
		src, pos, want string
	}{
		{`route "a" {
  listen  = "127.0.0.1:8000"
  backend = "127.0.0.1:80"

  behavior "tls_bad_cert" {
    percent = 10
  }
}`, "5:12", `Behavior needs TLS: The "tls_bad_cert" behavior acts on the TLS handshake of the connections a route accepts, and route "a" does not terminate TLS. Give the route a tls block, or remove the behavior.`},
		{`route "db" {
  listen   = "127.0.0.1:3307"
  backend  = "127.0.0.1:3306"
  protocol = "mysql"
  backend_tls {
    insecure_skip_verify = true
  }
}`, "5:3", `No TLS for this protocol: Route "db" takes no backend_tls block with protocol "mysql": a MySQL client asks for TLS inside the protocol (CLIENT_SSL)`},
		{`route "a" {
  listen  = "127.0.0.1:8000"
  backend = "127.0.0.1:80"
  tls {
    generate = true
  }
  behavior "tls_handshake_fail" {
    percent = 10
    alert   = "unknown_authority"
  }
}`, "9:15", `option "alert" does not accept this value: "unknown_authority" is not one of unexpected_message, bad_record_mac`},
	} {
		_, err := config.Parse([]byte(tt.src), "tls.hcl")
		var diags hcl.Diagnostics
		if !errors.As(err, &diags) {
			t.Fatalf("Parse: %v, want diagnostics", err)
		}
		found := false
		for _, d := range diags {
			at := fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column)
			found = found || at == tt.pos && strings.Contains(d.Summary+": "+d.Detail, tt.want)
		}
		if !found {
			t.Errorf("no diagnostic at %s saying %q; got %v", tt.pos, tt.want, diags)
		}
	}

	ok := `route "a" {
  listen  = "127.0.0.1:8000"
  backend = "127.0.0.1:80"
  tls {
    generate = true
  }
  behavior "tls_bad_cert" {
    percent = 10
    cert    = "wrong_host"
  }
}`
	if _, err := config.Parse([]byte(ok), "tls.hcl"); err != nil {
		t.Fatalf("a route that terminates TLS takes the TLS behaviors: %v", err)
	}
}
