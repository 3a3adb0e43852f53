package toxiproxy

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// hub holds the toxics in force on one proxy. Connections of stream routes
// read it on every chunk, so that adding or removing a toxic changes live
// connections too, as in Toxiproxy (a vaurien tcp connection otherwise keeps
// what it drew when it was accepted).
type hub struct {
	mu  sync.Mutex // serializes stores
	cur atomic.Pointer[toxicSet]
	// mix is the mix the API installed to carry the set out, nil when the
	// route has another one.
	mix atomic.Pointer[chaos.Mix]
}

// toxicSet is one immutable state of a proxy's toxics.
type toxicSet struct {
	toxics []*toxic // in the order they were added
	// changed holds, per direction (dirIndex), a channel closed when that
	// direction's toxics change: live filters then switch to the new set.
	changed [2]chan struct{}
	// composite carries the set out on routes that draw per request.
	composite chaos.Composite
}

func dirIndex(d chaos.Direction) int {
	if d == chaos.ToBackend {
		return 0
	}
	return 1
}

func newHub() *hub {
	h := &hub{}
	h.cur.Store(newToxicSet(nil, nil))
	return h
}

func (h *hub) load() *toxicSet { return h.cur.Load() }

// store puts list in force. Callers serialize their stores.
func (h *hub) store(list []*toxic) *toxicSet {
	old := h.cur.Load()
	s := newToxicSet(list, old)
	h.cur.Store(s)
	for i := range s.changed {
		if s.changed[i] != old.changed[i] {
			close(old.changed[i])
		}
	}
	return s
}

// newToxicSet builds a set, keeping old's change channel for each
// direction whose toxics are the same versions.
func newToxicSet(list []*toxic, old *toxicSet) *toxicSet {
	s := &toxicSet{toxics: list}
	for i := range s.changed {
		if old != nil && sameToxics(old.toxics, list, i) {
			s.changed[i] = old.changed[i]
		} else {
			s.changed[i] = make(chan struct{})
		}
	}
	for _, t := range list {
		b := t.beh
		if _, stop := b.(stopBehavior); stop {
			b = stopBehavior{dir: t.dir, flush: s.changed[dirIndex(t.dir)]}
		}
		s.composite = append(s.composite, chaos.Member{Name: t.name, Behavior: b, Probability: t.probability()})
	}
	return s
}

func sameToxics(a, b []*toxic, dir int) bool {
	var ia, ib []uint64
	for _, t := range a {
		if dirIndex(t.dir) == dir {
			ia = append(ia, t.id)
		}
	}
	for _, t := range b {
		if dirIndex(t.dir) == dir {
			ib = append(ib, t.id)
		}
	}
	if len(ia) != len(ib) {
		return false
	}
	for i := range ia {
		if ia[i] != ib[i] {
			return false
		}
	}
	return true
}

// toxicsBehavior is the behavior a proxy's mix holds while the Toxiproxy
// API drives it: one entry at 100% named "toxics".
type toxicsBehavior struct {
	hub *hub
	set *toxicSet
}

// Continues makes the change from one set of a proxy's toxics to the next
// no change of the route's mix for the connections already open: their
// live filters follow the toxics themselves.
func (b *toxicsBehavior) Continues(prev chaos.Behavior) bool {
	p, ok := prev.(*toxicsBehavior)
	return ok && p.hub == b.hub
}

// Effect stacks the toxics. A request of a protocol-aware route gets the
// set's chaos.Composite. A stream connection gets live filters that follow the
// toxics as they change, and a TCP reset when a reset_peer toxic is drawn
// as it starts.
func (b *toxicsBehavior) Effect(u *chaos.Unit) chaos.Effect {
	if u.Request != nil {
		return b.set.composite.Effect(u)
	}
	r := u.Rand()
	c := &connState{rnd: rand.New(rand.NewPCG(r.Uint64(), r.Uint64())), drawn: map[uint64]bool{}, faults: map[uint64]bool{}}
	var e chaos.Effect
	for _, t := range b.hub.load().toxics {
		a, ok := t.attrs.(*resetPeerAttrs)
		if !ok {
			continue
		}
		c.faults[t.id] = true
		if c.applies(t) {
			chaos.Merge(&e, chaos.Effect{Fault: chaos.FaultReset, After: ms(a.Timeout)})
		}
	}
	e.ToBackend = &liveFilter{hub: b.hub, dir: chaos.ToBackend, conn: c}
	e.ToClient = &liveFilter{hub: b.hub, dir: chaos.ToClient, conn: c}
	return e
}

// connState is what one stream connection keeps across toxic changes.
type connState struct {
	mu     sync.Mutex
	rnd    *rand.Rand
	drawn  map[uint64]bool   // toxic version → whether it applies to this connection
	faults map[uint64]bool   // reset_peer versions carried out as a fault when the connection started
	sent   map[uint64]*int64 // limit_data origin → bytes let through so far
}

// applies draws once per toxic version whether it applies to this
// connection, as Toxiproxy draws toxicity when a toxic starts on a link.
func (c *connState) applies(t *toxic) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.drawn[t.id]; ok {
		return d
	}
	p := t.probability()
	d := p > 0 && (p >= 1 || c.rnd.Float64() < p)
	c.drawn[t.id] = d
	return d
}

