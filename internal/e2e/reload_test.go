package e2e

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// stream sends a patterned stream of n bytes in paced steps through c and
// checks that the echo returns every byte in order; it reports on done.
func stream(c net.Conn, n int, step time.Duration, done chan<- error) {
	go func() {
		buf := make([]byte, 32<<10)
		for sent := 0; sent < n; {
			m := min(len(buf), n-sent)
			for i := range buf[:m] {
				buf[i] = byte((sent + i) * 7 % 251)
			}
			if _, err := c.Write(buf[:m]); err != nil {
				return
			}
			sent += m
			time.Sleep(step)
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	go func() {
		buf := make([]byte, 64<<10)
		got := 0
		for {
			m, err := c.Read(buf)
			for i := range buf[:m] {
				if buf[i] != byte((got+i)*7%251) {
					done <- fmt.Errorf("byte %d differs", got+i)
					return
				}
			}
			got += m
			if err == io.EOF {
				if got != n {
					done <- fmt.Errorf("stream ended after %d of %d bytes", got, n)
				} else {
					done <- nil
				}
				return
			}
			if err != nil {
				done <- fmt.Errorf("after %d bytes: %w", got, err)
				return
			}
		}
	}()
}

func routeBlock(name, listen, backend, mix string) string {
	return fmt.Sprintf("route %q {\n  listen  = %q\n  backend = %q\n%s}\n", name, listen, backend, mix)
}

func TestReloadUnderTrafficKeepsUnchangedRoutesFlowing(t *testing.T) {
	backend := echoServer(t)
	a, b, c := freeAddr(t), freeAddr(t), freeAddr(t)
	admin := freeAddr(t)
	head := fmt.Sprintf("admin {\n  listen = %q\n}\nlog {\n  level = \"debug\"\n}\ndrain = \"5s\"\n", admin)
	path := filepath.Join(t.TempDir(), "vaurien.hcl")
	writeConfig(t, path, head+routeBlock("a", a, backend, "")+routeBlock("b", b, backend, ""))
	v := start(t, "", "run", "-c", path)
	v.waitLog(`"vaurien started"`, 10*time.Second)

	// Long transfers on a (unchanged by every reload) and on b (removed).
	ca, err := net.Dial("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := net.Dial("tcp", b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	stream(ca, 8<<20, 10*time.Millisecond, doneA) // ~2.5 s
	stream(cb, 2<<20, 10*time.Millisecond, doneB)

	// 1. Add route c, remove b, give a a delay mix for new draws.
	delayMix := "  behavior \"delay\" {\n    percent = 100\n    sleep   = \"300ms\"\n  }\n"
	writeConfig(t, path, head+routeBlock("a", a, backend, delayMix)+routeBlock("c", c, backend, ""))
	v.signal(syscall.SIGHUP)
	v.waitLog(`"config reloaded"`, 5*time.Second)
	if !dialOK(c) {
		t.Fatal("added route c does not accept after the reload")
	}
	if dialOK(b) {
		t.Fatal("removed route b still accepts after the reload")
	}
	// The new mix applies to new connections on a.
	start := time.Now()
	n, err := net.Dial("tcp", a)
	if err != nil {
		t.Fatal(err)
	}
	n.Write([]byte("x"))
	io.ReadFull(n, make([]byte, 1))
	n.Close()
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("a new connection on a took %v after a reload to a 300ms delay mix", took)
	}

	// 2. A file that fails validation is rejected and the running config stays.
	writeConfig(t, path, head+routeBlock("a", a, backend, "  behavior \"delya\" {\n    percent = 5\n  }\n"))
	v.signal(syscall.SIGHUP)
	v.waitLog(`"reload rejected"`, 5*time.Second)
	v.waitLog(`delya`, time.Second)
	if !dialOK(c) {
		t.Fatal("route c stopped after a rejected reload")
	}

	// 3. Reload back to the first shape, twice more, while a still streams.
	for i := 0; i < 2; i++ {
		writeConfig(t, path, head+routeBlock("a", a, backend, "")+routeBlock("c", c, backend, ""))
		v.signal(syscall.SIGHUP)
		time.Sleep(200 * time.Millisecond)
	}

	// The removed route's live connection drained; a's survived every reload.
	for name, done := range map[string]chan error{"a": doneA, "b (removed, draining)": doneB} {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("stream on route %s: %v", name, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("stream on route %s never finished", name)
		}
	}
	if code, _ := stopWith(v, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
}

func stopWith(v *vaurien, s syscall.Signal) (int, time.Duration) {
	v.signal(s)
	return v.wait(15 * time.Second)
}
