package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// progressFiles writes a configuration with one tcp route to an echo
// server and a short experiment on it whose probe connects through the
// route: steady state, a step "slow", recovery, steady state again.
func progressFiles(t *testing.T) (cfg, exp string) {
	t.Helper()
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg = writeFile(t, "vaurien.hcl", fmt.Sprintf(`
admin {
  listen = "127.0.0.1:%d"
}
route "web" {
  listen  = %q
  backend = %q
}`, testenv.FreePort(t), listen, testenv.Echo(t).Addr))
	exp = writeFile(t, "slow.hcl", fmt.Sprintf(`
experiment "web-slow" {
  probe "app" {
    tcp {
      address = %q
    }
    interval = "50ms"
  }
  steady_state {
    duration = "300ms"
  }
  step "slow" {
    duration = "600ms"
    route "web" {
      behavior "delay" {
        percent = 100
        sleep   = "5ms"
      }
    }
  }
  recovery = "300ms"
  slo "up" {
    probe      = "app"
    error_rate = 0.5
  }
}`, listen))
	return cfg, exp
}

// On a file (as in CI logs), experiment run prints plain lines on stderr:
// one per phase, in the run's order, then the final state; no escape
// sequence.
func TestExperimentRunPrintsPlainLinesOffATerminal(t *testing.T) {
	cfg, exp := progressFiles(t)
	log, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"experiment", "run", exp, "--config", cfg}, &out, log); code != 0 {
		b, _ := os.ReadFile(log.Name())
		t.Fatalf("exit %d:\n%s\n%s", code, b, out.String())
	}
	b, err := os.ReadFile(log.Name())
	if err != nil {
		t.Fatal(err)
	}
	var phases []string
	line := regexp.MustCompile(`^\d\d:\d\d:\d\d web-slow: (steady state|step "slow"|recovery) for \d+(\.\d)?m?s \(run ends in \d+s\)$`)
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			phases = append(phases, m[1])
		} else if !regexp.MustCompile(`^\d\d:\d\d:\d\d web-slow: passed$`).MatchString(l) {
			t.Errorf("unexpected line %q", l)
		}
	}
	if want := []string{"steady state", `step "slow"`, "recovery", "steady state"}; !slices.Equal(phases, want) {
		t.Errorf("phases %q, want %q:\n%s", phases, want, b)
	}
	if !strings.HasSuffix(string(b), " web-slow: passed\n") || bytes.Contains(b, []byte("\x1b")) {
		t.Errorf("stderr does not end with the final state in plain text:\n%q", b)
	}
	if !strings.HasPrefix(out.String(), "experiment web-slow: passed\n") {
		t.Errorf("stdout:\n%s", out.String())
	}
}
