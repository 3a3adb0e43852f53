package dockertest_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/dockertest"
	"github.com/vaurien-go/vaurien/pkg/config"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
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

// TestImageDefaultConfig keeps the image's default configuration the
// repository's demo, reachable from outside the container: the same demo
// route as vaurien.hcl (same backend, protocol and mix), the
// Toxiproxy-compatible API on Toxiproxy's port, everything on every
// interface, and every port it listens on EXPOSEd by the image.
func TestImageDefaultConfig(t *testing.T) {
	root := dockertest.ModuleRoot(t)
	repo, err := config.Load(filepath.Join(root, "vaurien.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	image, err := config.Load(filepath.Join(root, "deploy", "docker", "vaurien.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(repo.Routes) != 1 || len(image.Routes) != 1 {
		t.Fatalf("want one demo route in each file; vaurien.hcl has %d routes, the image's file %d", len(repo.Routes), len(image.Routes))
	}
	r, i := repo.Routes[0], image.Routes[0]
	if i.Name != r.Name || i.Backend != r.Backend || i.Protocol != r.Protocol || fmt.Sprint(i.Behaviors) != fmt.Sprint(r.Behaviors) {
		t.Errorf("the image's demo route differs from vaurien.hcl's:\nimage:       %s %s %s %v\nvaurien.hcl: %s %s %s %v",
			i.Name, i.Backend, i.Protocol, i.Behaviors, r.Name, r.Backend, r.Protocol, r.Behaviors)
	}
	if _, port, _ := net.SplitHostPort(r.Listen); i.Listen != "0.0.0.0:"+port {
		t.Errorf("the image's demo route listens on %s, want 0.0.0.0:%s (vaurien.hcl's port, on every interface)", i.Listen, port)
	}
	if image.Toxiproxy.Listen != "0.0.0.0:8474" {
		t.Errorf("the image's Toxiproxy API listens on %q, want Toxiproxy's 0.0.0.0:8474", image.Toxiproxy.Listen)
	}

	var exposed []string
	for _, l := range dockertest.FinalStage(t, filepath.Join(root, "Dockerfile")) {
		if rest, ok := strings.CutPrefix(l, "EXPOSE "); ok {
			exposed = append(exposed, strings.Fields(rest)...)
		}
	}
	for _, addr := range []string{image.Admin.Listen, image.Toxiproxy.Listen, i.Listen} {
		if addr == "" {
			continue // reported above
		}
		host, port, _ := net.SplitHostPort(addr)
		if host != "0.0.0.0" {
			t.Errorf("the image's default configuration listens on %s, which is unreachable through a published port; want 0.0.0.0", addr)
		}
		if !slices.Contains(exposed, port) {
			t.Errorf("the image listens on port %s but EXPOSEs only %v", port, exposed)
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
	for _, port := range []string{"8000/tcp", "8080/tcp", "8474/tcp"} {
		if _, ok := img.Config.ExposedPorts[port]; !ok {
			t.Errorf("image exposes %v, want %s (the demo route, the admin API and the Toxiproxy API)", img.Config.ExposedPorts, port)
		}
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
	publishToxiproxy, toxiproxy := dockertest.Publish(t, 8474)
	id := dockertest.RunContainer(t, "-p", publishAdmin, "-p", publishDemo, "-p", publishToxiproxy, tag)
	dockertest.WaitHealthy(t, id, 90*time.Second)

	client := &http.Client{Timeout: 5 * time.Second}
	var body string
	var err error
	ok := dockertest.Eventually(30*time.Second, 200*time.Millisecond, func() bool {
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
	if route, err := get(client, "http://"+admin+"/routes/demo"); err != nil || !strings.Contains(route, `"protocol":"http"`) {
		t.Errorf("the demo route, as the admin API shows it: %v %s; want protocol http, as in vaurien.hcl", err, route)
	}
	// The console is in the binary: the scratch image serves it whole.
	for _, f := range []string{"/ui/", "/ui/console.js", "/ui/console.css"} {
		if b, err := get(client, "http://"+admin+f); err != nil || len(b) < 1000 {
			t.Errorf("the console's %s from the image: %v, %d bytes", f, err, len(b))
		}
	}
	if v, err := get(client, "http://"+toxiproxy+"/version"); err != nil || !strings.Contains(v, version) {
		t.Errorf("Toxiproxy API from the host: GET /version: %v %s; want vaurien's version %s", err, v, version)
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
