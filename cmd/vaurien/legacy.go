package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/config"
	"github.com/vaurien-go/vaurien/pkg/version"
)

// legacyFlags are the original Vaurien's command line. Flags the Go
// engine has no use for (pools, buffers, async mode) are accepted so that
// existing scripts keep working.
type legacyFlags struct {
	fs        *flag.FlagSet
	config    string
	version   bool
	http      bool
	httpHost  string
	httpPort  int
	protocol  string
	proxy     string
	backend   string
	behavior  string
	timeout   string
	logLevel  string
	logOutput string
	logFormat string
	seed      uint64
	// --behavior-NAME-OPTION and --protocol-NAME-OPTION values, by name.
	behaviorOpts map[string]map[string]string
	protocolOpts map[string]map[string]string
}

func newLegacyFlags(stderr io.Writer) *legacyFlags {
	l := &legacyFlags{
		fs:           flag.NewFlagSet("vaurien", flag.ContinueOnError),
		behaviorOpts: map[string]map[string]string{},
		protocolOpts: map[string]map[string]string{},
	}
	fs := l.fs
	fs.SetOutput(stderr)
	fs.Usage = func() { printHelp(fs.Output(), fs) }
	fs.StringVar(&l.config, "config", "", "configuration file: vaurien .hcl or original Vaurien .ini")
	fs.BoolVar(&l.version, "version", false, "print the version and exit")
	fs.BoolVar(&l.http, "http", false, "start the admin HTTP API")
	fs.StringVar(&l.httpHost, "http-host", "localhost", "admin API host")
	fs.IntVar(&l.httpPort, "http-port", 8080, "admin API port")
	fs.StringVar(&l.protocol, "protocol", "tcp", "protocol: "+strings.Join(chaos.ProtocolNames(), ", "))
	fs.StringVar(&l.proxy, "proxy", "localhost:8000", "address to listen on")
	fs.StringVar(&l.backend, "backend", "localhost:80", "backend address")
	fs.StringVar(&l.behavior, "behavior", "100:dummy", "mix of behaviors, PERCENT:NAME,... (the rest is dummy)")
	fs.StringVar(&l.timeout, "timeout", "30", "idle timeout of a connection, seconds or a duration (0: none)")
	fs.StringVar(&l.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&l.logOutput, "log-output", "-", "log destination: - for stdout, or a file")
	fs.StringVar(&l.logFormat, "log-format", "json", "log format: json or console")
	fs.Uint64Var(&l.seed, "seed", 0, "random seed for behavior draws (0: time-based)")
	for _, name := range []string{"bufsize", "pool-max-size", "pool-timeout", "backlog"} {
		fs.String(name, "", "accepted for compatibility with the original Vaurien; no effect")
	}
	for _, name := range []string{"stay-connected", "sync"} {
		fs.Bool(name, false, "accepted for compatibility with the original Vaurien; no effect")
	}
	for _, s := range chaos.Behaviors() {
		for _, o := range s.Options {
			l.optionFlag("behavior", s.Name, o, l.behaviorOpts)
		}
	}
	for _, s := range chaos.Protocols() {
		for _, o := range s.Options {
			l.optionFlag("protocol", s.Name, o, l.protocolOpts)
		}
	}
	return l
}

// optionFlag declares --KIND-NAME-OPTION from an option's declaration, also
// spelled with dashes when the option name has underscores.
func (l *legacyFlags) optionFlag(kind, plugin string, o chaos.Option, into map[string]map[string]string) {
	set := func(s string) error {
		if _, err := o.Parse(s); err != nil {
			return err
		}
		if into[plugin] == nil {
			into[plugin] = map[string]string{}
		}
		into[plugin][o.Name] = s
		return nil
	}
	usage := fmt.Sprintf("%s %s: %s (%s)", kind, plugin, o.Doc, o.Kind)
	names := []string{kind + "-" + plugin + "-" + o.Name}
	if dashed := strings.ReplaceAll(names[0], "_", "-"); dashed != names[0] {
		names = append(names, dashed)
	}
	for _, n := range names {
		l.fs.Func(n, usage, set)
	}
}

func legacy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	l := newLegacyFlags(stderr)
	if err := l.fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if l.fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vaurien: unexpected argument %q\n", l.fs.Arg(0))
		return 2
	}
	if l.version {
		fmt.Fprintln(stdout, version.String())
		return 0
	}
	f, err := l.file()
	if err != nil {
		printConfigError(stderr, l.config, err)
		return 1
	}
	level := ""
	if l.set("log-level") {
		level = l.logLevel
	}
	return serve(ctx, f, level, l.logFormat, l.logOutput, stderr)
}

