// Command custom-behavior is a custom build of vaurien: every built-in
// behavior and protocol, plus a behavior of its own, "uppercase", registered
// with one call (see uppercase.go). It runs the routes of an HCL file the
// way `vaurien run` does, from vaurien's packages:
//
//	go run ./examples/custom-behavior -c examples/custom-behavior/vaurien.hcl
//	go run ./examples/custom-behavior behaviors   # the catalog, uppercase included
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/catalog"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/logging"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard" // the built-in behaviors and protocols
)

const usage = `custom-behavior — vaurien with an extra "uppercase" behavior

Usage:
  custom-behavior [-c FILE] [-log-level L] [-log-format F]   run the routes of FILE
  custom-behavior behaviors                                  list the behaviors
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit, so that tests can drive it. Logs go to
// stdout; they stop when ctx ends or on SIGINT/SIGTERM.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("custom-behavior", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	path := fs.String("c", "vaurien.hcl", "configuration file (.hcl or original .ini)")
	level := fs.String("log-level", "", "override the file's log level: debug, info, warn, error")
	format := fs.String("log-format", "", "override the file's log format: json, console")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch fs.Arg(0) {
	case "":
	case "behaviors":
		catalog.BehaviorsText(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "custom-behavior: unknown command %q\n\n%s", fs.Arg(0), usage)
		return 2
	}

	// config.Load validates the file against the registry, which now holds
	// uppercase: its options are checked like a built-in's.
	f, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "custom-behavior: %v\n", err)
		return 1
	}
	if *level != "" {
		f.Log.Level = *level
	}
	if *format != "" {
		f.Log.Format = *format
	}
	log, err := logging.New(stdout, f.Log.Level, f.Log.Format)
	if err != nil {
		fmt.Fprintf(stderr, "custom-behavior: %v\n", err)
		return 2
	}
	if err := app.New(f, log).Run(ctx); err != nil {
		fmt.Fprintf(stderr, "custom-behavior: %v\n", err)
		return 1
	}
	return 0
}
