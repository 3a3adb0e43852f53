package e2e

import (
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestSIGTERMDrainsLiveConnectionsThenExitsZero(t *testing.T) {
	listen, path := oneRouteConfig(t, echoServer(t), "drain = \"10s\"\n")
	v := start(t, "", "run", "-c", path)
	v.waitLog(`"vaurien started"`, 10*time.Second)
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	stream(c, 4<<20, 10*time.Millisecond, done) // ~1.3 s, outlives the signal
	time.Sleep(200 * time.Millisecond)
	v.signal(syscall.SIGTERM)
	v.waitLog(`"shutting down"`, 5*time.Second)
	if dialOK(listen) {
		t.Fatal("a new connection was accepted after SIGTERM")
	}
	if err := <-done; err != nil {
		t.Fatalf("the live connection did not finish during the drain: %v", err)
	}
	code, _ := v.wait(15 * time.Second)
	if code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

func TestDrainPeriodEndsIdleConnectionsAndSecondSignalForces(t *testing.T) {
	backend := echoServer(t)
	for _, second := range []bool{false, true} {
		t.Run(fmt.Sprintf("second signal %v", second), func(t *testing.T) {
			listen, path := oneRouteConfig(t, backend, "drain = \"2s\"\n")
			v := start(t, "", "run", "-c", path)
			v.waitLog(`"vaurien started"`, 10*time.Second)
			c, err := net.Dial("tcp", listen)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("x"))
			io.ReadFull(c, make([]byte, 1)) // connected and idle
			v.signal(syscall.SIGTERM)
			v.waitLog(`"shutting down"`, 5*time.Second)
			if second {
				v.signal(syscall.SIGTERM)
			}
			code, took := v.wait(10 * time.Second)
			if code != 0 {
				t.Fatalf("exit code %d", code)
			}
			switch {
			case second && took > time.Second:
				t.Fatalf("a second signal still waited %v for the drain", took)
			case !second && took < 1500*time.Millisecond:
				t.Fatalf("exited after %v with an idle live connection; the drain period is 2s", took)
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil {
				t.Fatal("the live connection is still open after exit")
			}
		})
	}
}
