package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/metrics"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/http"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/memcache"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/redis"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// roleEnv makes the test binary act as one of the measured processes.
const roleEnv = "VAURIEN_BENCH_ROLE"

// Settings of a child process, passed through its environment.
const (
	metricsEnv   = "BENCH_METRICS"        // 1: the vaurien child gets the Prometheus observer
	backendEnv   = "BENCH_BACKEND"        // where a proxy child forwards to
	protocolEnv  = "BENCH_PROTOCOL"       // the vaurien route's protocol (default tcp)
	mixEnv       = "BENCH_MIX"            // the vaurien route's mix, as "10:delay/sleep=1ms,5:error"
	cpuProfEnv   = "BENCH_CPUPROFILE"     // write a CPU profile of the child to this path
	allocProfEnv = "BENCH_ALLOCPROFILE"   // write a heap profile (with alloc_space) at exit
	mutexProfEnv = "BENCH_MUTEXPROFILE"   // write a mutex contention profile at exit
	blockProfEnv = "BENCH_BLOCKPROFILE"   // write a blocking profile at exit
	memRateEnv   = "BENCH_MEMPROFILERATE" // runtime.MemProfileRate for the allocation profile (1: every allocation)
)

func TestMain(m *testing.M) {
	role := os.Getenv(roleEnv)
	if role == "" {
		goleak.VerifyTestMain(testenv.WithSkipSummary(m))
		return
	}
	runChild(role)
}

// runChild serves one role until SIGTERM or SIGINT, which flush the
// profiles. SIGUSR1 prints the allocation counters ("STATS mallocs bytes")
// so that the parent can charge allocations to the work it just did.
func runChild(role string) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	stop := startProfiles()
	var addr string
	switch role {
	case "yardstick":
		addr = serveYardstick(os.Getenv(backendEnv))
	case "vaurien":
		addr = serveVaurien(os.Getenv(backendEnv), os.Getenv(protocolEnv), os.Getenv(mixEnv))
	case "vaurien-tls":
		addr = serveVaurienTLS(os.Getenv(backendEnv))
	case "httpd":
		addr = serveHTTP()
	default:
		fmt.Fprintf(os.Stderr, "unknown %s %q\n", roleEnv, role)
		os.Exit(2)
	}
	fmt.Println("LISTEN", addr)
	for sig := range sigs {
		if sig == syscall.SIGUSR1 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Printf("STATS %d %d\n", ms.Mallocs, ms.TotalAlloc)
			continue
		}
		stop()
		os.Exit(0)
	}
}

