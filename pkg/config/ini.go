package config

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// The original Vaurien's defaults for what an .ini file leaves out.
const (
	iniProxy    = "localhost:8000"
	iniBackend  = "localhost:80"
	iniTimeout  = 30 * time.Second
	iniHTTPHost = "localhost"
	iniHTTPPort = "8080"
	iniRoute    = "default"
)

// iniKeys are the [vaurien] keys that mean something here; iniIgnored are
// the original's keys that tuned its Python internals (socket buffers,
// connection pools, gevent) and have no counterpart, so they are accepted
// and dropped.
var (
	iniKeys    = []string{"backend", "proxy", "protocol", "behavior", "timeout", "seed", "http", "http_host", "http_port", "log_level"}
	iniIgnored = []string{"bufsize", "stay_connected", "pool_max_size", "pool_timeout", "async_mode", "sync", "backlog", "log_output"}
)

// The original accepted Python's log level names.
var iniLogLevels = map[string]string{
	"debug": "debug", "info": "info", "warning": "warn", "warn": "warn", "error": "error", "critical": "error",
}

// iniEntry is one key = value, with the ranges of both.
type iniEntry struct {
	key      string // lowercased, dashes turned into underscores
	value    string
	keyRng   hcl.Range
	valueRng hcl.Range
}

type iniSection struct {
	name    string
	rng     hcl.Range
	entries []iniEntry
}

// lookup returns the last entry for key, as Python's ConfigParser does.
func (s *iniSection) lookup(key string) (iniEntry, bool) {
	for i := len(s.entries) - 1; i >= 0; i-- {
		if s.entries[i].key == key {
			return s.entries[i], true
		}
	}
	return iniEntry{}, false
}

// ParseINI reads a configuration in the original Vaurien's .ini format: one
// [vaurien] section describing a single proxy, which becomes the route
// named "default", with [behavior:NAME] and [protocol:NAME] sections
// holding options. filename is used in diagnostics and as File.Path. The
// error, if any, is hcl.Diagnostics.
//
// The original's defaults apply: proxy localhost:8000, backend localhost:80,
// timeout 30 seconds (for both the idle timeout and the backend dial, which
// the original bounded with the same value). With http = true, http_host
// and http_port (default localhost:8080) give the admin API's address. The
// dummy entries of the behavior list are dropped, since whatever share no
// behavior takes is dummy anyway. Keys that tuned the original's Python
// internals (bufsize, stay_connected, pool_max_size, pool_timeout,
// async_mode, backlog, log_output) and the [statsd] section are accepted
// and ignored; a [behavior:NAME] section with a callable (a Python class)
// is an error.
func ParseINI(src []byte, filename string) (*File, error) {
	return parseINI(src, filename, nil)
}

// CommandLine is the file name of diagnostics about values given on the
// command line rather than in a file.
const CommandLine = "command line"

// LoadINIUnder reads an original Vaurien .ini file over settings given
// before it, on the original's command line. The original read its file
// after its command line, so a value the file sets wins, and under's values
// count where the file is silent. under maps a section name ("vaurien",
// "behavior:delay", "protocol:redis") to keys and values written as in the
// file.
func LoadINIUnder(path string, under map[string]map[string]string) (*File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return parseINI(src, path, under)
}

func parseINI(src []byte, filename string, under map[string]map[string]string) (*File, error) {
	return decodeINI(src, filename, under, &decoder{})
}

func decodeINI(src []byte, filename string, under map[string]map[string]string, d *decoder) (*File, error) {
	sections, diags := scanINI(src, filename)
	if diags.HasErrors() {
		return nil, finish(diags)
	}
	sections = placeUnder(sections, under)
	f := newFile(filename)
	d.ini(sections, f)
	if err := finish(d.diags); err != nil {
		return nil, err
	}
	f.exprs = d.exprs
	return f, nil
}

// ConvertINI reads an original Vaurien .ini file and renders it as HCL, as
// `vaurien convert` prints it. A value taken from the environment stays
// there: ${NAME} becomes env("NAME"), ${NAME:-default} env("NAME",
// "default"), inside a string template when the value has more around it,
// and an unset variable is no error. Such values are kept where HCL takes
// an expression: proxy, backend, timeout, seed, http_host, http_port and
// the options of [behavior:NAME] and [protocol:NAME] sections.
func ConvertINI(path string) ([]byte, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	f, err := decodeINI(src, path, nil, &decoder{exprs: map[string]string{}})
	if err != nil {
		return nil, err
	}
	return Format(f), nil
}

