package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fleet calls the admin APIs of several vaurien replicas at once — the
// pods behind a headless Service, or processes on one machine — so that a
// fault is set, and taken off, everywhere at the same moment. Each call
// runs on every replica concurrently and answers per replica.
type Fleet struct {
	clients []*Client
}

// NewFleet returns a fleet of the admin APIs at addrs, each "host:port" or
// a base URL, with the same options for every client.
func NewFleet(addrs []string, opts ...Option) *Fleet {
	f := &Fleet{}
	for _, a := range addrs {
		f.clients = append(f.clients, New(a, opts...))
	}
	return f
}

// Clients are the fleet's clients, one per replica, in the order given.
func (f *Fleet) Clients() []*Client { return f.clients }

// Close releases every client's idle connections.
func (f *Fleet) Close() {
	for _, c := range f.clients {
		c.Close()
	}
}

// DNSPrefix marks an admin address that names many replicas: "dns:NAME:PORT"
// stands for PORT on every address NAME resolves to, such as a Kubernetes
// headless Service's name.
const DNSPrefix = "dns:"

// ResolveAddrs expands admin address specs into replica addresses: each
// spec is an address, a comma-separated list of them, or DNSPrefix+NAME:PORT.
// lookup resolves names (nil for the system resolver). The result is
// sorted, without duplicates, so that reports list replicas in a stable
// order.
func ResolveAddrs(ctx context.Context, specs []string, lookup func(ctx context.Context, host string) ([]string, error)) ([]string, error) {
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	var out []string
	for _, spec := range specs {
		for a := range strings.SplitSeq(spec, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			name, ok := strings.CutPrefix(a, DNSPrefix)
			if !ok {
				out = append(out, a)
				continue
			}
			host, port, err := net.SplitHostPort(name)
			if err != nil || host == "" || port == "" {
				return nil, fmt.Errorf("admin address %q: want dns:NAME:PORT, such as dns:vaurien-admin.default.svc:8080", a)
			}
			ips, err := lookup(ctx, host)
			if err != nil {
				return nil, fmt.Errorf("admin address %q: %w", a, err)
			}
			if len(ips) == 0 {
				return nil, fmt.Errorf("admin address %q: %s resolves to no address", a, host)
			}
			for _, ip := range ips {
				out = append(out, net.JoinHostPort(ip, port))
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no admin address given")
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Result is one replica's answer to a fleet call.
type Result[T any] struct {
	Addr  string // the replica's admin API, as its client calls it
	Value T
	Err   error
}

// FleetError names the replicas on which a call failed.
type FleetError struct {
	Op     string
	Failed []string // addresses, in the fleet's order
	Of     int      // replicas called
	Errs   []error  // one per failed replica, in the same order
}

func (e *FleetError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed on %d of %d replicas: %s", e.Op, len(e.Failed), e.Of, strings.Join(e.Failed, ", "))
	for i, err := range e.Errs {
		fmt.Fprintf(&b, "\n  %s: %v", e.Failed[i], err)
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As every replica's error.
func (e *FleetError) Unwrap() []error { return e.Errs }

// Each calls fn on every replica concurrently and returns the answers in
// the fleet's order.
func Each[T any](ctx context.Context, f *Fleet, fn func(ctx context.Context, c *Client) (T, error)) []Result[T] {
	out := make([]Result[T], len(f.clients))
	var wg sync.WaitGroup
	for i, c := range f.clients {
		wg.Go(func() {
			v, err := fn(ctx, c)
			out[i] = Result[T]{Addr: c.Addr(), Value: v, Err: err}
		})
	}
	wg.Wait()
	return out
}

// Failed returns a *FleetError naming the replicas whose call failed, or
// nil when every one succeeded.
func Failed[T any](op string, rs []Result[T]) error {
	e := &FleetError{Op: op, Of: len(rs)}
	for _, r := range rs {
		if r.Err != nil {
			e.Failed = append(e.Failed, r.Addr)
			e.Errs = append(e.Errs, r.Err)
		}
	}
	if len(e.Failed) == 0 {
		return nil
	}
	return e
}

// SetMix sets route's mix on every replica; see Client.SetMix.
func (f *Fleet) SetMix(ctx context.Context, route string, m Mixer, d time.Duration) ([]Result[*Route], error) {
	rs := Each(ctx, f, func(ctx context.Context, c *Client) (*Route, error) { return c.SetMix(ctx, route, m, d) })
	return rs, Failed("set the mix of route "+route, rs)
}

// ResetAll returns every route of every replica to its file.
func (f *Fleet) ResetAll(ctx context.Context) ([]Result[[]Route], error) {
	rs := Each(ctx, f, func(ctx context.Context, c *Client) ([]Route, error) { return c.ResetAll(ctx) })
	return rs, Failed("reset", rs)
}

// WithBehavior is Client.WithBehavior on every replica: it reads route's
// mix on each, applies m on each, runs fn once, and puts each replica's own
// previous mix back — when fn succeeds, fails or panics, and also when
// applying m failed on some replicas (fn does not run then). A replica
// whose mix cannot be read fails the call before anything changes. The
// error names every replica that failed.
func (f *Fleet) WithBehavior(ctx context.Context, route string, m Mixer, fn func() error) (err error) {
	prev := Each(ctx, f, func(ctx context.Context, c *Client) (Mix, error) {
		r, err := c.Route(ctx, route)
		if err != nil {
			return nil, err
		}
		return MixOf(r.Mix), nil
	})
	if err := Failed("read the mix of route "+route, prev); err != nil {
		return err
	}
	defer func() {
		p := recover()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), restoreTimeout)
		defer cancel()
		restored := Each(rctx, f, func(ctx context.Context, c *Client) (*Route, error) {
			i := slices.Index(f.clients, c)
			return c.SetMix(ctx, route, prev[i].Value, 0)
		})
		if p != nil {
			panic(p)
		}
		err = errors.Join(err, Failed("restore the mix of route "+route, restored))
	}()
	if _, err := f.SetMix(ctx, route, m, 0); err != nil {
		return err
	}
	return fn()
}
