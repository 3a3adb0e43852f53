package app_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/labstack/echo/v5"
	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/chaos"
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
}`, "5:3", `TLS on both sides or neither: Route "db" with protocol "mysql" speaks TLS to its clients and its backend together, or to neither`},
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

// The API refuses a TLS behavior on a route that does not terminate TLS,
// as the configuration file does.
func TestSetMixRefusesTLSBehaviorsWithoutTLS(t *testing.T) {
	f := parse(t, `
route "plain" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:9"
}
route "secure" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:9"
  tls {
    generate = true
  }
}`)
	f.Admin.Listen = ""
	a := app.New(f, zerolog.Nop())
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	defer a.Shutdown(context.Background())
	e, err := chaos.NewEntry("tls_handshake_fail", 50, nil, chaos.MatchSpec{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := chaos.NewMix([]chaos.Entry{e})
	if err != nil {
		t.Fatal(err)
	}
	err = a.SetMix("plain", m, 0)
	if got := echo.StatusCode(err); got != http.StatusConflict || !strings.Contains(fmt.Sprint(err), `route "plain" does not terminate TLS`) {
		t.Errorf("SetMix on the plain route: %v (status %d), want a 409 saying why", err, got)
	}
	if err := a.SetMix("secure", m, 0); err != nil {
		t.Errorf("SetMix on the TLS route: %v", err)
	}
}

// TestREADMETLSConfigsLoad keeps the README's TLS section true: each of
// its HCL examples loads.
func TestREADMETLSConfigsLoad(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## TLS\n")
	if !ok {
		t.Fatal("README has no TLS section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	n := 0
	for _, part := range strings.Split(section, "```hcl\n")[1:] {
		src, _, _ := strings.Cut(part, "```")
		n++
		f, err := config.Parse([]byte(src), fmt.Sprintf("README.md TLS example %d", n))
		if err != nil {
			t.Errorf("example %d does not load: %v", n, err)
			continue
		}
		for _, r := range f.Routes {
			if r.TLS == nil || r.BackendTLS == nil {
				t.Errorf("example %d: route %q lost a TLS block", n, r.Name)
			}
		}
	}
	if n != 2 {
		t.Errorf("found %d HCL examples in the TLS section, want 2", n)
	}
}
