package admin_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// TestReloadReportsEveryDiagnostic: a refused reload lists every problem of
// the file, in validate's "file:line:col: error: ..." form, in the answer
// (as a list) and in the log.
func TestReloadReportsEveryDiagnostic(t *testing.T) {
	e := startEnv(t, "")
	e.writeFile(t, fmt.Sprintf(`route "web" {
  listen  = "127.0.0.1:0"
  backend = %q
  bakend  = "x"
  default = true

  behavior "delya" {
    percent = 5
  }
}
`, e.a.Listener.Addr().String()))
	code, body := e.call(t, http.MethodPost, "/reload", "")
	var got api.Error
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != http.StatusUnprocessableEntity {
		t.Fatalf("reload of a file with two problems: %d %s", code, body)
	}
	want := []*regexp.Regexp{
		regexp.MustCompile(`^\S*vaurien\.hcl:4:3: error: Unsupported argument: .*"bakend"`),
		regexp.MustCompile(`^\S*vaurien\.hcl:7:12: error: Unknown behavior: There is no behavior named "delya"\. Did you mean "delay"\?`),
	}
	if len(got.Diagnostics) != len(want) {
		t.Fatalf("diagnostics %q, want %d of them", got.Diagnostics, len(want))
	}
	for i, re := range want {
		if !re.MatchString(got.Diagnostics[i]) {
			t.Errorf("diagnostic %d is %q, want it to match %s", i, got.Diagnostics[i], re)
		}
	}
	if strings.Contains(body, "other diagnostic") {
		t.Errorf("the answer hides diagnostics: %s", body)
	}

	var logged []string
	for _, line := range strings.Split(e.log.String(), "\n") {
		var ev struct {
			Message     string   `json:"message"`
			Diagnostics []string `json:"diagnostics"`
		}
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Message == "reload rejected" {
			logged = ev.Diagnostics
		}
	}
	if strings.Join(logged, "\n") != strings.Join(got.Diagnostics, "\n") {
		t.Errorf("the log's reload rejected event lists %q, want the answer's %q", logged, got.Diagnostics)
	}
	mustFetch(t, e.web, "A") // the running configuration stays
}
