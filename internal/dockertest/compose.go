package dockertest

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// ComposeCommand returns the compose tool of this machine: `docker
// compose` (v2) when the plugin is there, else Debian's `docker-compose`.
// Without either the test skips, or fails under VAURIEN_REQUIRE_SERVERS=1.
func ComposeCommand(t testing.TB) []string {
	t.Helper()
	if _, err := command(quickTimeout, "", nil, "docker", "compose", "version"); err == nil {
		return []string{"docker", "compose"}
	}
	return []string{testenv.LookPath(t, "docker-compose")}
}

// Project is a compose project run by a test under a name of its own, so
// that runs never share containers, networks or volumes. It is torn down
// (containers, networks, volumes) when the test ends, pass or fail.
type Project struct {
	Name string
	t    testing.TB
	dir  string
	env  []string
	cmd  []string
}

// NewProject prepares the compose project of the docker-compose.yml in dir,
// with env (NAME=value) added to the environment its file is read with.
func NewProject(t testing.TB, dir string, env ...string) *Project {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	p := &Project{
		Name: "vaurientest" + hex.EncodeToString(b[:]),
		t:    t,
		dir:  dir,
		env:  env,
		cmd:  ComposeCommand(t),
	}
	t.Cleanup(p.down)
	return p
}

// Compose runs the compose tool on the project and returns its output,
// failing the test when it fails.
func (p *Project) Compose(args ...string) string {
	p.t.Helper()
	full := append(append(append([]string(nil), p.cmd[1:]...), "--project-name", p.Name, "--file", "docker-compose.yml"), args...)
	return Run(p.t, p.dir, p.env, p.cmd[0], full...)
}

// Up starts services (and what they depend on) in the background, from
// images already there: nothing is pulled or built.
func (p *Project) Up(services ...string) {
	p.t.Helper()
	p.Compose(append([]string{"up", "--detach", "--no-build", "--no-color", "--quiet-pull"}, services...)...)
}

// Container returns the ID of a service's container.
func (p *Project) Container(service string) string {
	p.t.Helper()
	id := strings.TrimSpace(p.Compose("ps", "--quiet", service))
	if id == "" || strings.Contains(id, "\n") {
		p.t.Fatalf("compose service %s: want one container, got %q", service, id)
	}
	return id
}

func (p *Project) down() {
	if p.t.Failed() {
		out, _ := command(quickTimeout, p.dir, p.env, p.cmd[0], append(p.cmd[1:], "--project-name", p.Name, "--file", "docker-compose.yml", "logs", "--no-color", "--tail", "40")...)
		p.t.Logf("the last lines of each service of compose project %s:\n%s", p.Name, out)
	}
	out, err := command(downTimeout, p.dir, p.env, p.cmd[0], append(p.cmd[1:], "--project-name", p.Name, "--file", "docker-compose.yml", "down", "--volumes", "--remove-orphans", "--timeout", "10")...)
	if err != nil {
		p.t.Errorf("tear down compose project %s: %v\n%s", p.Name, err, out)
	}
}
