package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// unsetEnv is never set: tests rely on env() failing or defaulting with it.
const unsetEnv = "VAURIEN_TEST_SURELY_UNSET"

func TestMain(m *testing.M) {
	if _, set := os.LookupEnv(unsetEnv); set {
		fmt.Fprintf(os.Stderr, "%s must not be set for these tests\n", unsetEnv)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

func TestLoadValid(t *testing.T) {
	tests := []struct {
		file string
		want *File
	}{
		{
			file: "full.hcl",
			want: &File{
				Admin:     Admin{Listen: "0.0.0.0:9090", Token: "s3cret", AllowedHosts: []string{"vaurien", "chaos.internal"}},
				Toxiproxy: Toxiproxy{Listen: "127.0.0.1:8474"},
				Log:       Log{Level: "debug", Format: "console"},
				Seed:      42,
				Drain:     30 * time.Second,
				Watch:     true,
				Routes: []Route{
					{
						Name:            "cache",
						Listen:          "127.0.0.1:6380",
						Backend:         "localhost:6379",
						Protocol:        "test_proto",
						ProtocolOptions: chaos.Values{"buffer": int64(4096), "keep_alive": true},
						Timeout:         90 * time.Second,
						ConnectTimeout:  2 * time.Second,
						MaxConnections:  1000,
						Default:         true,
						Behaviors: []Behavior{
							{Name: "test_delay", Percent: 20, Options: chaos.Values{"sleep": 500 * time.Millisecond, "before": false}},
							{Name: "test_error", Percent: 5.5, Options: chaos.Values{"inject": false, "warmup": int64(10), "mode": "bytes"}},
						},
					},
					{
						Name:            "web",
						Listen:          ":8000",
						Backend:         DemoBackend,
						Protocol:        "tcp",
						ProtocolOptions: chaos.Values{},
						ConnectTimeout:  5 * time.Second,
						Behaviors: []Behavior{
							{Name: "test_lists", Percent: 100, Options: chaos.Values{
								"hosts": []string{"a.example", "b.example"},
								"codes": []int64{502, 503},
								"ratio": 0.25,
								"label": `${not interpolated} and "quoted"`,
							}},
						},
					},
				},
			},
		},
		{
			file: "minimal.hcl",
			want: &File{
				Admin: Admin{Listen: "127.0.0.1:8080"},
				Log:   Log{Level: "info", Format: "json"},
				Drain: 10 * time.Second,
				Watch: true,
				Routes: []Route{{
					Name:            "only",
					Listen:          "127.0.0.1:0",
					Backend:         "127.0.0.1:80",
					Protocol:        "tcp",
					ProtocolOptions: chaos.Values{},
					ConnectTimeout:  5 * time.Second,
				}},
			},
		},
		{
			file: "defaults.hcl",
			want: &File{
				Admin: Admin{Listen: "127.0.0.1:8080"},
				Log:   Log{Level: "info", Format: "json"},
				Drain: 10 * time.Second,
				Watch: true,
				Routes: []Route{
					{
						Name:            "a",
						Listen:          "127.0.0.1:0",
						Backend:         "127.0.0.1:80",
						Protocol:        "test_plain",
						ProtocolOptions: chaos.Values{},
						ConnectTimeout:  5 * time.Second,
						Behaviors: []Behavior{
							{Name: "test_delay", Percent: 50, Options: chaos.Values{"sleep": 200 * time.Millisecond, "before": true}},
							{Name: "test_abort", Percent: 50, Options: chaos.Values{}},
						},
					},
					{
						Name:            "b",
						Listen:          "127.0.0.1:0",
						Backend:         "[::1]:6379",
						Protocol:        "test_proto",
						ProtocolOptions: chaos.Values{"buffer": int64(8124), "keep_alive": false},
						ConnectTimeout:  5 * time.Second,
					},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "valid", tt.file)
			got, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.want.Path = path
			assertFile(t, got, tt.want)
		})
	}
}

// assertFile compares files route by route, so that a failure shows where.
// The hash of the bytes read is left out: TestLoadHashesTheBytes checks it.
func assertFile(t *testing.T, got, want *File) {
	t.Helper()
	g, w := *got, *want
	g.SHA256, w.SHA256 = [32]byte{}, [32]byte{}
	if reflect.DeepEqual(&g, &w) {
		return
	}
	g.Routes, w.Routes = nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("file settings:\n got %+v\nwant %+v", g, w)
	}
	if len(got.Routes) != len(want.Routes) {
		t.Fatalf("got %d routes, want %d:\n got %+v\nwant %+v", len(got.Routes), len(want.Routes), got.Routes, want.Routes)
	}
	for i := range got.Routes {
		if !reflect.DeepEqual(got.Routes[i], want.Routes[i]) {
			t.Errorf("route %d:\n got %#v\nwant %#v", i, got.Routes[i], want.Routes[i])
		}
	}
}

// invalidCases lists every file of testdata/invalid with a diagnostic it
// must produce: where it starts, and words of its summary or detail.
var invalidCases = []struct {
	file string
	pos  string // line:column of the diagnostic's subject
	want string
}{
	{"syntax.hcl", "3:12", "Invalid expression"},
	{"match_bad_path.hcl", "6:5", `want a path glob starting with /`},
	{"behavior_refused.hcl", "5:12", `Invalid behavior options: The "test_lists" behavior of route "a": option "label": "refused" is refused.`},
	{"protocol_refused.hcl", "6:3", `Invalid protocol options: The test_proto protocol of route "a": option "buffer": 13 is unlucky.`},
	{"match_duplicate.hcl", "9:5", "Duplicate match block"},
	{"match_type.hcl", "7:17", "command is a string or a list of strings"},
	{"unknown_block.hcl", "1:1", `Did you mean "route"?`},
	{"unknown_attribute.hcl", "2:3", `An argument named "listn" is not expected here. Did you mean "listen"?`},
	{"unknown_behavior.hcl", "5:12", `There is no behavior named "test_dealy". Did you mean "test_delay"? The valid behaviors are "test_abort", "test_delay", "test_error" and "test_lists".`},
	{"unknown_protocol.hcl", "4:14", `Did you mean "test_proto"? The valid protocols are "test_plain" and "test_proto".`},
	{"unknown_option.hcl", "7:5", `has no option named "slep". Did you mean "sleep"? Its options are "before" and "sleep", besides "percent".`},
	{"unknown_option_none.hcl", "7:5", `The behavior "test_abort" has no option named "sleep". It takes no options`},
	{"wrong_option_type.hcl", "7:15", `The behavior "test_delay" option "before" takes a bool (true or false); got string "yes".`},
	{"bad_option_duration.hcl", "7:15", `option "sleep" takes a duration (a string such as "500ms" or a number of seconds) at least 0s; got "forever".`},
	{"bad_option_choice.hcl", "7:15", `option "mode" does not accept this value: "html" is not one of page, bytes.`},
	{"percent_range.hcl", "6:15", "Invalid percent: The percent of a behavior is its share of the draws, from 0 to 100; got 150."},
	{"percent_negative.hcl", "6:15", "from 0 to 100; got -1."},
	{"percent_missing.hcl", "5:25", `The argument "percent" is required`},
	{"percent_sum.hcl", "9:15", `Percentages over 100: The behaviors of route "a" take 110%`},
	{"duplicate_route.hcl", "6:7", `Duplicate route name: A route named "a" is already defined at testdata/invalid/duplicate_route.hcl:1,7-10.`},
	{"duplicate_listen.hcl", "7:13", `Route "b" listens on "127.0.0.1:8000", which route "a" already uses ("0.0.0.0:8000", set at testdata/invalid/duplicate_listen.hcl:2,13-27)`},
	{"admin_listen_conflict.hcl", "2:13", `which the admin API already uses ("127.0.0.1:8080", set by default)`},
	{"toxiproxy_listen_conflict.hcl", "6:12", `The Toxiproxy API listens on "0.0.0.0:8474", which the admin API already uses ("127.0.0.1:8474", set at testdata/invalid/toxiproxy_listen_conflict.hcl:2,12-28)`},
	{"toxiproxy_route_conflict.hcl", "6:13", `Route "a" listens on "127.0.0.1:8474", which the Toxiproxy API already uses`},
	{"toxiproxy_listen_bad.hcl", "2:12", `Invalid listen address: The Toxiproxy API's listen address must be host:port`},
	{"listen_no_port.hcl", "2:13", `Invalid listen address: The listen address of route "a" must be host:port`},
	{"listen_port_range.hcl", "2:13", `the port "99999" is not a number from 0 to 65535`},
	{"backend_port_name.hcl", "3:13", `Invalid backend address: The backend of route "a" must be host:port with a numeric port`},
	{"backend_no_host.hcl", "3:13", `":6379" has no host`},
	{"backend_bad_host.hcl", "3:13", `the host "../etc" is neither an IP address nor a host name`},
	{"backend_self.hcl", "3:13", `Backend is vaurien itself: The backend of route "cache", "localhost:6380", reaches "0.0.0.0:6380", where route "cache" listens (set at testdata/invalid/backend_self.hcl:2,13-27)`},
	{"backend_admin.hcl", "3:13", `reaches "127.0.0.1:8080", where the admin API listens (set by default)`},
	{"backend_other_route.hcl", "3:13", `reaches ":9000", where route "b" listens`},
	{"listen_missing.hcl", "1:11", `Missing listen address: Route "a" needs a listen address`},
	{"two_defaults.hcl", "10:13", "More than one default route: Another route is already marked default at testdata/invalid/two_defaults.hcl:4,13-17."},
	{"negative_max_connections.hcl", "4:21", `Invalid max_connections: The connection limit of route "a" must not be negative`},
	{"bad_log_level.hcl", "2:11", `Invalid log level: The log level must be "debug", "info", "warn" or "error"; got "warning".`},
	{"bad_log_format.hcl", "2:12", `Invalid log format: The log format must be "json" or "console"; got "text".`},
	{"env_unset.hcl", "2:11", `the environment variable "VAURIEN_TEST_SURELY_UNSET" is not set`},
	{"env_too_many_args.hcl", "2:26", "env takes a variable name and an optional default value, not 3 arguments"},
	{"variable.hcl", "2:13", "Variables not allowed"},
	{"bad_duration.hcl", "4:13", `Invalid duration: The argument "timeout" takes a duration`},
	{"negative_duration.hcl", "1:9", `The argument "drain" must not be negative.`},
	{"protocol_option_unknown.hcl", "7:5", `Unknown protocol option: The protocol "test_proto" has no option named "bufer". Did you mean "buffer"?`},
	{"protocol_option_type.hcl", "7:14", `The protocol "test_proto" option "buffer" takes an integer at least 0; got number 10.5.`},
	{"duplicate_admin.hcl", "5:1", "Duplicate admin block"},
	{"allowed_hosts_port.hcl", "3:31", `Invalid host name: Each element of "allowed_hosts" is a host name as a browser sends it in the Host header, without scheme or port, such as ["vaurien", "chaos.internal"]; "vaurien:8080" has a scheme, port or path: give the name alone.`},
	{"allowed_hosts_type.hcl", "2:20", `The argument "allowed_hosts" takes a string`},
	{"bad_seed.hcl", "1:8", "Invalid seed"},
	{"route_name.hcl", "1:7", `Invalid route name: The route name "my route"`},
	{"behavior_block.hcl", "7:5", `Blocks of type "when" are not expected in the behavior "test_delay"`},
	{"route_label_missing.hcl", "1:7", "Missing name for route"},
	{"wrong_type.hcl", "2:13", `Incorrect attribute value type: The argument "listen" takes a string`},
	{"many_errors.hcl", "22:21", "must not be negative"},
	{"tls_generate_and_files.hcl", "4:3", "Invalid tls block: A tls block either generates its certificate (generate = true) or loads it (cert and key), not both."},
	{"tls_unknown_option.hcl", "5:5", `The block "backend_tls" has no option named "insecure". Its options are "ca", "cert", "handshake_timeout", "insecure_skip_verify", "key" and "server_name".`},
	{"tls_half_client_cert.hcl", "4:3", "Invalid backend_tls block: A client certificate needs both cert and key (PEM files)."},
}

func TestLoadInvalid(t *testing.T) {
	covered := map[string]bool{}
	for _, tt := range invalidCases {
		covered[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "invalid", tt.file)
			f, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded: %+v", f)
			}
			assertDiag(t, err, path, tt.pos, tt.want)
		})
	}
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s has no case in invalidCases", f)
		}
	}
}

