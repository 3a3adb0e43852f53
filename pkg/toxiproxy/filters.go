package toxiproxy

import (
	"context"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// bufSize is the largest chunk a filter of this package reads at once.
const bufSize = 32 << 10

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, bufSize)
	return &b
}}

// wait waits d, until ctx ends (its error), or until stop is closed (nil).
func wait(ctx context.Context, d time.Duration, stop <-chan struct{}) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-stop:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func write(dst io.Writer, b []byte) error {
	n, err := dst.Write(b)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// endOf maps the end of a source to a filter's result: EOF is a normal end.
func endOf(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

// latencyBehavior is Toxiproxy's latency toxic: every chunk of the stream
// is delayed by latency ± jitter, counted from when it was read, so that a
// stream keeps its throughput and only gains the latency.
type latencyBehavior struct {
	dir             chaos.Direction
	latency, jitter time.Duration
}

func (b latencyBehavior) Effect(u *chaos.Unit) chaos.Effect {
	r := u.Rand()
	f := &latencyFilter{latency: b.latency, jitter: b.jitter, rnd: rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))}
	var e chaos.Effect
	e.SetFilter(b.dir, f)
	return e
}

// latencyFilter delays each chunk; it is used once. Chunks read while
// earlier ones wait are queued (at most latencyQueue of them, then TCP flow
// control holds the sender), and leave in order. When flush is closed, the
// queued chunks leave at once: the toxic was changed, as Toxiproxy sends an
// interrupted chunk on without waiting.
type latencyFilter struct {
	latency, jitter time.Duration
	rnd             *rand.Rand
	flush           <-chan struct{}
}

const latencyQueue = 64

type timedChunk struct {
	buf *[]byte
	n   int
	at  time.Time
	err error // the read error that ended src, with the last chunk
}

func (f *latencyFilter) delay() time.Duration {
	d := f.latency
	if f.jitter > 0 {
		d += time.Duration(f.rnd.Int64N(int64(2*f.jitter)+1)) - f.jitter
	}
	return max(d, 0)
}

func (f *latencyFilter) Relay(ctx context.Context, dst io.Writer, src io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan timedChunk, latencyQueue)
	go func() {
		defer close(chunks)
		for {
			bp := bufPool.Get().(*[]byte)
			n, err := src.Read(*bp)
			c := timedChunk{buf: bp, n: n, at: time.Now(), err: err}
			select {
			case chunks <- c:
			case <-ctx.Done():
				bufPool.Put(bp)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		err := f.send(ctx, dst, c)
		bufPool.Put(c.buf)
		if err != nil {
			// The reader may still be blocked on src: it ends when the
			// caller closes the connection, as it does on any filter error.
			return err
		}
		if c.err != nil {
			return endOf(c.err)
		}
	}
	return ctx.Err()
}

func (f *latencyFilter) send(ctx context.Context, dst io.Writer, c timedChunk) error {
	if c.n == 0 {
		return nil
	}
	if err := wait(ctx, time.Until(c.at.Add(f.delay())), f.flush); err != nil {
		return err
	}
	return write(dst, (*c.buf)[:c.n])
}

// stopBehavior is a bandwidth toxic at rate 0: no data goes through while
// the connection stays open, which is how Testcontainers and others cut a
// connection. Nothing is read, so TCP flow control holds the sender; when
// the toxic changes (flush closes), the data flows again, untouched.
type stopBehavior struct {
	dir   chaos.Direction
	flush <-chan struct{}
}

func (b stopBehavior) Effect(*chaos.Unit) chaos.Effect {
	var e chaos.Effect
	e.SetFilter(b.dir, stopFilter{flush: b.flush})
	return e
}

type stopFilter struct{ flush <-chan struct{} }

func (f stopFilter) Relay(ctx context.Context, dst io.Writer, src io.Reader) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-f.flush:
	}
	return copyAll(dst, src)
}

func copyAll(dst io.Writer, src io.Reader) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	_, err := io.CopyBuffer(dst, src, *bp)
	return err
}

// timeoutFilter is Toxiproxy's timeout toxic on one stream: no data gets
// through, and after timeout (if not 0) the connection is closed. Nothing
// is read meanwhile, so the sender is held by TCP flow control; when the
// toxic changes (flush closes), what was held flows on.
type timeoutFilter struct {
	timeout time.Duration
	flush   <-chan struct{}
}

func (f timeoutFilter) Relay(ctx context.Context, dst io.Writer, src io.Reader) error {
	var expired <-chan time.Time
	if f.timeout > 0 {
		t := time.NewTimer(f.timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-expired:
		return chaos.ErrClose
	case <-ctx.Done():
		return ctx.Err()
	case <-f.flush:
	}
	return copyAll(dst, src)
}

// resetFilter is a reset_peer toxic added to a live connection: the first
// chunk after it is dropped and timeout later the connection is closed.
// (A connection accepted while the toxic is on gets a true TCP RST from the
// relay instead; a filter cannot reach the socket to send one.)
type resetFilter struct{ timeout time.Duration }

func (f resetFilter) Relay(ctx context.Context, _ io.Writer, src io.Reader) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	n, err := src.Read(*bp)
	if n == 0 && err != nil {
		return endOf(err)
	}
	if err := wait(ctx, f.timeout, nil); err != nil {
		return err
	}
	return chaos.ErrClose
}

// limitFilter is Toxiproxy's limit_data toxic: once limit bytes have gone
// through, the connection is closed. sent is the count so far, kept by the
// connection across changes of the other toxics, as Toxiproxy keeps it.
type limitFilter struct {
	limit int64
	sent  *int64
}

func (f limitFilter) Relay(_ context.Context, dst io.Writer, src io.Reader) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	for {
		n, err := src.Read(*bp)
		if n > 0 {
			keep := min(int64(n), max(f.limit-*f.sent, 0))
			if keep > 0 {
				if err := write(dst, (*bp)[:keep]); err != nil {
					return err
				}
				*f.sent += keep
			}
			if *f.sent >= f.limit {
				return chaos.ErrClose
			}
		}
		if err != nil {
			return endOf(err)
		}
	}
}
