package toxiproxy_test

import (
	"os"
	"strings"
	"testing"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"

	"github.com/vaurien-go/vaurien/pkg/config"
)

// The README's Toxiproxy section shows a block that vaurien reads, and
// documents every toxic type.
func TestReadmeToxiproxySection(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Skipf("no README: %v", err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Toxiproxy compatibility\n")
	if !ok {
		t.Fatal("README has no Toxiproxy compatibility section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	_, block, ok := strings.Cut(sec, "```hcl\n")
	if !ok {
		t.Fatal("the section has no HCL example")
	}
	block, _, _ = strings.Cut(block, "```")
	f, err := config.Parse([]byte(block), "README.md")
	if err != nil {
		t.Fatalf("the section's HCL example: %v", err)
	}
	if f.Toxiproxy.Listen != "127.0.0.1:8474" {
		t.Errorf("the example's listen address reads as %q", f.Toxiproxy.Listen)
	}
	for _, typ := range []string{"latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"} {
		if !strings.Contains(sec, "| `"+typ+"` |") {
			t.Errorf("the section's toxic table lacks %s", typ)
		}
	}
}

// Toxiproxy takes any proxy name; Testcontainers names them host:port.
func TestProxyNamesWithColons(t *testing.T) {
	e := start(t, "", false)
	p := e.proxy("redis:6379", echo(t))
	got, err := e.client.Proxy("redis:6379")
	if err != nil || got.Listen != p.Listen {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := got.AddToxic("", "latency", "", 1, toxiclient.Attributes{"latency": 1}); err != nil {
		t.Fatal(err)
	}
	if status, body := e.call("POST", "/proxies", `{"name":"a/b","upstream":"x:1"}`); status != 400 {
		t.Errorf("a name with a slash: %d %s", status, body)
	}
}