func (l *legacyFlags) set(name string) bool {
	found := false
	l.fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}

// file builds the configuration: from an original .ini file under the
// flags (the file's values win, as in the original, which read its file
// after its command line); from a vaurien .hcl file with the flags that
// were set on the command line overriding its default route; else from the
// flags alone, as one route named "default".
func (l *legacyFlags) file() (*config.File, error) {
	if strings.EqualFold(filepath.Ext(l.config), ".ini") {
		f, err := config.LoadINIUnder(l.config, l.iniUnder())
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	var f *config.File
	if l.config != "" {
		var err error
		if f, err = config.Load(l.config); err != nil {
			return nil, err
		}
	} else {
		// As in the original, the admin API runs only with --http.
		f = &config.File{
			Log:    config.Log{Level: "info", Format: "json"},
			Drain:  10 * time.Second,
			Routes: []config.Route{{Name: "default", Default: true, Listen: l.proxy, Backend: l.backend, Protocol: l.protocol, ConnectTimeout: 5 * time.Second}},
		}
	}
	r := f.DefaultRoute()
	if r == nil {
		return nil, fmt.Errorf("%s declares several routes and none is marked default = true: the single-route flags do not know which to change", l.config)
	}
	override := l.config == ""
	if override || l.set("proxy") {
		r.Listen = l.proxy
	}
	if override || l.set("backend") {
		r.Backend = l.backend
	}
	if override || l.set("protocol") || len(l.protocolOpts) > 0 {
		if l.set("protocol") || override {
			r.Protocol = l.protocol
		}
		spec, ok := chaos.LookupProtocol(r.Protocol)
		if !ok {
			return nil, &chaos.UnknownError{What: "protocol", Name: r.Protocol, Valid: chaos.ProtocolNames()}
		}
		v, err := spec.Options.ResolveText(r.Protocol, l.protocolOpts[r.Protocol])
		if err != nil {
			return nil, err
		}
		r.ProtocolOptions = v
	}
	if override || l.set("timeout") {
		d, err := chaos.ParseDuration(l.timeout)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("--timeout %q: want seconds or a duration such as \"30s\"", l.timeout)
		}
		r.Timeout = d
	}
	if override || l.set("behavior") || len(l.behaviorOpts) > 0 {
		bs, err := l.behaviors()
		if err != nil {
			return nil, err
		}
		if override || l.set("behavior") {
			r.Behaviors = bs
		}
	}
	if l.set("seed") {
		f.Seed = l.seed
	}
	if l.http {
		f.Admin.Listen = net.JoinHostPort(l.httpHost, strconv.Itoa(l.httpPort))
	}
	return f, nil
}

// iniUnder is what was set on the command line, as the sections and keys
// of an original .ini file.
func (l *legacyFlags) iniUnder() map[string]map[string]string {
	main := map[string]string{}
	for flagName, key := range map[string]string{
		"proxy": "proxy", "backend": "backend", "protocol": "protocol", "behavior": "behavior",
		"timeout": "timeout", "seed": "seed", "http-host": "http_host", "http-port": "http_port",
	} {
		if f := l.fs.Lookup(flagName); f != nil && l.set(flagName) {
			main[key] = f.Value.String()
		}
	}
	if l.http {
		main["http"] = "true"
	}
	under := map[string]map[string]string{"vaurien": main}
	for name, opts := range l.behaviorOpts {
		under["behavior:"+name] = opts
	}
	for name, opts := range l.protocolOpts {
		under["protocol:"+name] = opts
	}
	return under
}

func (l *legacyFlags) behaviors() ([]config.Behavior, error) {
	shares, err := chaos.ParseShares(l.behavior)
	if err != nil {
		return nil, fmt.Errorf("--behavior: %w", err)
	}
	var out []config.Behavior
	sum := 0.0
	for _, s := range shares {
		spec, ok := chaos.LookupBehavior(s.Name)
		if !ok {
			return nil, fmt.Errorf("--behavior: %w", &chaos.UnknownError{What: "behavior", Name: s.Name, Valid: chaos.BehaviorNames()})
		}
		v, err := spec.Options.ResolveText(s.Name, l.behaviorOpts[s.Name])
		if err != nil {
			return nil, err
		}
		sum += s.Percent
		out = append(out, config.Behavior{Name: s.Name, Percent: s.Percent, Options: v})
	}
	if sum > 100 {
		return nil, fmt.Errorf("--behavior %q: the percentages add up to %v; the most is 100 (the rest is dummy)", l.behavior, sum)
	}
	return out, nil
}
