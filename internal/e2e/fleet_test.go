package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/client"
)

// ctl runs "vaurien ctl args..." with extra environment variables and
// returns its exit code, stdout and stderr.
func ctl(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"ctl"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

// replica is one vaurien process of the fleet: its admin API and its
// route "flip".
type replica struct {
	v           *vaurien
	admin, flip string
}

func startFleet(t *testing.T, n int) []replica {
	backend := echoServer(t)
	var fleet []replica
	for i := range n {
		r := replica{admin: freeAddr(t), flip: freeAddr(t)}
		path := filepath.Join(t.TempDir(), fmt.Sprintf("vaurien%d.hcl", i))
		writeConfig(t, path, fmt.Sprintf("admin {\n  listen = %q\n}\ndrain = \"1s\"\n", r.admin)+routeBlock("flip", r.flip, backend, ""))
		r.v = start(t, "", "run", "-c", path)
		fleet = append(fleet, r)
	}
	for _, r := range fleet {
		r.v.waitLog(`"vaurien started"`, 10*time.Second)
	}
	return fleet
}

// assertBlackout checks each replica's route flip against want.
func assertBlackout(t *testing.T, fleet []replica, want ...bool) {
	t.Helper()
	for i, r := range fleet {
		if got := blackedOut(t, r.flip); got != want[i] {
			t.Errorf("replica %d (%s): route flip blacked out = %v, want %v", i, r.admin, got, want[i])
		}
	}
}

func TestCtlAndWithBehaviorSteerAFleet(t *testing.T) {
	fleet := startFleet(t, 3)
	a0, a1, a2 := fleet[0].admin, fleet[1].admin, fleet[2].admin

	// --admin repeated and comma-separated: every replica changes.
	code, out, errOut := ctl(t, nil, "--admin", a0+","+a1, "--admin", a2, "set", "flip", "blackout")
	if code != 0 {
		t.Fatalf("ctl set on 3 replicas: exit %d\n%s%s", code, out, errOut)
	}
	for _, a := range []string{a0, a1, a2} {
		if !strings.Contains(out, "== http://"+a+": ok") {
			t.Errorf("ctl set's report does not show %s ok:\n%s", a, out)
		}
	}
	assertBlackout(t, fleet, true, true, true)
	// $VAURIEN_ADMIN takes the same list.
	if code, out, errOut := ctl(t, []string{"VAURIEN_ADMIN=" + a0 + "," + a1 + "," + a2}, "reset", "flip"); code != 0 {
		t.Fatalf("ctl reset through $VAURIEN_ADMIN: exit %d\n%s%s", code, out, errOut)
	}
	assertBlackout(t, fleet, false, false, false)

	// WithBehavior over the fleet; replica 2 stops while the function runs.
	f := client.NewFleet([]string{a0, a1, a2})
	defer f.Close()
	ran := false
	err := f.WithBehavior(t.Context(), "flip", client.Behavior{Name: "blackout"}, func() error {
		ran = true
		assertBlackout(t, fleet, true, true, true)
		if code, _ := stopWith(fleet[2].v, syscall.SIGTERM); code != 0 {
			t.Errorf("replica 2 exited %d on SIGTERM", code)
		}
		return nil
	})
	if !ran {
		t.Fatalf("WithBehavior never ran its function: %v", err)
	}
	var ferr *client.FleetError
	if !errors.As(err, &ferr) || len(ferr.Failed) != 1 || ferr.Failed[0] != "http://"+a2 {
		t.Fatalf("WithBehavior with replica 2 gone = %v, want a FleetError naming only http://%s", err, a2)
	}
	t.Logf("WithBehavior: %v", err)
	assertBlackout(t, fleet[:2], false, false) // the living replicas were restored

	// ctl against a fleet with a stopped replica: the others act, the
	// report and the exit status name the stopped one.
	code, out, errOut = ctl(t, nil, "--admin", a0, "--admin", a1, "--admin", a2, "set", "flip", "blackout")
	if code == 0 {
		t.Fatalf("ctl set with replica 2 stopped exited 0:\n%s%s", out, errOut)
	}
	if !strings.Contains(errOut, "failed on 1 of 3 replicas: http://"+a2) {
		t.Errorf("ctl set's stderr does not name the stopped replica %s:\n%s", a2, errOut)
	}
	if !strings.Contains(out, "== http://"+a2+": failed") {
		t.Errorf("ctl set's report does not show %s failed:\n%s", a2, out)
	}
	assertBlackout(t, fleet[:2], true, true)
	code, out, errOut = ctl(t, nil, "--admin", a0+","+a1+","+a2, "--json", "reset")
	if code == 0 || !strings.Contains(errOut, "http://"+a2) || !strings.Contains(out, `"admin": "http://`+a2) {
		t.Errorf("ctl --json reset with replica 2 stopped: exit %d\n%s%s", code, out, errOut)
	}
	assertBlackout(t, fleet[:2], false, false)
}
