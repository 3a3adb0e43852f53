package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/client"
	"github.com/vaurien-go/vaurien/pkg/config"
)

const ctlUsage = `vaurien ctl — drive a running vaurien through its admin API

Usage:
  vaurien ctl [--admin ADDR ...] [--token TOKEN] [--json] COMMAND [ARGS]

Commands:
  routes                          list the routes with their mixes and counters
  show ROUTE                      one route: addresses, live and configured mix, counters
  set ROUTE BEHAVIOR [--opt KEY=VALUE ...] [--percent N] [--for DURATION]
                                  make ROUTE's mix BEHAVIOR at N percent (default 100),
                                  with options; --for 30s reverts by itself after 30s.
                                  BEHAVIOR may be a mix, "20:delay,5:error", whose
                                  options are written --opt delay.sleep=2
  reset [ROUTE]                   return ROUTE, or every route, to the file
  backend ROUTE ADDR              point ROUTE's new connections at ADDR (host:port)
  disable ROUTE                   stop ROUTE listening; clients get connection refused
  enable ROUTE                    make ROUTE listen again
  reload                          re-read the configuration file
  experiments                     list the experiments and their latest runs
  experiment NAME                 an experiment's live status and SLO verdicts
  start NAME                      start an experiment of the configuration file
  stop NAME                       stop a running experiment; it rolls back

Flags (anywhere on the line):
  --admin ADDR     admin API address; default $VAURIEN_ADMIN, else 127.0.0.1:8080.
                   Several replicas: repeat it, or separate addresses by commas,
                   or give dns:NAME:PORT for every address NAME resolves to
                   (a headless Service). Every replica acts at once; the answer
                   is reported per replica, and ctl exits 1 naming any that failed
  --token TOKEN    admin token for changes; default $VAURIEN_ADMIN_TOKEN
  --json           print the API's JSON instead of tables
`

// ctlTimeout bounds one ctl call.
const ctlTimeout = 30 * time.Second

type ctlFlags struct {
	admins   []string
	token    string
	json     bool
	opts     []string
	percent  float64
	duration string
	fs       *flag.FlagSet
}

func (f *ctlFlags) set(name string) bool {
	found := false
	f.fs.Visit(func(fl *flag.Flag) { found = found || fl.Name == name })
	return found
}

func ctlCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := &ctlFlags{fs: flag.NewFlagSet("vaurien ctl", flag.ContinueOnError)}
	fs := f.fs
	fs.SetOutput(io.Discard)
	fs.Func("admin", "admin API address (repeatable, comma-separated, or dns:NAME:PORT)", func(s string) error {
		f.admins = append(f.admins, s)
		return nil
	})
	fs.StringVar(&f.token, "token", os.Getenv("VAURIEN_ADMIN_TOKEN"), "admin token")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	fs.Func("opt", "behavior option KEY=VALUE (repeatable)", func(s string) error {
		f.opts = append(f.opts, s)
		return nil
	})
	fs.Float64Var(&f.percent, "percent", 100, "share of the draws")
	fs.StringVar(&f.duration, "for", "", "revert after this long")
	pos, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp) || (err == nil && len(pos) > 0 && pos[0] == "help"):
		fmt.Fprint(stdout, ctlUsage)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "vaurien ctl: %v\n\n%s", err, ctlUsage)
		return 2
	case len(pos) == 0:
		fmt.Fprintf(stderr, "vaurien ctl: give a command\n\n%s", ctlUsage)
		return 2
	}
	if len(f.admins) == 0 {
		f.admins = []string{cmp.Or(os.Getenv("VAURIEN_ADMIN"), config.DefaultAdminListen)}
	}
	ctx, cancel := context.WithTimeout(ctx, ctlTimeout)
	defer cancel()
	addrs, err := client.ResolveAddrs(ctx, f.admins, nil)
	if err != nil {
		fmt.Fprintf(stderr, "vaurien ctl: %v\n", err)
		return 2
	}
	for i, a := range addrs {
		addrs[i] = dialAddr(a)
	}
	fleet := client.NewFleet(addrs, client.WithToken(f.token))
	defer fleet.Close()

	cmd, rest := pos[0], pos[1:]
	if cmd != "set" && (len(f.opts) > 0 || f.set("percent") || f.set("for")) {
		fmt.Fprintf(stderr, "vaurien ctl: --opt, --percent and --for go with the set command only\n")
		return 2
	}
	want := map[string][2]int{ // command: min and max arguments
		"routes": {0, 0}, "show": {1, 1}, "set": {2, 2}, "reset": {0, 1},
		"backend": {2, 2}, "disable": {1, 1}, "enable": {1, 1}, "reload": {0, 0},
		"experiments": {0, 0}, "experiment": {1, 1}, "start": {1, 1}, "stop": {1, 1},
	}
	n, ok := want[cmd]
	if !ok {
		fmt.Fprintf(stderr, "vaurien ctl: unknown command %q\n\n%s", cmd, ctlUsage)
		return 2
	}
	if len(rest) < n[0] || len(rest) > n[1] {
		fmt.Fprintf(stderr, "vaurien ctl %s: wrong number of arguments\n\n%s", cmd, ctlUsage)
		return 2
	}

	var mix client.Mix
	var d time.Duration
	if cmd == "set" {
		if mix, d, err = f.mix(rest[1]); err != nil {
			fmt.Fprintf(stderr, "vaurien ctl set: %v\n", err)
			return 2
		}
	}
	call := func(ctx context.Context, c *client.Client) (out any, err error) {
		switch cmd {
		case "routes":
			out, err = c.Routes(ctx)
		case "show":
			out, err = c.Route(ctx, rest[0])
		case "set":
			out, err = c.SetMix(ctx, rest[0], mix, d)
		case "reset":
			if len(rest) == 1 {
				out, err = c.ResetRoute(ctx, rest[0])
			} else {
				out, err = c.ResetAll(ctx)
			}
		case "backend":
			out, err = c.SetRouteBackend(ctx, rest[0], rest[1])
		case "disable":
			out, err = c.DisableRoute(ctx, rest[0])
		case "enable":
			out, err = c.EnableRoute(ctx, rest[0])
		case "reload":
			out, err = c.Reload(ctx)
		case "experiments":
			out, err = c.Experiments(ctx)
		case "experiment":
			out, err = c.Experiment(ctx, rest[0])
		case "start":
			out, err = c.StartExperiment(ctx, rest[0])
		case "stop":
			out, err = c.StopExperiment(ctx, rest[0])
		}
		return out, err
	}
	if len(fleet.Clients()) > 1 {
		return ctlFleet(ctx, fleet, cmd, call, f.json, stdout, stderr)
	}
	out, err := call(ctx, fleet.Clients()[0])
	if err != nil {
		fmt.Fprintf(stderr, "vaurien ctl %s: %s\n", cmd, apiMessage(err))
		return 1
	}
	if f.json {
		printJSON(stdout, out)
		return 0
	}
	printAnswer(stdout, out)
	return 0
}

// apiMessage is the server's message of a refused call, with its status,
// or the error itself.
func apiMessage(err error) string {
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("%s (HTTP %d)", apiErr.Message, apiErr.Status)
	}
	return err.Error()
}

func printJSON(w io.Writer, out any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	switch v := out.(type) {
	case []client.Route:
		out = map[string]any{"routes": v}
	case []client.Experiment:
		out = map[string]any{"experiments": v}
	}
	enc.Encode(out)
}

func printAnswer(w io.Writer, out any) {
	switch v := out.(type) {
	case []client.Route:
		printRoutes(w, v)
	case *client.Route:
		printRoute(w, v)
	case []client.Experiment:
		printExperiments(w, v)
	case *client.ExperimentStatus:
		printExperiment(w, v)
	}
}

