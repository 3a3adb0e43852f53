package httpproto

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// nginx is a throwaway nginx serving static files from Root, PUT uploads
// under /dav/ and gzip (chunked) responses under /gz/.
type nginx struct {
	Addr string
	Root string
}

func startNginx(t *testing.T) *nginx {
	t.Helper()
	bin := testenv.LookPath(t, "nginx")
	prefix := t.TempDir()
	root := filepath.Join(prefix, "www")
	for _, d := range []string{root, filepath.Join(root, "dav"), filepath.Join(root, "gz"), filepath.Join(prefix, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
	conf := fmt.Sprintf(`
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	keepalive_requests 100000;
	server {
		listen %[2]s;
		root %[3]s;
		client_max_body_size 100m;
		location /dav/ { dav_methods PUT DELETE; create_full_put_path on; }
		location /gz/ { gzip on; gzip_types *; gzip_min_length 0; }
	}
}
`, prefix, addr, root)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", confPath, "-p", prefix, "-g", "daemon off; master_process off;")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if err := testenv.WaitListening(addr, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
		t.Fatalf("nginx did not start: %v\n%s\n%s", err, out.String(), log)
	}
	return &nginx{Addr: addr, Root: root}
}

// curl runs curl with args and returns its output and diagnostics.
func curl(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr []byte) {
	t.Helper()
	bin := testenv.LookPath(t, "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-sS", "--noproxy", "*"}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, errOut.String())
	}
	return out.Bytes(), errOut.Bytes()
}

