package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

func TestToxiproxyModeDetection(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"-host", "0.0.0.0"}, true},
		{[]string{"-host=0.0.0.0"}, true},
		{[]string{"--port", "8474"}, true},
		{[]string{"-config", "proxies.json"}, true},
		{[]string{"--config=/etc/toxiproxy.JSON"}, true},
		{[]string{"-proxy-metrics"}, true},
		{[]string{"-version"}, false},
		{[]string{"-config", "vaurien.ini"}, false},
		{[]string{"--config", "vaurien.hcl", "--http"}, false},
		{[]string{"--proxy", "localhost:8000", "--backend", "example.com:80", "--http-host", "0.0.0.0", "--http-port", "8080"}, false},
		{[]string{"run", "-config", "x.json"}, false},
		{[]string{"validate", "-host"}, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := isToxiproxyMode(tt.args); got != tt.want {
			t.Errorf("isToxiproxyMode(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}

// runInBackground runs the CLI until the test ends, waiting for addr.
func runInBackground(t *testing.T, addr string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	code := -1
	var errb bytes.Buffer
	wg.Go(func() { code = run(ctx, args, io.Discard, &errb) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if code != 0 {
			t.Errorf("vaurien %v exited %d: %s", args, code, errb.String())
		}
	})
	if err := testenv.WaitListening(addr, 5*time.Second); err != nil {
		t.Fatalf("vaurien does not listen on %s: %v\n%s", addr, err, errb.String())
	}
}

func echoBackend(t *testing.T) string {
	return testenv.Echo(t).Addr
}

// Started with toxiproxy-server's flags, vaurien serves the Toxiproxy API
// and the proxies of the JSON file, with no HCL file at all.
func TestToxiproxyModeServesTheJSONProxies(t *testing.T) {
	up := echoBackend(t)
	webPort, apiPort := testenv.FreePort(t), testenv.FreePort(t)
	web := net.JoinHostPort("127.0.0.1", strconv.Itoa(webPort))
	file := writeFile(t, "proxies.json", fmt.Sprintf(`[
  {"name": "web", "listen": %q, "upstream": %q},
  {"name": "off", "listen": "127.0.0.1:0", "upstream": %q, "enabled": false}
]`, web, up, up))
	api := net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort))
	runInBackground(t, api, "-host", "127.0.0.1", "-port", strconv.Itoa(apiPort), "-config", file)

	client := toxiclient.NewClient(api)
	all, err := client.Proxies()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all["web"] == nil || all["web"].Listen != web || !all["web"].Enabled || all["off"] == nil || all["off"].Enabled {
		t.Fatalf("proxies: %+v", all)
	}
	if _, err := all["web"].AddToxic("", "latency", "downstream", 1, toxiclient.Attributes{"latency": 100}); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", web)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.Write([]byte("ping"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("through the proxy: %q %v after %v", buf, err, time.Since(start))
	}
}

func TestToxiproxyModeVersionAndErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-host", "0.0.0.0", "-version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "toxiproxy-server version ") {
		t.Errorf("-version: exit %d, %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"--config", "none.json", "--version"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "vaurien") {
		t.Errorf("--version: exit %d, %q", code, out.String())
	}
	bad := writeFile(t, "bad.json", `[{"name": "x"}]`)
	errb.Reset()
	if code := run(context.Background(), []string{"-port", "0", "-config", bad}, io.Discard, &errb); code != 1 || !strings.Contains(errb.String(), "missing required field: upstream at proxy 1") {
		t.Errorf("bad proxies file: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"-port", "http"}, io.Discard, &errb); code != 2 {
		t.Errorf("bad port: exit %d, %q", code, errb.String())
	}
}

// "vaurien run --toxiproxy ADDR" turns the API on for an HCL file, whose
// routes show as proxies.
func TestRunWithTheToxiproxyFlag(t *testing.T) {
	up := echoBackend(t)
	file := writeFile(t, "v.hcl", fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}

route "db" {
  listen  = "127.0.0.1:0"
  backend = %q
}
`, up))
	api := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
	runInBackground(t, api, "run", "-c", file, "--toxiproxy", api)
	p, err := toxiclient.NewClient(api).Proxy("db")
	if err != nil || p.Upstream != up || !p.Enabled {
		t.Fatalf("the file's route as a proxy: %+v, %v", p, err)
	}
}