// ctlFleet runs a command on every replica at once and reports each
// replica's answer under its address; it exits 1 naming the replicas that
// failed, after the others have acted.
func ctlFleet(ctx context.Context, fleet *client.Fleet, cmd string, call func(context.Context, *client.Client) (any, error), asJSON bool, stdout, stderr io.Writer) int {
	rs := client.Each(ctx, fleet, call)
	if asJSON {
		type replica struct {
			Admin  string `json:"admin"`
			Answer any    `json:"answer,omitempty"`
			Error  string `json:"error,omitempty"`
		}
		out := make([]replica, len(rs))
		for i, r := range rs {
			out[i] = replica{Admin: r.Addr, Answer: r.Value}
			if r.Err != nil {
				out[i].Error = apiMessage(r.Err)
			}
		}
		printJSON(stdout, map[string]any{"replicas": out})
	} else {
		for _, r := range rs {
			if r.Err != nil {
				fmt.Fprintf(stdout, "== %s: failed: %s\n", r.Addr, apiMessage(r.Err))
				continue
			}
			fmt.Fprintf(stdout, "== %s: ok\n", r.Addr)
			printAnswer(stdout, r.Value)
		}
	}
	var ferr *client.FleetError
	if errors.As(client.Failed("ctl "+cmd, rs), &ferr) {
		fmt.Fprintf(stderr, "vaurien ctl %s: failed on %d of %d replicas: %s\n", cmd, len(ferr.Failed), ferr.Of, strings.Join(ferr.Failed, ", "))
		return 1
	}
	return 0
}

// parseInterspersed lets flags come before, between and after the
// positional arguments, as in "set cache delay --opt sleep=1 --for 30s".
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// mix builds the mix of "set" from its BEHAVIOR argument and flags.
func (f *ctlFlags) mix(arg string) (client.Mix, time.Duration, error) {
	var d time.Duration
	if f.duration != "" {
		var err error
		if d, err = chaos.ParseDuration(f.duration); err != nil || d <= 0 {
			return nil, 0, fmt.Errorf("--for %q: want a positive duration such as 30s", f.duration)
		}
	}
	var mix client.Mix
	if strings.ContainsAny(arg, ":,") {
		shares, err := chaos.ParseShares(arg)
		if err != nil {
			return nil, 0, err
		}
		if f.set("percent") {
			return nil, 0, errors.New("--percent goes with a single behavior; a mix gives each its percent")
		}
		for _, s := range shares {
			mix = append(mix, client.Behavior{Name: s.Name, Percent: s.Percent})
		}
	} else {
		mix = client.Mix{{Name: arg, Percent: f.percent}}
	}
	for _, o := range f.opts {
		key, val, ok := strings.Cut(o, "=")
		if !ok || key == "" {
			return nil, 0, fmt.Errorf("--opt %q: want KEY=VALUE, as in --opt sleep=500ms", o)
		}
		target := -1
		if name, opt, dotted := strings.Cut(key, "."); dotted {
			for i, b := range mix {
				if b.Name == name {
					target, key = i, opt
				}
			}
			if target < 0 {
				return nil, 0, fmt.Errorf("--opt %q: %q is not in the mix %q", o, name, arg)
			}
		} else if len(mix) == 1 {
			target = 0
		} else {
			return nil, 0, fmt.Errorf("--opt %q: with several behaviors, name the one it is for: --opt BEHAVIOR.%s", o, o)
		}
		b := &mix[target]
		if b.Options == nil {
			b.Options = map[string]any{}
		}
		b.Options[key] = optionValue(b.Name, key, val)
	}
	return mix, d, nil
}

// optionValue turns KEY=VALUE text into the JSON value the API expects,
// typed from the option's declaration when this binary knows the
// behavior; otherwise the server gets a JSON literal or the text as is,
// and says what it expected if that is wrong.
func optionValue(behavior, key, text string) any {
	if spec, ok := chaos.LookupBehavior(behavior); ok {
		if o, ok := spec.Options.Lookup(key); ok {
			if v, err := o.Parse(text); err == nil {
				if d, ok := v.(time.Duration); ok {
					return d.String()
				}
				return v
			}
		}
	}
	var v any
	if err := json.Unmarshal([]byte(text), &v); err == nil {
		return v
	}
	return text
}

