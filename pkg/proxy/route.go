package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/selfloop"
	"github.com/vaurien-go/vaurien/pkg/tlsroute"
)

// RouteConfig is everything the engine needs to run one route.
type RouteConfig struct {
	Name            string
	Listen          string
	Backend         string
	Protocol        string
	ProtocolOptions chaos.Values
	Mix             *chaos.Mix
	Seed            uint64        // 0: time-based
	IdleTimeout     time.Duration // 0: none
	DialTimeout     time.Duration // 0: 5s
	MaxConnections  int           // 0: unlimited
	// TLS, when set, terminates TLS on the listener: the values of the
	// route's tls block (tlsroute.ServerOptions).
	TLS chaos.Values
	// BackendTLS, when set, originates TLS to the backend: the values of
	// the route's backend_tls block (tlsroute.BackendOptions).
	BackendTLS chaos.Values
}

// sameListener reports whether c can be applied to a running route built
// from old without reopening its listener or changing its protocol.
func (c *RouteConfig) sameListener(old *RouteConfig) bool {
	return c.Listen == old.Listen && c.Protocol == old.Protocol &&
		reflect.DeepEqual(c.ProtocolOptions, old.ProtocolOptions) &&
		reflect.DeepEqual(c.TLS, old.TLS) && reflect.DeepEqual(c.BackendTLS, old.BackendTLS)
}

// plan is a route's live, immutable settings; it is swapped whole.
type plan struct {
	cfg      RouteConfig
	mix      *chaos.Mix
	protocol chaos.Protocol
	backend  string
	version  uint64 // of mix: the route's count of mix changes when it came in force
	// source feeds the draws. It changes with the mix when a change is
	// seeded, in the same swap, so that the first draw of the new mix is
	// the seed's first.
	source *chaos.Source
	// Derived from the above once per plan (derive), not per connection:
	// the backend as an address the relay can connect to itself (valid
	// when it is IP:port), and whether connections are accepted bare.
	dialTo netip.AddrPort
	bare   bool
}

// Stats are a route's counters since it started.
type Stats struct {
	Accepted    int64 `json:"accepted"`
	Active      int64 `json:"active"`
	Refused     int64 `json:"refused"`
	DialErrors  int64 `json:"dial_errors"`
	BytesToBack int64 `json:"bytes_to_backend"`
	BytesToCli  int64 `json:"bytes_to_client"`
	Requests    int64 `json:"requests"`
	Faults      int64 `json:"faults"`
}

// Route is one running listener → backend route.
type Route struct {
	name   string
	obs    RouteObserver
	tlsObs TLSObserver // obs, when it hears of TLS; else nil
	// The route's TLS: termination on the listener and origination to the
	// backend, each nil when off. They live as long as the route: a
	// change of either makes a new route.
	tlsIn  *tlsroute.Server
	tlsOut *tlsroute.Client
	// innerTLS: the protocol negotiates TLS itself and calls the session
	// (chaos.TLSUpgrader) instead of the engine wrapping the connections.
	innerTLS bool
	plan     atomic.Pointer[plan]

	mu sync.Mutex
	ln net.Listener
	// bareLn is a duplicate of ln's socket, which the acceptor waits on to
	// accept bare sockets (see bare.go); nil when it has none. Closing ln
	// closes it too, or the socket would go on listening.
	bareLn *os.File
	addr   string // the bound address, reused when a disabled route is enabled
	// conns lists the live connections through their sessions' links: a
	// map would cost each idle connection an entry.
	conns    *session
	disabled bool
	stopped  bool

	// mixMu orders the changes of the mix, so that the change counter only
	// grows and connections hear of the changes in turn.
	mixMu sync.Mutex
	// changes counts the changes of the mix (see chaos.Follower); it moves
	// once the plan that carries the new mix is stored, so that it is never
	// ahead of the plan.
	changes atomic.Uint64

	ctx    context.Context // ends when live connections must stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // the goroutine that accepts, and connections

	accepted, active, refused, dialErrors, faults atomic.Int64
	// Counted per message or request by every connection at once.
	up, down, requests sharded
}

// shards is how many cache lines a hot counter is spread over.
const shards = 16

// sharded is a counter spread over cache lines: connections counting on
// different cores would otherwise take turns owning one line, at every
// request.
type sharded struct {
	cells [shards]struct {
		n atomic.Int64
		_ [56]byte
	}
}