// startProfiles turns on the profiles asked for in the environment and
// returns the function that writes them.
func startProfiles() (stop func()) {
	if rate, err := strconv.Atoi(os.Getenv(memRateEnv)); err == nil && rate > 0 {
		runtime.MemProfileRate = rate
	}
	var stops []func()
	if path := os.Getenv(cpuProfEnv); path != "" {
		f, err := os.Create(path)
		if err != nil {
			panic(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			panic(err)
		}
		stops = append(stops, func() { pprof.StopCPUProfile(); f.Close() })
	}
	for _, p := range []struct{ env, name string }{{allocProfEnv, "allocs"}, {mutexProfEnv, "mutex"}, {blockProfEnv, "block"}} {
		path := os.Getenv(p.env)
		if path == "" {
			continue
		}
		switch p.name {
		case "mutex":
			runtime.SetMutexProfileFraction(5)
		case "block":
			runtime.SetBlockProfileRate(int(10 * time.Microsecond))
		}
		stops = append(stops, func() {
			f, err := os.Create(path)
			if err != nil {
				panic(err)
			}
			pprof.Lookup(p.name).WriteTo(f, 0)
			f.Close()
		})
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

func listenLocal() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	return ln
}

// serveYardstick is the minimal proxy: io.Copy both ways between the
// *net.TCPConns, so Linux splices, and nothing else.
func serveYardstick(backend string) string {
	ln := listenLocal()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer b.Close()
				done := make(chan struct{})
				go func() {
					io.Copy(b, c)
					b.(*net.TCPConn).CloseWrite()
					close(done)
				}()
				io.Copy(c, b)
				c.(*net.TCPConn).CloseWrite()
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// serveVaurien runs one vaurien route of the given protocol (tcp when
// empty) through the real engine, with the mix given in the original's
// --behavior syntax extended with options ("10:delay/sleep=1ms;before=true"),
// and the metrics observer when BENCH_METRICS=1.
func serveVaurien(backend, protocol, mixSpec string) string {
	mix, err := parseMix(mixSpec)
	if err != nil {
		panic(err)
	}
	var obs proxy.Observer
	if os.Getenv(metricsEnv) == "1" {
		obs = metrics.New(prometheus.NewRegistry())
	}
	if protocol == "" {
		protocol = "tcp"
	}
	s := proxy.New(obs, time.Second)
	if err := s.Apply([]proxy.RouteConfig{{Name: "bench", Listen: "127.0.0.1:0", Backend: backend, Protocol: protocol, Mix: mix}}); err != nil {
		panic(err)
	}
	return s.Route("bench").Addr()
}

// parseMix builds a mix from "PERCENT:NAME/opt=value;opt=value,...".
func parseMix(spec string) (*chaos.Mix, error) {
	var entries []chaos.Entry
	if spec != "" {
		shares, err := chaos.ParseShares(spec)
		if err != nil {
			return nil, err
		}
		for _, s := range shares {
			name, opts, _ := strings.Cut(s.Name, "/")
			o := map[string]any{}
			for _, kv := range strings.Split(opts, ";") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					o[k] = v
				}
			}
			b, _, err := chaos.NewBehavior(name, o)
			if err != nil {
				return nil, err
			}
			entries = append(entries, chaos.Entry{Name: name, Percent: s.Percent, Behavior: b})
		}
	}
	return chaos.NewMix(entries)
}

// serveHTTP is the HTTP backend used when nginx is not installed: 1 KiB
// and 64 KiB bodies.
func serveHTTP() string {
	ln := listenLocal()
	small, big := body(1<<10), body(64<<10)
	mux := http.NewServeMux()
	mux.HandleFunc("/1k", func(w http.ResponseWriter, r *http.Request) { w.Write(small) })
	mux.HandleFunc("/64k", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
	go http.Serve(ln, mux)
	return ln.Addr().String()
}

func body(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// child is a process under measurement: a role of this test binary, or a
// foreign server (Toxiproxy) whose counters come from /proc only.
type child struct {
	name  string
	cmd   *exec.Cmd
	addr  string
	lines chan string // the child's stdout after LISTEN; nil for foreign servers
}

// startChild runs this test binary as a measured process in role, in front
// of backend, and returns once it says where it listens.
func startChild(b testing.TB, role, backend string, env ...string) *child {
	b.Helper()
	return startChildOf(b, os.Args[0], role, backend, env...)
}

// startChildOf starts the child from another build's bench test binary.
func startChildOf(b testing.TB, bin, role, backend string, env ...string) *child {
	b.Helper()
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, roleEnv+"="+role, backendEnv+"="+backend)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &child{name: role, cmd: cmd, lines: make(chan string, 16)}
	b.Cleanup(c.stop)
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		b.Fatalf("%s child said nothing", role)
	}
	addr, ok := strings.CutPrefix(sc.Text(), "LISTEN ")
	if !ok {
		b.Fatalf("%s child said %q", role, sc.Text())
	}
	c.addr = addr
	go func() {
		defer close(c.lines)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // nobody asked: drop rather than block the child
			}
		}
	}()
	return c
}

// stop asks the child to exit (so that it writes its profiles) and kills
// it if it does not.
func (c *child) stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		c.cmd.Wait()
		close(done)
	}()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.cmd.Process.Kill()
		<-done
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// cpu is the child's user+system CPU time so far.
func (c *child) cpu(b testing.TB) time.Duration {
	return processCPU(b, c.pid())
}

// allocs returns the child's allocation counters (objects, bytes); ok is
// false for foreign servers.
func (c *child) allocs(b testing.TB) (objects, bytes uint64, ok bool) {
	if c.lines == nil {
		return 0, 0, false
	}
	for len(c.lines) > 0 { // stale lines
		<-c.lines
	}
	c.cmd.Process.Signal(syscall.SIGUSR1)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case line, open := <-c.lines:
			if !open {
				b.Fatalf("%s child exited", c.name)
			}
			if _, err := fmt.Sscanf(line, "STATS %d %d", &objects, &bytes); err == nil {
				return objects, bytes, true
			}
		case <-t.C:
			b.Fatalf("%s child did not report its allocations", c.name)
		}
	}
}

// usage is what a process has consumed so far.
type usage struct {
	cpu      time.Duration
	syscalls int64 // read and write system calls (syscr + syscw)
	objects  uint64
	bytes    uint64
	hasAlloc bool
}

func (c *child) usage(b testing.TB) usage {
	var u usage
	u.objects, u.bytes, u.hasAlloc = c.allocs(b)
	u.cpu = c.cpu(b)
	u.syscalls = processSyscalls(c.pid())
	return u
}

