package main

import (
	"bytes"
	"context"
	"fmt"
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

	"github.com/vaurien-go/vaurien/internal/testenv"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidatePrintsDiagnosticsWithPosition(t *testing.T) {
	cases := []struct {
		name, hcl, want string
	}{
		{"syntax", "route \"a\" {\n  listen = \n}\n", ":2:"},
		{"unknown attribute", "route \"a\" {\n  listen  = \"127.0.0.1:1\"\n  backend = \"127.0.0.1:2\"\n  bakend  = \"x\"\n}\n", ":4:3: error: Unsupported argument"},
		{"unknown behavior", "route \"a\" {\n  listen  = \"127.0.0.1:1\"\n  backend = \"127.0.0.1:2\"\n  behavior \"delya\" {\n    percent = 5\n  }\n}\n", "Did you mean \"delay\""},
		{"unknown protocol", "route \"a\" {\n  listen   = \"127.0.0.1:1\"\n  backend  = \"127.0.0.1:2\"\n  protocol = \"gopher\"\n}\n", ":4:"},
		{"wrong option type", "route \"a\" {\n  listen  = \"127.0.0.1:1\"\n  backend = \"127.0.0.1:2\"\n  behavior \"delay\" {\n    percent = 5\n    before  = \"soon\"\n  }\n}\n", ":6:"},
		{"percent over 100", "route \"a\" {\n  listen  = \"127.0.0.1:1\"\n  backend = \"127.0.0.1:2\"\n  behavior \"delay\" {\n    percent = 60\n  }\n  behavior \"error\" {\n    percent = 50\n  }\n}\n", "100"},
		{"duplicate route", "route \"a\" {\n  listen  = \"127.0.0.1:1\"\n  backend = \"127.0.0.1:2\"\n}\nroute \"a\" {\n  listen  = \"127.0.0.1:3\"\n  backend = \"127.0.0.1:2\"\n}\n", ":5:"},
		{"duplicate listen", "route \"a\" {\n  listen  = \"127.0.0.1:1\"\n  backend = \"127.0.0.1:2\"\n}\nroute \"b\" {\n  listen  = \"127.0.0.1:1\"\n  backend = \"127.0.0.1:2\"\n}\n", ":6:"},
		{"bad address", "route \"a\" {\n  listen  = \"nowhere\"\n  backend = \"127.0.0.1:2\"\n}\n", ":2:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, "bad.hcl", c.hcl)
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"validate", p}, &out, &errb); code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
			}
			if !strings.Contains(errb.String(), p) || !strings.Contains(errb.String(), c.want) {
				t.Fatalf("stderr does not name the file and %q:\n%s", c.want, errb.String())
			}
		})
	}
}

func TestValidateAcceptsTheDefaultConfig(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"validate", "../../vaurien.hcl"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}

// An experiment kept in its own file validates against the routes of the
// configuration it steers (--config before or after it, as experiment run
// takes it), with the same file:line:col diagnostics; alone it cannot.
func TestValidateChecksAnExperimentFileAgainstItsRoutes(t *testing.T) {
	const routes = "../../examples/compose/vaurien/vaurien.hcl"
	const exp = "../../examples/compose/experiment.hcl"
	for _, args := range [][]string{
		{"validate", "--config", routes, exp},
		{"validate", exp, "-c", routes},
		{"validate", "-c", routes, exp, routes},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d:\n%s", args, code, errb.String())
		}
		if want := routes + ": valid\n" + exp + ": valid\n"; out.String() != want {
			t.Errorf("%v: stdout %q, want %q", args, out.String(), want)
		}
	}

	cfg := writeFile(t, "vaurien.hcl", "route \"cache\" {\n  listen  = \"127.0.0.1:1\"\n  backend = \"127.0.0.1:2\"\n}\n")
	bad := writeFile(t, "bad.hcl", `experiment "x" {
  probe "app" {
    tcp {
      address = "127.0.0.1:2"
    }
  }
  step "s" {
    duration = "1s"
    route "cahce" {
      behavior "delay" {
        percent = 100
      }
    }
  }
}
`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"validate", "-c", cfg, bad}, bad + `:9:11: error: Unknown route: There is no route named "cahce". Did you mean "cache"?`},
		{[]string{"validate", bad}, bad + `:9:11: error: Unknown route: There is no route named "cahce": the configuration declares no routes.`},
		// The configuration is checked first, as any configuration.
		{[]string{"validate", "-c", bad, cfg}, bad + `:9:11: error: Unknown route: There is no route named "cahce": the configuration declares no routes.`},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tc.args, &out, &errb); code != 1 {
			t.Errorf("%v: exit %d, want 1:\n%s", tc.args, code, errb.String())
		}
		if !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: stderr does not say %q:\n%s", tc.args, tc.want, errb.String())
		}
	}
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"validate", "--nope", cfg}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "-nope") {
		t.Errorf("an unknown flag: exit %d, want 2:\n%s", code, errb.String())
	}
}