func (c *sharded) add(shard uint32, n int64) { c.cells[shard%shards].n.Add(n) }

func (c *sharded) load() (sum int64) {
	for i := range c.cells {
		sum += c.cells[i].n.Load()
	}
	return sum
}

func newRoute(cfg RouteConfig, obs Observer) (*Route, error) {
	p, err := newPlan(cfg)
	if err != nil {
		return nil, err
	}
	r := &Route{
		name: cfg.Name,
		obs:  obs.Route(cfg.Name, cfg.Protocol),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	p.source = chaos.SourceFor(cfg.Seed, cfg.Name)
	r.plan.Store(p)
	r.tlsObs, _ = r.obs.(TLSObserver)
	if err := r.startTLS(cfg); err != nil {
		r.cancel()
		r.obs.Stopped()
		return nil, err
	}
	return r, nil
}

func newPlan(cfg RouteConfig) (*plan, error) {
	proto, _, err := chaos.NewProtocol(cfg.Protocol, map[string]any(cfg.ProtocolOptions))
	if err != nil {
		return nil, fmt.Errorf("route %q: %w", cfg.Name, err)
	}
	mix := cfg.Mix
	if mix == nil {
		mix, _ = chaos.NewMix(nil)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	p := &plan{cfg: cfg, mix: mix, protocol: proto, backend: cfg.Backend}
	p.derive()
	return p, nil
}

// keepAlive turns TCP keep-alive probes on for the sockets vaurien dials,
// at the system's timings: Go's own timings cost three more system calls
// per socket, which a connection-per-request load pays at every
// connection.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: -1, Interval: -1, Count: -1}

// listenerOptions turns keep-alive probes on, and Nagle's delay off, for a
// listening socket, whose accepted sockets take both from there: set once,
// they cost them no system call (Go's Accept sets TCP_NODELAY again; a
// socket accepted bare does not).
func listenerOptions(_, _ string, c syscall.RawConn) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1)
		if err == nil {
			err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		}
	}); cerr != nil {
		return cerr
	}
	return err
}

// listen binds the route's address.
func (r *Route) listen(addr string) error {
	lc := net.ListenConfig{KeepAlive: -1, Control: listenerOptions}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for route %q on %s: %w", r.name, addr, err)
	}
	r.ln = ln
	r.addr = ln.Addr().String()
	return nil
}

// bind gives a new route its listener: the socket of a donor that listens
// on the same address, shared through a duplicate descriptor, else a new
// one. A donor keeps its own descriptor until it stops accepting, so that
// closing the new one (when the change fails) leaves the donor as it was.
// A donor gives its socket to one route only.
func (r *Route) bind(donors map[*Route]bool) error {
	addr := r.plan.Load().cfg.Listen
	for d := range donors {
		if ln := d.listenerFor(addr); ln != nil {
			delete(donors, d)
			f, err := ln.File()
			if err != nil {
				return fmt.Errorf("listen for route %q on %s: take over the socket of route %q: %w", r.name, addr, d.name, err)
			}
			defer f.Close()
			nl, err := net.FileListener(f)
			if err != nil {
				return fmt.Errorf("listen for route %q on %s: take over the socket of route %q: %w", r.name, addr, d.name, err)
			}
			r.ln, r.addr = nl, nl.Addr().String()
			return nil
		}
	}
	return r.listen(addr)
}

// listenerFor returns the route's listener when it is listening on addr, as
// configured or as bound.
func (r *Route) listenerFor(addr string) *net.TCPListener {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.disabled || r.stopped || r.ln == nil {
		return nil
	}
	if addr != r.addr && addr != r.plan.Load().cfg.Listen {
		return nil
	}
	ln, _ := r.ln.(*net.TCPListener)
	return ln
}

func (r *Route) start() {
	r.obs.MixChanged(r.plan.Load().mix)
	r.mu.Lock()
	r.accept(r.ln)
	r.mu.Unlock()
}

// Name is the route's name.
func (r *Route) Name() string { return r.name }

// Addr is the address the route listens on, with the real port when the
// configured one was 0.
func (r *Route) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// Config returns the route's current settings, including live changes.
func (r *Route) Config() RouteConfig {
	p := r.plan.Load()
	cfg := p.cfg
	cfg.Mix, cfg.Backend = p.mix, p.backend
	return cfg
}

