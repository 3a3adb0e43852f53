package e2e

import (
	"context"
	"flag"
	"fmt"
	stdlog "log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/vaurien-go/vaurien/internal/testenv"
)

var updateScreenshot = flag.Bool("update", false, "rewrite the README's screenshots from real runs: docs/experiment-report.png (TestExperimentReportRenders) and docs/console.png (TestConsoleInBrowser)")

const showcaseExperiment = `
experiment "cache-chaos" {
  seed = 7
  probe "app" {
    http {
      url    = "APP_URL"
      status = [200]
    }
    interval    = "40ms"
    concurrency = 2
  }
  steady_state {
    duration = "2s"
  }
  step "slow" {
    duration = "3s"
    route "cache" {
      behavior "delay" {
        percent = 100
        sleep   = "60ms"
      }
    }
  }
  step "flaky" {
    duration = "2s"
    route "cache" {
      behavior "error" {
        percent = 30
      }
    }
  }
  recovery = "2s"
  slo "fast-while-slow" {
    probe  = "app"
    during = "slow"
    p99    = "500ms"
  }
  slo "no-errors-while-flaky" {
    probe      = "app"
    during     = "flaky"
    error_rate = 0.05
  }
  slo "steady" {
    probe      = "app"
    during     = "steady_state"
    error_rate = 0.01
    p95        = "50ms"
  }
  slo "recovers" {
    probe            = "app"
    recovered_within = "1s"
  }
}
`

// The HTML report of a real run renders in headless Chromium without a
// console error, draws its fault bands, latency lines, error bars and SLO
// verdicts, and is not a blank page.
func TestExperimentReportRenders(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	s := newStack(t, false)
	report := filepath.Join(s.dir, "report")
	r := runner(t, s.experimentFile(t, showcaseExperiment), "--config", s.config, "--report", report)
	if code, _ := r.wait(60 * time.Second); code != 1 {
		t.Fatalf("exit status %d, want 1 (the flaky step breaks its SLO):\n%s", code, r.output())
	}

	shot, problems, counts := render(t, chromium, filepath.Join(report, "report.html"))
	if len(problems) > 0 {
		t.Errorf("the console reported:\n%s", strings.Join(problems, "\n"))
	}
	for sel, min := range map[string]int{"rect.fault": 2, "polyline.latency": 3, "rect.errors": 1, "g.slo": 4} {
		if counts[sel] < min {
			t.Errorf("the timeline has %d %s, want at least %d", counts[sel], sel, min)
		}
	}
	testenv.CheckPicture(t, shot)
	if *updateScreenshot {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "experiment-report.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// render opens a page in headless Chromium and returns a PNG of the whole
// page, what the console reported as errors, and how many elements match
// each selector of interest.
func render(t *testing.T, chromium, path string) ([]byte, []string, map[string]int) {
	t.Helper()
	ctx, problems := browse(t, chromium, 1100, 900)
	var shot []byte
	counts := map[string]int{}
	sels := []string{"rect.fault", "polyline.latency", "rect.errors", "g.slo"}
	n := make([]int, len(sels))
	actions := []chromedp.Action{chromedp.Navigate("file://" + path), chromedp.WaitVisible("svg", chromedp.ByQuery)}
	for i, sel := range sels {
		actions = append(actions, chromedp.Evaluate(fmt.Sprintf("document.querySelectorAll(%q).length", sel), &n[i]))
	}
	actions = append(actions, chromedp.FullScreenshot(&shot, 100))
	if err := chromedp.Run(ctx, actions...); err != nil {
		t.Fatalf("render %s in chromium: %v", path, err)
	}
	for i, sel := range sels {
		counts[sel] = n[i]
	}
	return shot, problems.take(), counts
}

// problems collects what a page reports as wrong: console errors and
// warnings, uncaught exceptions, log entries (CSP violations among them),
// requests that failed and answers of 400 or more.
type problems struct {
	mu   sync.Mutex
	list []string
}

func (p *problems) add(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = append(p.list, s)
}

// take returns what was collected and starts afresh.
func (p *problems) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.list
	p.list = nil
	return out
}

// browse starts a headless Chromium for the test with a window of w×h and
// returns its context, with the page's problems collected.
func browse(t *testing.T, chromium string, w, h int) (context.Context, *problems) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(w, h))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelCtx := chromedp.NewContext(actx, chromedp.WithErrorf(browserError))
	t.Cleanup(cancelCtx)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel)
	p := &problems{}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeWarning {
				p.add(fmt.Sprintf("console.%s: %v", e.Type, e.Args))
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			what := d.Text
			if d.Exception != nil {
				what += " " + d.Exception.Description
			}
			p.add(fmt.Sprintf("exception: %s at %s:%d:%d", what, d.URL, d.LineNumber+1, d.ColumnNumber+1))
		case *log.EventEntryAdded:
			if e.Entry.Level == log.LevelError || e.Entry.Level == log.LevelWarning {
				p.add(fmt.Sprintf("log %s: %s %s", e.Entry.Level, e.Entry.Text, e.Entry.URL))
			}
		case *network.EventLoadingFailed:
			if !e.Canceled {
				p.add(fmt.Sprintf("request failed: %s (%s)", e.ErrorText, e.Type))
			}
		case *network.EventResponseReceived:
			if e.Response.Status >= 400 {
				p.add(fmt.Sprintf("answer %d: %s", e.Response.Status, e.Response.URL))
			}
		}
	})
	if err := chromedp.Run(ctx, log.Enable(), runtime.Enable(), network.Enable()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx, p
}

// browserError logs chromedp's errors as it does by default, but one:
// chromedp v0.14 does not know the DOM event that Chromium sends when a
// dialog enters the top layer, and says so at each one, which reads like
// a failure and is none.
func browserError(format string, args ...any) {
	if len(args) == 1 && format == "unhandled node event %T" {
		if _, ok := args[0].(*dom.EventTopLayerElementsUpdated); ok {
			return
		}
	}
	stdlog.Printf("ERROR: "+format, args...)
}