// scanINI splits src into sections the way Python 2's RawConfigParser did:
// "key = value" or "key: value", indented lines continuing the value, lines
// starting with # or ; as comments, " ;" starting an inline comment, keys
// case-insensitive, repeated sections merged.
func scanINI(src []byte, filename string) ([]*iniSection, hcl.Diagnostics) {
	var (
		diags    hcl.Diagnostics
		sections []*iniSection
		cur      *iniSection
		last     *iniEntry
		offset   int
	)
	byName := map[string]*iniSection{}
	for n, raw := range bytes.SplitAfter(src, []byte("\n")) {
		lineNo, start := n+1, offset
		offset += len(raw)
		line := strings.TrimRight(string(raw), "\r\n")
		rng := func(from, to int) hcl.Range {
			return hcl.Range{
				Filename: filename,
				Start:    hcl.Pos{Line: lineNo, Column: utf8.RuneCountInString(line[:from]) + 1, Byte: start + from},
				End:      hcl.Pos{Line: lineNo, Column: utf8.RuneCountInString(line[:to]) + 1, Byte: start + to},
			}
		}
		if !utf8.ValidString(line) {
			diags = append(diags, errorDiag(rng(0, 0), "Invalid UTF-8", "This line is not valid UTF-8 text. Save the file as UTF-8."))
			last = nil
			continue
		}
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';' || strings.HasPrefix(strings.ToLower(trimmed), "rem "):
			// As in Python, blank lines and comments do not end a value:
			// an indented line after them still continues it.
			continue
		case line[0] == ' ' || line[0] == '\t':
			if last == nil {
				diags = append(diags, errorDiag(rng(0, len(line)), "Unexpected indented line",
					"An indented line continues the value of the key above it, but there is none. Remove the indentation."))
				continue
			}
			last.value += "\n" + stripINIComment(trimmed)
			last.valueRng.End = rng(0, len(line)).End
			continue
		case trimmed[0] == '[':
			last = nil
			end := strings.IndexByte(line, ']')
			if end < 0 {
				diags = append(diags, errorDiag(rng(0, len(line)), "Invalid section header", "A section header is a name in brackets, such as [vaurien]; this one has no closing bracket."))
				cur = nil
				continue
			}
			lb := strings.IndexByte(line, '[')
			name := strings.TrimSpace(line[lb+1 : end])
			if s, ok := byName[name]; ok {
				cur = s
				continue
			}
			cur = &iniSection{name: name, rng: rng(lb, end+1)}
			byName[name] = cur
			sections = append(sections, cur)
			continue
		}
		i := strings.IndexAny(line, ":=")
		if i <= 0 || strings.TrimSpace(line[:i]) == "" {
			diags = append(diags, errorDiag(rng(0, len(line)), "Invalid line", "Each line must be a [section] header, a key = value pair, a comment starting with # or ;, or an indented continuation of a value."))
			last = nil
			continue
		}
		if cur == nil {
			diags = append(diags, errorDiag(rng(0, i), "Key outside a section", "Every key must follow a section header such as [vaurien]. Add one above this line."))
			last = nil
			continue
		}
		keyEnd := len(strings.TrimRight(line[:i], " \t"))
		vStart := i + 1
		for vStart < len(line) && (line[vStart] == ' ' || line[vStart] == '\t') {
			vStart++
		}
		value := stripINIComment(line[vStart:])
		cur.entries = append(cur.entries, iniEntry{
			key:      strings.ReplaceAll(strings.ToLower(line[:keyEnd]), "-", "_"),
			value:    value,
			keyRng:   rng(0, keyEnd),
			valueRng: rng(vStart, vStart+len(value)),
		})
		last = &cur.entries[len(cur.entries)-1]
	}
	return sections, diags
}

// placeUnder puts under's values first in their sections, so that the
// file's own entries, read after them, win.
func placeUnder(sections []*iniSection, under map[string]map[string]string) []*iniSection {
	rng := hcl.Range{Filename: CommandLine}
	for _, name := range slices.Sorted(maps.Keys(under)) {
		if len(under[name]) == 0 {
			continue
		}
		var entries []iniEntry
		for _, k := range slices.Sorted(maps.Keys(under[name])) {
			entries = append(entries, iniEntry{key: k, value: under[name][k], keyRng: rng, valueRng: rng})
		}
		i := slices.IndexFunc(sections, func(s *iniSection) bool { return s.name == name })
		if i < 0 {
			sections = append(sections, &iniSection{name: name, rng: rng})
			i = len(sections) - 1
		}
		sections[i].entries = append(entries, sections[i].entries...)
	}
	return sections
}

