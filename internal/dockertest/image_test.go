package dockertest_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/dockertest"
)

// maxImageSize is the appliance's size budget.
const maxImageSize = 20 << 20

// TestDockerfileFinalStagesIdentical keeps each Dockerfile and its
// Dockerfile.prebuilt producing the same image: after the final-stage
// marker they must not differ by a line.
func TestDockerfileFinalStagesIdentical(t *testing.T) {
	root := dockertest.ModuleRoot(t)
	for _, dir := range []string{".", "examples/compose/app"} {
		full := dockertest.FinalStage(t, filepath.Join(root, dir, "Dockerfile"))
		pre := dockertest.FinalStage(t, filepath.Join(root, dir, "Dockerfile.prebuilt"))
		if !slices.Equal(full, pre) {
			t.Errorf("%s: the final stages of Dockerfile and Dockerfile.prebuilt differ:\nDockerfile:\n%s\nDockerfile.prebuilt:\n%s",
				dir, strings.Join(full, "\n"), strings.Join(pre, "\n"))
		}
	}
}

// TestVaurienImage builds the image the way CI does and runs it: small,
// non-root, stamped with its version, healthy through its own healthcheck,
// serving its demo route, and stopped cleanly by docker stop within
// Docker's grace period.
func TestVaurienImage(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	version := dockertest.TestVersion
	tag := dockertest.VaurienImage(t, "vaurien-go/vaurien:latest", version)

	img := dockertest.InspectImage(t, tag)
	if img == nil {
		t.Fatalf("no image %s after the build", tag)
	}
	t.Logf("%s: %.1f MB", tag, float64(img.Size)/(1<<20))
	if img.Size >= maxImageSize {
		t.Errorf("image size %d bytes, want under %d", img.Size, maxImageSize)
	}
	if img.Config.User != "65532:65532" {
		t.Errorf("image user %q, want the non-root 65532:65532", img.Config.User)
	}
	if _, ok := img.Config.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("image exposes %v, want the admin port 8080/tcp", img.Config.ExposedPorts)
	}
	if hc := img.Config.Healthcheck; hc == nil || !slices.Equal(hc.Test, []string{"CMD", "/vaurien", "healthcheck"}) {
		t.Errorf("image healthcheck %+v, want vaurien healthcheck", hc)
	}
	if !slices.Contains(img.Config.Env, "VAURIEN_CONFIG=/etc/vaurien/vaurien.hcl") {
		t.Errorf("image env %v, want VAURIEN_CONFIG=/etc/vaurien/vaurien.hcl", img.Config.Env)
	}

	out := dockertest.Run(t, "", nil, "docker", "run", "--rm", tag, "version")
	if !strings.Contains(out, "vaurien "+version) {
		t.Errorf("vaurien version in the image printed %q, want the stamped %s", out, version)
	}

	publishAdmin, admin := dockertest.Publish(t, 8080)
	publishDemo, demo := dockertest.Publish(t, 8000)
	id := dockertest.RunContainer(t, "-p", publishAdmin, "-p", publishDemo, tag)
	dockertest.WaitHealthy(t, id, 45*time.Second)

	client := &http.Client{Timeout: 5 * time.Second}
	var body string
	var err error
	ok := dockertest.Eventually(10*time.Second, 200*time.Millisecond, func() bool {
		body, err = get(client, "http://"+demo+"/")
		return err == nil
	})
	if !ok {
		t.Fatalf("GET through the demo route: %v; logs:\n%s", err, dockertest.Logs(t, id))
	}
	if body == "" {
		t.Error("the demo route answered an empty body")
	}
	if _, err := get(client, "http://"+admin+"/healthz"); err != nil {
		t.Errorf("admin API from the host: %v", err)
	}

	took := dockertest.Stop(t, id)
	c := dockertest.InspectContainer(t, id)
	t.Logf("docker stop took %v, exit code %d", took.Round(time.Millisecond), c.State.ExitCode)
	if c.State.ExitCode != 0 || took >= 10*time.Second {
		t.Errorf("docker stop: exit code %d after %v, want 0 within the 10s grace period; logs:\n%s",
			c.State.ExitCode, took, dockertest.Logs(t, id))
	}
}

// get wants a 200 answer and returns the body.
func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), nil
}
