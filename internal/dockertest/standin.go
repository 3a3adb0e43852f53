package dockertest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// StandInLabel is the label that marks an image built by BuildStandIn; its
// value is a fingerprint of what went into the image.
const StandInLabel = "io.github.vaurien-go.stand-in"

// A StandIn is an image that takes the place of an upstream image (same
// tag, same port, same default command) on machines that cannot pull it: an
// empty base holding a binary of the host, every shared library `ldd`
// lists for it, and the few files it needs.
type StandIn struct {
	Tag        string                 // the upstream image's name, e.g. "redis:7-alpine"
	Binaries   map[string]string      // path in the image -> host executable
	HostDirs   []string               // host directories copied as they are, when present
	Files      map[string]string      // path in the image -> content (mode 0644)
	Dirs       map[string]fs.FileMode // empty directories to create, with their mode
	User       string                 // USER, "" for root
	WorkDir    string
	Expose     []string
	StopSignal string
	Entrypoint []string
	Cmd        []string
}

// StandIns are the stand-ins of the upstream images that
// examples/compose uses (all but Grafana's, which has no Debian binary).
func StandIns() []StandIn { return []StandIn{Redis(), Memcached(), Nginx(), Prometheus()} }

// baseFiles are the files every stand-in gets: the name service sees only
// files, and root and nobody exist.
var baseFiles = map[string]string{
	"/etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
}

var baseDirs = map[string]fs.FileMode{
	"/tmp": fs.ModeSticky | 0o777,
}

// Redis stands in for redis:7-alpine: redis-server on port 6379, protected
// mode off (as the official image's entrypoint does when given no config
// file), data in /data, as user redis.
func Redis() StandIn {
	return StandIn{
		Tag:      "redis:7-alpine",
		Binaries: map[string]string{"/usr/local/bin/redis-server": "redis-server"},
		Files: map[string]string{
			"/etc/passwd": passwd("redis:x:999:1000:redis:/data:/sbin/nologin"),
			"/etc/group":  group("redis:x:1000:redis"),
		},
		Dirs:       map[string]fs.FileMode{"/data": 0o777},
		User:       "redis",
		WorkDir:    "/data",
		Expose:     []string{"6379"},
		Entrypoint: []string{"/usr/local/bin/redis-server"},
		Cmd:        []string{"--protected-mode", "no"},
	}
}

// Memcached stands in for memcached:1.6-alpine: memcached on every
// interface, port 11211, as user memcache; arguments given as the
// container's command are memcached's, as with the official image.
func Memcached() StandIn {
	return StandIn{
		Tag:      "memcached:1.6-alpine",
		Binaries: map[string]string{"/usr/local/bin/memcached": "memcached"},
		Files: map[string]string{
			"/etc/passwd": passwd("memcache:x:11211:11211:memcache:/home/memcache:/sbin/nologin"),
			"/etc/group":  group("memcache:x:11211:"),
		},
		User:       "memcache",
		Expose:     []string{"11211"},
		Entrypoint: []string{"/usr/local/bin/memcached"},
	}
}

// Nginx stands in for nginx:1.27-alpine: a welcome page on port 80, not
// daemonized, logs on the container's output, pid and temporary files
// under /tmp, stopped gracefully by SIGQUIT as the official image is.
func Nginx() StandIn {
	return StandIn{
		Tag:      "nginx:1.27-alpine",
		Binaries: map[string]string{"/usr/sbin/nginx": "nginx"},
		Files: map[string]string{
			"/etc/passwd":                      passwd("nginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin"),
			"/etc/group":                       group("nginx:x:101:nginx"),
			"/etc/nginx/nginx.conf":            nginxConf,
			"/usr/share/nginx/html/index.html": nginxIndex,
		},
		Expose:     []string{"80"},
		StopSignal: "SIGQUIT",
		Entrypoint: []string{"/usr/sbin/nginx", "-e", "stderr"},
		Cmd:        []string{"-g", "daemon off;"},
	}
}

