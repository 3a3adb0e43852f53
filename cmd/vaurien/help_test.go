package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/config"
)

// TestHelpShowsSubcommandsFirst: --help, -h and help list the subcommands,
// then the original Vaurien's flags.
func TestHelpShowsSubcommandsFirst(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "help"} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{arg}, &out, &errb); code != 0 {
			t.Fatalf("%s: exit %d; stderr:\n%s", arg, code, errb.String())
		}
		help := out.String()
		sub := strings.Index(help, "vaurien validate FILE")
		flags := strings.Index(help, "-behavior-delay-sleep")
		if sub < 0 || flags < 0 || sub > flags {
			t.Errorf("%s: want the subcommands (at %d) before the original flags (at %d):\n%s", arg, sub, flags, help)
		}
	}
}

// TestMissingDefaultConfigSaysWhatToDo: a first run without ./vaurien.hcl
// says how to point at a file and how to run the demo.
func TestMissingDefaultConfigSaysWhatToDo(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("VAURIEN_CONFIG", "")
	var errb bytes.Buffer
	if code := run(context.Background(), nil, &bytes.Buffer{}, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{`"vaurien.hcl"`, "vaurien run -c FILE", "VAURIEN_CONFIG=FILE", "--backend demo:http"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("message does not say %q:\n%s", want, errb.String())
		}
	}
}

// TestMissingDefaultConfigDemoRuns: the demo command that message shows is
// a valid command line.
func TestMissingDefaultConfigDemoRuns(t *testing.T) {
	_, demo, ok := strings.Cut(missingConfig, "Try the demo:")
	if !ok {
		t.Fatal("the message shows no demo")
	}
	demo, _, _ = strings.Cut(demo, "then curl")
	args := strings.Fields(strings.ReplaceAll(demo, "\\", ""))
	if len(args) < 2 || args[0] != "vaurien" {
		t.Fatalf("demo command %q", demo)
	}
	l := newLegacyFlags(&bytes.Buffer{})
	if err := l.fs.Parse(args[1:]); err != nil {
		t.Fatal(err)
	}
	if _, err := l.file(); err != nil {
		t.Fatalf("demo command %v: %v", args, err)
	}
}

// TestOriginalFlagErrorsNameNoFile: an error in the original's flags does
// not start with an empty file name (": error: --behavior ...").
func TestOriginalFlagErrorsNameNoFile(t *testing.T) {
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"--behavior", "5:nope"}, &bytes.Buffer{}, &errb); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if got := errb.String(); !strings.HasPrefix(got, "vaurien: --behavior: ") {
		t.Errorf("stderr %q, want it to start with \"vaurien: --behavior: \"", got)
	}
}

// TestReadmeSaysHowToInstall: the README calls a bare vaurien, so it says
// how to get one, and the line it gives names this module's command.
func TestReadmeSaysHowToInstall(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "list", "-m").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "go install " + strings.TrimSpace(string(out)) + "/cmd/vaurien@latest"
	if !strings.Contains(string(readme), want) {
		t.Errorf("the README does not say %q", want)
	}
}

