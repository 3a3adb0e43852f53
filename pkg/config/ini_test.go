package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/ini")

func TestParseINIValid(t *testing.T) {
	t.Setenv("VAURIEN_TEST_BACKEND", "redis.local:6379")
	tests := []struct {
		file string
		want *File
	}{
		{
			file: "original.ini",
			want: &File{
				Admin: Admin{Listen: "0.0.0.0:8081"},
				Log:   Log{Level: "warn", Format: "json"},
				Drain: DefaultDrain,
				Watch: true,
				Routes: []Route{{
					Name:            "default",
					Listen:          "0.0.0.0:8000",
					Backend:         "redis.local:6379",
					Protocol:        "test_proto",
					ProtocolOptions: chaos.Values{"buffer": int64(8124), "keep_alive": true},
					Timeout:         10 * time.Second,
					ConnectTimeout:  10 * time.Second,
					Default:         true,
					Behaviors: []Behavior{
						{Name: "test_delay", Percent: 20, Options: chaos.Values{"sleep": 2 * time.Second, "before": false}},
						{Name: "test_error", Percent: 5, Options: chaos.Values{"inject": true, "warmup": int64(3), "mode": "page"}},
					},
				}},
			},
		},
		{
			file: "minimal.ini",
			want: &File{
				Admin: Admin{}, // http is off: no admin API, as in the original
				Log:   Log{Level: "info", Format: "json"},
				Drain: DefaultDrain,
				Watch: true,
				Routes: []Route{{
					Name:            "default",
					Listen:          "0.0.0.0:8181",
					Backend:         "0.0.0.0:8080",
					Protocol:        "tcp",
					ProtocolOptions: chaos.Values{},
					Timeout:         30 * time.Second,
					ConnectTimeout:  30 * time.Second,
					Default:         true,
					Behaviors:       []Behavior{{Name: "test_abort", Percent: 100, Options: chaos.Values{}}},
				}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", "ini", tt.file)
			got, err := Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.want.Path = path
			assertFile(t, got, tt.want)
		})
	}
}

// TestConvert is `vaurien convert`: an .ini file rendered as HCL, compared
// with a golden file, which must load to the same configuration.
func TestConvert(t *testing.T) {
	t.Setenv("VAURIEN_TEST_BACKEND", "redis.local:6379")
	inis, err := filepath.Glob(filepath.Join("testdata", "ini", "*.ini"))
	if err != nil || len(inis) == 0 {
		t.Fatalf("no .ini files: %v", err)
	}
	for _, ini := range inis {
		t.Run(filepath.Base(ini), func(t *testing.T) {
			f, err := Load(ini)
			if err != nil {
				t.Fatal(err)
			}
			got := Format(f)
			golden := ini[:len(ini)-len(".ini")] + ".golden.hcl"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Format(%s) differs from %s:\n%s", ini, golden, got)
			}
			back, err := Parse(got, f.Path)
			if err != nil {
				t.Fatalf("converted file does not load: %v", err)
			}
			assertFile(t, back, f)
		})
	}
}