// assertDiag checks that err holds an error diagnostic at pos in file whose
// "Summary: Detail" contains want.
// parseFailure is a source that does not parse, with the position and text
// of the diagnostic it must give.
type parseFailure struct {
	name, src, pos, want string
}

// assertParseFails runs a subtest per case in which parse must fail with the
// case's diagnostic.
func assertParseFails(t *testing.T, parse func([]byte, string) (*File, error), filename string, cases []parseFailure) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parse([]byte(tt.src), filename)
			if err == nil {
				t.Fatalf("parsing %s succeeded: %+v", filename, f)
			}
			assertDiag(t, err, filename, tt.pos, tt.want)
		})
	}
}

func assertDiag(t *testing.T, err error, file, pos, want string) {
	t.Helper()
	var diags hcl.Diagnostics
	if !errors.As(err, &diags) {
		t.Fatalf("error is %T, not hcl.Diagnostics: %v", err, err)
	}
	for _, d := range diags {
		if d.Subject == nil {
			t.Errorf("diagnostic without a subject: %s: %s", d.Summary, d.Detail)
			continue
		}
		at := fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column)
		text := d.Summary + ": " + d.Detail
		if d.Severity == hcl.DiagError && d.Subject.Filename == file && at == pos && strings.Contains(text, want) {
			return
		}
	}
	var got []string
	for _, d := range diags {
		got = append(got, fmt.Sprintf("%s: %s: %s", d.Subject, d.Summary, d.Detail))
	}
	t.Errorf("no diagnostic at %s containing %q; got:\n%s", pos, want, strings.Join(got, "\n"))
}

