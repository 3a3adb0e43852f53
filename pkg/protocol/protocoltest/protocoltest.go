// Package protocoltest is the test kit of vaurien's protocols: a loopback
// proxy that serves a protocol as the engine does, with a recording fake
// Session, a fixed-effect behavior and a mix builder, and the conformance
// table that every protocol passes (see Conform).
package protocoltest

import (
	"context"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// Fixed is a behavior that always gives the same effect and counts the
// draws it won.
type Fixed struct {
	E     chaos.Effect
	calls atomic.Int64
}

// Effect gives f.E.
func (f *Fixed) Effect(*chaos.Unit) chaos.Effect {
	f.calls.Add(1)
	return f.E
}

// Calls is how many draws f won.
func (f *Fixed) Calls() int64 { return f.calls.Load() }

// Entry is a mix entry for b; commands, when given, limit it to requests
// of those commands.
func Entry(percent float64, b chaos.Behavior, commands ...string) chaos.Entry {
	e := chaos.Entry{Name: "test", Percent: percent, Behavior: b}
	if len(commands) > 0 {
		e.Match = func(r *chaos.Request) bool { return slices.Contains(commands, r.Command) }
	}
	return e
}

// Mix builds a mix of entries, failing the test when they do not make one.
func Mix(t testing.TB, entries ...chaos.Entry) *chaos.Mix {
	t.Helper()
	m, err := chaos.NewMix(entries)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Config says what a test proxy serves.
type Config struct {
	Protocol  chaos.Protocol
	Backend   string
	Mix       *chaos.Mix    // nil: a mix with nothing to draw
	Seed      uint64        // of the draws; 0 is 1
	Idle      time.Duration // the route's idle timeout
	Listener  net.Listener  // nil: a new one on 127.0.0.1
	CountOnly bool          // keep no lists of commands (benchmarks)
}

// Proxy serves a protocol on a loopback listener with a fake engine: each
// accepted connection gets a Session and Serve, as pkg/proxy gives them.
// Its Stats gather what every session reports.
type Proxy struct {
	Addr string
	Stats
	cfg    Config
	src    *chaos.Source
	ln     net.Listener
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Stats are the events of a test proxy's sessions.
type Stats struct {
	ToBackend, ToClient atomic.Int64
	Exchanges           atomic.Int64
	Refusals            atomic.Int64
	Draws               atomic.Int64
	Faults              atomic.Int64 // draws whose effect has a fault
	Conns               atomic.Int64 // connections accepted
	Active              atomic.Int64 // connections being served

	mu        sync.Mutex
	exchanged []chaos.Request // Command and Path of each exchange, in order
	drawn     []string        // Command of each draw, in order
	errs      []error         // what Serve returned, when not nil
}

// Start serves cfg.Protocol until the test ends.
func Start(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	if cfg.Mix == nil {
		cfg.Mix = Mix(t)
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{Addr: ln.Addr().String(), cfg: cfg, src: chaos.NewSource(cfg.Seed), ln: ln, cancel: cancel}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.Conns.Add(1)
			p.Active.Add(1)
			p.wg.Go(func() {
				defer p.Active.Add(-1)
				err := cfg.Protocol.Serve(ctx, &Session{p: p, client: c})
				c.Close()
				if err != nil {
					p.mu.Lock()
					p.errs = append(p.errs, err)
					p.mu.Unlock()
				}
			})
		}
	})
	t.Cleanup(p.Stop)
	return p
}

// Stop ends the route: the listener closes, Serve's context ends, and Stop
// waits for every connection to be over.
func (p *Proxy) Stop() {
	p.once.Do(func() {
		p.ln.Close()
		p.cancel()
		p.wg.Wait()
	})
}

// WaitServed waits until no connection is being served.
func (p *Proxy) WaitServed(t testing.TB) {
	t.Helper()
	WaitFor(t, 10*time.Second, "every connection served", func() bool { return p.Active.Load() == 0 })
}

// Commands returns the command of each exchange so far, in order.
func (s *Stats) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.exchanged))
	for i, r := range s.exchanged {
		out[i] = r.Command
	}
	return out
}

// Requests returns "COMMAND path" of each exchange so far, in order.
func (s *Stats) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.exchanged))
	for i, r := range s.exchanged {
		out[i] = r.Command + " " + r.Path
	}
	return out
}

// Count is how many exchanges of cmd ended so far.
func (s *Stats) Count(cmd string) int {
	n := 0
	for _, c := range s.Commands() {
		if c == cmd {
			n++
		}
	}
	return n
}

// Drawn returns the command of each draw so far, in order.
func (s *Stats) Drawn() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.drawn)
}

// Errors returns what Serve returned so far, other than nil.
func (s *Stats) Errors() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errs)
}

// Session is the fake engine's chaos.Session for one connection: it dials
// the proxy's backend, draws from its seeded mix and records every event
// in the proxy's Stats.
type Session struct {
	p      *Proxy
	client net.Conn
}

// CloseWith is the engine's way of letting a protocol close the client
// itself; the fake engine closes the client only once Serve has returned,
// so it never needs to.
func (s *Session) CloseWith(io.Closer) {}

func (s *Session) Client() net.Conn           { return s.client }
func (s *Session) Backend() string            { return s.p.cfg.Backend }
func (s *Session) IdleTimeout() time.Duration { return s.p.cfg.Idle }

func (s *Session) Dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	return d.DialContext(ctx, "tcp", s.p.cfg.Backend)
}

func (s *Session) Draw(req *chaos.Request, d *chaos.Drawn) bool {
	st := &s.p.Stats
	st.Draws.Add(1)
	if !s.p.cfg.CountOnly {
		st.mu.Lock()
		st.drawn = append(st.drawn, req.Command)
		st.mu.Unlock()
	}
	drawn := s.p.cfg.Mix.DrawTo(s.p.src, req, d)
	if drawn && d.Effect.Fault != chaos.NoFault {
		st.Faults.Add(1)
	}
	return drawn
}

func (s *Session) Relayed(d chaos.Direction, n int64) {
	if d == chaos.ToBackend {
		s.p.ToBackend.Add(n)
	} else {
		s.p.ToClient.Add(n)
	}
}

func (s *Session) Exchanged(req *chaos.Request, took time.Duration) {
	st := &s.p.Stats
	st.Exchanges.Add(1)
	if s.p.cfg.CountOnly {
		return
	}
	st.mu.Lock()
	st.exchanged = append(st.exchanged, chaos.Request{Command: req.Command, Path: req.Path})
	st.mu.Unlock()
}

func (s *Session) Refused(string) { s.p.Refusals.Add(1) }

// WaitFor polls cond until it holds, failing the test after within.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