func TestParseINIInvalid(t *testing.T) {
	const head = "[vaurien]\nproxy = localhost:8000\nbackend = localhost:80\n"
	assertParseFails(t, ParseINI, "old.ini", []parseFailure{
		{"unknown key", head + "proxi = localhost:9000\n", "4:1", `Unknown key: The [vaurien] section has no key "proxi". Did you mean "proxy"?`},
		{"unknown behavior", head + "behavior = 20:test_dely\n", "4:12", `There is no behavior named "test_dely". Did you mean "test_delay"? The valid behaviors are "test_abort", "test_delay", "test_error" and "test_lists".`},
		{"bad behavior list", head + "behavior = twenty:test_delay\n", "4:12", "Invalid behavior list: Each behavior is written PERCENT:NAME"},
		{"over 100", head + "behavior = 60:test_delay,50:test_abort\n", "4:12", "Percentages over 100: The behaviors take 110%"},
		{"bad option value", head + "[behavior:test_delay]\nsleep = soon\n", "5:9", `The behavior "test_delay" option "sleep" takes a duration`},
		{"ints beyond 2^53", head + "[behavior:test_lists]\ncodes = 1, 10000000000000001\n", "5:9", `option "codes" takes integers from -9007199254740992 to 9007199254740992; 10000000000000001 is out of range`},
		{"unknown option", head + "[behavior:test_delay]\nslep = 1\n", "5:1", `The behavior "test_delay" has no option named "slep". Did you mean "sleep"?`},
		{"unknown behavior section", head + "[behavior:nope]\n", "4:1", `There is no behavior named "nope".`},
		{"python behavior", head + "[behavior:custom]\ncallable = mymodule.Custom\n", "5:1", "Python behaviors are not supported"},
		{"unknown protocol option", head + "protocol = test_proto\n[protocol:test_proto]\nbufer = 1\n", "6:1", `Did you mean "buffer"?`},
		{"unknown protocol", head + "protocol = test_prot\n", "4:12", `There is no protocol named "test_prot". Did you mean "test_proto"?`},
		{"options of unknown protocol", head + "[protocol:nope]\nbuffer = 1\n", "4:1", `There is no protocol named "nope".`},
		{"unknown section", head + "[circus]\n", "4:1", "Unknown section: The section [circus] is not part of a Vaurien configuration."},
		{"missing vaurien", "[statsd]\nenabled = true\n", "1:1", "Missing [vaurien] section"},
		{"unset env", head + "timeout = ${" + unsetEnv + "}\n", "4:11", "the environment variable " + unsetEnv + " is not set"},
		{"key outside a section", "proxy = localhost:8000\n", "1:1", "Key outside a section"},
		{"backend is the proxy", "[vaurien]\nproxy = localhost:8000\nbackend = 127.0.0.1:8000\n", "3:11", `Backend is vaurien itself: The backend of route "default", "127.0.0.1:8000", reaches "localhost:8000"`},
		{"default backend is the proxy", "[vaurien]\nproxy = :80\n", "2:9", `Backend is vaurien itself: The backend of route "default", "localhost:80", reaches ":80"`},
		{"invalid line", head + "garbage\n", "4:1", "Invalid line"},
		{"unclosed section", head + "[behavior:test_delay\n", "4:1", "Invalid section header"},
		{"stray indent", "[vaurien]\n\n  indented\n", "3:1", "Unexpected indented line"},
		{"bad proxy", "[vaurien]\nproxy = 8000\n", "2:9", `Invalid proxy address: The proxy address must be host:port`},
		{"bad backend", head + "backend = localhost:http\n", "4:11", "Invalid backend address"},
		{"bad timeout", head + "timeout = soon\n", "4:11", `The timeout is a number of seconds, such as 30; got "soon".`},
		{"bad seed", head + "seed = -4\n", "4:8", "Invalid seed"},
		{"bad http", head + "http = maybe\n", "4:8", "The http key is a boolean"},
		{"bad http port", head + "http = true\nhttp_port = 80a\n", "5:13", "Invalid http address"},
		{"bad log level", head + "log_level = loud\n", "4:13", "The log level must be debug, info, warning, error or critical"},
		{"proxy on admin port", "[vaurien]\nproxy = localhost:9000\nhttp = 1\nhttp_port = 9000\n", "2:9", "Duplicate listen address"},
		{"invalid utf-8", head + "backend = \xff\n", "4:1", "Invalid UTF-8"},
	})
}

// The file syntax is Python 2's RawConfigParser's, which the original read.
func TestParseINISyntax(t *testing.T) {
	t.Setenv("VAURIEN_TEST_HOST", "backend.local")
	src := `; a comment
# another
REM a comment too
[vaurien]
Proxy = localhost:8001
backend = ${VAURIEN_TEST_HOST}:81 ; trailing comment
backend = ${VAURIEN_TEST_HOST}:82
seed = 7
behavior =
    10:test_delay,
    10:test_lists
http = on
http_host = "::1"
[behavior:test_lists]
hosts = a.example

  b.example
label = "${not expanded}"
codes = 1,2,3
[vaurien]
timeout = 0.5
`
	f, err := ParseINI([]byte(src), "old.ini")
	if err != nil {
		t.Fatal(err)
	}
	r := f.DefaultRoute()
	if r == nil {
		t.Fatal("no default route")
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen (key case)", r.Listen, "localhost:8001"},
		{"backend (last wins, ${ENV})", r.Backend, "backend.local:82"},
		{"seed", f.Seed, uint64(7)},
		{"timeout (merged section)", r.Timeout, 500 * time.Millisecond},
		{"admin", f.Admin.Listen, "[::1]:8080"},
		{"behaviors", len(r.Behaviors), 2},
		{"hosts (continuation)", r.Behaviors[1].Options.Strings("hosts"), []string{"a.example", "b.example"}},
		{"label (quoted, not expanded)", r.Behaviors[1].Options.String("label"), "${not expanded}"},
		{"codes", r.Behaviors[1].Options.Ints("codes"), []int64{1, 2, 3}},
		{"delay defaults", r.Behaviors[0].Options.Duration("sleep"), time.Second},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
}

func TestParseINIDummy(t *testing.T) {
	// dummy is the remainder of the mix anyway, so it is not an entry, and
	// the original's default "100:dummy" loads even where dummy is not
	// registered.
	f, err := ParseINI([]byte("[vaurien]\nbehavior = 50:dummy,50:test_abort\n"), "old.ini")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Routes[0].Behaviors; len(got) != 1 || got[0].Name != "test_abort" {
		t.Errorf("behaviors = %+v, want test_abort only", got)
	}
	if _, err := ParseINI([]byte("[vaurien]\nbehavior = 60:dummy,50:test_abort\n"), "old.ini"); err == nil {
		t.Error("dummy's share is not counted in the total")
	}
}