// stripINIComment removes a ";" comment that follows white space.
func stripINIComment(v string) string {
	for i := 1; i < len(v); i++ {
		if v[i] == ';' && (v[i-1] == ' ' || v[i-1] == '\t') {
			return strings.TrimRight(v[:i], " \t")
		}
	}
	return strings.TrimRight(v, " \t")
}

// iniEnvVar matches ${NAME}, as the original expanded it, and the shell's
// ${NAME:-default}, which the original did not know.
var iniEnvVar = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// text returns an entry's value as the original converted it: quotes
// stripped, ${NAME} replaced by the environment variable (unset is an
// error, as in the original, unless a default is given), continuation
// lines joined by commas. When converting, a variable that is unset
// leaves the value unread (false) without an error: Format writes env().
func (d *decoder) text(e iniEntry) (string, bool) {
	v := strings.TrimSpace(e.value)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1], true
	}
	ok := true
	v = iniEnvVar.ReplaceAllStringFunc(v, func(m string) string {
		sub := iniEnvVar.FindStringSubmatch(m)
		name, def, hasDef := sub[1], sub[2], strings.Contains(m, ":-")
		val, set := os.LookupEnv(name)
		switch {
		case set:
			return val
		case hasDef:
			return def
		}
		ok = false
		if d.exprs == nil {
			d.errorf(e.valueRng, "Unset environment variable", "The value of %q refers to ${%s}, but the environment variable %s is not set. Set it, give a default as ${%s:-default}, or write the value in the file.", e.key, name, name, name)
		}
		return ""
	})
	lines := strings.Split(v, "\n")
	lines = slices.DeleteFunc(lines, func(s string) bool { return strings.TrimSpace(s) == "" })
	for i := range lines {
		lines[i] = strings.TrimRight(strings.TrimSpace(lines[i]), ",")
	}
	return strings.Join(lines, ","), ok
}

// envExpr returns the HCL expression that keeps an entry's ${NAME}
// references: env("NAME") alone, or a string template around them.
func envExpr(e iniEntry) (string, bool) {
	v := strings.TrimSpace(e.value)
	locs := iniEnvVar.FindAllStringSubmatchIndex(v, -1)
	if len(locs) == 0 || (len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"') {
		return "", false
	}
	call := func(l []int) string {
		args := strconv.Quote(v[l[2]:l[3]])
		if l[4] >= 0 {
			args += ", " + strconv.Quote(v[l[4]:l[5]])
		}
		return "env(" + args + ")"
	}
	if len(locs) == 1 && locs[0][0] == 0 && locs[0][1] == len(v) {
		return call(locs[0]), true
	}
	var b strings.Builder
	b.WriteByte('"')
	at := 0
	for _, l := range locs {
		lit := strconv.Quote(v[at:l[0]])
		lit = strings.ReplaceAll(lit[1:len(lit)-1], "${", "$${")
		b.WriteString(lit + "${" + call(l) + "}")
		at = l[1]
	}
	lit := strconv.Quote(v[at:])
	b.WriteString(strings.ReplaceAll(lit[1:len(lit)-1], "${", "$${"))
	b.WriteByte('"')
	return b.String(), true
}

// keepEnv records, when converting, that the value at path comes from the
// environment, and reports whether it does.
// kind is the value's type: env() gives a string, which tobool() or
// tonumber() turns into a bool or a number.
func (d *decoder) keepEnv(path string, e iniEntry, kind chaos.Kind) bool {
	if d.exprs == nil {
		return false
	}
	x, ok := envExpr(e)
	if !ok {
		return false
	}
	switch kind {
	case chaos.Bool:
		x = "tobool(" + x + ")"
	case chaos.Int, chaos.Float:
		x = "tonumber(" + x + ")"
	}
	d.exprs[path] = x
	return true
}

