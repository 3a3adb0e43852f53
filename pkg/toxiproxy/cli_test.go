package toxiproxy_test

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// toxiproxyCLI builds Toxiproxy's own CLI from the module version the
// tests use.
func toxiproxyCLI(t *testing.T) string {
	t.Helper()
	goBin := testenv.LookPath(t, "go")
	bin := filepath.Join(t.TempDir(), "toxiproxy-cli")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/Shopify/toxiproxy/v2/cmd/cli")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build toxiproxy-cli: %v\n%s", err, out)
	}
	return bin
}

func TestToxiproxyCLI(t *testing.T) {
	cli := toxiproxyCLI(t)
	e := start(t, "", false)
	up := echo(t)
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"-h", e.url}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return out.String(), 0
		case errors.As(err, &exit):
			return out.String(), exit.ExitCode()
		}
		t.Fatalf("run toxiproxy-cli %v: %v", args, err)
		return "", 0
	}
	steps := []struct {
		args []string
		code int
		want []string // substrings of the output
	}{
		{[]string{"list"}, 0, nil},
		{[]string{"create", "-l", "127.0.0.1:0", "-u", up, "web"}, 0, []string{"Created new proxy web"}},
		{[]string{"create", "-l", "127.0.0.1:0", "-u", up, "web"}, 1, []string{"Failed to create proxy", "proxy already exists"}},
		{[]string{"list"}, 0, []string{"web\t127.0.0.1:", "\t" + up + "\tenabled\t0"}},
		{[]string{"toggle", "web"}, 0, []string{"Proxy web is now disabled"}},
		{[]string{"list"}, 0, []string{"\tdisabled\t0"}},
		{[]string{"toggle", "web"}, 0, []string{"Proxy web is now enabled"}},
		{[]string{"toxic", "add", "-t", "latency", "-a", "latency=100", "-a", "jitter=5", "web"}, 0,
			[]string{"Added downstream latency toxic 'latency_downstream' on proxy 'web'"}},
		{[]string{"toxic", "add", "-t", "bandwidth", "-u", "-n", "bw", "-a", "rate=1000", "web"}, 0,
			[]string{"Added upstream bandwidth toxic 'bw' on proxy 'web'"}},
		{[]string{"toxic", "add", "-t", "nope", "web"}, 1, []string{"Failed to add toxic", "invalid toxic type"}},
		{[]string{"toxic", "update", "-n", "latency_downstream", "-a", "latency=200", "web"}, 0,
			[]string{"Updated toxic 'latency_downstream' on proxy 'web'"}},
		{[]string{"inspect", "web"}, 0, []string{
			"bw\ttype=bandwidth\tstream=upstream\ttoxicity=1.00\tattributes=[\trate=1000\t]",
			"latency_downstream\ttype=latency\tstream=downstream\ttoxicity=1.00\tattributes=[\tjitter=5\tlatency=200\t]",
		}},
		{[]string{"list"}, 0, []string{"\tenabled\t2"}},
		{[]string{"toxic", "remove", "-n", "bw", "web"}, 0, []string{"Removed toxic 'bw' on proxy 'web'"}},
		{[]string{"toxic", "remove", "-n", "bw", "web"}, 1, []string{"Failed to remove toxic", "toxic not found"}},
		{[]string{"toxic", "add", "-t", "latency", "nope"}, 1, []string{"Failed to add toxic", "404"}},
		{[]string{"delete", "web"}, 0, []string{"Deleted proxy web"}},
		{[]string{"inspect", "web"}, 1, []string{"Failed to retrieve proxy web"}},
	}
	for _, s := range steps {
		out, code := run(s.args...)
		if code != s.code {
			t.Errorf("toxiproxy-cli %s: exit %d, want %d\n%s", strings.Join(s.args, " "), code, s.code, out)
			continue
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("toxiproxy-cli %s: output lacks %q:\n%s", strings.Join(s.args, " "), w, out)
			}
		}
	}
}
