package bench

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

// mixLatencyClients is how many connections send requests, one at a time
// each, in the mix-latency workload: few enough that the machine is not
// saturated and a latency is the proxy's and not a queue's.
const mixLatencyClients = 8

// mixLatencyWorkload shows what the active fault mix costs the requests it
// draws no fault for: clients send redis SETs one at a time through the
// redis route without and with the mix, and the latencies of the requests
// that were not delayed (those under the mix's 1 ms) are compared.
func mixLatencyWorkload(b *testing.B, cfg config, rep *report) {
	start := time.Now()
	load := loadAvg()
	srv := testenv.Redis(b)
	targets := proxies(b, srv.Addr, others{},
		vaurienRoute{"vaurien-redis", "redis", ""},
		vaurienRoute{"vaurien-redis-mix", "redis", cfg.faultMix})
	var mu sync.Mutex
	latencies := map[string][]time.Duration{}
	rows := summarize(interleave(b, cfg, targets, func(b *testing.B, t *target) outcome {
		l, took, err := redisLatencies(t.addr, mixLatencyClients, cfg.duration)
		if err != nil {
			b.Fatalf("redis SETs through %s: %v", t.name, err)
		}
		mu.Lock()
		latencies[t.name] = append(latencies[t.name], l...)
		mu.Unlock()
		return outcome{units: float64(len(l)), took: took}
	}))
	reportMetrics(b, rows, "req/s", "req")
	lt := &latencyTable{
		title:     fmt.Sprintf("What the fault mix costs the requests it does not delay: redis SET, %d clients, one request in flight each", mixLatencyClients),
		threshold: time.Millisecond,
		load:      [2]string{load, loadAvg()}, took: time.Since(start),
		command: fmt.Sprintf("Go client: %d connections each sending SET and reading +OK in a loop for %v; every request's latency is recorded. "+
			"Requests that took %v or more are counted as delayed (the mix's delay is 1 ms); percentiles are of the others, over all rounds", mixLatencyClients, cfg.duration, time.Millisecond),
	}
	for _, r := range rows {
		lt.rows = append(lt.rows, latencyRow(r, latencies[r.name], lt.threshold))
		last := lt.rows[len(lt.rows)-1]
		b.ReportMetric(last.p50.Seconds()*1e6, r.name+"-p50-µs")
	}
	rep.addLatency(lt)
}

// redisLatencies runs clients connections sending SET one at a time for d
// and returns every request's latency.
func redisLatencies(addr string, clients int, d time.Duration) ([]time.Duration, time.Duration, error) {
	const req = "*3\r\n$3\r\nSET\r\n$5\r\nbench\r\n$5\r\nvalue\r\n"
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	deadline := start.Add(d)
	for range clients {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			own := make([]time.Duration, 0, 1<<16)
			for t := time.Now(); t.Before(deadline); {
				if _, err := io.WriteString(c, req); err != nil {
					errs <- err
					return
				}
				line, err := r.ReadString('\n')
				if err != nil {
					errs <- err
					return
				}
				if line != "+OK\r\n" {
					errs <- fmt.Errorf("SET answered %q", line)
					return
				}
				now := time.Now()
				own = append(own, now.Sub(t))
				t = now
			}
			mu.Lock()
			all = append(all, own...)
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, 0, err
	}
	return all, time.Since(start), nil
}

// latencyTable is the mix-latency workload's results.
type latencyTable struct {
	title, command string
	threshold      time.Duration
	rows           []latencyLine
	load           [2]string
	took           time.Duration
}

type latencyLine struct {
	summary
	delayed       float64 // share of requests at or over the threshold
	p50, p90, p99 time.Duration
}

func latencyRow(s summary, l []time.Duration, threshold time.Duration) latencyLine {
	var fast []time.Duration
	for _, d := range l {
		if d < threshold {
			fast = append(fast, d)
		}
	}
	slices.Sort(fast)
	at := func(q float64) time.Duration {
		if len(fast) == 0 {
			return 0
		}
		return fast[min(len(fast)-1, int(q*float64(len(fast))))]
	}
	line := latencyLine{summary: s, p50: at(0.50), p90: at(0.90), p99: at(0.99)}
	if len(l) > 0 {
		line.delayed = float64(len(l)-len(fast)) / float64(len(l))
	}
	return line
}

func (t *latencyTable) markdown() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "## %s\n\n%s. Load average before: %s, after: %s; took %s.\n\n", t.title, t.command, t.load[0], t.load[1], t.took.Round(time.Second))
	fmt.Fprintf(&sb, "| target | req/s | proxy CPU µs/req | delayed (≥ %v) | p50 of the others | p90 | p99 |\n", t.threshold)
	sb.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	us := func(d time.Duration) string { return num(d.Seconds()*1e6) + " µs" }
	for _, r := range t.rows {
		fmt.Fprintf(&sb, "| %s | %s | %s | %.1f%% | %s | %s | %s |\n", r.name, num(r.rate), num(r.cpu), 100*r.delayed, us(r.p50), us(r.p90), us(r.p99))
	}
	return sb.String()
}