// Mix returns the live mix.
func (r *Route) Mix() *chaos.Mix { return r.plan.Load().mix }

// SetMix replaces the live mix: new connections and every next draw of live
// connections use it, and connections that draw once (tcp) draw again at
// their next read, unless m is the same as the live mix.
func (r *Route) SetMix(m *chaos.Mix) { r.setMix(m, nil) }

// SetMixSeeded is SetMix with the draws restarted from seed (as
// chaos.SourceFor derives a route's source): the same requests, in the same
// order, meet the same behaviors each time the same seed is set.
func (r *Route) SetMixSeeded(m *chaos.Mix, seed uint64) {
	r.setMix(m, chaos.SourceFor(seed, r.name))
}

func (r *Route) setMix(m *chaos.Mix, src *chaos.Source) {
	r.mixMu.Lock()
	defer r.mixMu.Unlock()
	version := r.changes.Load()
	changed := !m.Same(r.plan.Load().mix)
	if changed {
		version++
	}
	for {
		old := r.plan.Load()
		p := *old
		p.mix, p.version = m, version
		if src != nil {
			p.source = src
		}
		p.derive()
		if r.plan.CompareAndSwap(old, &p) {
			break
		}
	}
	r.obs.MixChanged(m)
	if changed {
		r.changes.Store(version)
		r.tellFollowers()
	}
}

// tellFollowers calls the change hook of every live connection that
// follows the mix.
func (r *Route) tellFollowers() {
	r.mu.Lock()
	var hooks []chaos.ChangeHook
	for s := r.conns; s != nil; s = s.next {
		if s.changed != nil {
			hooks = append(hooks, s.changed)
		}
	}
	r.mu.Unlock()
	for _, h := range hooks {
		h.MixChanged()
	}
}

// SetBackend points new connections at addr; live ones keep theirs.
func (r *Route) SetBackend(addr string) {
	for {
		old := r.plan.Load()
		p := *old
		p.backend = addr
		p.derive()
		if r.plan.CompareAndSwap(old, &p) {
			return
		}
	}
}

// Stats returns the route's counters.
func (r *Route) Stats() Stats {
	return Stats{
		Accepted: r.accepted.Load(), Active: r.active.Load(), Refused: r.refused.Load(),
		DialErrors: r.dialErrors.Load(), BytesToBack: r.up.load(), BytesToCli: r.down.load(),
		Requests: r.requests.load(), Faults: r.faults.Load(),
	}
}

// Enabled reports whether the route is listening.
func (r *Route) Enabled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.disabled
}

// Disable stops listening (clients get connection refused) and closes the
// route's live connections.
func (r *Route) Disable() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.disabled || r.stopped {
		return
	}
	r.disabled = true
	r.closeListener()
	for s := r.conns; s != nil; s = s.next {
		s.close()
	}
}

// CloseConnections closes the route's live connections, as a restart
// would, and leaves its listener as it is.
func (r *Route) CloseConnections() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := r.conns; s != nil; s = s.next {
		s.close()
	}
}

// Enable listens again on the route's address.
func (r *Route) Enable() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.disabled || r.stopped {
		return nil
	}
	if err := r.listen(r.addr); err != nil {
		return err
	}
	r.disabled = false
	r.accept(r.ln)
	return nil
}

func (r *Route) update(cfg RouteConfig) error {
	p, err := newPlan(cfg)
	if err != nil {
		return err
	}
	r.mixMu.Lock()
	defer r.mixMu.Unlock()
	p.version = r.changes.Load()
	p.source = r.plan.Load().source
	changed := !p.mix.Same(r.plan.Load().mix)
	if changed {
		p.version++
	}
	r.plan.Store(p)
	r.obs.MixChanged(p.mix)
	if changed {
		r.changes.Store(p.version)
		r.tellFollowers()
	}
	return nil
}

// stopAccepting closes the listener; live connections go on.
func (r *Route) stopAccepting() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	if r.ln != nil {
		r.closeListener()
	}
}

// closeListener stops listening; the caller holds mu.
func (r *Route) closeListener() {
	r.ln.Close()
	if r.bareLn != nil {
		r.bareLn.Close()
		r.bareLn = nil
	}
}

