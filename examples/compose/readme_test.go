package compose_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/internal/dockertest"
)

// TestReadmeRunsOffline keeps the README's way of running the stack on a
// machine without registry access true: every service's image is built
// from this repository, stood in for by the command the README gives, or
// Grafana's, which the README says needs its real image; and the README's
// `docker-compose up` without Grafana names exactly the other services,
// the ones the stack's test starts.
func TestReadmeRunsOffline(t *testing.T) {
	root := dockertest.ModuleRoot(t)
	readme := read(t, "README.md")
	prose := strings.Join(strings.Fields(readme), " ")
	images := composeImages(t, read(t, "docker-compose.yml"))

	standIns := map[string]bool{}
	for _, s := range dockertest.StandIns() {
		standIns[s.Tag] = true
	}
	var withoutGrafana []string
	for _, svc := range sortedServices(images) {
		img := images[svc]
		switch {
		case img.built:
		case standIns[img.image]:
		case svc == "grafana":
			if !strings.Contains(prose, "Grafana has no stand-in: it needs its real image, `"+img.image+"`") {
				t.Errorf("README does not say that Grafana needs its real image %s", img.image)
			}
			continue
		default:
			t.Errorf("service %s runs %s, which is neither built here nor stood in for", svc, img.image)
		}
		withoutGrafana = append(withoutGrafana, svc)
	}
	slices.Sort(withoutGrafana)
	started := slices.Sorted(slices.Values(services))
	if !slices.Equal(withoutGrafana, started) {
		t.Errorf("the services but grafana are %v, the test starts %v", withoutGrafana, started)
	}
	up := "docker-compose up " + strings.Join(services, " ")
	if !strings.Contains(readme, "\n"+up+" ") {
		t.Errorf("README does not give %q", up)
	}

	// The stand-ins' command runs a test that exists and builds them all.
	cmd := regexp.MustCompile(`(?m)^VAURIEN_REQUIRE_SERVERS=1 go test -count=1 -run '(\^Test\w+\$)' (\./internal/dockertest/)$`).FindStringSubmatch(readme)
	if cmd == nil {
		t.Fatal("README gives no command that builds the stand-in images")
	}
	name := strings.Trim(cmd[1], "^$")
	src := read(t, filepath.Join(root, filepath.FromSlash(cmd[2]), "standin_test.go"))
	if !strings.Contains(src, "func "+name+"(t *testing.T)") || !strings.Contains(src, "dockertest.StandIns()") || !strings.Contains(src, "dockertest.BuildStandIn(t, s)") {
		t.Errorf("the README's command runs %s, which does not build every stand-in", name)
	}
	for tag := range standIns {
		if !strings.Contains(readme, "`"+tag+"`") {
			t.Errorf("README does not name the stand-in %s", tag)
		}
	}
}

type composeImage struct {
	image string
	built bool // the service has a build section: its image comes from this repository
}

// composeImages reads the services of a docker-compose.yml: their image,
// and whether they are built.
func composeImages(t *testing.T, yml string) map[string]composeImage {
	t.Helper()
	out := map[string]composeImage{}
	var svc string
	inServices := false
	for _, l := range strings.Split(yml, "\n") {
		switch {
		case l == "services:":
			inServices = true
		case !strings.HasPrefix(l, " ") && strings.TrimSpace(l) != "" && !strings.HasPrefix(l, "#"):
			inServices = false
		case !inServices:
		case strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "   ") && strings.HasSuffix(l, ":"):
			svc = strings.TrimSuffix(strings.TrimSpace(l), ":")
			out[svc] = composeImage{}
		case strings.HasPrefix(l, "    image: "):
			c := out[svc]
			c.image = strings.TrimPrefix(l, "    image: ")
			out[svc] = c
		case strings.HasPrefix(l, "    build:"):
			c := out[svc]
			c.built = true
			out[svc] = c
		}
	}
	if len(out) == 0 {
		t.Fatal("docker-compose.yml: no services")
	}
	return out
}

func sortedServices(m map[string]composeImage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
