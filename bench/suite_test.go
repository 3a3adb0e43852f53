package bench

import (
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// config is the suite's settings, read from the environment so that a quick
// run can shrink every workload.
type config struct {
	rounds           int
	streamBytes      int64
	redisRequests    int
	redisPipelined   int // redis-benchmark -n with -P 16
	wrkDuration      time.Duration
	duration         time.Duration // connection churn and the memcache load
	pgbenchDuration  time.Duration
	mysqlslapQueries int
	idleConns        int
	faultMix         string
	toxiproxy        string
	haproxy          string // the haproxy binary; "" when not installed
	baseline         string // another build's bench test binary, whose vaurien routes run alongside
	syscalls         string // how system calls are counted: "perf", "io" or "off"
	syscallsNote     string // why perf is not used
}

// defaultFaultMix is the active fault mix of the "-mix" routes: it shows
// what drawing, and carrying out a cheap fault, costs per unit of draw.
const defaultFaultMix = "10:delay/sleep=1ms"

func loadConfig() config {
	c := config{
		rounds:           int(envInt("BENCH_ROUNDS", 3)),
		streamBytes:      envInt("BENCH_STREAM_BYTES", 2<<30),
		redisRequests:    int(envInt("BENCH_REDIS_REQUESTS", 100000)),
		redisPipelined:   int(envInt("BENCH_REDIS_PIPELINED_REQUESTS", 1000000)),
		wrkDuration:      envDuration("BENCH_WRK_DURATION", 5*time.Second),
		duration:         envDuration("BENCH_DURATION", 2*time.Second),
		pgbenchDuration:  envDuration("BENCH_PGBENCH_DURATION", 20*time.Second),
		mysqlslapQueries: int(envInt("BENCH_MYSQLSLAP_QUERIES", 40000)),
		idleConns:        int(envInt("BENCH_IDLE_CONNS", 3300)),
		faultMix:         envString("BENCH_FAULT_MIX", defaultFaultMix),
		toxiproxy:        os.Getenv("TOXIPROXY_SERVER"),
		baseline:         os.Getenv("BENCH_BASELINE"),
		haproxy:          haproxyBin(),
		syscalls:         envString("BENCH_SYSCALLS", "perf"),
	}
	if c.syscalls == "perf" {
		if ok, why := perfUsable(); !ok {
			c.syscalls, c.syscallsNote = "io", why
		}
	}
	return c
}

func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// BenchmarkSuite is issue 9's comparison: every workload runs directly,
// through the yardstick, through vaurien routes (tcp, the protocol-aware
// route of the backend's protocol, and that route with an active fault
// mix), through HAProxy when it is installed and, when TOXIPROXY_SERVER
// names a toxiproxy-server binary, through Toxiproxy, interleaved round-robin over BENCH_ROUNDS rounds. It prints
// the medians and ratios and, when BENCH_REPORT names a file, writes them
// there as Markdown. bench/run.sh runs it; see bench/README.md.
func BenchmarkSuite(b *testing.B) {
	cfg := loadConfig()
	rep := newReport(cfg)
	b.Run("stream-1", func(b *testing.B) { streamWorkload(b, cfg, rep, 1) })
	b.Run("stream-8", func(b *testing.B) { streamWorkload(b, cfg, rep, 8) })
	b.Run("redis-set", func(b *testing.B) { redisWorkload(b, cfg, rep, 1) })
	b.Run("redis-set-P16", func(b *testing.B) { redisWorkload(b, cfg, rep, 16) })
	b.Run("http-1k", func(b *testing.B) { httpWorkload(b, cfg, rep) })
	b.Run("memcache", func(b *testing.B) { memcacheWorkload(b, cfg, rep) })
	b.Run("pgbench", func(b *testing.B) { pgbenchWorkload(b, cfg, rep, "simple") })
	b.Run("pgbench-prepared", func(b *testing.B) { pgbenchWorkload(b, cfg, rep, "prepared") })
	b.Run("mysqlslap", func(b *testing.B) { mysqlslapWorkload(b, cfg, rep) })
	b.Run("mix-latency", func(b *testing.B) { mixLatencyWorkload(b, cfg, rep) })
	b.Run("churn", func(b *testing.B) { churnWorkload(b, cfg, rep) })
	b.Run("idle", func(b *testing.B) { idleWorkload(b, cfg, rep) })
	b.Run("idle-protocols", func(b *testing.B) { idleProtocolsWorkload(b, cfg, rep) })
	rep.finish(b)
}

// target is one way to reach a backend: directly or through a proxy whose
// process (proc) is charged with the CPU the workload costs it.
type target struct {
	name string
	addr string
	proc *child // nil when direct
}

// vaurienRoute is one vaurien child to put in front of a backend.
type vaurienRoute struct {
	name, protocol, mix string
}

// others are the proxies to compare with: a Toxiproxy server (nil when
// TOXIPROXY_SERVER is not set), the haproxy binary ("" when not installed)
// and another build of vaurien ("" unless BENCH_BASELINE names one).
type others struct {
	tp       *toxiproxy
	haproxy  string
	baseline string
}

// others starts Toxiproxy when it is given.
func (c config) others(b *testing.B) others {
	return others{tp: startToxiproxy(b, c.toxiproxy), haproxy: c.haproxy, baseline: c.baseline}
}

// proxies starts, in front of backend, the yardstick, the given vaurien
// routes (each in a process of its own, followed by its twin from the
// baseline build when o.baseline is set), a Toxiproxy proxy when o.tp is
// set and an HAProxy process when o.haproxy is, and returns the direct
// target followed by theirs.
func proxies(b *testing.B, backend string, o others, routes ...vaurienRoute) []*target {
	return proxiesEach(b, func() string { return backend }, o, routes...)
}

// proxiesEach is proxies with a backend of its own for each target, from
// newBackend.
func proxiesEach(b *testing.B, newBackend func() string, o others, routes ...vaurienRoute) []*target {
	targets := []*target{{name: "direct", addr: newBackend()}}
	backend := newBackend()
	y := startChild(b, "yardstick", backend)
	targets = append(targets, &target{name: "yardstick", addr: y.addr, proc: y})
	for _, r := range routes {
		v := startChild(b, "vaurien", newBackend(), protocolEnv+"="+r.protocol, mixEnv+"="+r.mix)
		v.name = r.name
		targets = append(targets, &target{name: r.name, addr: v.addr, proc: v})
		if o.baseline != "" {
			v := startChildOf(b, o.baseline, "vaurien", newBackend(), protocolEnv+"="+r.protocol, mixEnv+"="+r.mix)
			v.name = r.name + "@base"
			targets = append(targets, &target{name: v.name, addr: v.addr, proc: v})
		}
	}
	if o.tp != nil {
		targets = append(targets, &target{name: "toxiproxy", addr: o.tp.proxy(b, newBackend()), proc: o.tp.proc})
	}
	if o.haproxy != "" {
		h := startHAProxy(b, o.haproxy, newBackend())
		targets = append(targets, &target{name: "haproxy", addr: h.addr, proc: h})
	}
	return targets
}

// outcome is what one run of a workload did: units of work (MB, requests,
// connections) over took, or at rate when the load generator measured it.
type outcome struct {
	units float64
	took  time.Duration
	rate  float64
	note  string // errors the load generator reported
}

// series collects one target's samples over the rounds.
type series struct {
	t                         *target
	rate, cpu, sys, objs, mem []float64
	notes                     []string
}

// interleave runs the workload on every target, round-robin, cfg.rounds
// times, starting each round with the next target so that none always
// meets a warmer or busier machine, and charges each proxy process with its
// CPU time, system calls and allocations per unit.
func interleave(b *testing.B, cfg config, targets []*target, run func(*testing.B, *target) outcome) []*series {
	out := make([]*series, len(targets))
	for i, t := range targets {
		out[i] = &series{t: t}
	}
	for round := range cfg.rounds {
		for k := range targets {
			i := (k + round) % len(targets)
			t, s := targets[i], out[i]
			var before usage
			var sc *syscallCounter
			if t.proc != nil {
				before = t.proc.usage(b)
				if cfg.syscalls == "perf" {
					sc = countSyscalls(b, t.proc.pid(), allSyscalls)
				}
			}
			o := run(b, t)
			var calls int64 = -1
			if sc != nil {
				calls = sc.stop(b)[allSyscalls]
			}
			if o.units <= 0 {
				b.Fatalf("%s: no work done (%s)", t.name, o.note)
			}
			rate := o.rate
			if rate == 0 {
				rate = o.units / o.took.Seconds()
			}
			s.rate = append(s.rate, rate)
			if o.note != "" {
				s.notes = append(s.notes, o.note)
			}
			if t.proc == nil {
				continue
			}
			after := t.proc.usage(b)
			s.cpu = append(s.cpu, float64((after.cpu-before.cpu).Nanoseconds())/1e3/o.units)
			if cfg.syscalls == "io" && before.syscalls >= 0 && after.syscalls >= 0 {
				calls = after.syscalls - before.syscalls
			}
			if calls >= 0 {
				s.sys = append(s.sys, float64(calls)/o.units)
			}
			if after.hasAlloc {
				s.objs = append(s.objs, float64(after.objects-before.objects)/o.units)
				s.mem = append(s.mem, float64(after.bytes-before.bytes)/o.units)
			}
		}
	}
	return out
}

// summary is a target's medians.
type summary struct {
	name                      string
	rate, cpu, sys, objs, mem float64 // NaN when not measured
	notes                     []string
}

func summarize(ss []*series) []summary {
	out := make([]summary, len(ss))
	for i, s := range ss {
		out[i] = summary{name: s.t.name, rate: median(s.rate), cpu: median(s.cpu), sys: median(s.sys),
			objs: median(s.objs), mem: median(s.mem), notes: s.notes}
	}
	return out
}

// median of xs; NaN when xs is empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// reportMetrics gives the medians to the benchmark framework too, so that
// benchstat can compare runs.
func reportMetrics(b *testing.B, rows []summary, rateUnit, unit string) {
	for _, r := range rows {
		b.ReportMetric(r.rate, r.name+"-"+rateUnit)
		if !math.IsNaN(r.cpu) {
			b.ReportMetric(r.cpu, r.name+"-cpu-µs/"+unit)
		}
	}
}

func hostPort(addr string) (host, port string) {
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}
