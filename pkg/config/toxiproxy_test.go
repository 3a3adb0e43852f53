package config

import (
	"strings"
	"testing"
)

func TestToxiproxyBlock(t *testing.T) {
	tests := []struct {
		src, want, err string
	}{
		{``, "", ""},
		{"toxiproxy {}\n", DefaultToxiproxyListen, ""},
		{"toxiproxy {\n  listen = \":18474\"\n}\n", ":18474", ""},
		{"admin {\n  listen = \"127.0.0.1:8474\"\n}\ntoxiproxy {}\n", "", "The Toxiproxy API listens on \"127.0.0.1:8474\", which the admin API already uses"},
		{"toxiproxy {\n  listen = 8474\n}\n", "", "Invalid listen address"},
		{"toxiproxy {\n  port = 8474\n}\n", "", "Unsupported argument"},
	}
	for _, tt := range tests {
		f, err := Parse([]byte(tt.src), "t.hcl")
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: got %v, want an error with %q", tt.src, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.src, err)
			continue
		}
		if f.Toxiproxy.Listen != tt.want {
			t.Errorf("%q: listen %q, want %q", tt.src, f.Toxiproxy.Listen, tt.want)
		}
		// Format writes the block back only when it is on, and reads back the same.
		out := string(Format(f))
		if strings.Contains(out, "toxiproxy") != (tt.want != "") {
			t.Errorf("%q formats as:\n%s", tt.src, out)
		}
		back, err := Parse([]byte(out), "back.hcl")
		if err != nil || back.Toxiproxy != f.Toxiproxy {
			t.Errorf("%q: round trip gave %+v, %v", tt.src, back, err)
		}
	}
}
