package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// BenchmarkProfile profiles the vaurien child on the paths that matter:
// the tcp stream, the tcp route and the redis route under redis-benchmark
// (with and without pipelining), the http route under wrk, the postgres
// route (and the tcp one) under pgbench in simple and prepared mode, connection
// churn on the tcp route and the memcache route. Each case runs three
// times on a fresh child, so that no measurement perturbs another: with the
// CPU profiler alone (BENCH_CPUPROFILE), with every allocation profiled
// (BENCH_MEMPROFILERATE=1) and the mutex and block profiles, and under
// `perf stat` counting each kind of system call (skipped without perf).
// Profiles, `go tool pprof -top` listings and per-unit summaries go to
// BENCH_PROFILE_DIR (a new temporary directory by default, printed).
func BenchmarkProfile(b *testing.B) {
	cfg := loadConfig()
	dir := os.Getenv("BENCH_PROFILE_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "vaurien-profiles-"); err != nil {
			b.Fatal(err)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("profiles in %s\n", dir)
	perf, _ := perfUsable()
	p := profiler{dir: dir, perf: perf}

	b.Run("tcp-stream", func(b *testing.B) {
		backend := sink(b)
		p.run(b, "tcp-stream", backend, "tcp", "", "MB", func(addr string) float64 {
			send(b, addr, cfg.streamBytes, 1)
			return float64(cfg.streamBytes) / 1e6
		})
	})
	redis := func(name, protocol string, pipeline int) {
		b.Run(name, func(b *testing.B) {
			tool := testenv.LookPath(b, "redis-benchmark")
			srv := testenv.Redis(b)
			// Pipelines are an order of magnitude faster: ten times the
			// requests give the profiler as many samples.
			n := cfg.redisRequests
			if pipeline > 1 {
				n *= 10
			}
			p.run(b, name, srv.Addr, protocol, "", "req", func(addr string) float64 {
				host, port := hostPort(addr)
				args := []string{"-h", host, "-p", port, "-c", "50", "-n", strconv.Itoa(n), "-t", "set", "-q"}
				if pipeline > 1 {
					args = append(args, "-P", strconv.Itoa(pipeline))
				}
				if out, err := exec.Command(tool, args...).CombinedOutput(); err != nil {
					b.Fatalf("redis-benchmark: %v\n%s", err, out)
				}
				return float64(n)
			})
		})
	}
	redis("tcp-redis", "tcp", 1)
	redis("redis", "redis", 1)
	redis("redis-P16", "redis", 16)
	b.Run("http", func(b *testing.B) {
		tool := testenv.LookPath(b, "wrk")
		backend, _ := httpBackend(b)
		p.run(b, "http", backend, "http", "", "req", func(addr string) float64 {
			out, err := exec.Command(tool, "-c", "64", "-t", "2", "-d", cfg.wrkDuration.String(), "http://"+addr+"/1k").CombinedOutput()
			if err != nil {
				b.Fatalf("wrk: %v\n%s", err, out)
			}
			w, err := parseWrk(string(out))
			if err != nil {
				b.Fatal(err)
			}
			return w.requests
		})
	})
	pgbenchCase := func(name, protocol, mode string) {
		b.Run(name, func(b *testing.B) {
			tool := testenv.LookPath(b, "pgbench")
			srv := testenv.Postgres(b)
			pgbench(b, tool, srv.Addr, "-i", "-q", "-s", "10")
			p.run(b, name, srv.Addr, protocol, "", "tx", func(addr string) float64 {
				out := pgbench(b, tool, addr, "-c", "8", "-j", "2", "-T", strconv.Itoa(int(cfg.pgbenchDuration.Seconds())), "-M", mode)
				r, err := parsePgbench(out)
				if err != nil {
					b.Fatalf("pgbench: %v\n%s", err, out)
				}
				return float64(r.transactions)
			})
		})
	}
	pgbenchCase("tcp-pgbench", "tcp", "simple")
	pgbenchCase("pgbench", "postgres", "simple")
	pgbenchCase("pgbench-prepared", "postgres", "prepared")
	b.Run("churn", func(b *testing.B) {
		echo := startEcho(b)
		p.run(b, "churn", echo.addr, "tcp", "", "conn", func(addr string) float64 {
			n, _, err := churn(addr, 4, cfg.duration)
			if err != nil {
				b.Fatal(err)
			}
			return float64(n)
		})
	})
	b.Run("memcache", func(b *testing.B) {
		srv := testenv.Memcached(b)
		p.run(b, "memcache", srv.Addr, "memcache", "", "req", func(addr string) float64 {
			n, _, err := memcacheLoad(addr, 50, 100, cfg.duration)
			if err != nil {
				b.Fatal(err)
			}
			return float64(n)
		})
	})
}

type profiler struct {
	dir  string
	perf bool
}

// run profiles one case in three passes, each on a fresh child: the CPU
// profile alone; the allocation profile with every allocation sampled,
// with the mutex and block profiles (all of which would distort the CPU
// profile: the block profiler times every channel wait); the count of each
// kind of system call. It writes NAME.cpu.pprof, NAME.mutex.pprof, NAME.block.pprof,
// NAME.allocs.pprof, NAME.cpu.top.txt and NAME.txt.
func (p profiler) run(b *testing.B, name, backend, protocol, mix, unit string, work func(addr string) float64) {
	path := func(suffix string) string { return filepath.Join(p.dir, name+"."+suffix) }
	route := []string{protocolEnv + "=" + protocol, mixEnv + "=" + mix}
	pass := func(env ...string) (*child, usage, usage, float64, time.Duration) {
		c := startChild(b, "vaurien", backend, append(route, env...)...)
		before := c.usage(b)
		start := time.Now()
		units := work(c.addr)
		took := time.Since(start)
		after := c.usage(b)
		c.stop()
		return c, before, after, units, took
	}
	var sb strings.Builder
	_, before, after, units, took := pass(cpuProfEnv + "=" + path("cpu.pprof"))
	fmt.Fprintf(&sb, "%s: %s route, %.0f %s in %v (%.0f %s/s)\n", name, protocol, units, unit, took.Round(time.Millisecond), units/took.Seconds(), unit)
	fmt.Fprintf(&sb, "CPU pass: %.2f µs/%s\n", float64((after.cpu-before.cpu).Nanoseconds())/1e3/units, unit)
	_, before, after, units, _ = pass(allocProfEnv+"="+path("allocs.pprof"), memRateEnv+"=1",
		mutexProfEnv+"="+path("mutex.pprof"), blockProfEnv+"="+path("block.pprof"))
	fmt.Fprintf(&sb, "allocation pass: %.2f allocs/%s, %.0f B/%s\n",
		float64(after.objects-before.objects)/units, unit, float64(after.bytes-before.bytes)/units, unit)

	if p.perf {
		c := startChild(b, "vaurien", backend, route...)
		sc := countSyscalls(b, c.pid(), syscallEvents()...)
		units := work(c.addr)
		counts := sc.stop(b)
		c.stop()
		total := counts[allSyscalls]
		delete(counts, allSyscalls)
		calls := map[string]int64{}
		other := total
		for e, n := range counts {
			calls[strings.TrimPrefix(e, "syscalls:sys_enter_")] = n
			other -= n
		}
		calls["other"] = other
		names := make([]string, 0, len(calls))
		for k := range calls {
			names = append(names, k)
		}
		sort.Slice(names, func(i, j int) bool { return calls[names[i]] > calls[names[j]] })
		fmt.Fprintf(&sb, "system call pass: %.2f calls/%s:", float64(total)/units, unit)
		for _, k := range names {
			if per := float64(calls[k]) / units; per >= 0.005 {
				fmt.Fprintf(&sb, " %s %.2f", k, per)
			}
		}
		sb.WriteString("\n")
	}
	if top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=40", path("cpu.pprof")).CombinedOutput(); err == nil {
		os.WriteFile(path("cpu.top.txt"), top, 0o644)
	}
	if err := os.WriteFile(path("txt"), []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	fmt.Print(sb.String())
}

// tracedSyscalls are the calls a proxy makes that the profile breaks down;
// the rest is counted as "other".
var tracedSyscalls = []string{
	"read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg", "splice",
	"ioctl", "epoll_pwait", "epoll_wait", "epoll_ctl", "futex", "nanosleep", "sched_yield",
	"accept4", "connect", "socket", "close", "shutdown", "setsockopt", "getsockopt",
	"getsockname", "getpeername", "pipe2", "fcntl", "mmap", "munmap", "madvise", "tgkill",
	"rt_sigreturn", "clone3", "getpid",
}

// syscallEvents lists the tracepoints for tracedSyscalls that this kernel
// has, and the one for all calls.
func syscallEvents() []string {
	out, _ := exec.Command("perf", "list", "syscalls:sys_enter_*").CombinedOutput()
	have := map[string]bool{}
	for _, f := range strings.Fields(string(out)) {
		have[f] = true
	}
	events := []string{allSyscalls}
	for _, name := range tracedSyscalls {
		if e := "syscalls:sys_enter_" + name; have[e] {
			events = append(events, e)
		}
	}
	return events
}
