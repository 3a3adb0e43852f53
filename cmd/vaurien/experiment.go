package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/client"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/experiment"
	"github.com/vaurien-go/vaurien/pkg/logging"
	"github.com/vaurien-go/vaurien/pkg/metrics"
)

const experimentUsage = `vaurien experiment — run a chaos experiment

Usage:
  vaurien experiment run FILE [--admin ADDR ...] [--token TOKEN] [--report DIR] [--name NAME]
      drive the running vaurien at ADDR (default $VAURIEN_ADMIN, else 127.0.0.1:8080)
      through its admin API; with several (--admin repeated, comma lists,
      dns:NAME:PORT) each step goes to every replica and every one is rolled back
  vaurien experiment run FILE --config vaurien.hcl [--report DIR] [--name NAME]
      start the routes of vaurien.hcl in this process and run the experiment on them;
      FILE may be vaurien.hcl itself when its experiments live there

FILE holds experiment blocks; --name picks one when it holds several.
--report DIR writes results.json, report.md and report.html into DIR; without
it they go to the experiment's report directory, if it sets one.

Exit status: 0 when every SLO holds, 1 when one fails, 2 on a configuration or
connection error, or when the run was stopped before its end. Every route the
experiment touched is put back as it was, also on Ctrl-C and SIGTERM.
`

func experimentCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "run" {
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(stdout, experimentUsage)
			return 0
		}
		fmt.Fprintf(stderr, "vaurien experiment: give the run command\n\n%s", experimentUsage)
		return 2
	}
	fs := flag.NewFlagSet("vaurien experiment run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var admins []string
	fs.Func("admin", "admin API address (repeatable, comma-separated, or dns:NAME:PORT)", func(s string) error {
		admins = append(admins, s)
		return nil
	})
	token := fs.String("token", os.Getenv("VAURIEN_ADMIN_TOKEN"), "admin token")
	cfgPath := fs.String("config", "", "run the routes of this file in-process")
	fs.StringVar(cfgPath, "c", "", "same as --config")
	report := fs.String("report", "", "write the report into this directory")
	name := fs.String("name", "", "the experiment to run when FILE holds several")
	pos, err := parseInterspersed(fs, args[1:])
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "vaurien experiment run: %v\n\n%s", err, experimentUsage)
		return 2
	case len(pos) != 1:
		fmt.Fprintf(stderr, "vaurien experiment run: give one experiment file\n\n%s", experimentUsage)
		return 2
	case *cfgPath != "" && flagSet(fs, "admin"):
		fmt.Fprintln(stderr, "vaurien experiment run: --config runs the routes here; --admin drives another vaurien: give one")
		return 2
	}
	file := pos[0]

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var targets []experiment.Target
	var routes []string
	var cfg *config.File
	remote := *cfgPath == ""
	if remote {
		if len(admins) == 0 {
			admins = []string{cmp.Or(os.Getenv("VAURIEN_ADMIN"), config.DefaultAdminListen)}
		}
		var code int
		targets, routes, code = remoteTargets(ctx, admins, *token, stderr)
		defer func() {
			for _, t := range targets {
				t.(experiment.Remote).C.Close()
			}
		}()
		if targets == nil {
			return code
		}
	} else {
		f, err := config.Load(*cfgPath)
		if err != nil {
			printConfigError(stderr, *cfgPath, err)
			return 2
		}
		cfg = f
		a, code := startInProcess(f, stderr)
		if a == nil {
			return code
		}
		defer func() {
			// The clients of the system under test keep connections
			// open: the experiment is over, they need no long drain.
			sctx, cancel := context.WithTimeout(context.Background(), min(f.Drain, time.Second))
			defer cancel()
			a.Shutdown(sctx)
		}()
		targets = []experiment.Target{a.ExperimentTarget()}
	}

	var exps []config.Experiment
	if remote {
		exps, err = config.LoadExperiments(file, routes)
	} else {
		exps, err = experimentsFor(file, cfg)
	}
	if err != nil {
		printConfigError(stderr, file, err)
		return 2
	}
	if len(exps) == 0 {
		fmt.Fprintf(stderr, "vaurien experiment run: %s declares no experiment\n", file)
		return 2
	}
	exp, err := pick(exps, *name)
	if err != nil {
		fmt.Fprintf(stderr, "vaurien experiment run: %s: %v\n", file, err)
		return 2
	}

	res, err := experiment.Run(ctx, exp, experiment.Options{
		Targets: targets, Remote: remote, Progress: experiment.Progress(stderr, isTerminal(stderr)),
	})
	if err != nil {
		fmt.Fprintf(stderr, "vaurien experiment run: %s: %v\n", exp.Name, err)
		return 2
	}
	experiment.Summary(stdout, res)
	// Without --report, the experiment's own report directory, if any.
	dir := cmp.Or(*report, exp.Report)
	if dir != "" {
		if err := experiment.WriteReport(dir, res); err != nil {
			fmt.Fprintf(stderr, "vaurien experiment run: %v\n", err)
			return 2
		}
		fmt.Fprintf(stdout, "report: %s\n", filepath.Join(dir, "report.md"))
	}
	switch {
	case res.Passed():
		return 0
	case res.State == "failed":
		return 1
	}
	return 2
}

