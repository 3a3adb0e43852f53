package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
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
