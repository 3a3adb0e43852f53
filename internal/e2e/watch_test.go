package e2e

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// configMapDir lays out dir as the kubelet mounts a ConfigMap holding
// vaurien.hcl, and returns the file's path and a function that updates it
// as the kubelet does: the new content goes into a new timestamped
// directory, a "..data_tmp" symlink to it is renamed over "..data", and
// the old directory is removed. vaurien.hcl itself, a symlink to
// ..data/vaurien.hcl, is never touched.
func configMapDir(t *testing.T, dir, content string) (string, func(string)) {
	t.Helper()
	n := 0
	put := func(content string) string {
		n++
		ts := fmt.Sprintf("..2026_12_02_17_30_%02d.%09d", n, n)
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ts, "vaurien.hcl"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return ts
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	old := put(content)
	must(os.Symlink(old, filepath.Join(dir, "..data")))
	must(os.Symlink("..data/vaurien.hcl", filepath.Join(dir, "vaurien.hcl")))
	return filepath.Join(dir, "vaurien.hcl"), func(content string) {
		ts := put(content)
		must(os.Symlink(ts, filepath.Join(dir, "..data_tmp")))
		must(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
		must(os.RemoveAll(filepath.Join(dir, old)))
		old = ts
	}
}

// metric reads one series' value from the admin API's /metrics; series is
// the name with its labels as Prometheus prints them.
func metric(t *testing.T, admin, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("/metrics has no %s", series)
	return 0
}

// hashPrefix is what vaurien_config_hash shows for content: the README's
// printf '%d' 0x$(sha256sum FILE | cut -c1-12).
func hashPrefix(content string) float64 {
	n, _ := strconv.ParseUint(fmt.Sprintf("%x", sha256.Sum256([]byte(content)))[:12], 16, 64)
	return float64(n)
}

// blackedOut reports whether a new connection to addr is closed without
// its echo, as the blackout behavior does.
func blackedOut(t *testing.T, addr string) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return true
	}
	buf := make([]byte, 4)
	_, err = io.ReadFull(c, buf)
	return err != nil
}

const blackoutMix = "  behavior \"blackout\" {\n    percent = 100\n  }\n"

func TestConfigMapSwapUnderTrafficReloads(t *testing.T) {
	backend := echoServer(t)
	steady, flip, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	head := fmt.Sprintf("admin {\n  listen = %q\n}\ndrain = \"5s\"\n", admin)
	first := head + routeBlock("steady", steady, backend, "") + routeBlock("flip", flip, backend, "")
	path, swap := configMapDir(t, t.TempDir(), first)
	v := start(t, "", "run", "-c", path)
	v.waitLog(`"vaurien started"`, 10*time.Second)
	v.waitLog(`"watching the config file"`, time.Second)
	if got := metric(t, admin, "vaurien_config_hash"); got != hashPrefix(first) {
		t.Fatalf("config hash at start = %v, want %v", got, hashPrefix(first))
	}
	started := metric(t, admin, "vaurien_config_last_reload_success_timestamp_seconds")
	if blackedOut(t, flip) {
		t.Fatal("route flip blacks out before any change")
	}

	// A long transfer on the route that no change touches.
	c, err := net.Dial("tcp", steady)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	stream(c, 8<<20, 10*time.Millisecond, done) // ~2.5 s

	// 1. The kubelet swaps in a file that blacks out route flip.
	second := head + routeBlock("steady", steady, backend, "") + routeBlock("flip", flip, backend, blackoutMix)
	time.Sleep(1100 * time.Millisecond) // let the timestamp metric move by a second
	swapped := time.Now()
	swap(second)
	for !blackedOut(t, flip) {
		if time.Since(swapped) > 10*time.Second {
			t.Fatalf("route flip still passes 10s after the swap:\n%s", v.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(swapped)
	t.Logf("the new mix took effect %v after the swap", took)
	if took > 2*time.Second {
		t.Errorf("the new mix took effect %v after the swap, want within 2s", took)
	}
	if got := metric(t, admin, "vaurien_config_hash"); got != hashPrefix(second) {
		t.Errorf("config hash after the swap = %v, want %v", got, hashPrefix(second))
	}
	if got := metric(t, admin, "vaurien_config_last_reload_success_timestamp_seconds"); got <= started {
		t.Errorf("last reload success = %v, not after the start's %v", got, started)
	}
	// The swap's burst of events (create, rename, remove) is one reload.
	if got := metric(t, admin, `vaurien_config_reloads_total{result="success"}`); got != 1 {
		t.Errorf("successful reloads = %v, want 1", got)
	}

	// 2. A file that does not validate is rejected; the running one stays.
	bad := head + routeBlock("steady", steady, backend, "") + routeBlock("flip", flip, backend, "  behavior \"blackuot\" {\n    percent = 100\n  }\n")
	swap(bad)
	v.waitLog(`"reload rejected"`, 5*time.Second)
	v.waitLog(`blackuot`, time.Second)
	if got := metric(t, admin, `vaurien_config_reloads_total{result="failure"}`); got != 1 {
		t.Errorf("failed reloads = %v, want 1", got)
	}
	if got := metric(t, admin, "vaurien_config_hash"); got != hashPrefix(second) {
		t.Errorf("config hash after a rejected file = %v, want the running file's %v", got, hashPrefix(second))
	}
	if !blackedOut(t, flip) {
		t.Error("route flip lost its mix after a rejected file")
	}

	// The unchanged route streamed on, byte for byte, through both swaps.
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stream on the unchanged route: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("stream on the unchanged route never finished")
	}
	if code, _ := stopWith(v, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
}

func TestWatchOffLeavesReloadsToSIGHUP(t *testing.T) {
	for _, tt := range []struct {
		name, option string
		flags        []string
	}{
		{"watch = false", "watch = false\n", nil},
		{"--no-watch", "", []string{"--no-watch"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			backend := echoServer(t)
			flip, admin := freeAddr(t), freeAddr(t)
			head := fmt.Sprintf("%sadmin {\n  listen = %q\n}\n", tt.option, admin)
			path, swap := configMapDir(t, t.TempDir(), head+routeBlock("flip", flip, backend, ""))
			v := start(t, "", append([]string{"run", "-c", path}, tt.flags...)...)
			v.waitLog(`"vaurien started"`, 10*time.Second)

			swap(head + routeBlock("flip", flip, backend, blackoutMix))
			// Five times the debounce and more: a watch would have reloaded.
			time.Sleep(time.Second)
			if blackedOut(t, flip) {
				t.Fatal("the file's change was applied with the watch off")
			}
			if strings.Contains(v.output(), "watching the config file") {
				t.Fatal("vaurien says it watches the file")
			}
			v.signal(syscall.SIGHUP)
			waitFor(t, "the mix after SIGHUP", func() bool { return blackedOut(t, flip) })
			if code, _ := stopWith(v, syscall.SIGTERM); code != 0 {
				t.Fatalf("exit code %d after SIGTERM", code)
			}
		})
	}
}
