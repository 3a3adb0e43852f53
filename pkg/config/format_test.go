package config

import (
	"bytes"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func TestFormatRoundTrip(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "valid", "*.hcl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no valid files: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			assertRoundTrip(t, f)
		})
	}
}

// assertRoundTrip checks that Format renders f as HCL that Parse reads
// back to f, and that formatting is stable.
func assertRoundTrip(t *testing.T, f *File) {
	t.Helper()
	out := Format(f)
	back, err := Parse(out, f.Path)
	if err != nil {
		t.Fatalf("Parse(Format(f)): %v\n%s", err, out)
	}
	assertFile(t, back, f)
	if again := Format(back); !bytes.Equal(again, out) {
		t.Errorf("Format is not stable:\n%s\nthen\n%s", out, again)
	}
}

func TestFormatValues(t *testing.T) {
	f := &File{
		Path:  "values.hcl",
		Admin: Admin{Listen: "[::1]:9999", Token: "tok ${x} %{y} \"q\" \\ \n\t é"},
		Log:   Log{Level: "error", Format: "console"},
		Seed:  math.MaxUint64,
		Drain: 0,
		Routes: []Route{{
			Name:            "odd.values-1",
			Listen:          "127.0.0.1:0",
			Backend:         "example.com:65535",
			Protocol:        "test_proto",
			ProtocolOptions: chaos.Values{"buffer": int64(0), "keep_alive": false},
			Timeout:         time.Hour + time.Nanosecond,
			ConnectTimeout:  0,
			MaxConnections:  math.MaxInt32,
			Behaviors: []Behavior{
				{Name: "test_lists", Percent: 0.1, Options: chaos.Values{
					"hosts": []string{},
					"codes": []int64{-1, 0, 1 << 40},
					"ratio": -1e-7,
					"label": "",
				}},
				{Name: "test_lists", Percent: 33.333333333333336, Options: chaos.Values{
					"hosts": []string{"ünïcode"},
					"codes": []int64{500},
					"ratio": 1e21,
					"label": "line\nbreak",
				}},
				{Name: "test_delay", Percent: 0, Options: chaos.Values{"sleep": 1500 * time.Millisecond, "before": true}},
			},
		}},
	}
	assertRoundTrip(t, f)
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{500 * time.Millisecond, "500ms"},
		{time.Minute, "1m"},
		{90 * time.Second, "1m30s"},
		{time.Hour, "1h"},
		{time.Hour + 30*time.Minute, "1h30m"},
		{time.Hour + time.Second, "1h0m1s"},
		{1500 * time.Microsecond, "1.5ms"},
	}
	for _, tt := range tests {
		got := formatDuration(tt.d)
		if got != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
		if back, err := chaos.ParseDuration(got); err != nil || back != tt.d {
			t.Errorf("%q parses back to %v, %v; want %v", got, back, err, tt.d)
		}
	}
}