// TestOriginalProtocolOptionsLoadOnEveryProtocol: the options the original
// documented for every protocol (reuse_socket, buffer, keep_alive) load in
// an original .ini file's [protocol:NAME] section, an HCL protocol_options
// block and the original's flags, for every protocol the original had.
func TestOriginalProtocolOptionsLoadOnEveryProtocol(t *testing.T) {
	for _, proto := range []string{"tcp", "http", "redis", "memcache", "mysql", "smtp"} {
		t.Run(proto, func(t *testing.T) {
			ini := writeFile(t, "old.ini", "[vaurien]\nproxy = localhost:8000\nbackend = localhost:9000\nprotocol = "+proto+
				"\n\n[protocol:"+proto+"]\nkeep_alive = true\nreuse_socket = true\nbuffer = 4096\n")
			hcl := writeFile(t, "new.hcl", "route \"r\" {\n  listen   = \"127.0.0.1:0\"\n  backend  = \"127.0.0.1:9\"\n  protocol = \""+proto+
				"\"\n  protocol_options {\n    keep_alive   = true\n    reuse_socket = true\n    buffer       = 4096\n  }\n}\n")
			var errb bytes.Buffer
			if code := run(context.Background(), []string{"validate", ini, hcl}, &bytes.Buffer{}, &errb); code != 0 {
				t.Fatalf("validate: exit %d:\n%s", code, errb.String())
			}
			l := newLegacyFlags(&errb)
			if err := l.fs.Parse([]string{"--protocol", proto, "--protocol-" + proto + "-keep-alive", "true", "--protocol-" + proto + "-reuse-socket", "true"}); err != nil {
				t.Fatalf("flags: %v", err)
			}
			if _, err := l.file(); err != nil {
				t.Fatalf("flags: %v", err)
			}
		})
	}
}

// TestConfigINIWinsOverFlagsHCLDoesNot: with --config old.ini the file's
// values win over the flags, as in the original, which read its file after
// its command line, and the flags fill in what the file leaves out; with an
// .hcl file the flags override its default route.
func TestConfigINIWinsOverFlagsHCLDoesNot(t *testing.T) {
	ini := writeFile(t, "old.ini", "[vaurien]\nproxy = 127.0.0.1:7001\nbackend = 127.0.0.1:7101\nbehavior = 50:delay\n\n[behavior:delay]\nsleep = 0.3\n")
	flags := []string{"--proxy", "127.0.0.1:7002", "--backend", "127.0.0.1:7102", "--timeout", "5",
		"--behavior-delay-sleep", "2", "--behavior-delay-before", "false", "--http", "--http-port", "7200"}
	l := newLegacyFlags(&bytes.Buffer{})
	if err := l.fs.Parse(append([]string{"--config", ini}, flags...)); err != nil {
		t.Fatal(err)
	}
	f, err := l.file()
	if err != nil {
		t.Fatal(err)
	}
	r := f.DefaultRoute()
	if r.Listen != "127.0.0.1:7001" || r.Backend != "127.0.0.1:7101" {
		t.Errorf("ini: route listens on %s to %s, want the file's 127.0.0.1:7001 to 127.0.0.1:7101", r.Listen, r.Backend)
	}
	if len(r.Behaviors) != 1 || r.Behaviors[0].Options.Duration("sleep") != 300*time.Millisecond {
		t.Errorf("ini: mix %+v, want the file's delay with sleep 0.3", r.Behaviors)
	}
	if len(r.Behaviors) == 1 && r.Behaviors[0].Options.Bool("before") {
		t.Errorf("ini: --behavior-delay-before false, which the file does not set, was not applied")
	}
	if r.Timeout != 5*time.Second || f.Admin.Listen != "localhost:7200" {
		t.Errorf("ini: timeout %v, admin %q; want the flags' 5s and localhost:7200 where the file is silent", r.Timeout, f.Admin.Listen)
	}

	hcl := writeFile(t, "new.hcl", "route \"default\" {\n  listen  = \"127.0.0.1:7001\"\n  backend = \"127.0.0.1:7101\"\n}\n")
	l = newLegacyFlags(&bytes.Buffer{})
	if err := l.fs.Parse(append([]string{"--config", hcl}, flags...)); err != nil {
		t.Fatal(err)
	}
	if f, err = l.file(); err != nil {
		t.Fatal(err)
	}
	if r := f.DefaultRoute(); r.Listen != "127.0.0.1:7002" || r.Backend != "127.0.0.1:7102" || r.Timeout != 5*time.Second {
		t.Errorf("hcl: route %s to %s, timeout %v; want the flags' 127.0.0.1:7002 to 127.0.0.1:7102, 5s", r.Listen, r.Backend, r.Timeout)
	}

	// A bad flag value under an .ini file names the command line, not a line of the file.
	l = newLegacyFlags(&bytes.Buffer{})
	if err := l.fs.Parse([]string{"--config", ini, "--timeout", "soon"}); err != nil {
		t.Fatal(err)
	}
	_, err = l.file()
	var errb bytes.Buffer
	printConfigError(&errb, ini, err)
	if !strings.HasPrefix(errb.String(), "command line: error: Invalid timeout") {
		t.Errorf("bad --timeout under an .ini file: %q", errb.String())
	}
}