const nginxConf = `user nginx;
worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr notice;

events {
  worker_connections 1024;
}

http {
  types {
    text/html html;
    text/plain txt;
  }
  default_type application/octet-stream;
  access_log /dev/stdout;
  client_body_temp_path /tmp/client_body;
  proxy_temp_path /tmp/proxy;
  fastcgi_temp_path /tmp/fastcgi;
  uwsgi_temp_path /tmp/uwsgi;
  scgi_temp_path /tmp/scgi;
  keepalive_timeout 65;

  server {
    listen 80;
    server_name localhost;
    root /usr/share/nginx/html;
    index index.html;
  }
}
`

const nginxIndex = `<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body>
<h1>Welcome to nginx!</h1>
<p>A stand-in for the nginx image, served by the host's nginx binary.</p>
</body>
</html>
`

// Prometheus stands in for prom/prometheus:v2.53.0: the official image's
// default command (config in /etc/prometheus/prometheus.yml, data in
// /prometheus), port 9090, as user nobody.
func Prometheus() StandIn {
	return StandIn{
		Tag:      "prom/prometheus:v2.53.0",
		Binaries: map[string]string{"/bin/prometheus": "prometheus"},
		HostDirs: []string{"/usr/share/prometheus/web"}, // Debian's build serves its UI from there
		Files: map[string]string{
			"/etc/passwd": passwd(),
			"/etc/group":  group(),
			"/etc/prometheus/prometheus.yml": `global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
`,
		},
		Dirs:       map[string]fs.FileMode{"/prometheus": 0o777},
		User:       "nobody",
		WorkDir:    "/prometheus",
		Expose:     []string{"9090"},
		Entrypoint: []string{"/bin/prometheus"},
		Cmd:        []string{"--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"},
	}
}

func passwd(extra ...string) string {
	lines := append([]string{"root:x:0:0:root:/root:/sbin/nologin", "nobody:x:65534:65534:nobody:/:/sbin/nologin"}, extra...)
	return strings.Join(lines, "\n") + "\n"
}

func group(extra ...string) string {
	lines := append([]string{"root:x:0:", "nogroup:x:65534:", "nobody:x:65534:"}, extra...)
	return strings.Join(lines, "\n") + "\n"
}

// BuildStandIn makes sure s.Tag names a usable image. A real image already
// there under that tag (one without StandInLabel) is kept; a stand-in built
// from the same inputs is kept; otherwise the stand-in is built. A missing
// host binary skips the test (or fails it under VAURIEN_REQUIRE_SERVERS=1).
func BuildStandIn(t testing.TB, s StandIn) {
	t.Helper()
	img := InspectImage(t, s.Tag)
	if img != nil && img.Config.Labels[StandInLabel] == "" {
		return // the real upstream image
	}
	ctx := t.TempDir()
	rootfs := filepath.Join(ctx, "rootfs")
	copied := map[string]string{} // image path -> host path
	for dst, name := range s.Binaries {
		src := lookPath(t, name)
		copied[dst] = src
		for _, lib := range sharedLibraries(t, src) {
			copied[lib] = lib
		}
	}
	for _, dir := range s.HostDirs {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				copied[p] = p
			}
			return nil
		})
	}
	dsts := make([]string, 0, len(copied))
	for dst := range copied {
		dsts = append(dsts, dst)
	}
	sort.Strings(dsts)

	dockerfile := s.dockerfile()
	sum := sha256.New()
	fmt.Fprintln(sum, dockerfile)
	for _, dst := range dsts {
		src := copied[dst]
		info, err := os.Stat(src) // follows symlinks: the image gets the file itself
		if err != nil {
			t.Fatalf("stand-in %s: %v", s.Tag, err)
		}
		fmt.Fprintln(sum, dst, src, info.Size(), info.ModTime().UnixNano())
	}
	files, dirs := s.allFiles(), s.allDirs()
	for _, p := range sortedKeys(files) {
		fmt.Fprintln(sum, p, files[p])
	}
	for _, p := range sortedKeys(dirs) {
		fmt.Fprintln(sum, p, dirs[p])
	}
	fingerprint := hex.EncodeToString(sum.Sum(nil))[:16]
	if img != nil && img.Config.Labels[StandInLabel] == fingerprint {
		return
	}

	for _, dst := range dsts {
		src := copied[dst]
		info, err := os.Stat(src)
		if err != nil {
			t.Fatalf("stand-in %s: %v", s.Tag, err)
		}
		CopyFile(t, src, filepath.Join(rootfs, dst), info.Mode().Perm())
	}
	for p, content := range files {
		WriteFile(t, filepath.Join(rootfs, p), []byte(content), 0o644)
	}
	for p, mode := range dirs {
		d := filepath.Join(rootfs, p)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("stand-in %s: %v", s.Tag, err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatalf("stand-in %s: %v", s.Tag, err)
		}
	}
	WriteFile(t, filepath.Join(ctx, "Dockerfile"), []byte(dockerfile+"LABEL "+StandInLabel+"="+fingerprint+"\n"), 0o644)
	Build(t, ctx, "Dockerfile", s.Tag)
}