func TestBehaviorsAndProtocolsList(t *testing.T) {
	var out bytes.Buffer
	run(context.Background(), []string{"behaviors"}, &out, io.Discard)
	for _, want := range []string{"dummy", "delay", "sleep (duration, from 0s to 100000h0m0s, default \"1s\")", "error", "inject", "warmup", "blackout", "hang", "abort", "transient", "agitate"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("vaurien behaviors does not mention %q", want)
		}
	}
	out.Reset()
	run(context.Background(), []string{"protocols"}, &out, io.Discard)
	for _, want := range []string{"tcp", "mysql", "smtp"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("vaurien protocols does not mention %q", want)
		}
	}
}

func TestConvertINI(t *testing.T) {
	p := writeFile(t, "old.ini", "[vaurien]\nbackend = 127.0.0.1:80\nproxy = 127.0.0.1:8000\nprotocol = tcp\nbehavior = 20:delay\n\n[behavior:delay]\nsleep = 2\n")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"convert", p}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	hcl := writeFile(t, "new.hcl", out.String())
	if code := run(context.Background(), []string{"validate", hcl}, io.Discard, &errb); code != 0 {
		t.Fatalf("converted file does not validate: %s\n%s", errb.String(), out.String())
	}
	for _, want := range []string{"route \"default\"", "behavior \"delay\"", "percent"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("converted HCL lacks %q:\n%s", want, out.String())
		}
	}
}

// startCLI runs the CLI with args until the test ends and waits for addr.
func startCLI(t *testing.T, addr string, args ...string) {
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
			t.Errorf("vaurien exited %d: %s", code, errb.String())
		}
	})
	if err := testenv.WaitListening(addr, 5*time.Second); err != nil {
		t.Fatalf("vaurien does not listen on %s: %v\n%s", addr, err, errb.String())
	}
}

func TestOriginalFlagsDelayAboutHalfTheConnections(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer backend.Close()
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	startCLI(t, listen, "--proxy", listen, "--backend", backend.Listener.Addr().String(),
		"--behavior", "50:delay", "--behavior-delay-sleep", "0.2", "--log-level", "warn")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	delayed := 0
	const n = 40
	for i := 0; i < n; i++ {
		start := time.Now()
		resp, err := client.Get("http://" + listen + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if time.Since(start) >= 200*time.Millisecond {
			delayed++
		}
	}
	if delayed < n/5 || delayed > n*4/5 {
		t.Fatalf("%d of %d connections delayed by ≥200ms with --behavior 50:delay", delayed, n)
	}
}

func TestOneProcessThreeRoutesToRealBackends(t *testing.T) {
	redis := testenv.Redis(t)
	memcached := testenv.Memcached(t)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "web:"+r.URL.Path) }))
	defer web.Close()
	ports := [3]string{}
	for i := range ports {
		ports[i] = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	}
	cfg := fmt.Sprintf(`
admin {
  listen = "127.0.0.1:0"
}
log {
  level = "warn"
}
seed = 7
route "cache" {
  listen  = %q
  backend = %q
  behavior "delay" {
    percent = 30
    sleep   = "10ms"
  }
}
route "sessions" {
  listen  = %q
  backend = %q
  behavior "slow_open" {
    percent = 20
    delay   = "5ms"
  }
}
route "web" {
  listen  = %q
  backend = %q
  behavior "delay" {
    percent = 10
    sleep   = "20ms"
    before  = false
  }
}
`, ports[0], redis.Addr, ports[1], memcached.Addr, ports[2], web.Listener.Addr().String())
	p := writeFile(t, "three.hcl", cfg)
	startCLI(t, ports[2], "run", "-c", p)
	for _, a := range ports[:2] {
		testenv.WaitListening(a, 5*time.Second)
	}
	for i := 0; i < 10; i++ {
		// redis: SET then GET over RESP.
		key, val := fmt.Sprintf("k%d", i), strings.Repeat("v", 1000+i)
		want := fmt.Sprintf("+OK\r\n$%d\r\n%s\r\n", len(val), val)
		got := rawExchange(t, ports[0], fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key, len(val), val, len(key), key), want)
		if got != want {
			t.Fatalf("redis through vaurien: %q", got)
		}
		// memcached: set then get.
		want = fmt.Sprintf("STORED\r\nVALUE %s 0 %d\r\n%s\r\nEND\r\n", key, len(val), val)
		got = rawExchange(t, ports[1], fmt.Sprintf("set %s 0 0 %d\r\n%s\r\nget %s\r\n", key, len(val), val, key), want)
		if got != want {
			t.Fatalf("memcached through vaurien: %q", got)
		}
		// HTTP.
		resp, err := http.Get("http://" + ports[2] + "/p" + key)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "web:/p"+key {
			t.Fatalf("http through vaurien: %q", body)
		}
	}
}

