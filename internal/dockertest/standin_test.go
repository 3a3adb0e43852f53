package dockertest_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/dockertest"
)

// TestStandIns builds each stand-in and checks that it serves its protocol
// on its port with its default command, as the upstream image does.
func TestStandIns(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	checks := map[string]struct {
		port  int
		check func(addr string) error
	}{
		"redis:7-alpine": {6379, func(addr string) error {
			return expectLine(addr, "PING\r\n", "+PONG")
		}},
		"memcached:1.6-alpine": {11211, func(addr string) error {
			return expectLine(addr, "version\r\n", "VERSION 1.")
		}},
		"nginx:1.27-alpine": {80, func(addr string) error {
			return expectBody("http://"+addr+"/", "Welcome to nginx!")
		}},
		"prom/prometheus:v2.53.0": {9090, func(addr string) error {
			return expectBody("http://"+addr+"/api/v1/status/buildinfo", `"status":"success"`)
		}},
	}
	for _, s := range dockertest.StandIns() {
		c, ok := checks[s.Tag]
		if !ok {
			t.Errorf("no check for stand-in %s", s.Tag)
			continue
		}
		t.Run(s.Tag, func(t *testing.T) {
			t.Parallel()
			dockertest.BuildStandIn(t, s)
			publish, addr := dockertest.Publish(t, c.port)
			id := dockertest.RunContainer(t, "-p", publish, s.Tag)
			// The published port accepts before the server in the
			// container listens: retry the protocol check itself.
			var err error
			dockertest.Eventually(time.Minute, 200*time.Millisecond, func() bool {
				err = c.check(addr)
				return err == nil
			})
			if err != nil {
				t.Fatalf("%s: %v; logs:\n%s", s.Tag, err, dockertest.Logs(t, id))
			}
		})
	}
}

// expectLine sends req and wants the first line of the answer to start
// with want.
func expectLine(addr, req, want string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read answer to %q: %w", req, err)
	}
	if !strings.HasPrefix(line, want) {
		return fmt.Errorf("%q answered %q, want %q", req, line, want)
	}
	return nil
}

// expectBody wants a 200 answer to GET url whose body contains want.
func expectBody(url, want string) error {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		return fmt.Errorf("GET %s: %s %q, want 200 with %q", url, resp.Status, body, want)
	}
	return nil
}
