package bench

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// echoServer echoes every connection with a buffer of its own (no splice,
// so that a connection costs this process one descriptor) and counts the
// connections it holds.
type echoServer struct {
	addr   string
	active atomic.Int64
}

func startEcho(b testing.TB) *echoServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	e := &echoServer{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.active.Add(1)
			go func() {
				defer e.active.Add(-1)
				defer c.Close()
				buf := make([]byte, 16<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						c.(*net.TCPConn).CloseWrite()
						return
					}
				}
			}()
		}
	})
	return e
}

// waitFor polls cond every 20 ms until it holds or within has passed.
func waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
		}
	}
	return true
}

// httpBackend serves /1k and /64k: nginx (one worker) when it is
// installed, else a net/http child process. It returns the address and a
// name for the report.
func httpBackend(b testing.TB) (addr, name string) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr == nil {
			bin, err = "/usr/sbin/nginx", nil
		}
	}
	if err != nil {
		c := startChild(b, "httpd", "")
		return c.addr, "net/http (nginx not installed)"
	}
	prefix := b.TempDir()
	root := filepath.Join(prefix, "www")
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		b.Fatal(err)
	}
	for name, n := range map[string]int{"1k": 1 << 10, "64k": 64 << 10} {
		if err := os.WriteFile(filepath.Join(root, name), body(n), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(b)))
	conf := fmt.Sprintf(`
worker_processes 1;
worker_rlimit_nofile 16384;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 8192; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	keepalive_requests 10000000;
	keepalive_timeout 600s;
	server {
		listen %[2]s;
		root %[3]s;
	}
}
`, prefix, addr, root)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-e", filepath.Join(prefix, "error.log"), "-c", confPath, "-p", prefix, "-g", "daemon off; master_process off;")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatalf("start nginx: %v", err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := testenv.WaitListening(addr, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
		b.Fatalf("nginx did not start: %v\n%s\n%s", err, out.String(), log)
	}
	return addr, "nginx " + toolVersion(bin, "-v")
}

// toxiproxy is a toxiproxy-server process, driven through its HTTP API.
type toxiproxy struct {
	proc *child
	api  string
	n    int
}

// startToxiproxy runs the server named by TOXIPROXY_SERVER, or returns nil
// when it is not set. Its per-connection info logs are turned down to
// errors (TOXIPROXY_LOG_LEVEL overrides) so that what is measured is its
// data path, as for vaurien, whose children log nothing. (Toxiproxy logs
// every accepted connection at info and every reset at warn.)
func startToxiproxy(b testing.TB, bin string) *toxiproxy {
	if bin == "" {
		return nil
	}
	port := testenv.FreePort(b)
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "LOG_LEVEL="+envString("TOXIPROXY_LOG_LEVEL", "error"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start toxiproxy: %v", err)
	}
	t := &toxiproxy{proc: &child{name: "toxiproxy", cmd: cmd}, api: "http://127.0.0.1:" + strconv.Itoa(port)}
	b.Cleanup(t.proc.stop)
	if err := testenv.WaitListening("127.0.0.1:"+strconv.Itoa(port), 10*time.Second); err != nil {
		b.Fatalf("toxiproxy did not start: %v", err)
	}
	return t
}

// proxy creates a Toxiproxy proxy to upstream and returns where it listens.
func (t *toxiproxy) proxy(b testing.TB, upstream string) string {
	t.n++
	req, _ := json.Marshal(map[string]any{
		"name": "bench" + strconv.Itoa(t.n), "listen": "127.0.0.1:0", "upstream": upstream, "enabled": true,
	})
	// No kept-alive connection: its goroutines would outlive the benchmark.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Post(t.api+"/proxies", "application/json", bytes.NewReader(req))
	if err != nil {
		b.Fatalf("create a toxiproxy proxy: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("create a toxiproxy proxy: %s: %s", resp.Status, data)
	}
	var p struct {
		Listen string `json:"listen"`
	}
	if err := json.Unmarshal(data, &p); err != nil || strings.HasSuffix(p.Listen, ":0") {
		b.Fatalf("create a toxiproxy proxy: answer %s: %v", data, err)
	}
	return p.Listen
}

// toxiproxyVersion is the module version the binary was built from
// (go install leaves -version at "git").
func toxiproxyVersion(bin string) string {
	if info, err := buildinfo.ReadFile(bin); err == nil && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Path + " " + info.Main.Version + ", built with " + info.GoVersion
	}
	return toolVersion(bin, "-version")
}

// toolVersion runs a tool's version flag and returns the first line it
// prints, or "" when it cannot.
func toolVersion(bin string, args ...string) string {
	out, _ := exec.Command(bin, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}
