// Package config owns vaurien's configuration files: it reads the HCL
// format (one file, many named routes), the original Vaurien's .ini format,
// validates both against the behaviors and protocols registered in package
// chaos, and renders a configuration back to HCL.
//
// It returns plain Go structs, so that nothing past this package needs HCL.
// Every problem found in a file is reported as an hcl.Diagnostic with the
// file name, line and column of the construct at fault; a file with any
// error yields no configuration at all, so a bad file never starts a
// half-configured proxy.
//
// An HCL file holds top-level seed and drain, optional admin, toxiproxy and
// log blocks, and route blocks, each with an optional protocol_options block
// and behavior blocks whose arguments are percent and the behavior's options:
//
//	route "cache" {
//	  listen          = "127.0.0.1:6380"
//	  backend         = "localhost:6379"
//	  protocol        = "redis"
//	  timeout         = "30s"
//	  max_connections = 1000
//
//	  behavior "delay" {
//	    percent = 20
//	    sleep   = "500ms" # durations are Go durations or numbers of seconds
//	  }
//	}
//
// Experiment blocks, in the configuration file or in files of their own,
// declare chaos experiments on the routes: probes, a steady state, steps
// that set mixes on routes for a while, a recovery and SLOs (see
// Experiment). Their steps are checked against the routes they act on.
//
// Expressions may call env("NAME"), an error when NAME is unset, and
// env("NAME", "default"), and tobool() and tonumber() to turn such a string
// into a bool or a number option.
//
// Decoding is two-phase, as in Packer: a behavior block keeps its body aside
// until its label has been looked up in the registry, then the body is
// decoded against that behavior's declared options.
package config

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// Defaults applied when a file leaves a setting out.
const (
	DefaultAdminListen = "127.0.0.1:8080" // the original's localhost:8080
	// DefaultToxiproxyListen is Toxiproxy's own address, taken by a
	// toxiproxy block that gives none.
	DefaultToxiproxyListen = "127.0.0.1:8474"
	DefaultLogLevel        = "info"
	DefaultLogFormat       = "json"
	DefaultDrain           = 10 * time.Second
	DefaultProtocol        = "tcp"
	DefaultConnectTimeout  = 5 * time.Second
)

// DemoBackend is the backend address of the built-in demo HTTP server; it is
// the only backend accepted that is not a host:port.
const DemoBackend = "demo:http"

// LogLevels and LogFormats are the accepted values of log.level and log.format.
var (
	LogLevels  = []string{"debug", "info", "warn", "error"}
	LogFormats = []string{"json", "console"}
)

// File is a loaded, validated configuration.
type File struct {
	Path      string        // the file it was read from, as given
	Admin     Admin         // the admin API
	Toxiproxy Toxiproxy     // the Toxiproxy-compatible API
	Log       Log           // logging
	Seed      uint64        // seed of the behavior draws; 0 means time-based
	Drain     time.Duration // how long a graceful shutdown waits for connections
	// Watch makes the running process reload when the file changes. Like
	// the admin block, it is read at start only.
	Watch  bool
	SHA256 [sha256.Size]byte // of the file's bytes, as Load read them
	Routes []Route           // in file order
	// Experiments act on the file's routes; see Experiment.
	Experiments []Experiment

	// exprs holds, for a converted .ini file, the HCL expressions Format
	// writes instead of values the file took from the environment.
	exprs map[string]string
}

// Admin configures the admin HTTP API.
type Admin struct {
	Listen string // host:port
	Token  string // bearer token required by mutating calls; empty for none
	// AllowedHosts are the host names, besides the listen address's,
	// localhost names and IP addresses, that browsers may reach the admin
	// API by (the Host header of a request a browser sends).
	AllowedHosts []string
}

// Toxiproxy configures the Toxiproxy-compatible HTTP API, which lets
// Toxiproxy's clients drive vaurien. It is off without a toxiproxy block.
type Toxiproxy struct {
	Listen string // host:port; empty for off
	// Token is the bearer token its mutating calls need, as Toxiproxy's
	// TOXIPROXY_AUTH_TOKEN; empty takes that variable, if set.
	Token string
}

// Log configures logging.
type Log struct {
	Level  string // one of LogLevels
	Format string // one of LogFormats
}

// Route is one listener forwarding to one backend through a protocol, with
// a weighted mix of behaviors.
type Route struct {
	Name            string
	Listen          string       // host:port
	Backend         string       // host:port, or DemoBackend
	Protocol        string       // a registered protocol
	ProtocolOptions chaos.Values // the protocol's options, defaults filled in
	// Timeout is the idle timeout of a connection; 0 means none.
	Timeout time.Duration
	// ConnectTimeout bounds the backend dial; 0 means no limit of vaurien's own.
	ConnectTimeout time.Duration
	// MaxConnections caps concurrent client connections; 0 means unlimited.
	MaxConnections int
	// Default marks the route that the original Vaurien's single-route API
	// (GET/PUT /behavior, /backend) acts on.
	Default bool
	// TLS terminates TLS on the listener: the tls block's options
	// (tlsroute.ServerOptions), defaults filled in; nil without the block.
	TLS chaos.Values
	// BackendTLS originates TLS to the backend: the backend_tls block's
	// options (tlsroute.BackendOptions); nil without the block.
	BackendTLS chaos.Values
	Behaviors  []Behavior // in file order; the share left of 100% is dummy
}

// Behavior is one entry of a route's mix.
type Behavior struct {
	Name    string          // a registered behavior
	Percent float64         // share of the draws, 0 to 100
	Options chaos.Values    // the behavior's options, defaults filled in
	Match   chaos.MatchSpec // limits the behavior to matching requests; zero matches all
}

// Load reads a configuration file: the original Vaurien's format when the
// name ends in .ini, HCL otherwise. Problems in the file are returned as
// hcl.Diagnostics.
func Load(path string) (*File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	parse := Parse
	if strings.EqualFold(filepath.Ext(path), ".ini") {
		parse = ParseINI
	}
	f, err := parse(src, path)
	if err != nil {
		return nil, err
	}
	f.SHA256 = sha256.Sum256(src)
	return f, nil
}

// DefaultRoute returns the route marked default, else the only route, else
// nil.
func (f *File) DefaultRoute() *Route {
	for i := range f.Routes {
		if f.Routes[i].Default {
			return &f.Routes[i]
		}
	}
	if len(f.Routes) == 1 {
		return &f.Routes[0]
	}
	return nil
}

// newFile returns a File holding every default.
func newFile(path string) *File {
	return &File{
		Path:  path,
		Admin: Admin{Listen: DefaultAdminListen},
		Log:   Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Drain: DefaultDrain,
		Watch: true,
	}
}
