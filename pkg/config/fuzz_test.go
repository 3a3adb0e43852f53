package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// addFiles seeds a fuzz target with the test files matching the patterns,
// on top of the corpus under testdata/fuzz.
func addFiles(f *testing.F, patterns ...string) {
	for _, pattern := range patterns {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, path := range files {
			src, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
}

// checkDiagnostics asserts what callers rely on: a failed load is
// hcl.Diagnostics, each error pointing into the file.
func checkDiagnostics(t *testing.T, err error, filename string) {
	var diags hcl.Diagnostics
	if !errors.As(err, &diags) {
		t.Fatalf("error is %T, not hcl.Diagnostics: %v", err, err)
	}
	if !diags.HasErrors() {
		t.Fatalf("error without an error diagnostic: %v", err)
	}
	for _, d := range diags {
		if d.Subject == nil || d.Subject.Filename != filename || d.Subject.Start.Line < 1 || d.Subject.Start.Column < 1 {
			t.Fatalf("diagnostic without a position in %s: %s: %s (subject %v)", filename, d.Summary, d.Detail, d.Subject)
		}
		if d.Summary == "" || d.Detail == "" {
			t.Fatalf("diagnostic without summary or detail: %q: %q", d.Summary, d.Detail)
		}
	}
}

// FuzzParse checks that the HCL loader never panics, that every failure is
// located, and that whatever loads survives Format and Parse unchanged.
func FuzzParse(f *testing.F) {
	addFiles(f, filepath.Join("testdata", "valid", "*.hcl"), filepath.Join("testdata", "invalid", "*.hcl"))
	f.Fuzz(func(t *testing.T, src []byte) {
		const name = "fuzz.hcl"
		file, err := Parse(src, name)
		if err != nil {
			checkDiagnostics(t, err, name)
			return
		}
		out := Format(file)
		back, err := Parse(out, name)
		if err != nil {
			t.Fatalf("formatted file does not load: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, file) {
			t.Fatalf("round trip changed the file:\n got %#v\nwant %#v\n%s", back, file, out)
		}
	})
}

// FuzzParseINI does the same for the original's .ini format, whose files
// `vaurien convert` turns into HCL.
func FuzzParseINI(f *testing.F) {
	addFiles(f, filepath.Join("testdata", "ini", "*.ini"))
	f.Fuzz(func(t *testing.T, src []byte) {
		const name = "fuzz.ini"
		file, err := ParseINI(src, name)
		if err != nil {
			checkDiagnostics(t, err, name)
			return
		}
		out := Format(file)
		back, err := Parse(out, name)
		if err != nil {
			t.Fatalf("converted file does not load: %v\n%s", err, out)
		}
		// Strings come back in Unicode normal form C, as HCL reads them, so
		// the formatted text is compared rather than the structs.
		if again := Format(back); !bytes.Equal(again, out) {
			t.Fatalf("round trip changed the file:\n%s\nthen\n%s", out, again)
		}
	})
}
