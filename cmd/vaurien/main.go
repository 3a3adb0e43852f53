// Command vaurien is the chaos TCP proxy: it runs the routes of an HCL file
// (or of the original Vaurien's single-route flags and .ini files) and
// offers the subcommands that inspect and convert configurations.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/catalog"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/logging"
	"github.com/vaurien-go/vaurien/pkg/metrics"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
	"github.com/vaurien-go/vaurien/pkg/version"
)

const usage = `vaurien — a chaos TCP proxy

Usage:
  vaurien                          run ./vaurien.hcl (or $VAURIEN_CONFIG)
  vaurien run [-c FILE] [--log-level L] [--log-format F] [--toxiproxy ADDR] [--no-watch]
                                   run the routes of FILE (.hcl, or an original .ini),
                                   reloading when it changes
  vaurien validate FILE...         check files; diagnostics on stderr, exit 1 if any is invalid
  vaurien validate -c vaurien.hcl EXPERIMENT.hcl...
                                   check experiment files against the routes of vaurien.hcl
  vaurien behaviors                list the behaviors with their options
  vaurien protocols                list the protocols with their options
  vaurien convert OLD.ini          print the HCL equivalent of an original Vaurien .ini file
  vaurien version                  print the version
  vaurien ctl [--admin ADDR] [--token T] [--json] COMMAND
                                   drive a running vaurien through its admin API;
                                   "vaurien ctl help" lists the commands
  vaurien experiment run FILE [--admin ADDR | --config FILE] [--report DIR]
                                   run a chaos experiment; exit 0 when its SLOs hold,
                                   1 when one fails, 2 on errors
  vaurien healthcheck [--admin ADDR] [-c FILE]
                                   exit 0 when the admin API answers /healthz, 1 otherwise

Toxiproxy's server flags run vaurien as a drop-in Toxiproxy server:
  vaurien -host 0.0.0.0 -port 8474 [-config proxies.json]

The original Vaurien's single-route flags work too, e.g.
  vaurien --protocol http --proxy localhost:8000 --backend example.com:80 \
          --behavior 20:delay,5:error --behavior-delay-sleep 2
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit, so that tests can drive the CLI.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return runFile(ctx, defaultConfig(), "", "", false, stderr)
	}
	if isToxiproxyMode(args) {
		return toxiproxyServer(ctx, args, stdout, stderr)
	}
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:], stderr)
	case "validate":
		return validateCmd(args[1:], stdout, stderr)
	case "behaviors":
		catalog.BehaviorsText(stdout)
		return 0
	case "protocols":
		catalog.ProtocolsText(stdout)
		return 0
	case "convert":
		return convertCmd(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, version.String())
		return 0
	case "ctl":
		return ctlCmd(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheckCmd(ctx, args[1:], stdout, stderr)
	case "experiment":
		return experimentCmd(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && args[0] != "help" {
			return legacy(ctx, args, stdout, stderr)
		}
		printHelp(stdout, newLegacyFlags(stderr).fs)
		return 0
	}
	if strings.HasPrefix(args[0], "-") {
		return legacy(ctx, args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "vaurien: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// printHelp writes the subcommands, then the original Vaurien's flags.
func printHelp(w io.Writer, legacyFlags *flag.FlagSet) {
	fmt.Fprint(w, usage)
	fmt.Fprint(w, "\nThe original Vaurien's flags (they build one route named default):\n")
	legacyFlags.SetOutput(w)
	legacyFlags.PrintDefaults()
}

func defaultConfig() string {
	if p := os.Getenv("VAURIEN_CONFIG"); p != "" {
		return p
	}
	return "vaurien.hcl"
}

func runCmd(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("vaurien run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", defaultConfig(), "configuration file (.hcl or original .ini)")
	fs.StringVar(path, "config", defaultConfig(), "same as -c")
	level := fs.String("log-level", os.Getenv("VAURIEN_LOG_LEVEL"), "override the file's log level: debug, info, warn, error")
	format := fs.String("log-format", os.Getenv("VAURIEN_LOG_FORMAT"), "override the file's log format: json, console")
	toxi := fs.String("toxiproxy", os.Getenv("VAURIEN_TOXIPROXY"), "serve the Toxiproxy-compatible API on this address (overrides the file's toxiproxy block)")
	noWatch := fs.Bool("no-watch", false, "do not reload when the file changes (as watch = false in the file); SIGHUP and POST /reload still do")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vaurien run: unexpected argument %q (use -c FILE)\n", fs.Arg(0))
		return 2
	}
	return runFileToxiproxy(ctx, *path, *level, *format, *toxi, *noWatch, stderr)
}

func runFile(ctx context.Context, path, level, format string, noWatch bool, stderr io.Writer) int {
	f, err := config.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(stderr, missingConfig, path)
		return 1
	}
	if err != nil {
		printConfigError(stderr, path, err)
		return 1
	}
	f.Watch = f.Watch && !noWatch
	return serve(ctx, f, level, format, "-", stderr)
}

// serve runs a validated configuration until a signal stops it.
// prepare, when given, sets the app up before it starts (e.g. preloads
// Toxiproxy proxies); an error ends the run with exit code 1.
func serve(ctx context.Context, f *config.File, level, format, output string, stderr io.Writer, prepare ...func(*app.App) error) int {
	if level != "" {
		f.Log.Level = level
	}
	if format != "" {
		f.Log.Format = format
	}
	out, err := logging.Output(output)
	if err != nil {
		fmt.Fprintf(stderr, "vaurien: %v\n", err)
		return 1
	}
	log, err := logging.New(out, f.Log.Level, f.Log.Format)
	if err != nil {
		fmt.Fprintf(stderr, "vaurien: %v\n", err)
		return 2
	}
	m := metrics.New(prometheus.NewRegistry())
	a := app.New(f, log, m)
	a.SetMetricsHandler(m.Handler())
	for _, p := range prepare {
		if err := p(a); err != nil {
			fmt.Fprintf(stderr, "vaurien: %v\n", err)
			return 1
		}
	}
	if err := a.Run(ctx); err != nil {
		log.Error().Err(err).Msg("vaurien failed to start")
		fmt.Fprintf(stderr, "vaurien: %v\n", err)
		return 1
	}
	return 0
}

func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vaurien validate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfgPath := fs.String("config", "", "check the files as experiments on the routes of this configuration")
	fs.StringVar(cfgPath, "c", "", "same as --config")
	files, err := parseInterspersed(fs, args)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "vaurien validate: %v\n", err)
		return 2
	case len(files) == 0 && *cfgPath == "":
		fmt.Fprintln(stderr, "vaurien validate: give one or more files")
		return 2
	}
	valid := func(p string, err error) int {
		if err != nil {
			printConfigError(stderr, p, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: valid\n", p)
		return 0
	}
	if *cfgPath == "" {
		code := 0
		for _, p := range files {
			_, err := config.Load(p)
			code = max(code, valid(p, err))
		}
		return code
	}
	// An experiment file names routes it does not declare: it is valid
	// only against the configuration whose routes it steers.
	cfg, err := config.Load(*cfgPath)
	if valid(*cfgPath, err) != 0 {
		return 1
	}
	code := 0
	for _, p := range files {
		if sameFile(p, cfg.Path) {
			continue
		}
		_, err := experimentsFor(p, cfg)
		code = max(code, valid(p, err))
	}
	return code
}

func convertCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "vaurien convert: give one original Vaurien .ini file")
		return 2
	}
	out, err := config.ConvertINI(args[0])
	if err != nil {
		printConfigError(stderr, args[0], err)
		return 1
	}
	stdout.Write(out)
	return 0
}

// missingConfig says what to do when the configuration file is not there,
// which is what a first run without arguments outside a checkout meets.
const missingConfig = `vaurien: no configuration file %q.
  Point at one:   vaurien run -c FILE   (or VAURIEN_CONFIG=FILE vaurien)
  Write one:      vaurien behaviors and vaurien protocols list what a route can use;
                  vaurien convert OLD.ini > vaurien.hcl turns an original Vaurien file into one
  Try the demo:   vaurien --protocol http --proxy 127.0.0.1:8000 --backend demo:http \
                          --behavior 50:delay --behavior-delay-sleep 0.5
                  then curl http://127.0.0.1:8000/ (a built-in backend; half the requests wait 500ms)
`

// printConfigError writes each diagnostic as "file:line:col: summary: detail".
func printConfigError(w io.Writer, path string, err error) {
	if path == "" { // the command line, not a file
		fmt.Fprintf(w, "vaurien: %v\n", err)
		return
	}
	for _, line := range config.DiagnosticLines(path, err) {
		fmt.Fprintln(w, line)
	}
}
