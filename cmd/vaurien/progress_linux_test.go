package main

import (
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// On a terminal, experiment run draws its progress in place: during the
// run the phase and the probe's figures, at the end one display left on
// the screen with the final state and the probe's totals.
func TestExperimentRunDrawsProgressOnATerminal(t *testing.T) {
	cfg, exp := progressFiles(t)
	master, tty := testenv.Pty(t)
	shown := make(chan string)
	go func() {
		b, _ := io.ReadAll(master) // ends once tty is closed
		shown <- string(b)
	}()
	var out bytes.Buffer
	code := run(context.Background(), []string{"experiment", "run", exp, "--config", cfg}, &out, tty)
	tty.Close()
	raw := <-shown
	if code != 0 {
		t.Fatalf("exit %d:\n%s\n%s", code, raw, out.String())
	}
	for _, want := range []string{"web-slow\x1b[0m  steady state, ", "web-slow\x1b[0m  step \"slow\", ", "web-slow\x1b[0m  recovery, ", "\x1b[2A"} {
		if !strings.Contains(raw, want) {
			t.Errorf("the terminal was not sent %q:\n%q", want, raw)
		}
	}
	screen := testenv.Screen(raw)
	if len(screen) != 2 || screen[0] != "web-slow  passed" || !regexp.MustCompile(`^  probe app: \d+ requests, 0 errors, p99 \d`).MatchString(screen[1]) {
		t.Errorf("the terminal shows, after the run:\n%s\nwant the final state and the probe's figures only", strings.Join(screen, "\n"))
	}
}
