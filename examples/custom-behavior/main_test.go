package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// route runs a tcp route to backend whose every connection draws
// uppercase with opts.
func route(t *testing.T, backend string, opts map[string]any) string {
	t.Helper()
	b, v, err := chaos.NewBehavior("uppercase", opts)
	if err != nil {
		t.Fatal(err)
	}
	mix, err := chaos.NewMix([]chaos.Entry{{Name: "uppercase", Percent: 100, Options: v, Behavior: b}})
	if err != nil {
		t.Fatal(err)
	}
	s := proxy.New(nil, time.Second)
	if err := s.Apply([]proxy.RouteConfig{{Name: "shout", Listen: "127.0.0.1:0", Backend: backend, Protocol: "tcp", Mix: mix}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s.Route("shout").Addr()
}

func TestUppercaseHTTP(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "Hello from "+r.URL.Path+", été 42\n")
	}))
	t.Cleanup(backend.Close)
	addr := route(t, backend.Listener.Addr().String(), nil)

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/path")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// The request went up untouched; the answer came back shouting, its
	// non-ASCII letters alone left as they were.
	if want := "HELLO FROM /PATH, éTé 42\n"; string(body) != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
}

func TestUppercaseDirections(t *testing.T) {
	tests := []struct {
		direction          string
		backendGot, client string
	}{
		{"to_client", "ping été\n", "PING éTé\n"},
		{"to_backend", "PING éTé\n", "PING éTé\n"},
		{"both", "PING éTé\n", "PING éTé\n"},
	}
	for _, tt := range tests {
		t.Run(tt.direction, func(t *testing.T) {
			got, addr := echoBackend(t)
			proxyAddr := route(t, addr, map[string]any{"direction": tt.direction})
			c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "ping été\n")
			c.(*net.TCPConn).CloseWrite()
			out, err := io.ReadAll(c)
			if err != nil || string(out) != tt.client {
				t.Errorf("client got %q, %v; want %q", out, err, tt.client)
			}
			if b := <-got; b != tt.backendGot {
				t.Errorf("backend got %q, want %q", b, tt.backendGot)
			}
		})
	}
}

// echoBackend echoes one connection and reports what it received.
func echoBackend(t *testing.T) (<-chan string, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var in bytes.Buffer
		io.Copy(io.MultiWriter(c, &in), c)
		c.(*net.TCPConn).CloseWrite()
		got <- in.String()
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return got, ln.Addr().String()
}

func TestExampleConfig(t *testing.T) {
	f, err := config.Load("vaurien.hcl")
	if err != nil {
		t.Fatal(err)
	}
	cfgs, err := app.RouteConfigs(f, "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfgs) != 1 || cfgs[0].Mix.String() != "50:uppercase,20:delay" {
		t.Fatalf("routes %+v, want one with 50:uppercase,20:delay", cfgs)
	}
	if d := cfgs[0].Mix.Entries()[0].Options.String("direction"); d != "to_client" {
		t.Errorf("uppercase direction %q, want to_client", d)
	}
}

func TestRun(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"behaviors"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "\nuppercase\n") {
		t.Errorf("behaviors: exit %d, listing without uppercase:\n%s", code, out.String())
	}

	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"dance"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "dance"`) {
		t.Errorf("unknown command: exit %d, %q", code, errOut.String())
	}

	// A bad option of the custom behavior is caught like a built-in's.
	bad := writeConfig(t, `direction = "sideways"`)
	errOut.Reset()
	if code := run(context.Background(), []string{"-c", bad}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "sideways") {
		t.Errorf("bad option: exit %d, %q", code, errOut.String())
	}

	// With its context already done, run starts the routes and stops them.
	good := writeConfig(t, `direction = "both"`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out.Reset()
	errOut.Reset()
	if code := run(ctx, []string{"-c", good, "-log-format", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("run: exit %d, %s", code, errOut.String())
	}
	for _, want := range []string{`"mix":"100:uppercase"`, `"message":"vaurien started"`, `"message":"vaurien stopped"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, out.String())
		}
	}
}

func writeConfig(t *testing.T, option string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vaurien.hcl")
	src := `drain = "1s"
route "shout" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:1"
  behavior "uppercase" {
    percent = 100
    ` + option + `
  }
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