// mixText writes a mix in the original's syntax, "20:delay,5:error".
func mixText(bs []client.Behavior) string {
	if len(bs) == 0 {
		return "100:dummy"
	}
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = strconv.FormatFloat(b.Percent, 'f', -1, 64) + ":" + b.Name
	}
	return strings.Join(parts, ",")
}

func liveMix(r *client.Route) string {
	s := mixText(client.MixOf(r.Mix))
	if r.RevertsAt != nil {
		s += fmt.Sprintf(" (reverts in %s)", time.Until(*r.RevertsAt).Round(time.Second))
	}
	return s
}

func state(r *client.Route) string {
	s := "enabled"
	if !r.Enabled {
		s = "disabled"
	}
	if r.Default {
		s += ",default"
	}
	return s
}

func printRoutes(w io.Writer, rs []client.Route) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tLISTEN\tBACKEND\tPROTOCOL\tSTATE\tMIX\tACCEPTED\tACTIVE\tREQUESTS\tFAULTS")
	for i := range rs {
		r := &rs[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", r.Name, r.Listen, r.Backend, r.Protocol,
			state(r), liveMix(r), r.Stats.Accepted, r.Stats.Active, r.Stats.Requests, r.Stats.Faults)
	}
	tw.Flush()
}

func printRoute(w io.Writer, r *client.Route) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "route\t%s\n", r.Name)
	fmt.Fprintf(tw, "listen\t%s\n", r.Listen)
	fmt.Fprintf(tw, "backend\t%s\n", r.Backend)
	fmt.Fprintf(tw, "protocol\t%s\n", r.Protocol)
	fmt.Fprintf(tw, "state\t%s\n", state(r))
	fmt.Fprintf(tw, "mix\t%s\n", liveMix(r))
	fmt.Fprintf(tw, "configured mix\t%s\n", mixText(client.MixOf(r.ConfiguredMix)))
	st := r.Stats
	fmt.Fprintf(tw, "connections\taccepted %d, active %d, refused %d, dial errors %d\n", st.Accepted, st.Active, st.Refused, st.DialErrors)
	fmt.Fprintf(tw, "traffic\trequests %d, faults %d, bytes to backend %d, to client %d\n", st.Requests, st.Faults, st.BytesToBackend, st.BytesToClient)
	tw.Flush()
	if len(r.Mix) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BEHAVIOR\tPERCENT\tOPTIONS")
	for _, b := range r.Mix {
		var opts []string
		for _, k := range slices.Sorted(maps.Keys(b.Options)) {
			opts = append(opts, k+"="+optionText(b.Options[k]))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Name, strconv.FormatFloat(b.Percent, 'f', -1, 64), strings.Join(opts, " "))
	}
	tw.Flush()
}

func optionText(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = optionText(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// dialAddr turns a listen address into one to dial: a wildcard or empty
// host means this machine.
func dialAddr(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// healthcheckCmd is the container's HEALTHCHECK: the image has no shell
// or curl.
func healthcheckCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vaurien healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", os.Getenv("VAURIEN_ADMIN"), "admin API address; default $VAURIEN_ADMIN, else the config file's admin.listen")
	path := fs.String("c", "", "configuration file to read admin.listen from; default $VAURIEN_CONFIG, else ./vaurien.hcl")
	fs.StringVar(path, "config", "", "same as -c")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vaurien healthcheck: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	addr := *admin
	if addr == "" {
		p, explicit := *path, *path != ""
		if !explicit {
			p = defaultConfig()
		}
		f, err := config.Load(p)
		switch {
		case err == nil:
			addr = f.Admin.Listen
		case !explicit && errors.Is(err, os.ErrNotExist):
			addr = config.DefaultAdminListen
		default:
			fmt.Fprintf(stderr, "vaurien healthcheck: %v\n", err)
			return 1
		}
		if addr == "" {
			fmt.Fprintf(stderr, "vaurien healthcheck: %s turns the admin API off\n", p)
			return 1
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := client.New(dialAddr(addr), client.WithHTTPClient(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}))
	if err := c.Health(ctx); err != nil {
		fmt.Fprintf(stderr, "vaurien healthcheck: unhealthy: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "healthy")
	return 0
}
