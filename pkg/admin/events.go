package admin

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v5"

	"github.com/vaurien-go/vaurien/pkg/admin/api"
)

// Limits of GET /events.
const (
	// DefaultEventInterval is how often the stream sends the state when
	// Config leaves EventInterval zero. A change made through the API is
	// sent at once besides.
	DefaultEventInterval = time.Second
	// MaxSubscribers bounds the streams open at once; beyond, 503.
	MaxSubscribers = 256
	// eventWriteTimeout cuts a subscriber that takes longer than this to
	// take one event: its connection is stuck, and its handler goes away.
	eventWriteTimeout = 10 * time.Second
	// keepAliveEvery sends a comment on a quiet stream, so that a dead
	// connection is noticed on both ends.
	keepAliveEvery = 15 * time.Second
	// retryMillis is how soon a browser's EventSource reconnects.
	retryMillis = 1000
)

// hub builds the state once per interval and hands it to every subscriber.
// It never waits for one: each subscriber holds only the latest event (a
// newer one replaces an unsent one), and its own handler goroutine writes
// it to its connection. A subscriber that does not read slows down no one,
// and costs one pointer to a shared event however long it stalls.
type hub struct {
	s        *Server
	interval time.Duration

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	running bool
	kick    chan struct{} // asks the publisher for an event now

	// Owned by the publisher goroutine.
	prev   map[string]routeCounters
	prevAt time.Time
	rates  map[string]api.Rates
}

type subscriber struct {
	latest atomic.Pointer[[]byte]
	ready  chan struct{} // capacity 1: an event is waiting in latest
}

// routeCounters are the totals rates are computed from.
type routeCounters struct {
	accepted, requests, bytes int64
	faults                    map[string]int64
}

func newHub(s *Server, interval time.Duration) *hub {
	if interval <= 0 {
		interval = DefaultEventInterval
	}
	return &hub{s: s, interval: interval, subs: map[*subscriber]struct{}{}, kick: make(chan struct{}, 1)}
}

// join adds a subscriber and starts the publisher if it is the first.
func (h *hub) join() (*subscriber, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.s.done:
		// Shutting down: no publisher may start once Shutdown waits for
		// the server's goroutines.
		return nil, false
	default:
	}
	if len(h.subs) >= MaxSubscribers {
		return nil, false
	}
	sub := &subscriber{ready: make(chan struct{}, 1)}
	h.subs[sub] = struct{}{}
	if !h.running {
		h.running = true
		h.s.wg.Go(h.publish)
	}
	h.poke()
	return sub, true
}

func (h *hub) leave(sub *subscriber) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.mu.Unlock()
}

// poke asks for an event now, without waiting.
func (h *hub) poke() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// publish runs while someone listens: it sends the state every interval
// and when poked, and stops once the last subscriber has left.
func (h *hub) publish() {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		tick := false
		select {
		case <-h.s.done:
			h.mu.Lock()
			h.running = false
			h.mu.Unlock()
			return
		case <-t.C:
			tick = true
		case <-h.kick:
		}
		h.mu.Lock()
		if len(h.subs) == 0 {
			h.running = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		ev := h.event(tick)
		h.mu.Lock()
		for sub := range h.subs {
			sub.latest.Store(&ev)
			select {
			case sub.ready <- struct{}{}:
			default: // an event is already waiting: it has just been replaced
			}
		}
		h.mu.Unlock()
	}
}

// event renders the state as one server-sent event. Rates move on ticks
// only, so that an event sent at once after a change does not measure
// them over a few milliseconds.
func (h *hub) event(tick bool) []byte {
	now := time.Now()
	routes := h.s.ctl.Routes()
	def := ""
	if r, err := h.s.ctl.DefaultRoute(); err == nil {
		def = r.Name()
	}
	snap := api.Snapshot{Time: now.UTC(), Routes: make([]api.RouteState, 0, len(routes))}
	cur := make(map[string]routeCounters, len(routes))
	if tick || h.rates == nil {
		h.rates = map[string]api.Rates{}
	}
	for _, r := range routes {
		v := h.s.view(r, def)
		c := routeCounters{accepted: v.Stats.Accepted, requests: v.Stats.Requests,
			bytes: v.Stats.BytesToBackend + v.Stats.BytesToClient, faults: h.s.cfg.Faults.Counts(r.Name())}
		cur[r.Name()] = c
		if p, ok := h.prev[r.Name()]; ok && tick {
			h.rates[r.Name()] = rates(p, c, now.Sub(h.prevAt))
		}
		rt, ok := h.rates[r.Name()]
		if !ok {
			rt = api.Rates{Faults: map[string]float64{}}
		}
		snap.Routes = append(snap.Routes, api.RouteState{Route: v, Rates: rt, Faults: c.faults})
	}
	if tick || h.prev == nil {
		h.prev, h.prevAt = cur, now
	}
	if x := h.s.cfg.Experiments; x != nil {
		snap.Experiments = x.List()
	}
	var buf bytes.Buffer
	buf.WriteString("event: state\ndata: ")
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(snap) // plain data: it cannot fail; Encode ends the line
	buf.WriteString("\n")
	return buf.Bytes()
}

func rates(p, c routeCounters, d time.Duration) api.Rates {
	sec := d.Seconds()
	if sec <= 0 {
		return api.Rates{Faults: map[string]float64{}}
	}
	per := func(a, b int64) float64 { return float64(max(b-a, 0)) / sec }
	out := api.Rates{Connections: per(p.accepted, c.accepted), Requests: per(p.requests, c.requests),
		Bytes: per(p.bytes, c.bytes), Faults: map[string]float64{}}
	for b, n := range c.faults {
		if r := per(p.faults[b], n); r > 0 {
			out.Faults[b] = r
		}
	}
	return out
}

// events streams the state as server-sent events: a "state" event at once,
// then every interval and after every change made through the API.
func (s *Server) events(c *echo.Context) error {
	sub, ok := s.hub.join()
	if !ok {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "no event stream now: vaurien is shutting down, or too many streams are open (close a console tab and retry)")
	}
	defer s.hub.leave(sub)
	w := c.Response()
	rc := http.NewResponseController(w)
	// The server's read and write timeouts are for requests that end; a
	// stream lives on, with a deadline per event instead.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set(echo.HeaderCacheControl, "no-store")
	w.WriteHeader(http.StatusOK)
	send := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send([]byte("retry: " + strconv.Itoa(retryMillis) + "\n\n")) {
		return nil
	}
	keep := time.NewTicker(keepAliveEvery)
	defer keep.Stop()
	for {
		var ok bool
		select {
		case <-c.Request().Context().Done():
			return nil
		case <-s.done:
			return nil
		case <-sub.ready:
			ok = send(*sub.latest.Load())
		case <-keep.C:
			ok = send([]byte(": keep-alive\n\n"))
		}
		if !ok {
			return nil
		}
	}
}

// pokeEvents sends the state at once after a call that changed something,
// so that every console sees the change without waiting for the next tick.
func (s *Server) pokeEvents(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c *echo.Context) error {
		err := next(c)
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return err
		}
		if err == nil {
			s.hub.poke()
		}
		return err
	}
}