// noEnv refuses, when converting, a ${NAME} where HCL needs the value
// itself (a block label, a switch that adds a block).
func (d *decoder) noEnv(e iniEntry) bool {
	if d.exprs == nil {
		return false
	}
	if _, ok := envExpr(e); ok {
		d.errorf(e.valueRng, "Environment variable cannot be converted", "The value of %q comes from the environment, but in HCL it decides the file's shape and must be written out. Write the value in the .ini file, then convert it.", e.key)
		return true
	}
	return false
}

// iniBool reads the spellings of a boolean that Python's ConfigParser knew.
func iniBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "true", "on":
		return true, true
	case "0", "no", "false", "off":
		return false, true
	}
	return false, false
}

func (d *decoder) ini(sections []*iniSection, f *File) {
	r := Route{
		Name:           iniRoute,
		Listen:         iniProxy,
		Backend:        iniBackend,
		Protocol:       DefaultProtocol,
		Timeout:        iniTimeout,
		ConnectTimeout: iniTimeout, // the original dialed the backend with the same timeout
		Default:        true,
	}
	var main *iniSection
	behaviorOpts := map[string]*iniSection{}
	protocolOpts := map[string]*iniSection{}
	for _, s := range sections {
		kind, name, _ := strings.Cut(s.name, ":")
		kind, name = strings.TrimSpace(kind), strings.TrimSpace(name)
		switch {
		case s.name == "vaurien":
			main = s
		case kind == "behavior" && name != "":
			behaviorOpts[name] = s
		case kind == "protocol" && name != "":
			protocolOpts[name] = s
		case s.name == "statsd":
			// metrics are Prometheus's business now
		default:
			d.errorf(s.rng, "Unknown section", "The section [%s] is not part of a Vaurien configuration. The sections are [vaurien], [behavior:NAME], [protocol:NAME] and [statsd].", s.name)
		}
	}
	if main == nil {
		d.add(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing [vaurien] section",
			Detail:  "An original Vaurien configuration has a [vaurien] section with at least proxy and backend.",
			Subject: &hcl.Range{Filename: f.Path, Start: hcl.InitialPos, End: hcl.InitialPos}})
		return
	}

	for _, e := range main.entries {
		if !slices.Contains(iniKeys, e.key) && !slices.Contains(iniIgnored, e.key) {
			d.errorf(e.keyRng, "Unknown key", "The [vaurien] section has no key %q.%s The keys are %s.", e.key, didYouMean(e.key, append(slices.Clone(iniKeys), iniIgnored...)), quoteList(iniKeys, "and"))
		}
	}
	get := func(key string) (string, iniEntry, bool) {
		e, ok := main.lookup(key)
		if !ok {
			return "", e, false
		}
		// Converting, a value from the environment is kept as env() where
		// HCL takes an expression (Format's path), refused elsewhere.
		if path, kept := iniEnvPaths[key]; kept {
			if path != "" && d.keepEnv(path, e, iniEnvKinds[key]) {
				return "", e, false
			}
		} else if d.noEnv(e) {
			return "", e, false
		}
		v, ok := d.text(e)
		return v, e, ok
	}

	if v, e, ok := get("proxy"); ok {
		if err := checkAddress(v, listenAddr); err != nil {
			d.errorf(e.valueRng, "Invalid proxy address", "The proxy address must be host:port with a numeric port, such as \"localhost:8000\"; %s.", err)
		} else {
			r.Listen = v
		}
	}
	if v, e, ok := get("backend"); ok {
		if err := checkAddress(v, backendAddr); err != nil {
			d.errorf(e.valueRng, "Invalid backend address", "The backend address must be host:port with a numeric port, such as \"localhost:80\"; %s.", err)
		} else {
			r.Backend = v
		}
	}
	if v, e, ok := get("timeout"); ok {
		t, err := chaos.ParseDuration(v)
		if err != nil || t < 0 {
			d.errorf(e.valueRng, "Invalid timeout", "The timeout is a number of seconds, such as 30; got %q.", v)
		} else {
			r.Timeout, r.ConnectTimeout = t, t
		}
	}
	if v, e, ok := get("seed"); ok {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			d.errorf(e.valueRng, "Invalid seed", "The seed must be a whole number from 0 to %d; got %q.", uint64(1<<64-1), v)
		} else {
			f.Seed = s
		}
	}
	if v, e, ok := get("log_level"); ok {
		if l, known := iniLogLevels[strings.ToLower(v)]; known {
			f.Log.Level = l
		} else {
			d.errorf(e.valueRng, "Invalid log level", "The log level must be debug, info, warning, error or critical; got %q.", v)
		}
	}
	d.iniAdmin(get, f)

	protocolExplicit := false
	if v, e, ok := get("protocol"); ok {
		protocolExplicit = true
		r.Protocol = v
		if _, known := chaos.LookupProtocol(v); !known {
			d.errorf(e.valueRng, "Unknown protocol", "%s", unknownName("protocol", v, chaos.ProtocolNames()))
		}
	}
	for name, s := range protocolOpts {
		spec, known := chaos.LookupProtocol(name)
		if !known {
			if name != r.Protocol || !protocolExplicit { // else reported at the protocol key
				d.errorf(s.rng, "Unknown protocol", "%s", unknownName("protocol", name, chaos.ProtocolNames()))
			}
			continue
		}
		v := d.iniOptions(s, "protocol", name, spec.Options)
		if name == r.Protocol {
			r.ProtocolOptions = v
		}
	}
	if r.ProtocolOptions == nil {
		r.ProtocolOptions = chaos.Values{}
		if spec, known := chaos.LookupProtocol(r.Protocol); known {
			r.ProtocolOptions = spec.Options.Defaults()
		}
	}

	// Options sections are checked even for behaviors outside the mix:
	// the original kept them for behaviors set later through its API.
	options := map[string]chaos.Values{}
	for name, s := range behaviorOpts {
		if _, hasCallable := s.lookup("callable"); hasCallable {
			e, _ := s.lookup("callable")
			d.errorf(e.keyRng, "Python behaviors are not supported", "The section [%s] loads a Python class through callable; vaurien's behaviors are Go code registered at build time. Remove the section, or write the behavior in Go.", s.name)
			continue
		}
		spec, known := chaos.LookupBehavior(name)
		if !known {
			d.errorf(s.rng, "Unknown behavior", "%s", unknownName("behavior", name, chaos.BehaviorNames()))
			continue
		}
		options[name] = d.iniOptions(s, "behavior", name, spec.Options)
	}
	for _, name := range slices.Sorted(maps.Keys(options)) {
		if err := chaos.CheckErrorCode(r.Protocol, options[name]); err != nil {
			e, _ := behaviorOpts[name].lookup(chaos.ErrorCodeOption)
			d.errorf(e.valueRng, "Invalid error code", "The %q behavior: %s.", name, err)
		}
	}
	if v, e, ok := get("behavior"); ok {
		r.Behaviors = d.iniMix(v, e, options)
	}
	f.Routes = []Route{r}
	if listenConflict(f.Admin.Listen, r.Listen) {
		rng := main.rng
		if e, ok := main.lookup("proxy"); ok {
			rng = e.valueRng
		}
		d.errorf(rng, "Duplicate listen address", "The proxy listens on %q, which the admin API (%q) uses too. Change proxy or http_port.", r.Listen, f.Admin.Listen)
	}
	d.iniSelfLoop(main, f)
}

