package dbroutes_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	_ "github.com/vaurien-go/vaurien/pkg/behavior"
	"github.com/vaurien-go/vaurien/pkg/config"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/mysql"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/postgres"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/redis"
)

// file is a route of protocol with one behavior that sets code, on line 6,
// its value at column 15; and an experiment whose step sets it again, on
// line 16 at column 19.
func file(protocol, behavior, code string) string {
	return fmt.Sprintf(`route "db" {
  listen   = "127.0.0.1:0"
  backend  = "127.0.0.1:1"
  protocol = %[1]q
  behavior %[2]q {
    code    = %[3]q
    percent = 5
  }
}
experiment "x" {
  step "s" {
    duration = "1s"
    route "db" {
      behavior %[2]q {
        percent = 5
        code    = %[3]q
      }
    }
  }
}
`, protocol, behavior, code)
}

// An error behavior's code must name an error of its route's protocol: one
// the protocol would answer as an unknown error is refused at the code's
// value, in the route's mix and in an experiment step's, with what the
// protocol takes. Protocols whose errors carry no code take any code of the
// right shape, as before.
func TestErrorCodeOfTheRoutesProtocol(t *testing.T) {
	for _, tt := range []struct {
		protocol, behavior, code string
		want                     string // "" when valid
	}{
		{"postgres", "error", "deadlock", ""},
		{"postgres", "error", "serialization", ""},
		{"postgres", "transient", "too_many_connections", ""},
		{"postgres", "error", "40P01", ""},
		{"postgres", "error", "57014", ""},
		{"postgres", "error", "", ""},
		{"mysql", "error", "deadlock", ""},
		{"mysql", "transient", "gone_away", ""},
		{"mysql", "error", "1213", ""},
		{"mysql", "error", "65535", ""},
		{"redis", "error", "40P0", ""},
		{"postgres", "error", "40P0", `on a postgres route, error code "40P0" is neither a preset (admin_shutdown, deadlock, lock_wait_timeout, query_canceled, read_only, serialization, too_many_connections) nor a SQLSTATE (five digits or upper-case letters, such as 40P01)`},
		{"postgres", "error", "dead_lock", `on a postgres route, error code "dead_lock" is neither a preset`},
		{"postgres", "transient", "40p01", `on a postgres route, error code "40p01" is neither a preset`},
		{"postgres", "error", "1213", `on a postgres route, error code "1213" is neither a preset`},
		{"mysql", "error", "40P01", `on a mysql route, error code "40P01" is neither a preset (deadlock, lock_wait_timeout, too_many_connections, read_only, gone_away) nor a MySQL error number (1 to 65535)`},
		{"mysql", "transient", "serialization", `on a mysql route, error code "serialization" is neither a preset`},
		{"mysql", "error", "0", `on a mysql route, error code "0" is neither a preset`},
		{"mysql", "error", "65536", `on a mysql route, error code "65536" is neither a preset`},
	} {
		t.Run(tt.protocol+"/"+tt.behavior+"/"+tt.code, func(t *testing.T) {
			_, err := config.Parse([]byte(file(tt.protocol, tt.behavior, tt.code)), "db.hcl")
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var diags hcl.Diagnostics
			if !errors.As(err, &diags) {
				t.Fatalf("got %v, want diagnostics", err)
			}
			var got []string
			for _, d := range diags {
				got = append(got, fmt.Sprintf("%d:%d %s: %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Summary, d.Detail))
			}
			prefix := fmt.Sprintf(`Invalid error code: The %q behavior of route "db": option "code": `, tt.behavior)
			if len(got) != 2 || !strings.HasPrefix(got[0], "6:15 "+prefix+tt.want) || !strings.HasPrefix(got[1], "16:19 "+prefix+tt.want) {
				t.Fatalf("got:\n%s\nwant at 6:15 and 16:19: %s%s", strings.Join(got, "\n"), prefix, tt.want)
			}
		})
	}
}

// The original's .ini files are checked the same way, at the code's value in
// the behavior's options section.
func TestINIErrorCodeOfTheRoutesProtocol(t *testing.T) {
	ini := func(code string) string {
		return "[vaurien]\nbackend = localhost:3306\nproxy = localhost:3307\nprotocol = mysql\nbehavior = 5:error\n\n[behavior:error]\ncode = " + code + "\n"
	}
	if _, err := config.ParseINI([]byte(ini("lock_wait_timeout")), "db.ini"); err != nil {
		t.Fatalf("a mysql preset refused: %v", err)
	}
	_, err := config.ParseINI([]byte(ini("40P01")), "db.ini")
	var diags hcl.Diagnostics
	if !errors.As(err, &diags) || len(diags) != 1 {
		t.Fatalf("got %v, want one diagnostic", err)
	}
	d := diags[0]
	at := fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column)
	want := `Invalid error code: The "error" behavior: option "code": on a mysql route, error code "40P01" is neither a preset`
	if at != "8:8" || !strings.HasPrefix(d.Summary+": "+d.Detail, want) {
		t.Fatalf("got %s %s: %s; want 8:8 %s", at, d.Summary, d.Detail, want)
	}
}
