// Package dockertest holds the helpers of the tests that run vaurien's
// appliance on a real Docker engine: deciding whether an engine is there
// (skip, or fail under VAURIEN_REQUIRE_SERVERS=1), building images quietly,
// building vaurien's image the way CI does (a static binary plus
// Dockerfile.prebuilt), standing in for upstream images from the host's own
// binaries when no registry can be reached, and driving a compose project
// that is torn down with the test.
package dockertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// Time limits of the commands the helpers run, sized for a loaded two-core
// machine (a cold static build of vaurien there has taken over three
// minutes while other packages' tests ran). A limit only has to turn a
// wedged engine or tool into a failure that says which command hung and
// for how long.
const (
	// runTimeout bounds a command Run runs: builds, compose up.
	runTimeout = 15 * time.Minute
	// quickTimeout bounds the engine's quick calls: info, inspect, logs, rm.
	quickTimeout = 2 * time.Minute
	// downTimeout bounds the tear-down of a compose project.
	downTimeout = 5 * time.Minute
	// deadlineMargin is left before the test binary's own -timeout, so
	// that a command that hangs fails with its own message rather than
	// the binary's panic.
	deadlineMargin = time.Minute
)

// Require skips the test when no Docker engine answers (`docker info`
// fails), or fails it under VAURIEN_REQUIRE_SERVERS=1.
func Require(t testing.TB) {
	t.Helper()
	testenv.LookPath(t, "docker")
	out, err := command(quickTimeout, "", nil, "docker", "info", "--format", "{{.ServerVersion}}")
	if err == nil && strings.TrimSpace(out) != "" {
		return
	}
	testenv.Missing(t, "a Docker engine", fmt.Sprintf("is not running (%v: %s)", err, firstLine(out)),
		"start one (Debian: apt-get install docker.io, then dockerd)")
}

// Run runs a command and returns its standard output, failing the test
// with the command's whole output when it fails. dir is the working
// directory ("" for the current one), env extra variables. The command
// gets runTimeout, or less when the test's deadline is nearer.
func Run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := command(timeoutFor(t, runTimeout), dir, env, name, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

// timeoutFor returns d, cut short to end deadlineMargin before the test's
// deadline (go test -timeout) when that comes first.
func timeoutFor(t testing.TB, d time.Duration) time.Duration {
	tt, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return d
	}
	deadline, ok := tt.Deadline()
	if !ok {
		return d
	}
	if left := time.Until(deadline) - deadlineMargin; left < d {
		return max(left, 10*time.Second)
	}
	return d
}

// command runs name with args, killing it after timeout. Its output is
// stdout, with stderr appended when the command fails; its error names the
// command, and says when it was killed for running longer than timeout.
func command(timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// A killed command's children (go build's compilers, say) may hold
	// its output open: stop waiting for them soon after.
	cmd.WaitDelay = 10 * time.Second
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		return stdout.String(), nil
	}
	line := strings.Join(append([]string{name}, args...), " ")
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%s: timed out: still running after %v, its limit, so it was killed (%w)", line, timeout, err)
	} else {
		err = fmt.Errorf("%s: %w", line, err)
	}
	return stdout.String() + stderr.String(), err
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ModuleRoot is the directory of the main module's go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	gomod := strings.TrimSpace(Run(t, "", nil, "go", "env", "GOMOD"))
	if gomod == "" || gomod == os.DevNull {
		t.Fatal("find the module root: not inside a Go module")
	}
	return filepath.Dir(gomod)
}

