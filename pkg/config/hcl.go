package config

import (
	"fmt"
	"math"
	"math/big"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/selfloop"
	"github.com/vaurien-go/vaurien/pkg/tlsroute"
)

// The raw structs are the first decoding phase: gohcl checks the file's
// structure (unknown blocks and arguments, with "Did you mean" suggestions,
// duplicate singleton blocks, missing labels) while values stay unevaluated
// expressions, so that each can be checked with a diagnostic on its own
// range and a bad value is reported once.
type rawFile struct {
	Admin     *rawAdmin      `hcl:"admin,block"`
	Toxiproxy *rawToxiproxy  `hcl:"toxiproxy,block"`
	Log       *rawLog        `hcl:"log,block"`
	Seed      hcl.Expression `hcl:"seed,optional"`
	Drain     hcl.Expression `hcl:"drain,optional"`
	Watch     hcl.Expression `hcl:"watch,optional"`
	Routes    []rawRoute     `hcl:"route,block"`
	// Experiments are decoded after the routes they act on.
	Experiments []rawExperiment `hcl:"experiment,block"`
}

type rawToxiproxy struct {
	TypeRange hcl.Range      `hcl:",type_range"`
	Listen    hcl.Expression `hcl:"listen,optional"`
	Token     hcl.Expression `hcl:"token,optional"`
}

type rawAdmin struct {
	Listen       hcl.Expression `hcl:"listen,optional"`
	Token        hcl.Expression `hcl:"token,optional"`
	AllowedHosts hcl.Expression `hcl:"allowed_hosts,optional"`
}

type rawLog struct {
	Level  hcl.Expression `hcl:"level,optional"`
	Format hcl.Expression `hcl:"format,optional"`
}

type rawRoute struct {
	Name            string         `hcl:"name,label"`
	NameRange       hcl.Range      `hcl:"name,label_range"`
	Listen          hcl.Expression `hcl:"listen"`
	Backend         hcl.Expression `hcl:"backend"`
	Protocol        hcl.Expression `hcl:"protocol,optional"`
	Timeout         hcl.Expression `hcl:"timeout,optional"`
	ConnectTimeout  hcl.Expression `hcl:"connect_timeout,optional"`
	MaxConnections  hcl.Expression `hcl:"max_connections,optional"`
	Default         hcl.Expression `hcl:"default,optional"`
	ProtocolOptions *rawOptions    `hcl:"protocol_options,block"`
	TLS             *rawOptions    `hcl:"tls,block"`
	BackendTLS      *rawOptions    `hcl:"backend_tls,block"`
	Behaviors       []rawBehavior  `hcl:"behavior,block"`
}

type rawOptions struct {
	TypeRange hcl.Range `hcl:",type_range"`
	Body      hcl.Body  `hcl:",remain"`
}

// rawBehavior keeps its body for the second phase, when the label has been
// looked up and the behavior's declared options give the schema.
type rawBehavior struct {
	Name      string    `hcl:"name,label"`
	NameRange hcl.Range `hcl:"name,label_range"`
	Body      hcl.Body  `hcl:",remain"`
}

// percentAttr is the one argument every behavior block holds besides the
// behavior's own options (and an optional match block).
const percentAttr = "percent"

// Parse reads a configuration in HCL. filename is used in diagnostics and
// as File.Path. The error, if any, is hcl.Diagnostics.
func Parse(src []byte, filename string) (*File, error) {
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		// The rest of a file that does not parse would only add noise.
		return nil, finish(diags)
	}
	d := &decoder{ctx: evalContext(), diags: diags}
	var raw rawFile
	d.add(gohcl.DecodeBody(file.Body, d.ctx, &raw)...)
	f := newFile(filename)
	d.file(&raw, f)
	if err := finish(d.diags); err != nil {
		return nil, err
	}
	return f, nil
}

// listener is a listen address and where it was set, for conflict checks.
type listener struct {
	addr  string
	rng   *hcl.Range // nil for the admin API's default
	owner string
}

// where says where a listener's address was set, for diagnostics.
func (l listener) where() string {
	if l.rng == nil {
		return "by default"
	}
	return "at " + l.rng.String()
}