// A file is checked whole: every problem is reported in one run, in file
// order, and no problem is reported twice.
func TestManyErrors(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "invalid", "many_errors.hcl"))
	var diags hcl.Diagnostics
	if !errors.As(err, &diags) {
		t.Fatalf("got %v, want diagnostics", err)
	}
	want := []string{
		"3:11 Invalid log level",
		"7:13 Invalid listen address",
		"12:15 Invalid option value",
		"14:12 Unknown behavior",
		"19:7 Duplicate route name",
		"22:21 Invalid max_connections",
	}
	var got []string
	for _, d := range diags {
		got = append(got, fmt.Sprintf("%d:%d %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Summary))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("diagnostics:\n got %q\nwant %q", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.hcl"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a not-exist error", err)
	}
}

func TestLoadINIByExtension(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.INI")
	if err := os.WriteFile(path, []byte("[vaurien]\nproxy = localhost:8001\nbackend = localhost:81\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.DefaultRoute(); got == nil || got.Listen != "localhost:8001" || got.Backend != "localhost:81" {
		t.Errorf("default route = %+v", got)
	}
}

// route wraps route settings in a file with a fixed listen and backend.
func route(body string) string {
	return "route \"r\" {\n  listen  = \"127.0.0.1:0\"\n  backend = \"127.0.0.1:80\"\n" + body + "\n}\n"
}

func TestDurations(t *testing.T) {
	tests := []struct {
		expr string
		want time.Duration
	}{
		{`"500ms"`, 500 * time.Millisecond},
		{`"1m30s"`, 90 * time.Second},
		{`"2"`, 2 * time.Second},
		{`"0.25"`, 250 * time.Millisecond},
		{`2`, 2 * time.Second},
		{`0.5`, 500 * time.Millisecond},
		{`0`, 0},
		{`null`, 0},
		{`env("` + unsetEnv + `", "3s")`, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			f, err := Parse([]byte(route("timeout = "+tt.expr)), "t.hcl")
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Routes[0].Timeout; got != tt.want {
				t.Errorf("timeout = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBadValues(t *testing.T) {
	assertParseFails(t, Parse, "t.hcl", []parseFailure{
		{"duration bool", route("timeout = true"), "4:11", `takes a duration: a string such as "500ms" or "30s", or a number of seconds; this is a bool.`},
		{"duration overflow", route("timeout = 1e30"), "4:11", "out of range"},
		{"connect timeout negative", route("connect_timeout = -1"), "4:19", "must not be negative"},
		{"max connections fraction", route("max_connections = 1.5"), "4:19", "must be a whole number"},
		{"default not bool", route(`default = "maybe"`), "4:11", `The argument "default" takes a bool`},
		{"percent string", route(`behavior "test_abort" { percent = "lots" }`), "4:35", `The argument "percent" takes a number`},
		{"percent null", route(`behavior "test_abort" { percent = null }`), "4:35", "Missing percent"},
		{"seed fraction", "seed = 1.5", "1:8", "whole number"},
		{"seed too big", "seed = 18446744073709551616", "1:8", "whole number"},
		{"list option with a number", route(`behavior "test_lists" {
  percent = 1
  hosts = ["a", 2]
}`), "6:11", `option "hosts" takes a list of strings; got a list.`},
		{"option object", route(`behavior "test_lists" {
  percent = 1
  label = { a = 1 }
}`), "6:11", `option "label" takes a string; got an object.`},
		{"ints beyond 2^53", route(`behavior "test_lists" {
  percent = 1
  codes = [1, 9007199254740993]
}`), "6:11", `option "codes" takes integers from -9007199254740992 to 9007199254740992`},
		{"int option below min", route(`behavior "test_error" {
  percent = 1
  warmup = -3
}`), "6:12", "-3 is out of range; want at least 0"},
		{"protocol options without protocol", route(`protocol_options {
  buffer = 1
}`), "4:1", `Route "r" uses the default protocol "tcp", which this build does not register`},
		{"duplicate protocol_options", route(`protocol = "test_proto"
protocol_options {}
protocol_options {}`), "6:1", "Duplicate protocol_options block"},
		{"unknown function", route(`timeout = envv("X")`), "4:11", "Call to unknown function"},
		{"empty route name", `route "" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:80"
}`, "1:7", "Invalid route name"},
		{"listen null", `route "r" {
  listen  = null
  backend = "127.0.0.1:80"
}`, "2:13", "Missing listen address"},
		{"backend port 0", `route "r" {
  listen  = "127.0.0.1:0"
  backend = "127.0.0.1:0"
}`, "3:13", "port 0 cannot be dialed"},
		{"admin listen", `admin {
  listen = "8080"
}`, "2:12", `The admin API's listen address must be host:port`},
		{"admin and route", `admin {
  listen = "127.0.0.1:9000"
}
route "r" {
  listen  = "0.0.0.0:9000"
  backend = "127.0.0.1:80"
}`, "5:13", "which the admin API already uses (\"127.0.0.1:9000\", set at t.hcl:2,12-28)"},
		{"env arg not string", `admin {
  token = env(["A"])
}`, "2:15", "Invalid function argument"},
	})
}

func TestEnv(t *testing.T) {
	t.Setenv("VAURIEN_TEST_TOKEN", "from-env")
	t.Setenv("VAURIEN_TEST_EMPTY", "")
	tests := []struct {
		expr, want string
	}{
		{`env("VAURIEN_TEST_TOKEN")`, "from-env"},
		{`env("VAURIEN_TEST_TOKEN", "default")`, "from-env"},
		{`env("` + unsetEnv + `", "default")`, "default"},
		{`env("VAURIEN_TEST_EMPTY", "default")`, ""}, // set, even if empty
		{`"Bearer ${env("VAURIEN_TEST_TOKEN")}"`, "Bearer from-env"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			f, err := Parse([]byte("admin {\n  token = "+tt.expr+"\n}\n"), "t.hcl")
			if err != nil {
				t.Fatal(err)
			}
			if f.Admin.Token != tt.want {
				t.Errorf("token = %q, want %q", f.Admin.Token, tt.want)
			}
		})
	}
}

func TestDefaultRoute(t *testing.T) {
	r := func(name string, dflt bool) Route { return Route{Name: name, Default: dflt} }
	tests := []struct {
		name   string
		routes []Route
		want   string // "" for nil
	}{
		{"none", nil, ""},
		{"only", []Route{r("a", false)}, "a"},
		{"marked", []Route{r("a", false), r("b", true)}, "b"},
		{"only and marked", []Route{r("a", true)}, "a"},
		{"several unmarked", []Route{r("a", false), r("b", false)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := (&File{Routes: tt.routes}).DefaultRoute()
			switch {
			case tt.want == "" && got != nil:
				t.Errorf("got route %q, want none", got.Name)
			case tt.want != "" && (got == nil || got.Name != tt.want):
				t.Errorf("got %v, want route %q", got, tt.want)
			}
		})
	}
}

func TestCheckAddress(t *testing.T) {
	tests := []struct {
		addr string
		kind addrKind
		ok   bool
	}{
		{"127.0.0.1:8000", listenAddr, true},
		{":8000", listenAddr, true},
		{"[::1]:8000", listenAddr, true},
		{"localhost:0", listenAddr, true},
		{"localhost:65535", listenAddr, true},
		{"localhost:65536", listenAddr, false},
		{"localhost:-1", listenAddr, false},
		{"localhost:+80", listenAddr, false},
		{"localhost:http", listenAddr, false},
		{"localhost:", listenAddr, false},
		{"localhost", listenAddr, false},
		{"::1:80", listenAddr, false},
		{"", listenAddr, false},
		{"my host:80", listenAddr, false},
		{"redis:6379", backendAddr, true},
		{"demo:http", backendAddr, true},
		{"demo:https", backendAddr, false},
		{"demo:http", listenAddr, false},
		{":6379", backendAddr, false},
		{"redis:0", backendAddr, false},
	}
	for _, tt := range tests {
		err := checkAddress(tt.addr, tt.kind)
		if (err == nil) != tt.ok {
			t.Errorf("checkAddress(%q, %v) = %v, want ok=%v", tt.addr, tt.kind, err, tt.ok)
		}
	}
}

func TestListenConflict(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"127.0.0.1:8000", "127.0.0.1:8000", true},
		{"127.0.0.1:8000", "127.0.0.1:8001", false},
		{"127.0.0.1:8000", "127.0.0.2:8000", false},
		{"0.0.0.0:8000", "127.0.0.1:8000", true},
		{":8000", "[::1]:8000", true},
		{"[::]:8000", "10.0.0.1:8000", true},
		{"LocalHost:8000", "localhost:8000", true},
		{"127.0.0.1:0", "127.0.0.1:0", false},
		{"bad", "bad", false},
	}
	for _, tt := range tests {
		if got := listenConflict(tt.a, tt.b); got != tt.want {
			t.Errorf("listenConflict(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestParseEmpty(t *testing.T) {
	f, err := Parse(nil, "empty.hcl")
	if err != nil {
		t.Fatal(err)
	}
	want := &File{Path: "empty.hcl", Admin: Admin{Listen: DefaultAdminListen}, Log: Log{Level: "info", Format: "json"}, Drain: DefaultDrain, Watch: true}
	assertFile(t, f, want)
	if f.DefaultRoute() != nil {
		t.Error("an empty file has a default route")
	}
}

func TestMatchBlock(t *testing.T) {
	f, err := Load(filepath.Join("testdata", "valid", "match.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	b := f.Routes[0].Behaviors
	want := chaos.MatchSpec{Methods: []string{"POST", "PUT"}, Paths: []string{"/api/*"}, Headers: map[string]string{"X-Tenant": "acme*"}}
	if !reflect.DeepEqual(b[0].Match, want) {
		t.Fatalf("match = %+v, want %+v", b[0].Match, want)
	}
	if want := (chaos.MatchSpec{Commands: []string{"GET"}}); !reflect.DeepEqual(b[1].Match, want) {
		t.Fatalf("match = %+v, want %+v", b[1].Match, want)
	}
	want = chaos.MatchSpec{Commands: []string{"UPDATE"}, SQL: []string{"*orders*"}, Databases: []string{"shop"}, Users: []string{"app", "batch"}}
	if !reflect.DeepEqual(b[2].Match, want) {
		t.Fatalf("match = %+v, want %+v", b[2].Match, want)
	}
}

func TestLoadHashesTheBytes(t *testing.T) {
	dir := t.TempDir()
	for _, src := range []string{"", "watch = false\n", "watch = true\n", "drain = \"1s\"\n"} {
		path := filepath.Join(dir, "v.hcl")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := sha256.Sum256([]byte(src)); f.SHA256 != want {
			t.Errorf("Load(%q).SHA256 = %x, want %x", src, f.SHA256, want)
		}
		if want := src != "watch = false\n"; f.Watch != want {
			t.Errorf("Load(%q).Watch = %v, want %v", src, f.Watch, want)
		}
	}
}

func TestWatchMustBeABool(t *testing.T) {
	_, err := Parse([]byte("watch = \"no\"\n"), "w.hcl")
	if err == nil || !strings.Contains(err.Error(), "w.hcl:1,9") || !strings.Contains(err.Error(), `"watch"`) {
		t.Fatalf("Parse(watch = \"no\") = %v, want an error at w.hcl:1,9 about watch", err)
	}
}

func TestTLSBlocks(t *testing.T) {
	f, err := Load(filepath.Join("testdata", "valid", "tls.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	r := f.Routes[0]
	if !r.TLS.Bool("generate") || !reflect.DeepEqual(r.TLS.Strings("names"), []string{"localhost", "vaurien"}) ||
		r.TLS.String("ca_out") != "/shared/vaurien-ca.pem" || r.TLS.Duration("handshake_timeout") != 10*time.Second {
		t.Errorf("tls = %v", r.TLS)
	}
	if r.BackendTLS.String("ca") != "/etc/ssl/backend-ca.pem" || r.BackendTLS.String("cert") != "client.pem" ||
		r.BackendTLS.String("key") != "client.key" || r.BackendTLS.Bool("insecure_skip_verify") {
		t.Errorf("backend_tls = %v", r.BackendTLS)
	}
	// The blocks survive a round trip through Format.
	again, err := Parse(Format(f), "formatted.hcl")
	if err != nil {
		t.Fatalf("formatted file does not load: %v\n%s", err, Format(f))
	}
	if g := again.Routes[0]; !reflect.DeepEqual(g.TLS, r.TLS) || !reflect.DeepEqual(g.BackendTLS, r.BackendTLS) {
		t.Errorf("after Format: tls %v, backend_tls %v; want %v, %v", g.TLS, g.BackendTLS, r.TLS, r.BackendTLS)
	}
	if f, _ := Load(filepath.Join("testdata", "valid", "minimal.hcl")); f.Routes[0].TLS != nil || f.Routes[0].BackendTLS != nil {
		t.Errorf("a route without the blocks has tls %v, backend_tls %v", f.Routes[0].TLS, f.Routes[0].BackendTLS)
	}
}