// GoBuildStatic builds pkg (relative to the module root) into out as a
// static Linux binary without cgo, stamped with version (none when "").
func GoBuildStatic(t testing.TB, root, pkg, out, version string) {
	t.Helper()
	ldflags := "-s -w"
	if version != "" {
		ldflags += " -X github.com/vaurien-go/vaurien/pkg/version.Version=" + version
	}
	Run(t, root, []string{"CGO_ENABLED=0", "GOOS=linux"}, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
}

// Build runs `docker build` quietly on the context directory dir with the
// Dockerfile at dockerfile (relative to dir) and tags the image.
// The image the tag named before, if any, is removed when nothing else
// uses it, so that repeated runs leave no untagged images behind.
func Build(t testing.TB, dir, dockerfile, tag string) {
	t.Helper()
	defer lockTag(t, tag)()
	var old string
	if img := InspectImage(t, tag); img != nil {
		old = img.ID
	}
	Run(t, dir, nil, "docker", "build", "--quiet", "--force-rm", "-f", filepath.Join(dir, dockerfile), "-t", tag, dir)
	if img := InspectImage(t, tag); old != "" && img != nil && img.ID != old {
		// Fails, harmlessly, while a container or another tag uses it.
		_, _ = command(quickTimeout, "", nil, "docker", "image", "rm", old)
	}
}

// CopyFile copies src to dst, creating dst's directory, with mode perm.
func CopyFile(t testing.TB, src, dst string, perm os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	WriteFile(t, dst, b, perm)
}

// WriteFile writes b to path, creating its directory.
func WriteFile(t testing.TB, path string, b []byte, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	if err := os.WriteFile(path, b, perm); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	// The umask may have narrowed perm; images need the exact mode.
	if err := os.Chmod(path, perm); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

// TestVersion is the version the tests stamp into the binaries they put in
// images. One version for every test keeps the binaries, and so the images,
// identical from one test to the next.
const TestVersion = "0.0.0-dockertest"

// VaurienImage builds vaurien's image the way CI does: a static binary
// built here (stamped with version), in a build context that holds only
// what Dockerfile.prebuilt copies. It returns the tag.
func VaurienImage(t testing.TB, tag, version string) string {
	t.Helper()
	return PrebuiltImage(t, "./cmd/vaurien", "bin/vaurien", "Dockerfile.prebuilt", tag, version, "deploy/docker/vaurien.hcl")
}

// PrebuiltImage builds an image from a binary built beforehand, as a
// Dockerfile.prebuilt does: pkg (a package of the module) is built static
// into bin (a path relative to the build context, e.g. "bin/vaurien"), and
// the context gets the Dockerfile and the files listed, all at their paths
// in the module, so that the Dockerfile reads as it would from the
// repository's root. It returns the tag.
func PrebuiltImage(t testing.TB, pkg, bin, dockerfile, tag, version string, files ...string) string {
	t.Helper()
	root := ModuleRoot(t)
	ctx := t.TempDir()
	GoBuildStatic(t, root, pkg, filepath.Join(ctx, filepath.FromSlash(bin)), version)
	for _, f := range append([]string{dockerfile}, files...) {
		CopyFile(t, filepath.Join(root, filepath.FromSlash(f)), filepath.Join(ctx, filepath.FromSlash(f)), 0o644)
	}
	Build(t, ctx, filepath.FromSlash(dockerfile), tag)
	return tag
}

// FinalStageMarker is the comment after which a Dockerfile and its
// Dockerfile.prebuilt must be identical.
const FinalStageMarker = "# --- final stage"

// FinalStage returns the lines of a Dockerfile after FinalStageMarker.
func FinalStage(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, FinalStageMarker) {
			return lines[i+1:]
		}
	}
	t.Fatalf("%s has no %q line", path, FinalStageMarker)
	return nil
}

// Image is what `docker image inspect` says of an image, in part.
type Image struct {
	ID     string
	Size   int64
	Config struct {
		User         string
		Env          []string
		Entrypoint   []string
		Cmd          []string
		ExposedPorts map[string]struct{}
		Labels       map[string]string
		Healthcheck  *struct{ Test []string }
	}
}

// InspectImage returns an image's metadata, or nil when there is no image
// with that tag.
func InspectImage(t testing.TB, tag string) *Image {
	t.Helper()
	out, err := command(quickTimeout, "", nil, "docker", "image", "inspect", tag)
	if err != nil {
		if strings.Contains(strings.ToLower(out), "no such image") {
			return nil
		}
		t.Fatalf("%v\n%s", err, out)
	}
	var imgs []Image
	if err := json.Unmarshal([]byte(out), &imgs); err != nil || len(imgs) != 1 {
		t.Fatalf("docker image inspect %s: unexpected answer (%v): %s", tag, err, out)
	}
	return &imgs[0]
}