func (d *decoder) file(raw *rawFile, f *File) {
	if u, st := d.seed(raw.Seed, "42", "a time-based seed"); st == present {
		f.Seed = u
	}
	if v, st := d.duration(raw.Drain, "drain"); st == present {
		f.Drain = v
	}
	if v, st := d.boolean(raw.Watch, "watch"); st == present {
		f.Watch = v
	}

	listeners := []listener{{addr: f.Admin.Listen, owner: "the admin API"}}
	if raw.Admin != nil {
		if s, st := d.str(raw.Admin.Listen, "listen", `"127.0.0.1:8080"`); st == present {
			rng := raw.Admin.Listen.Range()
			if s == "" {
				// An empty address turns the admin API off; it then
				// conflicts with nothing (listenConflict rejects "").
				f.Admin.Listen = ""
				listeners[0].addr = ""
			} else if err := checkAddress(s, listenAddr); err != nil {
				d.errorf(rng, "Invalid listen address", "The admin API's listen address must be host:port with a numeric port, such as \"127.0.0.1:8080\"; %s.", err)
			} else {
				f.Admin.Listen = s
				listeners[0] = listener{addr: s, rng: &rng, owner: "the admin API"}
			}
		}
		if s, st := d.str(raw.Admin.Token, "token", `env("VAURIEN_ADMIN_TOKEN")`); st == present {
			f.Admin.Token = s
		}
		f.Admin.AllowedHosts = d.hostNames(raw.Admin.AllowedHosts, "allowed_hosts")
	}
	if raw.Toxiproxy != nil {
		// A toxiproxy block turns the API on; its address defaults to
		// Toxiproxy's own.
		s, st := d.str(raw.Toxiproxy.Listen, "listen", `"127.0.0.1:8474"`)
		rng := raw.Toxiproxy.TypeRange
		if st == present {
			rng = raw.Toxiproxy.Listen.Range()
		} else if st == absent {
			s = DefaultToxiproxyListen
		}
		if st != failed {
			switch err := checkAddress(s, listenAddr); {
			case err != nil:
				d.errorf(rng, "Invalid listen address", "The Toxiproxy API's listen address must be host:port with a numeric port, such as \"127.0.0.1:8474\"; %s.", err)
			case listenConflict(listeners[0].addr, s):
				d.errorf(rng, "Duplicate listen address", "The Toxiproxy API listens on %q, which %s already uses (%q, set %s). Give it its own port.", s, listeners[0].owner, listeners[0].addr, listeners[0].where())
			default:
				f.Toxiproxy.Listen = s
				listeners = append(listeners, listener{addr: s, rng: &rng, owner: "the Toxiproxy API"})
			}
		}
		if s, st := d.str(raw.Toxiproxy.Token, "token", `env("TOXIPROXY_AUTH_TOKEN")`); st == present {
			f.Toxiproxy.Token = s
		}
	}
	if raw.Log != nil {
		if s, st := d.oneOf(raw.Log.Level, "level", `"info"`, "log level", LogLevels); st == present {
			f.Log.Level = s
		}
		if s, st := d.oneOf(raw.Log.Format, "format", `"json"`, "log format", LogFormats); st == present {
			f.Log.Format = s
		}
	}

	names := map[string]hcl.Range{}
	var firstDefault *hcl.Range
	var backends []*hcl.Range // of each route, nil when not valid
	for i := range raw.Routes {
		rr := &raw.Routes[i]
		r, meta := d.route(rr)
		if prev, dup := names[r.Name]; dup {
			d.errorf(rr.NameRange, "Duplicate route name", "A route named %q is already defined at %s. Give each route a unique name.", r.Name, prev)
		} else {
			names[r.Name] = rr.NameRange
		}
		if meta.listen != nil {
			owner := fmt.Sprintf("route %q", r.Name)
			for _, l := range listeners {
				if !listenConflict(l.addr, r.Listen) {
					continue
				}
				d.errorf(*meta.listen, "Duplicate listen address", "%s listens on %q, which %s already uses (%q, set %s). Give each route its own port.", capitalize(owner), r.Listen, l.owner, l.addr, l.where())
				break
			}
			listeners = append(listeners, listener{addr: r.Listen, rng: meta.listen, owner: owner})
		}
		if r.Default {
			if firstDefault != nil {
				d.errorf(*meta.dflt, "More than one default route", "Another route is already marked default at %s. Only one route may set default = true: the one the original single-route API acts on.", firstDefault)
			} else {
				firstDefault = meta.dflt
			}
		}
		f.Routes = append(f.Routes, r)
		backends = append(backends, meta.backend)
	}
	d.selfLoops(f, listeners, backends)
	routes := make([]string, len(f.Routes))
	d.protocols = map[string]string{}
	for i, r := range f.Routes {
		routes[i] = r.Name
		d.protocols[r.Name] = r.Protocol
	}
	f.Experiments = d.experiments(raw.Experiments, routes)
}