// rawExchange sends req on a new connection and reads exactly len(want)
// bytes back.
func rawExchange(t *testing.T, addr, req, want string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	n, _ := io.ReadFull(c, got)
	return string(got[:n])
}

func TestReadmeExampleValidates(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```hcl\n")
	if !ok {
		t.Fatal("README has no hcl example")
	}
	example, _, _ := strings.Cut(rest, "```")
	p := writeFile(t, "readme.hcl", example)
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"validate", p}, io.Discard, &errb); code != 0 {
		t.Fatalf("the README's HCL example does not validate:\n%s", errb.String())
	}
}

// databaseRoutes is a file with a postgres and a mysql route using every
// protocol option; TestValidateDatabaseRoutes spoils one value at a time.
const databaseRoutes = `route "pg" {
  listen   = "127.0.0.1:16432"
  backend  = "127.0.0.1:5432"
  protocol = "postgres"
  protocol_options {
    tls           = "disable"
    error_code    = "deadlock"
    error_message = "could not serialize access"
  }
  behavior "error" {
    percent = 10
    code    = "40P01"
    match {
      command  = ["UPDATE", "delete"]
      sql      = ["*orders*"]
      database = ["shop"]
      user     = ["app"]
    }
  }
  behavior "delay" {
    percent = 5
    sleep   = "200ms"
    match {
      command = ["SELECT"]
    }
  }
}

route "my" {
  listen   = "127.0.0.1:13307"
  backend  = "127.0.0.1:3306"
  protocol = "mysql"
  protocol_options {
    error_code    = "lock_wait_timeout"
    sqlstate      = "HY000"
    error_message = "Lock wait timeout exceeded"
    tls           = "passthrough"
    keep_alive    = true
    reuse_socket  = false
  }
  behavior "error" {
    percent = 5
    code    = "1213"
    match {
      command = ["UPDATE"]
    }
  }
}
`

// TestValidateDatabaseRoutes: vaurien validate accepts postgres and mysql
// routes with their protocol options and faults matched on statements, and
// refuses a bad option value at its place in the file: an error code the
// protocol does not know at the protocol_options block, or at the value of
// an error behavior's code, a value outside an option's choices at the
// value.
func TestValidateDatabaseRoutes(t *testing.T) {
	p := writeFile(t, "db.hcl", databaseRoutes)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"validate", p}, &out, &errb); code != 0 || !strings.Contains(out.String(), "valid") {
		t.Fatalf("exit %d, want 0; stdout %q, stderr:\n%s", code, out.String(), errb.String())
	}
	for _, tt := range []struct {
		name, from, to, want string
	}{
		{"postgres error_code", `error_code    = "deadlock"`, `error_code    = "deadlok"`,
			`:5:3: error: Invalid protocol options: The postgres protocol of route "pg": option "error_code": `},
		{"postgres SQLSTATE", `error_code    = "deadlock"`, `error_code    = "40P0"`,
			`:5:3: error: Invalid protocol options: The postgres protocol of route "pg": option "error_code": `},
		{"mysql error_code", `error_code    = "lock_wait_timeout"`, `error_code    = "lock_wait"`,
			`:33:3: error: Invalid protocol options: The mysql protocol of route "my": option "error_code": "lock_wait" is neither a preset`},
		{"mysql error number", `error_code    = "lock_wait_timeout"`, `error_code    = "70000"`,
			`:33:3: error: Invalid protocol options: The mysql protocol of route "my": option "error_code": `},
		{"postgres behavior code", `code    = "40P01"`, `code    = "40P0"`,
			`:12:15: error: Invalid error code: The "error" behavior of route "pg": option "code": on a postgres route, error code "40P0" is neither a preset (admin_shutdown, deadlock, `},
		{"postgres behavior preset", `code    = "40P01"`, `code    = "dead_lock"`,
			`:12:15: error: Invalid error code: The "error" behavior of route "pg": option "code": on a postgres route, error code "dead_lock" is neither a preset`},
		{"mysql behavior code", `code    = "1213"`, `code    = "40P01"`,
			`:43:15: error: Invalid error code: The "error" behavior of route "my": option "code": on a mysql route, error code "40P01" is neither a preset (deadlock, `},
		{"postgres tls", `tls           = "disable"`, `tls           = "require"`,
			`:6:21: error: Invalid option value: The protocol "postgres" option "tls" does not accept this value`},
		{"mysql keep_alive", `keep_alive    = true`, `keep_alive    = "yes"`,
			`:38:21: error: Invalid option value: The protocol "mysql" option "keep_alive" takes a bool`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Count(databaseRoutes, tt.from) != 1 {
				t.Fatalf("%q is not once in the file", tt.from)
			}
			p := writeFile(t, "db.hcl", strings.Replace(databaseRoutes, tt.from, tt.to, 1))
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"validate", p}, &out, &errb); code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
			}
			if !strings.Contains(errb.String(), p+tt.want) {
				t.Fatalf("stderr does not give %q:\n%s", p+tt.want, errb.String())
			}
		})
	}
}
