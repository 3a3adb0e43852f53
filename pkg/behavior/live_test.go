package behavior_test

// Live changes: a tcp connection opened under one mix meets every built-in
// behavior set on its route while it is open, at its next read, and gets
// back to full speed when the mix is emptied. The connection is opened and
// used before each change, as a pooled client's would be.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// warm opens a connection to a route to a pong backend and checks that
// it answers.
func warm(t *testing.T, r *proxy.Route) *net.TCPConn {
	t.Helper()
	c := dial(t, r.Addr())
	if err := ping(c); err != nil {
		t.Fatalf("before the change: %v", err)
	}
	return c
}

// timed pings on c and returns how long the answer took.
func timed(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	if err := ping(c); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// silent checks that nothing comes on c for d, the connection still open.
func silent(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(make([]byte, 64))
	if n != 0 || !isTimeout(err) {
		t.Fatalf("read %d bytes, %v; want nothing and the connection open for %v", n, err, d)
	}
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
}

func empty(t *testing.T) *chaos.Mix { return mixOf(t) }

func TestLiveDelayHoldsEachChunkUntilTheMixEmpties(t *testing.T) {
	t.Parallel()
	const sleep = 400 * time.Millisecond
	b := startBackend(t, answer([]byte("pong\n"), nil))
	for _, before := range []bool{true, false} {
		r := startRoute(t, b.Addr, nil, nil, 0)
		c := warm(t, r)
		r.SetMix(only(t, "delay", map[string]any{"sleep": sleep, "before": before}))
		for i := range 2 {
			if took := timed(t, c); took < sleep || took > sleep+slack {
				t.Errorf("before=%v: request %d after the change took %v, want %v", before, i, took, sleep)
			}
		}
		r.SetMix(empty(t))
		if took := timed(t, c); took >= sleep {
			t.Errorf("before=%v: with the mix emptied a request took %v, want no delay", before, took)
		}
	}
}

func TestLiveErrorStrikesTheNextAnswer(t *testing.T) {
	t.Parallel()
	b := startBackend(t, answer([]byte("pong\n"), nil))
	r := startRoute(t, b.Addr, nil, nil, 0)
	c := warm(t, r)
	r.SetMix(only(t, "error", nil))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil || len(got) != 1000 || bytes.HasPrefix(got, []byte("pong")) {
		t.Fatalf("got %d bytes (%q...), %v; want 1000 random bytes, then the close", len(got), got[:min(len(got), 8)], err)
	}
	r.SetMix(empty(t))
	warm(t, r)
}

func TestLiveFaultsAtTheNextRead(t *testing.T) {
	t.Parallel()
	b := startBackend(t, echo)
	cases := []struct {
		behavior string
		opts     map[string]any
		want     func(err error) bool
	}{
		{"blackout", nil, func(err error) bool { return err == io.EOF }},
		{"reset_peer", nil, func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
		{"abort", nil, func(err error) bool { return err == io.EOF || errors.Is(err, syscall.ECONNRESET) }},
		{"limit_data", map[string]any{"bytes": 0, "direction": "to_backend"}, func(err error) bool { return err == io.EOF }},
	}
	for _, tc := range cases {
		t.Run(tc.behavior, func(t *testing.T) {
			t.Parallel()
			r := startRoute(t, b.Addr, nil, nil, 0)
			c := dial(t, r.Addr())
			echoes(t, c, "hello")
			r.SetMix(only(t, tc.behavior, tc.opts))
			// Idle, the connection sees nothing of the change.
			silent(t, c, 200*time.Millisecond)
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if err := readsClose(t, c); !tc.want(err) {
				t.Errorf("the client saw %v", err)
			}
		})
	}
}

// echoes sends s on c and reads it back.
func echoes(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(s))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != s {
		t.Fatalf("echo: %q, %v; want %q", got, err, s)
	}
}

func TestLiveHangHoldsAndResumes(t *testing.T) {
	t.Parallel()
	b := startBackend(t, answer([]byte("pong\n"), nil))
	for _, behavior := range []string{"hang", "timeout"} {
		r := startRoute(t, b.Addr, nil, nil, 0)
		c := warm(t, r)
		r.SetMix(only(t, behavior, nil))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		silent(t, c, 300*time.Millisecond)
		// What was held moves on, nothing lost.
		r.SetMix(empty(t))
		got := make([]byte, 5)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "pong\n" {
			t.Fatalf("%s: after the mix emptied: %q, %v", behavior, got, err)
		}
		if took := timed(t, c); took > slack {
			t.Errorf("%s: a request took %v after the hang", behavior, took)
		}
	}
}

func TestLiveTimedFaultsCountFromTheChange(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	b := startBackend(t, echo)
	cases := []struct {
		behavior string
		want     func(err error) bool
	}{
		{"reset_peer", func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }},
		{"timeout", func(err error) bool { return err == io.EOF }},
	}
	for _, tc := range cases {
		t.Run(tc.behavior, func(t *testing.T) {
			t.Parallel()
			r := startRoute(t, b.Addr, nil, nil, 0)
			c := dial(t, r.Addr())
			echoes(t, c, "hello")
			time.Sleep(timeout) // the connection is older than the timeout
			start := time.Now()
			r.SetMix(only(t, tc.behavior, map[string]any{"timeout": timeout}))
			// Idle all along: the fault strikes anyway.
			err := readsClose(t, c)
			took := time.Since(start)
			if !tc.want(err) {
				t.Errorf("the client saw %v", err)
			}
			if took < timeout || took > timeout+slack {
				t.Errorf("the fault struck %v after the change, want %v", took, timeout)
			}
		})
	}
	t.Run("a change in time", func(t *testing.T) {
		t.Parallel()
		r := startRoute(t, b.Addr, nil, nil, 0)
		c := dial(t, r.Addr())
		echoes(t, c, "hello")
		r.SetMix(only(t, "reset_peer", map[string]any{"timeout": timeout}))
		r.SetMix(empty(t))
		silent(t, c, timeout+200*time.Millisecond)
		echoes(t, c, "still here")
	})
}