// selfLoops refuses a backend that is one of the file's own listen
// addresses: the route would connect to vaurien itself, for every
// connection, until the process ran out of file descriptors.
func (d *decoder) selfLoops(f *File, listeners []listener, backends []*hcl.Range) {
	addrs := make([]string, len(listeners))
	for i, l := range listeners {
		addrs[i] = l.addr
	}
	for i, r := range f.Routes {
		if backends[i] == nil || r.Backend == DemoBackend {
			continue
		}
		if j := selfloop.Find(r.Backend, addrs); j >= 0 {
			l := listeners[j]
			d.errorf(*backends[i], "Backend is vaurien itself", "The backend of route %q, %q, reaches %q, where %s listens (set %s): the route would connect to itself for every connection until vaurien runs out of file descriptors. Point it at the real server, such as \"redis:6379\".", r.Name, r.Backend, l.addr, l.owner, l.where())
		}
	}
}

// routeMeta holds the ranges of a decoded route that cross-route checks
// point at; a nil range means the value was not valid.
type routeMeta struct {
	listen  *hcl.Range
	backend *hcl.Range
	dflt    *hcl.Range
}

func (d *decoder) route(raw *rawRoute) (Route, routeMeta) {
	var meta routeMeta
	r := Route{
		Name:           raw.Name,
		Protocol:       DefaultProtocol,
		ConnectTimeout: DefaultConnectTimeout,
	}
	if err := checkRouteName(raw.Name); err != nil {
		d.errorf(raw.NameRange, "Invalid route name", "The route name %q is used in API paths and metric labels, so it must start with a letter or digit and hold only letters, digits, '_', '-' and '.', at most 64 characters.", raw.Name)
	}

	if s, st := d.str(raw.Listen, "listen", `"127.0.0.1:8000"`); st == present {
		rng := raw.Listen.Range()
		if err := checkAddress(s, listenAddr); err != nil {
			d.errorf(rng, "Invalid listen address", "The listen address of route %q must be host:port with a numeric port from 0 to 65535, such as \"127.0.0.1:8000\" or \":8000\"; %s.", r.Name, err)
		} else {
			r.Listen = s
			meta.listen = &rng
		}
	} else if st == absent && raw.Listen != nil {
		d.errorf(raw.Listen.Range(), "Missing listen address", "Route %q needs a listen address, such as \"127.0.0.1:8000\".", r.Name)
	}
	if s, st := d.str(raw.Backend, "backend", `"localhost:6379"`); st == present {
		if err := checkAddress(s, backendAddr); err != nil {
			d.errorf(raw.Backend.Range(), "Invalid backend address", "The backend of route %q must be host:port with a numeric port from 1 to 65535, such as \"localhost:6379\", or %q for the built-in demo server; %s.", r.Name, DemoBackend, err)
		} else {
			r.Backend = s
			rng := raw.Backend.Range()
			meta.backend = &rng
		}
	} else if st == absent && raw.Backend != nil {
		d.errorf(raw.Backend.Range(), "Missing backend address", "Route %q needs a backend address, such as \"localhost:6379\".", r.Name)
	}
	if v, st := d.duration(raw.Timeout, "timeout"); st == present {
		r.Timeout = v
	}
	if v, st := d.duration(raw.ConnectTimeout, "connect_timeout"); st == present {
		r.ConnectTimeout = v
	}
	if n, st := d.number(raw.MaxConnections, "max_connections", "1000"); st == present {
		i, acc := n.Int64()
		switch {
		case n.Sign() < 0:
			d.errorf(raw.MaxConnections.Range(), "Invalid max_connections", "The connection limit of route %q must not be negative; use 0 for no limit.", r.Name)
		case !n.IsInt() || acc != big.Exact || i > math.MaxInt32:
			d.errorf(raw.MaxConnections.Range(), "Invalid max_connections", "The connection limit of route %q must be a whole number from 0 (no limit) to %d; got %s.", r.Name, math.MaxInt32, n.Text('g', 10))
		default:
			r.MaxConnections = int(i)
		}
	}
	if b, st := d.boolean(raw.Default, "default"); st == present {
		r.Default = b
		rng := raw.Default.Range()
		meta.dflt = &rng
	}

	d.protocol(raw, &r)
	d.tls(raw, &r)

	r.Behaviors = d.mix(raw.Behaviors, r.Name, r.Protocol)
	if r.TLS == nil {
		for _, b := range raw.Behaviors {
			if spec, ok := chaos.LookupBehavior(b.Name); ok && spec.Handshake {
				d.errorf(b.NameRange, "Behavior needs TLS", "The %q behavior acts on the TLS handshake of the connections a route accepts, and route %q does not terminate TLS. Give the route a tls block, or remove the behavior.", b.Name, r.Name)
			}
		}
	}
	return r, meta
}