// iniSelfLoop refuses a backend that reaches the proxy's own address, as
// the HCL reader does, so that a file that loads converts to one that
// loads. It points at the backend key, or at proxy when the backend is the
// default; addresses kept as ${NAME} are checked when the converted file
// loads.
func (d *decoder) iniSelfLoop(main *iniSection, f *File) {
	r := &f.Routes[0]
	proxy, setProxy := main.lookup("proxy")
	backend, setBackend := main.lookup("backend")
	if _, env := envExpr(proxy); setProxy && env {
		return
	}
	if _, env := envExpr(backend); setBackend && env {
		return
	}
	l := listener{addr: r.Listen, owner: fmt.Sprintf("route %q", r.Name)}
	at := main.rng
	if setProxy {
		l.rng, at = &proxy.valueRng, proxy.valueRng
	}
	if setBackend {
		at = backend.valueRng
	}
	d.selfLoops(f, []listener{l}, []*hcl.Range{&at})
}

// iniEnvPaths are the [vaurien] keys whose ${NAME} a conversion keeps, with
// the value's path in Format; http_host and http_port make admin.listen
// together (iniAdmin).
var iniEnvPaths = map[string]string{
	"proxy": "route.listen", "backend": "route.backend", "timeout": "route.timeout", "seed": "seed",
	"http_host": "", "http_port": "",
}

var iniEnvKinds = map[string]chaos.Kind{"seed": chaos.Int}

