package filewatch

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const debounce = 50 * time.Millisecond

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// configMap lays out dir the way the kubelet mounts a ConfigMap and returns
// a function that swaps in new content the way the kubelet does: a new
// timestamped directory, a "..data_tmp" symlink to it renamed over
// "..data", then the old directory removed.
func configMap(t *testing.T, dir, content string) (swap func(string)) {
	t.Helper()
	n := 0
	put := func(content string) string {
		n++
		ts := filepath.Join(dir, fmt.Sprintf("..2026_12_02_17_00_%02d.%d", n, n))
		if err := os.Mkdir(ts, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(ts, "vaurien.hcl"), content)
		return filepath.Base(ts)
	}
	old := put(content)
	symlink(t, old, filepath.Join(dir, "..data"))
	symlink(t, "..data/vaurien.hcl", filepath.Join(dir, "vaurien.hcl"))
	return func(content string) {
		ts := put(content)
		symlink(t, ts, filepath.Join(dir, "..data_tmp"))
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			t.Fatal(err)
		}
		old = ts
	}
}

func TestNoticeForEveryWayAFileChanges(t *testing.T) {
	tests := []struct {
		name string
		// setup lays out dir holding "a" and returns the watched path and
		// a function that changes what it reads.
		setup func(t *testing.T, dir string) (string, func(string))
	}{
		{"write in place", func(t *testing.T, dir string) (string, func(string)) {
			p := filepath.Join(dir, "vaurien.hcl")
			write(t, p, "a")
			return p, func(s string) { write(t, p, s) }
		}},
		{"editor renames a new file over it", func(t *testing.T, dir string) (string, func(string)) {
			p := filepath.Join(dir, "vaurien.hcl")
			write(t, p, "a")
			return p, func(s string) {
				write(t, p+".tmp", s)
				if err := os.Rename(p+".tmp", p); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"editor removes then writes anew", func(t *testing.T, dir string) (string, func(string)) {
			p := filepath.Join(dir, "vaurien.hcl")
			write(t, p, "a")
			return p, func(s string) {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				write(t, p, s)
			}
		}},
		{"kubernetes configmap swap", func(t *testing.T, dir string) (string, func(string)) {
			return filepath.Join(dir, "vaurien.hcl"), configMap(t, dir, "a")
		}},
		{"target of a symlink in another directory written", func(t *testing.T, dir string) (string, func(string)) {
			target := filepath.Join(t.TempDir(), "real.hcl")
			write(t, target, "a")
			p := filepath.Join(dir, "vaurien.hcl")
			symlink(t, target, p)
			return p, func(s string) { write(t, target, s) }
		}},
		{"symlink repointed", func(t *testing.T, dir string) (string, func(string)) {
			write(t, filepath.Join(dir, "a.hcl"), "a")
			p := filepath.Join(dir, "vaurien.hcl")
			symlink(t, "a.hcl", p)
			return p, func(s string) {
				write(t, filepath.Join(dir, s+".hcl"), s)
				symlink(t, s+".hcl", p+".new")
				if err := os.Rename(p+".new", p); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, change := tt.setup(t, t.TempDir())
			w, err := New(path, debounce)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			// The second change proves the watch survived the first.
			for _, want := range []string{"b", "c"} {
				start := time.Now()
				change(want)
				select {
				case <-w.C:
				case <-time.After(5 * time.Second):
					t.Fatalf("no notice within 5s of the change to %q", want)
				}
				if d := time.Since(start); d < debounce {
					t.Errorf("notice after %v, before the %v debounce", d, debounce)
				}
				if got, err := os.ReadFile(path); err != nil || string(got) != want {
					t.Fatalf("after the notice the file reads %q, %v; want %q", got, err, want)
				}
			}
		})
	}
}

func TestBurstGivesOneNoticeAndOtherFilesNone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vaurien.hcl")
	write(t, path, "a")
	w, err := New(path, debounce)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	// Files beside it come and go: no notice.
	for i := range 20 {
		write(t, filepath.Join(dir, fmt.Sprintf("other%d", i)), "x")
	}
	select {
	case <-w.C:
		t.Fatal("a notice for files other than the watched one")
	case <-time.After(10 * debounce):
	}

	// A burst of writes closer together than the debounce: one notice.
	for i := range 10 {
		write(t, path, fmt.Sprint(i))
		time.Sleep(debounce / 10)
	}
	select {
	case <-w.C:
	case <-time.After(5 * time.Second):
		t.Fatal("no notice within 5s of the burst")
	}
	select {
	case <-w.C:
		t.Fatal("a second notice for one burst")
	case <-time.After(10 * debounce):
	}
}