// tls decodes a route's tls and backend_tls blocks against their declared
// options, then checks each block as a whole.
func (d *decoder) tls(raw *rawRoute, r *Route) {
	blocks := []struct {
		raw   *rawOptions
		name  string
		decl  chaos.Options
		check func(chaos.Values) string
		out   *chaos.Values
	}{
		{raw.TLS, "tls", tlsroute.ServerOptions, tlsroute.Check, &r.TLS},
		{raw.BackendTLS, "backend_tls", tlsroute.BackendOptions, tlsroute.CheckBackend, &r.BackendTLS},
	}
	if spec, ok := chaos.LookupProtocol(r.Protocol); ok && spec.TLSBoth != "" && (raw.TLS == nil) != (raw.BackendTLS == nil) {
		at, missing := raw.BackendTLS, "tls"
		if raw.TLS != nil {
			at, missing = raw.TLS, "backend_tls"
		}
		d.errorf(at.TypeRange, "TLS on both sides or neither", "Route %q with protocol %q speaks TLS to its clients and its backend together, or to neither: %s. Add a %s block, or remove this one.", r.Name, r.Protocol, spec.TLSBoth, missing)
		return
	}
	for _, b := range blocks {
		if b.raw == nil {
			continue
		}
		values, _, _, ok := d.options(b.raw.Body, "block", b.name, b.decl, nil)
		if !ok {
			continue
		}
		if msg := b.check(values); msg != "" {
			d.errorf(b.raw.TypeRange, "Invalid "+b.name+" block", "%s", msg)
			continue
		}
		*b.out = values
	}
}

// mix decodes the behavior blocks of a route, or of a route in an
// experiment's step, and checks that their percentages fit in 100. protocol
// is the route's, "" when it is not known.
func (d *decoder) mix(raws []rawBehavior, route, protocol string) []Behavior {
	var out []Behavior
	sum, crossed := 0.0, false
	for i := range raws {
		b, percent, ok := d.behavior(&raws[i], route, protocol)
		if !ok {
			continue
		}
		sum += b.Percent
		if sum > 100+1e-9 && !crossed {
			crossed = true
			d.errorf(*percent, "Percentages over 100", "The behaviors of route %q take %s%% of the draws so far, and at most 100%% can be shared out (the rest passes through as dummy). Lower the percentages.", route, trimFloat(sum))
		}
		out = append(out, b)
	}
	return out
}

func (d *decoder) protocol(raw *rawRoute, r *Route) {
	name, st := d.str(raw.Protocol, "protocol", `"tcp"`)
	if st == present {
		r.Protocol = name
	}
	spec, ok := chaos.LookupProtocol(r.Protocol)
	switch {
	case ok:
		var body hcl.Body = hcl.EmptyBody()
		if raw.ProtocolOptions != nil {
			body = raw.ProtocolOptions.Body
		}
		var good bool
		r.ProtocolOptions, _, _, good = d.options(body, "protocol", r.Protocol, spec.Options, nil)
		// Building the protocol checks what the declarations cannot say
		// (a preset name or a code in an option, say), so that a file
		// that would not start is not valid either.
		if _, err := spec.New(r.ProtocolOptions); good && err != nil {
			rng := raw.Protocol.Range()
			if raw.ProtocolOptions != nil {
				rng = raw.ProtocolOptions.TypeRange
			}
			d.errorf(rng, "Invalid protocol options", "The %s protocol of route %q: %s.", r.Protocol, r.Name, err)
		}
	case st == failed:
	case st == present:
		d.errorf(raw.Protocol.Range(), "Unknown protocol", "%s", unknownName("protocol", name, chaos.ProtocolNames()))
	default:
		// The implied default protocol is not in this build (a test binary
		// without the built-in plugins, say): building the route will say so.
		r.ProtocolOptions = chaos.Values{}
		if raw.ProtocolOptions != nil {
			d.errorf(raw.ProtocolOptions.TypeRange, "Unknown protocol", "Route %q uses the default protocol %q, which this build does not register, so its protocol_options cannot be checked. %s", r.Name, r.Protocol, unknownName("protocol", r.Protocol, chaos.ProtocolNames()))
		}
	}
}

