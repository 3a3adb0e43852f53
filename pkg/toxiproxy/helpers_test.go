package toxiproxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/rs/zerolog"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/config"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
)

// env is a running vaurien with the Toxiproxy API on, and a client of it.
type env struct {
	t      *testing.T
	app    *app.App
	url    string
	client *toxiclient.Client
}

// start runs vaurien with the routes of an HCL file (may be empty); admin
// turns its own admin API on too.
func start(t *testing.T, hcl string, admin bool) *env {
	t.Helper()
	f, err := config.Parse([]byte(hcl), "test.hcl")
	if err != nil {
		t.Fatal(err)
	}
	f.Toxiproxy.Listen = "127.0.0.1:0"
	f.Admin.Listen = ""
	if admin {
		f.Admin.Listen = "127.0.0.1:0"
	}
	f.Drain = time.Second
	a := app.New(f, zerolog.Nop())
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	url := "http://" + a.ToxiproxyAddr()
	return &env{t: t, app: a, url: url, client: toxiclient.NewClient(url)}
}

// call makes a raw request to the API and returns the status and body.
func (e *env) call(method, path, body string) (int, string) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// proxy creates a proxy to upstream on a free port.
func (e *env) proxy(name, upstream string) *toxiclient.Proxy {
	e.t.Helper()
	p, err := e.client.CreateProxy(name, "127.0.0.1:0", upstream)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) toxic(p *toxiclient.Proxy, typ, stream string, toxicity float32, attrs toxiclient.Attributes) {
	e.t.Helper()
	if _, err := p.AddToxic("", typ, stream, toxicity, attrs); err != nil {
		e.t.Fatalf("add %s toxic: %v", typ, err)
	}
}

func newBackend(t *testing.T, handle func(net.Conn)) string {
	return testenv.Serve(t, handle).Addr
}

// echo sends back what it gets.
func echo(t *testing.T) string {
	return newBackend(t, func(c net.Conn) { io.Copy(c, c) })
}

// source sends data and closes.
func source(t *testing.T, data []byte) string {
	return newBackend(t, func(c net.Conn) { c.Write(data) })
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends msg through c and reads it back, returning how long it
// took.
func roundTrip(t *testing.T, c net.Conn, msg string) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read back %q: %v", msg, err)
	}
	if string(buf) != msg {
		t.Fatalf("got %q back, want %q", buf, msg)
	}
	return time.Since(start)
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("got  %s\nwant %s", gb, wb)
	}
}
