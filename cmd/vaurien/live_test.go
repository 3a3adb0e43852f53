package main

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/vaurientest"
)

// feed is a backend that sends each client a steady stream: message n is
// n as 8 bytes followed by filler, one message every interval.
func feed(t *testing.T, size int, interval time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				msg := make([]byte, size)
				tick := time.NewTicker(interval)
				defer tick.Stop()
				for n := uint64(0); ; n++ {
					binary.BigEndian.PutUint64(msg, n)
					c.SetWriteDeadline(time.Now().Add(10 * time.Second))
					if _, err := c.Write(msg); err != nil {
						return
					}
					select {
					case <-tick.C:
					case <-done:
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// arrival is a message as the client read it.
type arrival struct {
	n  uint64
	at time.Time
}

// `vaurien ctl set ROUTE hang --for 5s` on a tcp route carrying a steady
// stream: the stream stops within one chunk and resumes, nothing lost, when
// the timed change reverts.
func TestCtlHangStopsAStreamAndItResumes(t *testing.T) {
	const (
		size     = 512
		interval = 20 * time.Millisecond
		hold     = 5 * time.Second
	)
	p := vaurientest.Start(t, `
route "feed" {
  listen  = "127.0.0.1:0"
  backend = "`+feed(t, size, interval)+`"
}`)
	c, err := net.Dial("tcp", p.Addr("feed"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	arrivals := make(chan arrival, 4096)
	go func() {
		defer close(arrivals)
		msg := make([]byte, size)
		for {
			c.SetReadDeadline(time.Now().Add(3 * hold))
			if _, err := io.ReadFull(c, msg); err != nil {
				return
			}
			arrivals <- arrival{binary.BigEndian.Uint64(msg), time.Now()}
		}
	}()
	next := uint64(0)
	read := func() arrival {
		t.Helper()
		a, ok := <-arrivals
		if !ok {
			t.Fatalf("the stream ended after message %d", next)
		}
		if a.n != next {
			t.Fatalf("message %d came where %d was due: the stream lost or reordered data", a.n, next)
		}
		next++
		return a
	}
	for range 10 { // the stream flows
		read()
	}

	mustCtl(t, "--admin="+p.AdminAddr(), "set", "feed", "hang", "--for", hold.String())
	changed := time.Now()
	// Within one chunk the stream stops: what came after the change is at
	// most what was on its way.
	var late int
	var a arrival
	for {
		a = read()
		if a.at.Sub(changed) > hold/2 {
			break
		}
		if a.at.Sub(changed) > 200*time.Millisecond {
			t.Fatalf("message %d came %v after the change: the stream did not stop", a.n, a.at.Sub(changed))
		}
		late++
	}
	t.Logf("%d messages came after the change", late)
	if late > 2 {
		t.Errorf("%d messages came after the change, want the stream stopped within one chunk", late)
	}
	// It resumes when the override ends, with what was held.
	if resumed := a.at.Sub(changed); resumed < hold-200*time.Millisecond || resumed > hold+3*time.Second {
		t.Errorf("the stream resumed %v after the change, want about %v", resumed, hold)
	}
	for range 20 {
		read()
	}
}