// behavior decodes a behavior block's body against the declared options of
// the behavior its label names. It returns the range of its percent for the
// over-100 check, and false when the block is not usable.
func (d *decoder) behavior(raw *rawBehavior, route, protocol string) (Behavior, *hcl.Range, bool) {
	spec, ok := chaos.LookupBehavior(raw.Name)
	if !ok {
		d.errorf(raw.NameRange, "Unknown behavior", "%s", unknownName("behavior", raw.Name, chaos.BehaviorNames()))
		return Behavior{}, nil, false
	}
	extra := []hcl.AttributeSchema{{Name: percentAttr, Required: true}}
	// Bad options are reported already; the percent still counts towards
	// the route's total, so that an over-100 mix is reported in the same run.
	values, attrs, blocks, good := d.options(raw.Body, "behavior", raw.Name, spec.Options, extra, hcl.BlockHeaderSchema{Type: matchBlock})
	if good {
		// As for protocols: building it checks what the declarations
		// cannot say.
		if _, err := spec.New(values); err != nil {
			d.errorf(raw.NameRange, "Invalid behavior options", "The %q behavior of route %q: %s.", raw.Name, route, err)
		} else if err := chaos.CheckErrorCode(protocol, values); err != nil {
			// Only the route's protocol knows its error codes; the
			// behavior's own check took the code's shape.
			d.errorf(attrRange(raw.Body, chaos.ErrorCodeOption), "Invalid error code", "The %q behavior of route %q: %s.", raw.Name, route, err)
		}
	}
	match, matchOK := d.match(blocks)
	attr := attrs[percentAttr]
	if attr == nil {
		return Behavior{}, nil, false
	}
	n, st := d.number(attr.Expr, percentAttr, "20")
	switch st {
	case failed:
		return Behavior{}, nil, false
	case absent:
		d.errorf(attr.Expr.Range(), "Missing percent", "The %q behavior of route %q needs a percent from 0 to 100: its share of the draws.", raw.Name, route)
		return Behavior{}, nil, false
	}
	p, _ := n.Float64()
	rng := attr.Expr.Range()
	if n.Sign() < 0 || p > 100 {
		d.errorf(rng, "Invalid percent", "The percent of a behavior is its share of the draws, from 0 to 100; got %s.", n.Text('g', 10))
		return Behavior{}, nil, false
	}
	if !matchOK {
		return Behavior{}, nil, false
	}
	return Behavior{Name: raw.Name, Percent: p, Options: values, Match: match}, &rng, true
}

// matchBlock limits a behavior to some requests:
//
//	match {
//	  method = ["POST"]
//	  path   = "/api/*"
//	  header = { "X-Tenant" = "acme" }
//	}
const matchBlock = "match"