// TestConvertKeepsEnvironmentVariables: vaurien convert writes ${NAME} as
// env("NAME") and ${NAME:-default} as env("NAME", "default"), never the
// variable's current value, and does not need it set; the HCL it writes
// reads back to what the .ini file gives.
func TestConvertKeepsEnvironmentVariables(t *testing.T) {
	ini := writeFile(t, "old.ini", `[vaurien]
proxy = 127.0.0.1:${VT_PROXY_PORT:-8000}
backend = redis.local:${VT_REDIS_PORT}
timeout = ${VT_TIMEOUT}
protocol = redis
behavior = 20:delay

[behavior:delay]
sleep = ${VT_SLEEP:-0.5}

[protocol:redis]
keep_alive = ${VT_KEEP_ALIVE}
`)
	for _, name := range []string{"VT_PROXY_PORT", "VT_REDIS_PORT", "VT_TIMEOUT", "VT_SLEEP", "VT_KEEP_ALIVE"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"convert", ini}, &out, &errb); code != 0 {
		t.Fatalf("convert with the variables unset: exit %d:\n%s", code, errb.String())
	}
	for _, want := range []string{
		`listen          = "127.0.0.1:${env("VT_PROXY_PORT", "8000")}"`,
		`backend         = "redis.local:${env("VT_REDIS_PORT")}"`,
		`timeout         = env("VT_TIMEOUT")`,
		`sleep   = env("VT_SLEEP", "0.5")`,
		`keep_alive = tobool(env("VT_KEEP_ALIVE"))`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("convert output lacks %s:\n%s", want, out.String())
		}
	}

	t.Setenv("VT_REDIS_PORT", "7777")
	t.Setenv("VT_TIMEOUT", "3")
	t.Setenv("VT_KEEP_ALIVE", "true")
	out.Reset()
	if code := run(context.Background(), []string{"convert", ini}, &out, &errb); code != 0 || strings.Contains(out.String(), "7777") {
		t.Fatalf("convert with the variables set wrote their values (exit %d):\n%s", code, out.String())
	}
	hcl := writeFile(t, "new.hcl", out.String())
	fromINI, err := config.Load(ini)
	if err != nil {
		t.Fatal(err)
	}
	fromHCL, err := config.Load(hcl)
	if err != nil {
		t.Fatalf("the converted file does not load: %v\n%s", err, out.String())
	}
	a, b := fromINI.Routes[0], fromHCL.Routes[0]
	if a.Listen != "127.0.0.1:8000" || a.Backend != "redis.local:7777" || a.Listen != b.Listen || a.Backend != b.Backend ||
		a.Timeout != b.Timeout || b.Timeout != 3*time.Second ||
		fmt.Sprint(a.ProtocolOptions) != fmt.Sprint(b.ProtocolOptions) || fmt.Sprint(a.Behaviors) != fmt.Sprint(b.Behaviors) {
		t.Errorf("the .ini file gives %+v\nits conversion gives %+v", a, b)
	}

	// Where HCL needs the value itself, convert says so.
	bad := writeFile(t, "bad.ini", "[vaurien]\nprotocol = ${VT_PROTOCOL}\n")
	errb.Reset()
	if code := run(context.Background(), []string{"convert", bad}, &bytes.Buffer{}, &errb); code != 1 || !strings.Contains(errb.String(), "bad.ini:2:12: error: Environment variable cannot be converted") {
		t.Errorf("convert of protocol = ${VT_PROTOCOL}: exit %d: %s", code, errb.String())
	}
}