// counter is the count of a limit_data toxic on this connection. Only the
// chain of the toxic's direction uses it, one chain after the other.
func (c *connState) counter(origin uint64) *int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sent == nil {
		c.sent = map[uint64]*int64{}
	}
	if c.sent[origin] == nil {
		c.sent[origin] = new(int64)
	}
	return c.sent[origin]
}

func (c *connState) isFault(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.faults[id]
}

// liveFilter relays one direction of a stream connection through the
// toxics in force, switching to the new ones whenever they change: the
// chain of the old set is given end of input and drains (no byte is lost or
// reordered), then a chain is built for the new set and gets the rest.
type liveFilter struct {
	hub  *hub
	dir  chaos.Direction
	conn *connState
}

func (f *liveFilter) Relay(parent context.Context, dst io.Writer, src io.Reader) error {
	// A mix set in place of the toxics empties the hub before it reaches
	// the connection: the chains drain through the toxics' own switch, and
	// src then ends, so that change must not cut them short.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	defer cancel(nil)
	stop := context.AfterFunc(parent, func() {
		if cause := context.Cause(parent); cause != chaos.ErrMixChanged {
			cancel(cause)
		}
	})
	defer stop()
	in := &switchReader{src: src}
	for {
		set := f.hub.load()
		changed := set.changed[dirIndex(f.dir)]
		chain := f.build(set, changed)
		in.changed = changed
		var err error
		if chain == nil {
			err = copyAll(dst, in)
		} else {
			err = chain.Relay(ctx, dst, in)
		}
		if err != nil {
			return err
		}
		if in.ended() {
			return f.slowClose(ctx)
		}
	}
}

// build chains the filters of the toxics of the filter's direction that
// apply to this connection, in the order they were added.
func (f *liveFilter) build(set *toxicSet, changed <-chan struct{}) chaos.Filter {
	var chain chaos.Filter
	for _, t := range set.toxics {
		if t.dir != f.dir || !f.conn.applies(t) {
			continue
		}
		var step chaos.Filter
		switch a := t.attrs.(type) {
		case *latencyAttrs:
			f.conn.mu.Lock()
			r := rand.New(rand.NewPCG(f.conn.rnd.Uint64(), f.conn.rnd.Uint64()))
			f.conn.mu.Unlock()
			step = &latencyFilter{latency: ms(a.Latency), jitter: ms(a.Jitter), rnd: r, flush: changed}
		case *bandwidthAttrs:
			if a.Rate == 0 {
				step = stopFilter{flush: changed}
				break
			}
			e := t.beh.Effect(&chaos.Unit{})
			step = e.Filter(f.dir)
		case *slicerAttrs:
			f.conn.mu.Lock()
			seq := f.conn.rnd.Uint64()
			f.conn.mu.Unlock()
			e := t.beh.Effect(&chaos.Unit{Seq: seq})
			step = e.Filter(f.dir)
		case *limitDataAttrs:
			step = limitFilter{limit: a.Bytes, sent: f.conn.counter(t.origin)}
		case *timeoutAttrs:
			step = timeoutFilter{timeout: ms(a.Timeout), flush: changed}
		case *resetPeerAttrs:
			if f.conn.isFault(t.id) {
				continue // carried out by the relay as the connection started
			}
			step = resetFilter{timeout: ms(a.Timeout)}
		}
		chain = chaos.Chain(chain, step)
	}
	return chain
}

// slowClose holds the end of the stream for the longest slow_close toxic
// of the direction that applies to this connection.
func (f *liveFilter) slowClose(ctx context.Context) error {
	var d time.Duration
	for _, t := range f.hub.load().toxics {
		if a, ok := t.attrs.(*slowCloseAttrs); ok && t.dir == f.dir && f.conn.applies(t) {
			d = max(d, ms(a.Delay))
		}
	}
	return wait(ctx, d, nil)
}

// switchReader is the source of one chain: it reads src until changed is
// closed, then gives the chain end of input. Bytes read just as the change
// came are kept for the next chain.
type switchReader struct {
	src     io.Reader
	changed <-chan struct{}
	pending []byte
	store   []byte
	err     error // src's error, given once pending is empty
}

// ended reports whether src ended and everything it gave was handed on:
// no chain comes next.
func (r *switchReader) ended() bool { return r.err == io.EOF && len(r.pending) == 0 }

func (r *switchReader) switched() bool {
	select {
	case <-r.changed:
		return true
	default:
		return false
	}
}

func (r *switchReader) Read(p []byte) (int, error) {
	if len(r.pending) > 0 {
		n := copy(p, r.pending)
		r.pending = r.pending[n:]
		return n, nil
	}
	if r.err != nil {
		return 0, r.err
	}
	if r.switched() {
		return 0, io.EOF
	}
	n, err := r.src.Read(p)
	if err != nil {
		r.err = err
	}
	if n > 0 && r.switched() {
		r.store = append(r.store[:0], p[:n]...)
		r.pending = r.store
		return 0, io.EOF
	}
	if r.err == io.EOF && n > 0 {
		return n, nil // the EOF comes with the next read
	}
	return n, err
}
