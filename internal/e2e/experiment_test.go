package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/client"
	"github.com/vaurien-go/vaurien/pkg/experiment"
)

// stack is the system under test of the experiment tests: redis-server
// behind a vaurien route, and a small HTTP app that reads a key through
// that route and answers 500 when redis fails (it has no fallback).
type stack struct {
	dir       string
	adminAddr string
	cacheAddr string
	appURL    string
	config    string // the vaurien.hcl
	vaurien   *vaurien
	admin     *client.Client
}

// fileMix is the cache route's mix in the file: a behavior at 0% that
// never fires, so that "back to the file's mix" is not the same as "no
// mix".
const fileMix = `
  behavior "delay" {
    percent = 0
    sleep   = "1ms"
  }`

func newStack(t *testing.T, serve bool) *stack {
	t.Helper()
	rs := testenv.Redis(t)
	s := &stack{dir: t.TempDir(), adminAddr: freeAddr(t), cacheAddr: freeAddr(t)}
	s.config = filepath.Join(s.dir, "vaurien.hcl")
	writeConfig(t, s.config, fmt.Sprintf(`
admin {
  listen = %q
}
route "cache" {
  listen   = %q
  backend  = %q
  protocol = "redis"
%s
}
`, s.adminAddr, s.cacheAddr, rs.Addr, fileMix))

	rdb := redis.NewClient(&redis.Options{Addr: s.cacheAddr, MaxRetries: -1, DisableIdentity: true, Protocol: 2,
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	t.Cleanup(func() { rdb.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := rdb.Get(r.Context(), "greeting").Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			http.Error(w, "cache: "+err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello %s\n", v)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s.appURL = "http://" + ln.Addr().String() + "/"

	if serve {
		s.vaurien = start(t, "", "run", "-c", s.config)
		s.admin = client.New(s.adminAddr)
		t.Cleanup(s.admin.Close)
		waitFor(t, "vaurien ready", func() bool { return s.admin.Ready(context.Background()) == nil })
	}
	return s
}

// experimentFile writes an experiment file whose probe requests the app.
func (s *stack) experimentFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(s.dir, "experiment.hcl")
	writeConfig(t, p, strings.ReplaceAll(body, "APP_URL", s.appURL))
	return p
}

// runner is `vaurien experiment run` as a process.
func runner(t *testing.T, args ...string) *vaurien {
	return start(t, "", append([]string{"experiment", "run"}, args...)...)
}

func readResult(t *testing.T, dir string) experiment.Result {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res experiment.Result
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// assertFileMix checks that the cache route runs its file's mix again,
// with no timed change pending.
func (s *stack) assertFileMix(t *testing.T) {
	t.Helper()
	r, err := s.admin.Route(context.Background(), "cache")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Mix, r.ConfiguredMix) || len(r.Mix) != 1 || r.Mix[0].Name != "delay" || r.Mix[0].Percent != 0 {
		t.Fatalf("route cache runs %+v, want its file's mix %+v", r.Mix, r.ConfiguredMix)
	}
}

// assertCounters checks that the faults each phase counted on the cache
// route match the mix the report says the phase applied.
func assertCounters(t *testing.T, res experiment.Result) {
	t.Helper()
	for _, p := range res.Phases {
		want := 0.0
		for _, m := range p.Mixes {
			for _, b := range m.Mix {
				want += b.Percent
			}
		}
		for _, c := range p.Routes {
			if c.Requests == 0 {
				t.Errorf("phase %s: route %s served no request", p.Name, c.Route)
				continue
			}
			got := 100 * float64(c.Faults) / float64(c.Requests)
			// A request in flight across a boundary may count in the
			// phase next to the one that drew it.
			if math.Abs(got-want) > 10 {
				t.Errorf("phase %s: route %s injected faults in %.1f%% of %d requests; its mix gives %.0f%%", p.Name, c.Route, got, c.Requests, want)
			}
		}
	}
}

const failingExperiment = `
experiment "cache-down" {
  seed = 7
  probe "app" {
    http {
      url    = "APP_URL"
      status = [200]
    }
    interval = "50ms"
  }
  steady_state {
    duration = "1s"
  }
  step "down" {
    duration = "2s"
    route "cache" {
      behavior "error" {
        percent = 100
      }
    }
  }
  recovery = "1s"
  slo "no-errors" {
    probe      = "app"
    during     = "down"
    error_rate = 0.01
  }
  slo "steady" {
    probe      = "app"
    during     = "steady_state"
    error_rate = 0.01
  }
}
`

// An SLO that cannot hold (the app has no fallback when redis fails)
// fails the run with exit status 1, and the report names the SLO and what
// was measured.
func TestExperimentFailingSLO(t *testing.T) {
	s := newStack(t, true)
	report := filepath.Join(s.dir, "report")
	r := runner(t, s.experimentFile(t, failingExperiment), "--admin", s.adminAddr, "--report", report)
	if code, _ := r.wait(30 * time.Second); code != 1 {
		t.Fatalf("exit status %d, want 1:\n%s", code, r.output())
	}
	s.assertFileMix(t)
	res := readResult(t, report)
	if res.State != "failed" || len(res.SLOs) != 2 {
		t.Fatalf("result %+v", res)
	}
	failed, held := res.SLOs[0], res.SLOs[1]
	if failed.Name != "no-errors" || failed.OK || failed.Checks[0].Value == nil || *failed.Checks[0].Value < 0.9 {
		t.Errorf("SLO no-errors: %+v; want failed with an error rate near 1", failed)
	}
	if !held.OK {
		t.Errorf("SLO steady: %+v; want held", held)
	}
	md, err := os.ReadFile(filepath.Join(report, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("| ❌ | no-errors | app | down | error_rate %.4g > 0.01 |", *failed.Checks[0].Value); !strings.Contains(string(md), want) {
		t.Errorf("report.md does not show the failed SLO and its value:\n%s", md)
	}
	if !strings.Contains(r.output(), "FAIL slo no-errors") {
		t.Errorf("the runner's output does not name the failed SLO:\n%s", r.output())
	}
	assertCounters(t, res)

	m, err := s.admin.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`vaurien_experiment_slo_ok{experiment="cache-down",slo="no-errors"} 0`,
		`vaurien_experiment_slo_ok{experiment="cache-down",slo="steady"} 1`,
		`vaurien_experiment_running{experiment="cache-down",step="down"} 0`,
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

const holdingExperiment = `
experiment "cache-slow" {
  probe "app" {
    http {
      url    = "APP_URL"
      status = [200]
    }
    interval = "50ms"
  }
  steady_state {
    duration = "1s"
  }
  step "slow" {
    duration = "2s"
    route "cache" {
      behavior "delay" {
        percent = 100
        sleep   = "50ms"
      }
    }
  }
  recovery = "1s"
  slo "fast-enough" {
    probe  = "app"
    during = "slow"
    p99    = "500ms"
    p50    = "40ms" # the delay shows: this one must not hold
  }
}
`

// A 50 ms delay under a 500 ms p99 budget holds: exit status 0. The run
// starts the routes in-process from vaurien.hcl.
func TestExperimentHoldingSLO(t *testing.T) {
	s := newStack(t, false)
	report := filepath.Join(s.dir, "report")
	// p50 under 40ms cannot hold with a 50ms delay on every request: the
	// same run without it must pass.
	file := s.experimentFile(t, strings.Replace(holdingExperiment, `p50    = "40ms" # the delay shows: this one must not hold`, "", 1))
	r := runner(t, file, "--config", s.config, "--report", report)
	if code, _ := r.wait(30 * time.Second); code != 0 {
		t.Fatalf("exit status %d, want 0:\n%s", code, r.output())
	}
	res := readResult(t, report)
	if res.State != "passed" || len(res.SLOs) != 1 || !res.SLOs[0].OK {
		t.Fatalf("result %+v", res)
	}
	p99 := *res.SLOs[0].Checks[0].Value
	if p99 < 0.050 || p99 > 0.5 {
		t.Errorf("p99 during the slow step is %.3fs; want the 50ms delay to show, under 500ms", p99)
	}
	assertCounters(t, res)

	// The budget that the delay breaks fails the run.
	r = runner(t, s.experimentFile(t, holdingExperiment), "--config", s.config, "--report", report)
	if code, _ := r.wait(30 * time.Second); code != 1 {
		t.Fatalf("exit status %d with p50 under 40ms, want 1:\n%s", code, r.output())
	}
	res = readResult(t, report)
	checks := map[string]bool{}
	for _, c := range res.SLOs[0].Checks {
		checks[c.Measure] = c.OK
	}
	if res.SLOs[0].OK || checks["p50"] || !checks["p99"] {
		t.Errorf("SLO %+v: want p99 held and p50 failed", res.SLOs[0])
	}
}

const longStep = `
experiment "long" {
  probe "app" {
    http {
      url = "APP_URL"
    }
    interval = "100ms"
  }
  step "down" {
    duration = "STEP"
    route "cache" {
      behavior "error" {
        percent = 100
      }
    }
  }
  slo "none" {
    probe      = "app"
    error_rate = 0.5
  }
}
`

// waitStepMix waits until the cache route runs the step's error mix.
func (s *stack) waitStepMix(t *testing.T) *client.Route {
	t.Helper()
	var r *client.Route
	waitFor(t, "the step's mix on route cache", func() bool {
		var err error
		r, err = s.admin.Route(context.Background(), "cache")
		return err == nil && len(r.Mix) == 1 && r.Mix[0].Name == "error"
	})
	return r
}

// SIGTERM in the middle of a step: the runner rolls back before it exits.
func TestExperimentRollbackOnSIGTERM(t *testing.T) {
	s := newStack(t, true)
	r := runner(t, s.experimentFile(t, strings.Replace(longStep, "STEP", "60s", 1)), "--admin", s.adminAddr)
	s.waitStepMix(t)
	r.signal(syscall.SIGTERM)
	code, took := r.wait(15 * time.Second)
	if code != 2 {
		t.Errorf("exit status %d after SIGTERM, want 2:\n%s", code, r.output())
	}
	if took > 5*time.Second {
		t.Errorf("the runner took %s to exit after SIGTERM", took)
	}
	s.assertFileMix(t) // at once: the runner put it back itself
	st, err := s.admin.Experiment(context.Background(), "long")
	if err != nil || st.State != "stopped" {
		t.Errorf("the board shows %+v, %v; want the run stopped", st, err)
	}
}

// kill -9 in the middle of a step: nothing can roll back but vaurien's
// timed revert, which comes shortly after the step should have ended.
func TestExperimentRevertsAfterKill(t *testing.T) {
	s := newStack(t, true)
	r := runner(t, s.experimentFile(t, strings.Replace(longStep, "STEP", "3s", 1)), "--admin", s.adminAddr)
	route := s.waitStepMix(t)
	if route.RevertsAt == nil {
		t.Fatal("the step's mix is not a timed change: nothing would revert it")
	}
	r.signal(syscall.SIGKILL)
	r.wait(5 * time.Second)
	if rr, _ := s.admin.Route(context.Background(), "cache"); rr == nil || len(rr.Mix) != 1 || rr.Mix[0].Name != "error" {
		t.Fatalf("the mix changed right after the kill: %+v", rr)
	}
	deadline := route.RevertsAt.Add(2 * time.Second)
	waitFor(t, "the timed revert", func() bool {
		rr, err := s.admin.Route(context.Background(), "cache")
		return err == nil && reflect.DeepEqual(rr.Mix, rr.ConfiguredMix)
	})
	if time.Now().After(deadline) {
		t.Errorf("the mix reverted after %s, later than announced (%s)", time.Now().Format(time.RFC3339Nano), route.RevertsAt)
	}
	if time.Until(*route.RevertsAt) > experiment.Grace+time.Second {
		t.Errorf("reverted long before the step's end")
	}
	s.assertFileMix(t)
	// The board notices the runner is gone once its lease lapses.
	waitFor(t, "the run marked lost", func() bool {
		st, err := s.admin.Experiment(context.Background(), "long")
		return err == nil && st.State == "lost"
	})
}

// One experiment at a time on a route: a second one is refused with a 409
// that names the first, and exits 2 without touching the route.
func TestExperimentConflict(t *testing.T) {
	s := newStack(t, true)
	first := runner(t, s.experimentFile(t, strings.Replace(longStep, "STEP", "60s", 1)), "--admin", s.adminAddr)
	s.waitStepMix(t)
	other := filepath.Join(s.dir, "other.hcl")
	writeConfig(t, other, strings.NewReplacer(`"long"`, `"other"`, "APP_URL", s.appURL, "STEP", "5s", `"error"`, `"delay"`).Replace(longStep))
	second := runner(t, other, "--admin", s.adminAddr)
	if code, _ := second.wait(15 * time.Second); code != 2 {
		t.Errorf("second experiment: exit status %d, want 2", code)
	}
	if !strings.Contains(second.output(), `route "cache" is in experiment "long"`) {
		t.Errorf("second experiment's output does not name the first:\n%s", second.output())
	}
	s.waitStepMix(t) // the first one's mix is still there
	first.signal(syscall.SIGINT)
	first.wait(15 * time.Second)
	s.assertFileMix(t)
}

// A runner whose admin API goes away gives up with exit status 2.
func TestExperimentLostAdmin(t *testing.T) {
	s := newStack(t, true)
	r := runner(t, s.experimentFile(t, strings.Replace(longStep, "STEP", "60s", 1)), "--admin", s.adminAddr)
	s.waitStepMix(t)
	s.vaurien.signal(syscall.SIGKILL)
	code, took := r.wait(30 * time.Second)
	if code != 2 || !strings.Contains(r.output(), "lost the admin API") {
		t.Errorf("exit status %d after %s; want 2 and the reason:\n%s", code, took, r.output())
	}
}

// Invalid experiment files are refused before anything runs, with the
// file, line and column of each problem.
func TestExperimentInvalidFile(t *testing.T) {
	s := newStack(t, true)
	cases := []struct{ name, body, want string }{
		{"unknown route", `experiment "x" {
  step "s" {
    duration = "1s"
    route "cahce" {
      behavior "delay" {
        percent = 10
      }
    }
  }
}`, `:4:11: error: Unknown route: There is no route named "cahce". Did you mean "cache"?`},
		{"unknown behavior", `experiment "x" {
  step "s" {
    duration = "1s"
    route "cache" {
      behavior "dealy" {
        percent = 10
      }
    }
  }
}`, `:5:16: error: Unknown behavior: There is no behavior named "dealy". Did you mean "delay"?`},
		{"slo on unknown probe", `experiment "x" {
  steady_state {
    duration = "1s"
  }
  slo "s" {
    probe      = "app"
    error_rate = 0.1
  }
}`, `:6:18: error: Unknown probe: There is no probe named "app": the experiment declares no probe.`},
		{"total duration 0", `experiment "x" {
}`, `:1:12: error: Experiment takes no time`},
		{"probe interval under 10ms", `experiment "x" {
  probe "app" {
    tcp {
      address = "127.0.0.1:1"
    }
    interval = "1ms"
  }
  steady_state {
    duration = "1s"
  }
}`, `:6:16: error: Probe interval too short`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := exec.Command(binary, "experiment", "run", s.experimentFile(t, c.body), "--admin", s.adminAddr).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit %v, want status 2:\n%s", err, out)
			}
			if !strings.Contains(string(out), "experiment.hcl"+c.want) {
				t.Errorf("output lacks %q:\n%s", c.want, out)
			}
		})
	}
}

// issueExample is the experiment of the README, as written: it probes an
// app on 127.0.0.1:9000 and slows a route named cache.
const issueExample = `
experiment "cache-slow" {
  seed = 7

  probe "app" {
    http {
      url    = "http://127.0.0.1:9000/"
      status = [200]
    }
    interval = "100ms"
  }

  steady_state {
    duration = "3s"
  }

  step "slow" {
    duration = "5s"
    route "cache" {
      behavior "delay" {
        percent = 100
        sleep   = "200ms"
      }
    }
  }

  recovery = "5s"

  slo "fast-while-slow" {
    probe  = "app"
    during = "slow"      # a step's name, "steady_state" or "recovery"
    p99    = "100ms"
  }
  slo "no-errors" {
    probe      = "app"
    during     = "steady_state"
    error_rate = 0.01
  }
}
`

// The README's example runs as written: its app on port 9000 reads redis
// through the cache route; the 200 ms delay breaks the 100 ms p99 budget
// (exit 1) while the steady state has no errors.
func TestExperimentREADMEExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), strings.TrimSpace(issueExample)) {
		t.Fatal("the README's experiment is not the one this test runs")
	}
	s := newStack(t, false)
	app := "127.0.0.1:9000"
	if !dialOK(app) {
		// Put the app on the example's port.
		ln, err := net.Listen("tcp", app)
		if err != nil {
			t.Skipf("port 9000 is taken: %v", err)
		}
		target := strings.TrimSuffix(strings.TrimPrefix(s.appURL, "http://"), "/")
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					b, err := net.Dial("tcp", target)
					if err != nil {
						return
					}
					defer b.Close()
					go func() { io.Copy(b, c); b.(*net.TCPConn).CloseWrite() }()
					io.Copy(c, b)
				}()
			}
		}()
		t.Cleanup(func() { ln.Close() })
	} else {
		t.Skip("something already listens on 127.0.0.1:9000")
	}
	file := filepath.Join(s.dir, "cache-slow.hcl")
	writeConfig(t, file, issueExample)
	report := filepath.Join(s.dir, "report")
	r := runner(t, file, "--config", s.config, "--report", report)
	if code, _ := r.wait(60 * time.Second); code != 1 {
		t.Fatalf("exit status %d, want 1:\n%s", code, r.output())
	}
	res := readResult(t, report)
	if res.Seed != 7 || len(res.SLOs) != 2 || res.SLOs[0].OK || !res.SLOs[1].OK {
		t.Errorf("result: seed %d, SLOs %+v", res.Seed, res.SLOs)
	}
}