// remoteTargets are the replicas at the admin addresses, and the routes
// every one of them runs.
func remoteTargets(ctx context.Context, admins []string, token string, stderr io.Writer) ([]experiment.Target, []string, int) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := client.ResolveAddrs(ctx, admins, nil)
	if err != nil {
		fmt.Fprintf(stderr, "vaurien experiment run: %v\n", err)
		return nil, nil, 2
	}
	var targets []experiment.Target
	count := map[string]int{}
	for _, addr := range addrs {
		c := client.New(dialAddr(addr), client.WithToken(token))
		targets = append(targets, experiment.Remote{C: c})
		rs, err := c.Routes(ctx)
		if err != nil {
			for _, t := range targets {
				t.(experiment.Remote).C.Close()
			}
			fmt.Fprintf(stderr, "vaurien experiment run: read the routes of the vaurien at %s: %v\n", addr, err)
			return nil, nil, 2
		}
		for _, r := range rs {
			count[r.Name]++
		}
	}
	var routes []string
	for name, n := range count {
		if n == len(addrs) {
			routes = append(routes, name)
		}
	}
	slices.Sort(routes)
	return targets, routes, 0
}

// startInProcess starts the routes of f with logs on stderr at warn level
// unless the file asks for debug, so that the progress display stays
// readable.
func startInProcess(f *config.File, stderr io.Writer) (*app.App, int) {
	level := f.Log.Level
	if level != "debug" {
		level = "warn"
	}
	log, err := logging.New(stderr, level, "console")
	if err != nil {
		fmt.Fprintf(stderr, "vaurien: %v\n", err)
		return nil, 2
	}
	m := metrics.New(prometheus.NewRegistry())
	a := app.New(f, log, m)
	a.SetMetricsHandler(m.Handler())
	if err := a.Start(); err != nil {
		fmt.Fprintf(stderr, "vaurien experiment run: start the routes of %s: %v\n", f.Path, err)
		return nil, 2
	}
	return a, 0
}

// experimentsFor reads the experiments of file, whose steps may act on the
// routes of cfg: those cfg holds itself when file is its file, else the
// blocks of an experiment file. experiment run --config and validate
// --config read them this one way.
func experimentsFor(file string, cfg *config.File) ([]config.Experiment, error) {
	if sameFile(file, cfg.Path) {
		return cfg.Experiments, nil
	}
	var routes []string
	for _, r := range cfg.Routes {
		routes = append(routes, r.Name)
	}
	return config.LoadExperiments(file, routes)
}

func pick(exps []config.Experiment, name string) (config.Experiment, error) {
	var names []string
	for _, e := range exps {
		if e.Name == name || name == "" && len(exps) == 1 {
			return e, nil
		}
		names = append(names, e.Name)
	}
	if name == "" {
		return config.Experiment{}, fmt.Errorf("it declares %d experiments (%v): pick one with --name", len(exps), names)
	}
	return config.Experiment{}, errors.New("no experiment named " + fmt.Sprintf("%q", name) + fmt.Sprintf(" (it declares %v)", names))
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// isTerminal reports whether w is a character device: a terminal gets the
// live display, a file or pipe plain lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func flagSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}
