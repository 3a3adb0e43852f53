package probe

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	Register(Spec{
		Name: "command",
		Doc: "Runs a program and waits for it. It fails when the program cannot start, exits " +
			"with a status other than 0, or runs past the timeout (it is then killed).",
		Options: chaos.Options{
			{Name: "command", Kind: chaos.Strings, Default: []string{}, Doc: `The program and its arguments, as in ["curl", "-fsS", "http://127.0.0.1:9000/"]; required. No shell is involved.`},
			timeoutOption(5 * time.Second),
		},
		Example: `probe "checkout" {
  command {
    command = ["./bin/checkout-smoke", "--quick"]
    timeout = "10s"
  }
  interval = "5s"
}`,
		New: func(v chaos.Values) (Prober, error) {
			argv := v.Strings("command")
			if len(argv) == 0 || argv[0] == "" {
				return nil, errors.New(`the command option is required: the program and its arguments, as in ["true"]`)
			}
			return &commandProbe{argv: argv, timeout: v.Duration("timeout")}, nil
		},
	})
}

type commandProbe struct {
	argv    []string
	timeout time.Duration
}

func (p *commandProbe) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.argv[0], p.argv[1:]...)
	cmd.WaitDelay = time.Second // a child that keeps the pipes open does not hold the probe
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Errorf("%s: no exit within %s", p.argv[0], p.timeout)
	}
	if err != nil {
		if len(out) > 200 {
			out = out[len(out)-200:]
		}
		return fmt.Errorf("%s: %w: %s", p.argv[0], err, out)
	}
	return nil
}