// drain stops accepting and waits for live connections to end until ctx is
// done, then closes them.
func (r *Route) drain(ctx context.Context) {
	r.stopAccepting()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		r.cancel()
		r.mu.Lock()
		for s := r.conns; s != nil; s = s.next {
			s.close()
		}
		r.mu.Unlock()
		<-done
	}
	r.cancel()
	r.obs.Stopped()
}

// acceptor accepts a route's connections on one listener. The goroutine
// that accepts a connection serves it, once it has started the next one
// that accepts: a goroutine started for the connection would cost a
// closure for its arguments at every connection.
type acceptor struct {
	r    *Route
	ln   net.Listener
	loop func() // accept, as a value made once: starting it allocates nothing
	bare bareAcceptor
}

// accept starts accepting on ln; the caller holds mu.
func (r *Route) accept(ln net.Listener) {
	a := &acceptor{r: r, ln: ln}
	a.loop = a.accept
	if tl, ok := ln.(*net.TCPListener); ok && r.relaysBare() {
		// Without the duplicate (out of descriptors), every connection
		// is accepted by Go's Accept.
		if f, err := a.bare.open(tl); err == nil {
			r.bareLn = f
		}
	}
	a.handOn()
}

// next accepts a connection: bare when the route's poller can relay it as
// it is, else as a net.Conn. local is the connection's local end, for the
// self-loop check of a bare one.
func (a *acceptor) next() (s *session, local netip.AddrPort, err error) {
	if a.bare.rc != nil && a.r.plan.Load().bare {
		return a.bare.next(a.r)
	}
	c, err := a.ln.Accept()
	if err != nil {
		return nil, local, err
	}
	return &session{route: a.r, client: c, bare: -1}, local, nil
}

// accept waits for connections and serves them. A connection accepted as
// a net.Conn is served once the next goroutine that accepts has started,
// and this goroutine's count in the route's wg becomes the connection's. A
// bare one is served here, and the goroutine goes on accepting: serving it
// does not block, unless it needs a net.Conn, whose making starts the next
// goroutine that accepts (see session.materialize). A goroutine per
// connection would cost the scheduler a wake-up of another thread at each.
func (a *acceptor) accept() {
	r := a.r
	var backoff time.Duration
	for {
		s, local, err := a.next()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				r.wg.Done()
				return
			}
			// Out of file descriptors or a passing kernel error: retry with
			// back-off instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-r.ctx.Done():
				t.Stop()
				r.wg.Done()
				return
			}
			continue
		}
		backoff = 0
		if s.bare < 0 {
			a.handOn()
			r.serve(s, local)
			return
		}
		r.wg.Add(1) // the connection's own
		s.acceptor = a
		r.serve(s, local)
		if s.acceptor == nil {
			// Handed on: this goroutine is the connection's now.
			r.wg.Done()
			return
		}
		s.acceptor = nil
	}
}

// handOn starts the next goroutine that accepts.
func (a *acceptor) handOn() {
	a.r.wg.Add(1)
	go a.loop()
}

func (r *Route) track(s *session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.disabled || r.ctx.Err() != nil {
		return false
	}
	s.next = r.conns
	if s.next != nil {
		s.next.prev = s
	}
	r.conns = s
	return true
}

func (r *Route) untrack(s *session) {
	r.mu.Lock()
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		r.conns = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	}
	s.prev, s.next = nil, nil
	r.mu.Unlock()
}

// serve serves an accepted connection; local is its local end when it is
// bare.
func (r *Route) serve(s *session, local netip.AddrPort) {
	p := r.plan.Load()
	n := r.active.Add(1)
	if max := p.cfg.MaxConnections; max > 0 && n > int64(max) {
		r.refused.Add(1)
		r.obs.Refused(RefusedLimit)
		s.release()
		return
	}
	var in selfloop.Pair
	var loop bool
	if s.client != nil {
		in, loop = selfloop.Accepted(s.client)
	} else {
		in, loop = selfloop.AcceptedAddrs(netip.AddrPort(s.peer), local)
	}
	if loop {
		// A backend that leads back here (through a name or a route that
		// no check saw): serving it would dial again, without end.
		selfloop.ForgetAccepted(in)
		r.refused.Add(1)
		r.obs.Refused(RefusedLoop)
		s.release()
		return
	}
	s.protocol, s.in = p, in
	if !r.track(s) {
		selfloop.ForgetAccepted(in)
		s.release()
		return
	}
	n = r.accepted.Add(1)
	r.obs.Accepted(s.remote())
	s.start, s.shard = time.Since(epoch), uint32(n)
	if r.tlsIn != nil && !r.innerTLS {
		if err := s.terminate(p); err != nil {
			s.end(err)
			return
		}
	}
	err := p.protocol.Serve(r.ctx, s)
	if !s.detached {
		s.end(err)
	}
}

