package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vaurien-go/vaurien/pkg/app"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/toxiproxy"
	"github.com/vaurien-go/vaurien/pkg/version"
)

// toxiproxyOnly are the flags of toxiproxy-server that the original
// Vaurien never had: any of them on the command line means that vaurien
// stands in for a Toxiproxy server.
var toxiproxyOnly = []string{"host", "port", "proxy-metrics", "runtime-metrics"}

// isToxiproxyMode reports whether args are toxiproxy-server's: -host,
// -port or its metrics flags, or -config naming a .json proxy list (the
// original Vaurien's -config is an .ini or .hcl file).
func isToxiproxyMode(args []string) bool {
	if len(args) == 0 || !strings.HasPrefix(args[0], "-") {
		return false
	}
	for i, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if slices.Contains(toxiproxyOnly, name) {
			return true
		}
		if name == "config" {
			if !hasValue && i+1 < len(args) {
				value = args[i+1]
			}
			if strings.EqualFold(filepath.Ext(value), ".json") {
				return true
			}
		}
	}
	return false
}

// toxiproxyServer runs vaurien as a drop-in Toxiproxy server: the
// Toxiproxy API on host:port, the proxies of the -config JSON list, no
// HCL file. -admin also starts vaurien's own admin API.
func toxiproxyServer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vaurien (Toxiproxy mode)", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := fs.String("host", "localhost", "host for the Toxiproxy API to listen on")
	port := fs.String("port", "8474", "port for the Toxiproxy API to listen on")
	proxies := fs.String("config", "", "JSON file of proxies to create on startup (Toxiproxy's format)")
	seed := fs.Int64("seed", 0, "seed of the toxicity draws (0: time-based)")
	printVersion := fs.Bool("version", false, "print the version and exit")
	adminAddr := fs.String("admin", "", "also serve vaurien's admin API on this address")
	fs.Bool("proxy-metrics", false, "accepted for compatibility with toxiproxy-server; vaurien's metrics are on its admin API")
	fs.Bool("runtime-metrics", false, "accepted for compatibility with toxiproxy-server; vaurien's metrics are on its admin API")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vaurien: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *printVersion {
		fmt.Fprintf(stdout, "toxiproxy-server version %s (%s)\n", version.Version, version.String())
		return 0
	}
	if _, err := strconv.ParseUint(*port, 10, 16); err != nil {
		fmt.Fprintf(stderr, "vaurien: -port %q is not a port number\n", *port)
		return 2
	}
	var specs []toxiproxy.ProxySpec
	if *proxies != "" {
		var err error
		if specs, err = readProxyFile(*proxies); err != nil {
			fmt.Fprintf(stderr, "vaurien: %v\n", err)
			return 1
		}
	}
	f := &config.File{
		Toxiproxy: config.Toxiproxy{Listen: net.JoinHostPort(*host, *port)},
		Admin:     config.Admin{Listen: *adminAddr},
		Log:       config.Log{Level: toxiproxyLogLevel(), Format: config.DefaultLogFormat},
		Seed:      uint64(*seed),
		Drain:     config.DefaultDrain,
	}
	return serve(ctx, f, "", "", "-", stderr, func(a *app.App) error { return a.Toxiproxy().Preload(specs) })
}

func readProxyFile(path string) ([]toxiproxy.ProxySpec, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read proxies: %w", err)
	}
	defer file.Close()
	specs, err := toxiproxy.ReadProxies(file)
	if err != nil {
		return nil, fmt.Errorf("read proxies from %s: %w", path, err)
	}
	return specs, nil
}

// toxiproxyLogLevel reads toxiproxy-server's LOG_LEVEL when vaurien knows
// the level.
func toxiproxyLogLevel() string {
	if l := strings.ToLower(os.Getenv("LOG_LEVEL")); slices.Contains(config.LogLevels, l) {
		return l
	}
	return config.DefaultLogLevel
}

// runFileToxiproxy is runFile with the Toxiproxy API's address of
// "vaurien run --toxiproxy ADDR", which wins over the file's.
func runFileToxiproxy(ctx context.Context, path, level, format, toxi string, noWatch bool, stderr io.Writer) int {
	if toxi == "" {
		return runFile(ctx, path, level, format, noWatch, stderr)
	}
	if _, p, err := net.SplitHostPort(toxi); err != nil || p == "" {
		fmt.Fprintf(stderr, "vaurien run: --toxiproxy %q: want host:port, such as 127.0.0.1:8474\n", toxi)
		return 2
	}
	f, err := config.Load(path)
	if err != nil {
		printConfigError(stderr, path, err)
		return 1
	}
	f.Toxiproxy.Listen = toxi
	f.Watch = f.Watch && !noWatch
	return serve(ctx, f, level, format, "-", stderr)
}