func TestNginx(t *testing.T) {
	ng := startNginx(t)
	p := startProxy(t, ng.Addr, proxyConfig{})
	base := "http://" + p.Addr
	const size = 10 << 20
	big := payload(11, size)
	if err := os.WriteFile(filepath.Join(ng.Root, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	text := bytes.Repeat([]byte("all work and no play makes jack a dull boy\n"), 20000)
	if err := os.WriteFile(filepath.Join(ng.Root, "gz", "text.txt"), text, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("download", func(t *testing.T) {
		out, _ := curl(t, nil, base+"/big.bin")
		if sum(out) != sum(big) {
			t.Errorf("curl download: %d bytes, sha differs", len(out))
		}
		c := client()
		defer c.CloseIdleConnections()
		_, body := get(t, c, base+"/big.bin")
		if sum(body) != sum(big) {
			t.Errorf("net/http download: %d bytes, sha differs", len(body))
		}
	})

	t.Run("chunked upload", func(t *testing.T) {
		// curl sends stdin chunked, as its length is unknown.
		_, diag := curl(t, bytes.NewReader(big), "-v", "-T", "-", base+"/dav/up.bin")
		if !bytes.Contains(diag, []byte("Transfer-Encoding: chunked")) {
			t.Errorf("curl did not send chunks:\n%s", diag)
		}
		got, err := os.ReadFile(filepath.Join(ng.Root, "dav", "up.bin"))
		if err != nil || sum(got) != sum(big) {
			t.Fatalf("nginx stored %d bytes (%v), sha differs", len(got), err)
		}
		out, _ := curl(t, nil, base+"/dav/up.bin")
		if sum(out) != sum(big) {
			t.Errorf("download of the upload differs")
		}
	})

	t.Run("length upload", func(t *testing.T) {
		req, _ := http.NewRequest("PUT", base+"/dav/put.bin", bytes.NewReader(big))
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got, err := os.ReadFile(filepath.Join(ng.Root, "dav", "put.bin"))
		if resp.StatusCode/100 != 2 || err != nil || sum(got) != sum(big) {
			t.Fatalf("PUT: %d, stored %d bytes (%v)", resp.StatusCode, len(got), err)
		}
	})

	t.Run("100-continue", func(t *testing.T) {
		small := payload(12, 4000)
		path := filepath.Join(t.TempDir(), "small.bin")
		os.WriteFile(path, small, 0o644)
		start := time.Now()
		_, diag := curl(t, nil, "-v", "-H", "Expect: 100-continue", "--expect100-timeout", "20",
			"-T", path, base+"/dav/continue.bin")
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("took %v: curl waited out its expect timeout", took)
		}
		if !bytes.Contains(diag, []byte("HTTP/1.1 100 Continue")) {
			t.Errorf("no 100 Continue relayed:\n%s", diag)
		}
		got, _ := os.ReadFile(filepath.Join(ng.Root, "dav", "continue.bin"))
		if !bytes.Equal(got, small) {
			t.Errorf("stored %d bytes", len(got))
		}
	})

	t.Run("head", func(t *testing.T) {
		out, _ := curl(t, nil, "-I", base+"/big.bin")
		if !bytes.Contains(out, []byte("Content-Length: "+strconv.Itoa(size))) {
			t.Errorf("HEAD:\n%s", out)
		}
	})

	t.Run("gzip chunked byte exact", func(t *testing.T) {
		direct, _ := curl(t, nil, "--raw", "-H", "Accept-Encoding: gzip", "-D", "-", "http://"+ng.Addr+"/gz/text.txt")
		proxied, _ := curl(t, nil, "--raw", "-H", "Accept-Encoding: gzip", "-D", "-", base+"/gz/text.txt")
		if !bytes.Contains(proxied, []byte("Transfer-Encoding: chunked")) {
			t.Errorf("not chunked:\n%.300s", proxied)
		}
		strip := func(b []byte) []byte { // drop the Date line, the only one that may differ
			var out [][]byte
			for _, l := range bytes.SplitAfter(b, []byte("\n")) {
				if !bytes.HasPrefix(l, []byte("Date:")) {
					out = append(out, l)
				}
			}
			return bytes.Join(out, nil)
		}
		if !bytes.Equal(strip(direct), strip(proxied)) {
			t.Errorf("raw chunked response differs: %d bytes direct, %d proxied", len(direct), len(proxied))
		}
	})

	t.Run("keep-alive", func(t *testing.T) {
		_, diag := curl(t, nil, "-v", "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null",
			base+"/gz/text.txt", base+"/big.bin", base+"/missing")
		if n := bytes.Count(diag, []byte("Re-using existing connection")); n != 2 {
			t.Errorf("curl reused its connection %d times, want 2:\n%s", n, diag)
		}
	})

	t.Run("pipelining", func(t *testing.T) {
		var reqs strings.Builder
		var methods []string
		for i := 0; i < 10; i++ {
			reqs.WriteString("GET /gz/text.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
			reqs.WriteString("HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
			reqs.WriteString("GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
			methods = append(methods, "GET", "HEAD", "GET")
		}
		resps, bodies := rawExchange(t, p.Addr, reqs.String(), methods...)
		for i, r := range resps {
			want := []int{200, 200, 404}[i%3]
			if r.StatusCode != want || (i%3 == 1 && (len(bodies[i]) != 0 || r.ContentLength != size)) {
				t.Errorf("response %d: %d, %d bytes", i, r.StatusCode, len(bodies[i]))
			}
		}
	})

	t.Run("error fault", func(t *testing.T) {
		e := chaos.Effect{Fault: chaos.FaultError, Error: chaos.ErrorSpec{Status: 503, Headers: map[string]string{"Retry-After": "5"}}}
		pe := startProxy(t, ng.Addr, proxyConfig{entries: []chaos.Entry{always(e, "")}})
		out, _ := curl(t, nil, "-D", "-", "http://"+pe.Addr+"/big.bin")
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "5" || !bytes.Contains(body, []byte("Service Unavailable")) {
			t.Errorf("curl got:\n%s", out)
		}
	})
	noErrors(t, p)
}

func TestCurlGoBackend(t *testing.T) {
	b := startGoBackend(t)
	p := startProxy(t, b.Addr(), proxyConfig{})
	data := payload(13, 300000)
	path := filepath.Join(t.TempDir(), "data.bin")
	os.WriteFile(path, data, 0o644)
	start := time.Now()
	out, diag := curl(t, nil, "-v", "-H", "Expect: 100-continue", "--expect100-timeout", "20",
		"--data-binary", "@"+path, "http://"+p.Addr+"/sum")
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v: curl waited out its expect timeout", took)
	}
	if !bytes.Contains(diag, []byte("HTTP/1.1 100 Continue")) {
		t.Errorf("no 100 Continue relayed:\n%s", diag)
	}
	if want := fmt.Sprintf("%d %s", len(data), sum(data)); string(out) != want {
		t.Errorf("backend got %q, want %q", out, want)
	}
	out, _ = curl(t, nil, "http://"+p.Addr+"/bytes?n=5000000&seed=4&chunked=1")
	if sum(out) != sum(payload(4, 5000000)) {
		t.Errorf("chunked download differs")
	}
	out, _ = curl(t, nil, "-0", "http://"+p.Addr+"/close10?n=100000")
	if !bytes.Equal(out, payload(7, 100000)) {
		t.Errorf("close-delimited download differs: %d bytes", len(out))
	}
	noErrors(t, p)
}