// release closes the client, unless the relay took it bare, and undoes
// what accepting it took.
func (s *session) release() {
	if s.client != nil {
		s.client.Close()
	} else if s.bare >= 0 {
		unix.Close(int(s.bare))
	}
	s.route.active.Add(-1)
	s.route.wg.Done()
}

// session is what a protocol sees of one connection. It lives as long as
// the connection, idle or not: its fields are packed, and kept to those
// that cannot be had otherwise.
type session struct {
	route *Route
	// The route's live connections, guarded by its mu.
	prev, next *session
	// What the protocol serves: the accepted connection, or the TLS one
	// on a route that terminates TLS; nil while the client is bare (see
	// bare.go).
	client net.Conn
	// A client accepted bare: its socket, until the relay takes it or a
	// net.Conn is made of it (-1 then, and for other clients; guarded by
	// the route's mu), and its address (the zero one for other clients).
	bare  int32
	shard uint32 // of the route's hot counters
	peer  peerAddr
	// The acceptor whose goroutine serves the bare client, until a
	// net.Conn is made of it (see acceptor.accept).
	acceptor *acceptor
	protocol *plan
	dialed   *plan            // the plan of the last dial, whose backend it dialed
	start    time.Duration    // since epoch
	changed  chaos.ChangeHook // the Follow hook; guarded by the route's mu
	closer   io.Closer        // closes the connection instead of closing client; guarded by the route's mu
	// The client connection and the backend ones, as selfloop recorded
	// them.
	in       selfloop.Pair
	out      selfloops
	detached bool
}

// epoch is what sessions count their start from: a time.Time would take
// 24 bytes of each.
var epoch = time.Now()

// selfloops are a session's backend connections as selfloop recorded them:
// the first inline, as most sessions dial once.
type selfloops struct {
	first selfloop.Pair
	more  *[]selfloop.Pair
}

func (o *selfloops) add(p selfloop.Pair) {
	if o.first.IsZero() {
		o.first = p
		return
	}
	if o.more == nil {
		o.more = new([]selfloop.Pair)
	}
	*o.more = append(*o.more, p)
}

func (o *selfloops) forget() {
	selfloop.ForgetDialed(o.first)
	if o.more != nil {
		for _, p := range *o.more {
			selfloop.ForgetDialed(p)
		}
	}
}

// Detach lets a relay outlive Serve (see chaos.Detacher); stopping the
// route still ends it, since stopping closes every tracked client.
func (s *session) Detach() { s.detached = true }

// End ends a detached connection.
func (s *session) End(err error) { s.end(err) }

// CloseWith makes the engine close the connection by closing c rather
// than the client: a relay that reads and writes the sockets
// outside Go's net package closes them itself, so that a descriptor is
// never used after it was closed and perhaps given to a new connection.
func (s *session) CloseWith(c io.Closer) {
	s.route.mu.Lock()
	s.closer = c
	s.route.mu.Unlock()
}

// close closes the connection; the caller holds the route's mu.
func (s *session) close() {
	switch {
	case s.closer != nil:
		s.closer.Close()
	case s.client != nil:
		s.client.Close()
	default:
		// Bare: the goroutine serving it closes it, once it has ended,
		// so that the number is not reused meanwhile.
		unix.Shutdown(int(s.bare), unix.SHUT_RDWR)
	}
}

// end closes a served connection and its accounting.
func (s *session) end(err error) {
	r := s.route
	r.obs.Closed(s.remote(), time.Since(epoch)-s.start, err)
	selfloop.ForgetAccepted(s.in)
	s.out.forget()
	r.untrack(s)
	s.release()
}

// remote is the client's address: for a client accepted bare, the one
// accepting it gave, even once a net.Conn was made of it.
func (s *session) remote() net.Addr {
	if netip.AddrPort(s.peer).IsValid() || s.client == nil {
		return &s.peer
	}
	return s.client.RemoteAddr()
}