func TestLiveFiltersTakeTheNextChunk(t *testing.T) {
	t.Parallel()
	b := startBackend(t, answer([]byte("pong\n"), nil))
	t.Run("slicer", func(t *testing.T) {
		t.Parallel()
		const delay = 100 * time.Millisecond
		r := startRoute(t, b.Addr, nil, nil, 0)
		c := warm(t, r)
		r.SetMix(only(t, "slicer", map[string]any{"average_size": 1, "delay": delay}))
		// "pong\n" in five pieces: four pauses.
		if took := timed(t, c); took < 4*delay || took > 4*delay+slack {
			t.Errorf("a sliced answer took %v, want %v", took, 4*delay)
		}
		r.SetMix(empty(t))
		if took := timed(t, c); took >= delay {
			t.Errorf("with the mix emptied a request took %v", took)
		}
	})
	t.Run("bandwidth 0", func(t *testing.T) {
		t.Parallel()
		r := startRoute(t, b.Addr, nil, nil, 0)
		c := warm(t, r)
		r.SetMix(only(t, "bandwidth", map[string]any{"rate": 0}))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		silent(t, c, 300*time.Millisecond)
		r.SetMix(empty(t))
		got := make([]byte, 5)
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "pong\n" {
			t.Fatalf("after the mix emptied: %q, %v", got, err)
		}
	})
	t.Run("corrupt", func(t *testing.T) {
		t.Parallel()
		r := startRoute(t, b.Addr, nil, nil, 0)
		c := warm(t, r)
		r.SetMix(only(t, "corrupt", map[string]any{"probability": 1.0}))
		if err := ping(c); err == nil {
			t.Fatal("the answer came through uncorrupted")
		}
		r.SetMix(empty(t))
		if err := ping(c); err != nil {
			t.Fatal(err)
		}
	})
}

func TestLiveDownLeavesOpenConnectionsAlone(t *testing.T) {
	t.Parallel()
	b := startBackend(t, answer([]byte("pong\n"), nil))
	r := startRoute(t, b.Addr, nil, nil, 0)
	c := warm(t, r)
	r.SetMix(only(t, "down", nil))
	if err := ping(c); err != nil {
		t.Fatal(err)
	}
	if n, err := dial(t, r.Addr()).Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("a new connection read %d bytes, %v; want it refused", n, err)
	}
}

// A connection keeps what it drew when it was accepted until the mix
// really changes: setting the same mix again, or reloading the same file,
// is no change.
func TestLiveSameMixIsNoChange(t *testing.T) {
	t.Parallel()
	const sleep = 300 * time.Millisecond
	b := startBackend(t, answer([]byte("pong\n"), nil))
	opts := map[string]any{"sleep": sleep}
	r := startRoute(t, b.Addr, only(t, "delay", opts), nil, 0)
	start := time.Now() // the delay runs from the accept
	c := dial(t, r.Addr())
	if err := ping(c); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < sleep {
		t.Fatalf("the first request took %v, want the drawn delay %v", took, sleep)
	}
	r.SetMix(only(t, "delay", opts))
	if took := timed(t, c); took >= sleep {
		t.Errorf("after the same mix was set again a request took %v, want no delay", took)
	}
}

// A reload reaches open connections when it changes the route's mix, and
// only then.
func TestLiveReloadReachesOpenConnectionsWhenTheMixChanges(t *testing.T) {
	t.Parallel()
	const sleep = 400 * time.Millisecond
	b := startBackend(t, answer([]byte("pong\n"), nil))
	s := proxy.New(nil, time.Second)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	reload := func(m *chaos.Mix) {
		t.Helper()
		err := s.Apply([]proxy.RouteConfig{{Name: "r", Listen: "127.0.0.1:0", Backend: b.Addr, Protocol: "tcp", Mix: m}})
		if err != nil {
			t.Fatal(err)
		}
	}
	reload(nil)
	c := warm(t, s.Route("r"))
	delay := map[string]any{"sleep": sleep}
	for i, step := range []struct {
		mix     *chaos.Mix
		delayed bool
	}{
		{empty(t), false},                   // the same file again
		{only(t, "delay", delay), true},     // a new mix
		{only(t, "delay", delay), true},     // the same again: the draw stays
		{only(t, "slow_close", nil), false}, // another mix, drawn again
	} {
		reload(step.mix)
		if took := timed(t, c); (took >= sleep) != step.delayed {
			t.Errorf("reload %d: a request took %v, want delayed %v", i, took, step.delayed)
		}
	}
}
