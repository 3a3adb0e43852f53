package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/metrics"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// roleEnv makes the test binary act as one of the measured proxies.
const roleEnv = "VAURIEN_BENCH_ROLE"

// metricsEnv set to 1 gives the vaurien child the Prometheus observer.
const metricsEnv = "BENCH_METRICS"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "yardstick":
		serveYardstick(os.Getenv("BENCH_BACKEND"))
	case "vaurien":
		serveVaurien(os.Getenv("BENCH_BACKEND"), os.Getenv("BENCH_MIX"))
	default:
		os.Exit(m.Run())
	}
}

// announce tells the parent where the child listens.
func announce(ln net.Listener) {
	fmt.Println("LISTEN", ln.Addr().String())
}

// serveYardstick is the minimal proxy: io.Copy both ways between the
// *net.TCPConns, so Linux splices, and nothing else.
func serveYardstick(backend string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	announce(ln)
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
}

// serveVaurien runs one vaurien tcp route through the real engine, with
// the metrics observer when BENCH_METRICS=1.
func serveVaurien(backend, mixSpec string) {
	var entries []chaos.Entry
	if mixSpec != "" {
		shares, err := chaos.ParseShares(mixSpec)
		if err != nil {
			panic(err)
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
				panic(err)
			}
			entries = append(entries, chaos.Entry{Name: name, Percent: s.Percent, Behavior: b})
		}
	}
	mix, err := chaos.NewMix(entries)
	if err != nil {
		panic(err)
	}
	var obs proxy.Observer
	if os.Getenv(metricsEnv) == "1" {
		obs = metrics.New(prometheus.NewRegistry())
	}
	s := proxy.New(obs, time.Second)
	if err := s.Apply([]proxy.RouteConfig{{Name: "bench", Listen: "127.0.0.1:0", Backend: backend, Protocol: "tcp", Mix: mix}}); err != nil {
		panic(err)
	}
	fmt.Println("LISTEN", s.Route("bench").Addr())
	select {}
}

// child is a proxy process under measurement.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func startChild(b testing.TB, role, backend string, env ...string) *child {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, roleEnv+"="+role, "BENCH_BACKEND="+backend)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		cmd.Process.Kill()
		cmd.Wait()
		b.Fatalf("%s child said nothing", role)
	}
	addr, ok := strings.CutPrefix(sc.Text(), "LISTEN ")
	if !ok {
		b.Fatalf("%s child said %q", role, sc.Text())
	}
	go io.Copy(io.Discard, out)
	c := &child{cmd: cmd, addr: addr}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return c
}

// cpu is the child's user+system CPU time so far.
func (c *child) cpu(b testing.TB) time.Duration {
	return processCPU(b, c.cmd.Process.Pid)
}

// processCPU reads utime+stime of a process from /proc/PID/stat.
func processCPU(b testing.TB, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	// Fields after the command name, which is in parentheses.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz
}

func withTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