func (s *session) Client() net.Conn {
	if s.client == nil {
		s.materialize()
	}
	return s.client
}

func (s *session) IdleTimeout() time.Duration { return s.protocol.cfg.IdleTimeout }
func (s *session) Backend() string            { return s.route.plan.Load().backend }

func (s *session) Dial(ctx context.Context) (net.Conn, error) {
	p := s.route.plan.Load()
	d := net.Dialer{Timeout: p.cfg.DialTimeout, KeepAliveConfig: keepAlive}
	c, err := d.DialContext(ctx, "tcp", p.backend)
	if err != nil {
		s.route.dialErrors.Add(1)
		s.route.obs.DialFailed(p.backend, err)
		return nil, fmt.Errorf("dial backend %q: %w", p.backend, err)
	}
	out, loop := selfloop.Dialed(c)
	if loop {
		// The backend is this very process: the connection just made
		// arrived on one of its own listeners.
		selfloop.ForgetDialed(out)
		c.Close()
		s.route.refused.Add(1)
		s.route.obs.Refused(RefusedLoop)
		return nil, fmt.Errorf("dial backend %q: it leads back to vaurien itself", p.backend)
	}
	s.out.add(out)
	s.dialed = p
	if s.route.tlsOut != nil && !s.route.innerTLS {
		return s.originate(ctx, c, p.backend)
	}
	return c, nil
}

// DialAddr is the backend's address, when it is an IP address and port and
// the route speaks plain TCP to it, for a relay that connects to it itself
// (without Go's dialer and a goroutine waiting on it), and how long a
// connection may take.
func (s *session) DialAddr() (netip.AddrPort, time.Duration, bool) {
	if s.route.tlsOut != nil {
		return netip.AddrPort{}, 0, false
	}
	p := s.route.plan.Load()
	return p.dialTo, p.cfg.DialTimeout, p.dialTo.IsValid()
}

// Connected records a backend connection that a relay makes itself, from
// local to remote, once it has its local address. It returns an error,
// counted as a refusal, when the connection leads back to vaurien itself.
func (s *session) Connected(local, remote netip.AddrPort) error {
	out, loop := selfloop.DialedAddrs(local, remote)
	if loop {
		selfloop.ForgetDialed(out)
		s.route.refused.Add(1)
		s.route.obs.Refused(RefusedLoop)
		return fmt.Errorf("dial backend %q: it leads back to vaurien itself", s.route.plan.Load().backend)
	}
	if !out.IsZero() {
		s.out.add(out)
	}
	return nil
}

// DialFailed counts and reports a failed connection to addr that a relay
// made itself, and returns the error that ends the connection.
func (s *session) DialFailed(addr netip.AddrPort, err error) error {
	backend := s.route.plan.Load().backend
	err = &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(addr), Err: err}
	s.route.dialErrors.Add(1)
	s.route.obs.DialFailed(backend, err)
	return fmt.Errorf("dial backend %q: %w", backend, err)
}

func (s *session) Draw(req *chaos.Request, d *chaos.Drawn) bool {
	return s.draw(s.route.plan.Load(), req, d)
}

func (s *session) draw(p *plan, req *chaos.Request, d *chaos.Drawn) bool {
	if !p.mix.DrawTo(p.source, req, d) {
		return false
	}
	s.route.faults.Add(1)
	s.route.obs.Injected(d.Name, req)
	return true
}

// Follow implements chaos.Follower.
func (s *session) Follow(h chaos.ChangeHook) *atomic.Uint64 {
	r := s.route
	r.mu.Lock()
	s.changed = h
	r.mu.Unlock()
	return &r.changes
}

// Redraw implements chaos.Follower.
func (s *session) Redraw() (d chaos.Drawn, version uint64) {
	p := s.route.plan.Load()
	s.draw(p, nil, &d)
	return d, p.version
}

func (s *session) Relayed(d chaos.Direction, n int64) {
	if d == chaos.ToBackend {
		s.route.up.add(s.shard, n)
	} else {
		s.route.down.add(s.shard, n)
	}
	s.route.obs.Relayed(d, n)
}

func (s *session) Exchanged(req *chaos.Request, took time.Duration) {
	s.route.requests.add(s.shard, 1)
	s.route.obs.Exchanged(req, took)
}

func (s *session) Refused(reason string) {
	s.route.refused.Add(1)
	s.route.obs.Refused(reason)
}