// match decodes the behavior's match block, if any.
func (d *decoder) match(blocks hcl.Blocks) (chaos.MatchSpec, bool) {
	var m chaos.MatchSpec
	if len(blocks) == 0 {
		return m, true
	}
	if len(blocks) > 1 {
		d.errorf(blocks[1].DefRange, "Duplicate match block", "A behavior takes one match block; put every condition in the first one.")
		return m, false
	}
	b := blocks[0]
	content, diags := b.Body.Content(&hcl.BodySchema{Attributes: []hcl.AttributeSchema{
		{Name: "method"}, {Name: "path"}, {Name: "header"}, {Name: "command"},
		{Name: "sql"}, {Name: "database"}, {Name: "user"},
	}})
	d.add(diags...)
	if diags.HasErrors() {
		return m, false
	}
	ok := true
	for _, attr := range byPosition(content.Attributes) {
		v, st := d.value(attr.Expr)
		if st != present {
			ok = ok && st == absent
			continue
		}
		if attr.Name == "header" {
			h, good := goValue(v).(map[string]any)
			m.Headers = map[string]string{}
			for k, x := range h {
				s, isStr := x.(string)
				good = good && isStr
				m.Headers[k] = s
			}
			if !good {
				d.errorf(attr.Expr.Range(), "Invalid match header", "header is a map of header names to value globs, such as { \"X-Tenant\" = \"acme*\" }.")
				ok = false
			}
			continue
		}
		list, good := stringList(goValue(v))
		if !good {
			d.errorf(attr.Expr.Range(), "Invalid match "+attr.Name, "%s is a string or a list of strings, such as [\"GET\", \"SET\"].", attr.Name)
			ok = false
			continue
		}
		switch attr.Name {
		case "method":
			m.Methods = list
		case "path":
			m.Paths = list
		case "command":
			m.Commands = list
		case "sql":
			m.SQL = list
		case "database":
			m.Databases = list
		case "user":
			m.Users = list
		}
	}
	if _, err := m.Matcher(); ok && err != nil {
		d.errorf(b.DefRange, "Invalid match", "%s.", err)
		ok = false
	}
	return m, ok
}

func stringList(v any) ([]string, bool) {
	if s, ok := v.(string); ok {
		return []string{s}, true
	}
	l, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// options decodes a body that holds the declared options of a behavior or
// protocol, plus the extra arguments given. It returns the options with
// defaults filled in, the extra arguments found, and whether all was valid.
func (d *decoder) options(body hcl.Body, kind, owner string, decl chaos.Options, extra []hcl.AttributeSchema, blocks ...hcl.BlockHeaderSchema) (chaos.Values, hcl.Attributes, hcl.Blocks, bool) {
	schema := &hcl.BodySchema{Attributes: slices.Clone(extra), Blocks: blocks}
	reserved := map[string]bool{}
	for _, a := range extra {
		reserved[a.Name] = true
	}
	for _, o := range decl {
		if !reserved[o.Name] {
			schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: o.Name})
		}
	}
	content, rest, diags := body.PartialContent(schema)
	d.add(diags...)
	ok := !diags.HasErrors()
	if !d.leftovers(rest, schema, kind, owner, decl, extra) {
		ok = false
	}

	values := decl.Defaults()
	found := hcl.Attributes{}
	for _, attr := range byPosition(content.Attributes) {
		if reserved[attr.Name] {
			found[attr.Name] = attr
			continue
		}
		o, _ := decl.Lookup(attr.Name)
		v, st := d.value(attr.Expr)
		switch st {
		case failed:
			ok = false
			continue
		case absent:
			continue
		}
		gv := goValue(v)
		if err := checkExactInts(o, exactInts(v)); err != nil {
			ok = false
			d.errorf(attr.Expr.Range(), "Invalid option value", "The %s %q option %q %s.", kind, owner, o.Name, err)
			continue
		}
		out, err := o.Convert(gv)
		if err != nil {
			ok = false
			d.errorf(attr.Expr.Range(), "Invalid option value", "%s Fix the value, or remove the argument to use the default (%s).", optionError(kind, owner, o, err), showDefault(o))
			continue
		}
		values[o.Name] = out
	}
	return values, found, content.Blocks, ok
}