// processCPU reads utime+stime of a process from /proc/PID/stat.
func processCPU(b testing.TB, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	ut, st := statTimes(string(data))
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

// statTimes returns utime and stime (in clock ticks) from a /proc/PID/stat
// line; the command name, in parentheses, may hold spaces.
func statTimes(stat string) (utime, stime int64) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 || i+2 > len(stat) {
		return 0, 0
	}
	fields := strings.Fields(stat[i+2:])
	if len(fields) < 13 {
		return 0, 0
	}
	utime, _ = strconv.ParseInt(fields[11], 10, 64)
	stime, _ = strconv.ParseInt(fields[12], 10, 64)
	return utime, stime
}

// processSyscalls counts the read- and write-family system calls of a
// process (/proc/PID/io syscr + syscw); -1 when unreadable. splice,
// epoll_wait and futex are not in it.
func processSyscalls(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return -1
	}
	return ioSyscalls(string(data))
}

func ioSyscalls(io string) int64 {
	var n int64
	for _, line := range strings.Split(io, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "syscr" && k != "syscw") {
			continue
		}
		x, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return -1
		}
		n += x
	}
	return n
}

// syscallCounter counts the system calls a process makes while it runs,
// with perf's tracepoints (raw_syscalls:sys_enter for all of them,
// syscalls:sys_enter_NAME for one): /proc/PID/io misses splice, ioctl,
// recvfrom and epoll, which are most of a proxy's calls. perf opens its
// counters on every thread with inheritance, so threads started later are
// counted too.
type syscallCounter struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// allSyscalls is the tracepoint that fires on every system call.
const allSyscalls = "raw_syscalls:sys_enter"

// perfUsable reports whether perf can count a process's system calls here
// (it needs perf installed and tracepoint access), and why not.
func perfUsable() (bool, string) {
	if _, err := exec.LookPath("perf"); err != nil {
		return false, "perf is not installed"
	}
	out, err := exec.Command("perf", "stat", "-x", ",", "-e", allSyscalls, "--", "true").CombinedOutput()
	if err != nil {
		return false, "perf cannot count system calls: " + strings.TrimSpace(string(out))
	}
	return true, ""
}

// countSyscalls starts counting pid's system calls on the given
// tracepoints and returns once perf is attached to every thread of it.
func countSyscalls(b testing.TB, pid int, events ...string) *syscallCounter {
	args := []string{"stat", "-x", ","}
	for _, e := range events {
		args = append(args, "-e", e)
	}
	s := &syscallCounter{cmd: exec.Command("perf", append(args, "-p", strconv.Itoa(pid))...)}
	s.cmd.Stderr = &s.out
	if err := s.cmd.Start(); err != nil {
		b.Fatalf("start perf: %v", err)
	}
	threads := func() int {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		return len(ents)
	}
	if !waitFor(10*time.Second, func() bool { return perfEvents(s.cmd.Process.Pid) >= len(events)*threads() }) {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		b.Fatalf("perf did not attach to process %d: %s", pid, s.out.String())
	}
	return s
}

// perfEvents counts the perf counters a process has open.
func perfEvents(pid int) int {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if l, _ := os.Readlink(dir + "/" + e.Name()); l == "anon_inode:[perf_event]" {
			n++
		}
	}
	return n
}

// stop ends the count and returns it by tracepoint.
func (s *syscallCounter) stop(b testing.TB) map[string]int64 {
	s.cmd.Process.Signal(syscall.SIGINT)
	s.cmd.Wait()
	counts, err := perfCounts(s.out.String())
	if err != nil {
		b.Fatalf("perf: %v", err)
	}
	return counts
}

// perfCounts reads the counts from perf stat -x, output.
func perfCounts(out string) (map[string]int64, error) {
	counts := map[string]int64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 || !strings.Contains(f[2], ":") {
			continue
		}
		var n int64
		if !strings.HasPrefix(f[0], "<not") {
			var err error
			if n, err = strconv.ParseInt(f[0], 10, 64); err != nil {
				return nil, fmt.Errorf("count of %s: %w", f[2], err)
			}
		}
		counts[f[2]] = n
	}
	if len(counts) == 0 {
		return nil, fmt.Errorf("no count in %q", out)
	}
	return counts, nil
}

// processRSS is a process's resident set in bytes.
func processRSS(b testing.TB, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatalf("read the status of process %d: %v", pid, err)
	}
	return statusRSS(string(data))
}

func statusRSS(status string) int64 {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// processFDs counts a process's open file descriptors.
func processFDs(b testing.TB, pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		b.Fatalf("list the descriptors of process %d: %v", pid, err)
	}
	return len(ents)
}