// Container is what `docker inspect` says of a container, in part.
type Container struct {
	ID    string
	State struct {
		Status   string
		Running  bool
		ExitCode int
		Health   *struct {
			Status string
			Log    []struct {
				ExitCode int
				Output   string
			}
		}
	}
}

// InspectContainer returns a container's state.
func InspectContainer(t testing.TB, id string) Container {
	t.Helper()
	out := Run(t, "", nil, "docker", "inspect", "--type", "container", id)
	var cs []Container
	if err := json.Unmarshal([]byte(out), &cs); err != nil || len(cs) != 1 {
		t.Fatalf("docker inspect %s: unexpected answer (%v): %s", id, err, out)
	}
	return cs[0]
}

// WaitHealthy waits until the container's healthcheck reports healthy,
// failing with the last probe outputs when it does not within d.
func WaitHealthy(t testing.TB, id string, d time.Duration) {
	t.Helper()
	var last Container
	ok := Eventually(d, 500*time.Millisecond, func() bool {
		last = InspectContainer(t, id)
		if last.State.Health == nil {
			t.Fatalf("container %s has no healthcheck", id)
		}
		if !last.State.Running {
			t.Fatalf("container %s is %s (exit code %d) while waiting for it to be healthy; logs:\n%s",
				id, last.State.Status, last.State.ExitCode, Logs(t, id))
		}
		return last.State.Health.Status == "healthy"
	})
	if !ok {
		var probes strings.Builder
		if h := last.State.Health; h != nil {
			for _, l := range h.Log {
				fmt.Fprintf(&probes, "  exit %d: %s\n", l.ExitCode, strings.TrimSpace(l.Output))
			}
		}
		t.Fatalf("container %s not healthy within %v (status %q); probes:\n%s", id, d, healthStatus(last), probes.String())
	}
}

func healthStatus(c Container) string {
	if c.State.Health == nil {
		return ""
	}
	return c.State.Health.Status
}

// Logs returns a container's output, stdout and stderr together.
func Logs(t testing.TB, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), quickTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "logs", id).CombinedOutput()
	if ctx.Err() == context.DeadlineExceeded {
		t.Logf("docker logs %s: timed out: still running after %v, so it was killed", id, quickTimeout)
	} else if err != nil {
		t.Logf("docker logs %s: %v", id, err)
	}
	return string(out)
}

// Stop runs `docker stop` with Docker's default 10 s grace period and
// returns how long it took.
func Stop(t testing.TB, id string) time.Duration {
	t.Helper()
	start := time.Now()
	Run(t, "", nil, "docker", "stop", "--time", "10", id)
	return time.Since(start)
}

// Eventually calls cond every tick until it returns true (true) or d has
// passed (false).
func Eventually(d, tick time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-deadline.C:
			return cond()
		case <-ticker.C:
		}
	}
}

// RunContainer starts a detached container (`docker run -d ARGS...`) and
// removes it, with its anonymous volumes, when the test ends. It returns
// the container's ID.
func RunContainer(t testing.TB, args ...string) string {
	t.Helper()
	id := strings.TrimSpace(Run(t, "", nil, "docker", append([]string{"run", "-d"}, args...)...))
	t.Cleanup(func() {
		if out, err := command(quickTimeout, "", nil, "docker", "rm", "-f", "-v", id); err != nil {
			t.Logf("%v: %s", err, out)
		}
	})
	return id
}

// Publish is a -p argument that publishes a container port on a free port
// of the host's loopback interface, and that host address.
func Publish(t testing.TB, containerPort int) (arg, hostAddr string) {
	t.Helper()
	port := testenv.FreePort(t)
	return fmt.Sprintf("127.0.0.1:%d:%d", port, containerPort), fmt.Sprintf("127.0.0.1:%d", port)
}