func (s StandIn) allFiles() map[string]string {
	m := map[string]string{}
	for k, v := range baseFiles {
		m[k] = v
	}
	for k, v := range s.Files {
		m[k] = v
	}
	return m
}

func (s StandIn) allDirs() map[string]fs.FileMode {
	m := map[string]fs.FileMode{}
	for k, v := range baseDirs {
		m[k] = v
	}
	for k, v := range s.Dirs {
		m[k] = v
	}
	return m
}

func (s StandIn) dockerfile() string {
	var b strings.Builder
	b.WriteString("FROM scratch\nCOPY rootfs/ /\n")
	if s.User != "" {
		fmt.Fprintf(&b, "USER %s\n", s.User)
	}
	if s.WorkDir != "" {
		fmt.Fprintf(&b, "WORKDIR %s\n", s.WorkDir)
	}
	for _, p := range s.Expose {
		fmt.Fprintf(&b, "EXPOSE %s\n", p)
	}
	if s.StopSignal != "" {
		fmt.Fprintf(&b, "STOPSIGNAL %s\n", s.StopSignal)
	}
	if len(s.Entrypoint) > 0 {
		fmt.Fprintf(&b, "ENTRYPOINT %s\n", jsonArray(s.Entrypoint))
	}
	if len(s.Cmd) > 0 {
		fmt.Fprintf(&b, "CMD %s\n", jsonArray(s.Cmd))
	}
	return b.String()
}

func jsonArray(ss []string) string {
	b, _ := json.Marshal(ss)
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lookPath finds a host executable like testenv.LookPath (sbin included),
// resolved to the file itself.
func lookPath(t testing.TB, name string) string {
	t.Helper()
	p := testenv.LookPath(t, name)
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatalf("resolve %s: %v", p, err)
	}
	return real
}

// ldd lines are "name => /path (0x...)" or "/path (0x...)".
var lddPath = regexp.MustCompile(`(?m)^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$`)

// sharedLibraries lists the libraries ldd says bin loads, the dynamic
// loader among them, at the paths the loader will look for them.
func sharedLibraries(t testing.TB, bin string) []string {
	t.Helper()
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "not a dynamic executable") {
			return nil // static: nothing to bring along
		}
		t.Fatalf("ldd %s: %v\n%s", bin, err, out)
	}
	if strings.Contains(string(out), "not found") {
		t.Fatalf("ldd %s: a library is missing on this host:\n%s", bin, out)
	}
	var libs []string
	for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
		libs = append(libs, m[1])
	}
	return libs
}