// iniAdmin maps the original's --http switch: its host and port become the
// admin API's address when it is on.
func (d *decoder) iniAdmin(get func(string) (string, iniEntry, bool), f *File) {
	on := false
	if v, e, ok := get("http"); ok {
		b, valid := iniBool(v)
		if !valid {
			d.errorf(e.valueRng, "Invalid http setting", "The http key is a boolean: true or false; got %q.", v)
			return
		}
		on = b
	}
	host, port := iniHTTPHost, iniHTTPPort
	v, he, ok := get("http_host")
	if ok {
		host = v
	}
	v, e, ok := get("http_port")
	if ok {
		port = v
	}
	if !on {
		// As in the original, the admin API runs only with http = true.
		f.Admin.Listen = ""
		return
	}
	rawHost, rawPort := iniHTTPHost, iniHTTPPort
	if he.key != "" {
		rawHost = strings.TrimSpace(he.value)
	}
	if e.key != "" {
		rawPort = strings.TrimSpace(e.value)
	}
	if d.keepEnv("admin.listen", iniEntry{value: rawHost + ":" + rawPort}, chaos.String) {
		return
	}
	addr := net.JoinHostPort(host, port)
	if err := checkAddress(addr, listenAddr); err != nil {
		rng := e.valueRng
		if !ok {
			_, e, _ = get("http_host")
			rng = e.valueRng
		}
		d.errorf(rng, "Invalid http address", "The http_host and http_port keys must form a host:port address with a numeric port; %s.", err)
		return
	}
	f.Admin.Listen = addr
}

// iniMix reads the original's "20:delay,5:error" list.
func (d *decoder) iniMix(v string, e iniEntry, options map[string]chaos.Values) []Behavior {
	shares, err := chaos.ParseShares(v)
	if err != nil {
		d.errorf(e.valueRng, "Invalid behavior list", "Each behavior is written PERCENT:NAME, such as 20:delay, and separated by commas: %s.", err)
		return nil
	}
	var out []Behavior
	sum := 0.0
	for _, sh := range shares {
		sum += sh.Percent
		if sh.Name == "dummy" {
			// The share no behavior takes is dummy anyway.
			continue
		}
		spec, known := chaos.LookupBehavior(sh.Name)
		if !known {
			d.errorf(e.valueRng, "Unknown behavior", "%s", unknownName("behavior", sh.Name, chaos.BehaviorNames()))
			continue
		}
		opts, ok := options[sh.Name]
		if ok {
			opts = maps.Clone(opts) // entries must not share a map
		} else {
			opts = spec.Options.Defaults()
		}
		out = append(out, Behavior{Name: sh.Name, Percent: sh.Percent, Options: opts})
	}
	if sum > 100+1e-9 {
		d.errorf(e.valueRng, "Percentages over 100", "The behaviors take %s%% of the draws, and at most 100%% can be shared out (the rest passes through as dummy). Lower the percentages.", trimFloat(sum))
	}
	return out
}

// iniOptions reads an options section as text, each key checked on its
// own line.
func (d *decoder) iniOptions(s *iniSection, kind, owner string, decl chaos.Options) chaos.Values {
	values := decl.Defaults()
	for _, e := range s.entries {
		o, ok := decl.Lookup(e.key)
		if !ok {
			detail := fmt.Sprintf("The %s %q has no option named %q.%s", kind, owner, e.key, didYouMean(e.key, decl.Names()))
			if len(decl) == 0 {
				detail += " It takes no options."
			} else {
				detail += fmt.Sprintf(" Its options are %s.", quoteList(decl.Names(), "and"))
			}
			d.errorf(e.keyRng, "Unknown "+kind+" option", "%s", detail)
			continue
		}
		if d.keepEnv(kind+"."+owner+"."+o.Name, e, o.Kind) {
			continue
		}
		text, ok := d.text(e)
		if !ok {
			continue
		}
		if o.Kind == chaos.Bool {
			if b, valid := iniBool(text); valid {
				text = strconv.FormatBool(b)
			}
		}
		v, err := o.Parse(text)
		if err != nil {
			d.errorf(e.valueRng, "Invalid option value", "%s", optionError(kind, owner, o, err))
			continue
		}
		if err := checkExactInts(o, v); err != nil {
			d.errorf(e.valueRng, "Invalid option value", "The %s %q option %q %s.", kind, owner, o.Name, err)
			continue
		}
		values[o.Name] = v
	}
	return values
}