// leftovers reports what a body holds beyond its schema, naming the valid
// options, and returns false if there was anything.
func (d *decoder) leftovers(rest hcl.Body, schema *hcl.BodySchema, kind, owner string, decl chaos.Options, extra []hcl.AttributeSchema) bool {
	sb, ok := rest.(*hclsyntax.Body)
	if !ok {
		_, diags := rest.Content(&hcl.BodySchema{})
		d.add(diags...)
		return !diags.HasErrors()
	}
	known := map[string]bool{}
	for _, a := range schema.Attributes {
		known[a.Name] = true
	}
	var valid, extraNames []string
	for _, a := range extra {
		extraNames = append(extraNames, a.Name)
	}
	valid = append(decl.Names(), extraNames...)
	clean := true
	attrs := make([]*hclsyntax.Attribute, 0, len(sb.Attributes))
	for _, a := range sb.Attributes {
		attrs = append(attrs, a)
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].SrcRange.Start.Byte < attrs[j].SrcRange.Start.Byte })
	for _, a := range attrs {
		if known[a.Name] {
			continue
		}
		clean = false
		detail := fmt.Sprintf("The %s %q has no option named %q.%s", kind, owner, a.Name, didYouMean(a.Name, valid))
		switch {
		case len(decl) == 0 && len(extra) == 0:
			detail += " It takes no options."
		case len(decl) == 0:
			detail += fmt.Sprintf(" It takes no options; the block holds only %s.", quoteList(extraNames, "and"))
		case len(extra) == 0:
			detail += fmt.Sprintf(" Its options are %s.", quoteList(decl.Names(), "and"))
		default:
			detail += fmt.Sprintf(" Its options are %s, besides %s.", quoteList(decl.Names(), "and"), quoteList(extraNames, "and"))
		}
		d.errorf(a.NameRange, "Unknown "+kind+" option", "%s", detail)
	}
	blocks := map[string]bool{}
	for _, b := range schema.Blocks {
		blocks[b.Type] = true
	}
	for _, b := range sb.Blocks {
		if blocks[b.Type] {
			continue
		}
		clean = false
		d.errorf(b.TypeRange, "Unsupported block type", "Blocks of type %q are not expected in the %s %q; it takes only arguments.", b.Type, kind, owner)
	}
	return clean
}

func byPosition(attrs hcl.Attributes) []*hcl.Attribute {
	return inFileOrder(attrs, func(a *hcl.Attribute) hcl.Range { return a.Range })
}

// optionError turns an error of chaos.Option.Convert or Parse into a
// sentence naming the option and what it takes.
func optionError(kind, owner string, o chaos.Option, err error) string {
	msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("option %q: ", o.Name))
	if got, ok := strings.CutPrefix(msg, "want "+o.Expect()+", "); ok {
		return fmt.Sprintf("The %s %q option %q takes %s; %s.", kind, owner, o.Name, o.Expect(), got)
	}
	return fmt.Sprintf("The %s %q option %q does not accept this value: %s.", kind, owner, o.Name, msg)
}

// maxExactInt bounds the integers a float64 holds exactly, and so those
// that HCL, JSON and chaos.Option.Convert pass through unchanged.
const maxExactInt = 1 << 53

// checkExactInts refuses integer options beyond ±2^53, which the typed path
// would round and the text path would not, so that a value means the same
// in an .ini file, in HCL and through the API.
func checkExactInts(o chaos.Option, v any) error {
	if o.Kind != chaos.Int && o.Kind != chaos.Ints {
		return nil
	}
	var bad any
	check := func(x any) {
		switch n := x.(type) {
		case string: // too large for an int64
			bad = n
		case int64:
			if n > maxExactInt || n < -maxExactInt {
				bad = n
			}
		case float64:
			if math.Abs(n) > maxExactInt {
				bad = n
			}
		}
	}
	switch x := v.(type) {
	case []int64:
		for _, e := range x {
			check(e)
		}
	case []any:
		for _, e := range x {
			check(e)
		}
	default:
		check(x)
	}
	if bad != nil {
		return fmt.Errorf("takes integers from %d to %d; %v is out of range", -maxExactInt, maxExactInt, bad)
	}
	return nil
}

// exactInts returns the numbers of v that are whole, as int64 when a
// float64 holds them exactly and as their text otherwise, for
// checkExactInts: goValue's float64 would already have rounded them.
func exactInts(v cty.Value) []any {
	var out []any
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	switch ty := v.Type(); {
	case ty == cty.Number:
		bf := v.AsBigFloat()
		if !bf.IsInt() {
			return nil
		}
		if i, acc := bf.Int64(); acc == big.Exact && i <= maxExactInt && i >= -maxExactInt {
			return []any{i}
		}
		return []any{bf.Text('f', 0)}
	case ty.IsListType() || ty.IsSetType() || ty.IsTupleType():
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, exactInts(e)...)
		}
	}
	return out
}

// showDefault renders an option's default as it would be written in HCL.
func showDefault(o chaos.Option) string {
	if o.Default == nil {
		return "unset"
	}
	return string(valueTokens(o.Default).Bytes())
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
