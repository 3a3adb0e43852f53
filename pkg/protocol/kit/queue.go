package kit

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// queueLen bounds the requests forwarded and not yet answered: a deeper
// pipeline waits for answers (back-pressure, never unbounded memory).
const queueLen = 64

// op is what the reply loop does for one Exchange.
type op uint8

const (
	opRelay   op = iota // relay the backend's answer (or none, for ReplyNone)
	opError             // write the error fault's answer; the backend was not asked
	opHang              // answer nothing from here on
	opAbort             // drop both connections before the answer
	opRaw               // relay raw from here on
	opBarrier           // every earlier answer has come: tell the request loop
)

// replyEffect is the part of a drawn Effect that acts on the way back.
type replyEffect struct {
	due    time.Duration // now() before which the answer is not written; 0: at once
	delay  time.Duration // the reply delay, for Options.ReplyDelayInTurn
	filter chaos.Filter
	reply  []byte // the error fault's answer
}

// queue carries Exchanges from the request loop to the reply loop without a
// lock: each loop owns its end of the ring, and n publishes what is queued.
// With nothing queued the reply loop waits on the backend rather than on
// the queue: the next answer then wakes it directly, one wake-up per answer
// as in a plain copy, and a backend that closes an idle connection is seen
// at once. An Exchange that needs no backend bytes interrupts that wait
// (wake). The ring is pooled, taken with the first Exchange and handed back
// with the last while the request loop waits for the client, as it does
// once it sent what it queued: an idle connection holds no room for them.
type queue[R any] struct {
	ring       atomic.Pointer[[queueLen]Exchange[R]] // nil while nothing is queued
	n          atomic.Int32                          // queued and not taken
	tail, head uint8                                 // the request loop's and the reply loop's next slot
	closed     atomic.Bool                           // the request loop queues nothing more
	// A loop that finds nothing to do says so, looks again, and waits on
	// its channel: the reply loop on ready, the request loop on room (made
	// when a pipeline first fills the queue). A signal can outlive its
	// wait, so a wait looks at the queue again when signalled.
	readyWait, roomWait atomic.Bool
	ready, room         chan struct{}
	rings               *sync.Pool
	// The reply loop hands the ring back only while the request loop is
	// idle (waits for the client) or done, and that loop, once back, keeps
	// off the ring while it is releasing.
	idle      *atomic.Bool
	releasing atomic.Bool
	parked    atomic.Bool // the reply loop waits on the backend
	woken     atomic.Bool // the request loop interrupted that wait
	// sending: a request is on its way to the backend and not queued yet,
	// so the bytes that come meanwhile may answer it.
	sending atomic.Bool
	done    chan struct{} // closed when the reply loop has returned
	barrier chan struct{} // an opBarrier has been reached
	verdict chan bool     // for RawIfReply: whether the answer went raw
}

// aLongTimeAgo is a read deadline that interrupts a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

var ringPools sync.Map // a nil *Exchange[R] → its rings' *sync.Pool

func (q *queue[R]) init(idle *atomic.Bool) {
	key := any((*Exchange[R])(nil))
	p, ok := ringPools.Load(key)
	if !ok {
		p, _ = ringPools.LoadOrStore(key, &sync.Pool{New: func() any { return new([queueLen]Exchange[R]) }})
	}
	q.rings = p.(*sync.Pool)
	q.idle = idle
	q.ready = make(chan struct{}, 1)
	q.done = make(chan struct{})
}

// put queues x; false when the queue is full, and then, with wait, the
// next take signals room.
func (q *queue[R]) put(x *Exchange[R], wait bool) bool {
	if q.n.Load() == queueLen {
		if !wait {
			return false
		}
		if q.room == nil {
			q.room = make(chan struct{}, 1)
		}
		if q.roomWait.Store(true); q.n.Load() == queueLen {
			return false
		}
	}
	for q.releasing.Load() {
		runtime.Gosched()
	}
	r := q.ring.Load()
	if r == nil {
		r = q.rings.Get().(*[queueLen]Exchange[R])
		q.ring.Store(r)
	}
	r[q.tail%queueLen] = *x
	q.tail++
	q.n.Add(1)
	signal(&q.readyWait, &q.ready)
	return true
}

// take moves the next Exchange into x. ok is false with none: closed then
// says that none will come; otherwise, with wait, the next put or the
// close signals ready.
func (q *queue[R]) take(x *Exchange[R], wait bool) (ok, closed bool) {
	closed = q.closed.Load() // before n: what was queued before the close is seen
	if q.n.Load() == 0 {
		if !wait || closed {
			return false, closed
		}
		q.readyWait.Store(true)
		if closed = q.closed.Load(); q.n.Load() == 0 {
			return false, closed
		}
	}
	r := q.ring.Load()
	y := &r[q.head%queueLen]
	*x = *y
	*y = Exchange[R]{} // what it points to is not kept alive
	q.head++
	if q.n.Add(-1) == 0 {
		// The request loop, once back from its wait, sees releasing
		// before it looks at the ring, or this sees it back.
		q.releasing.Store(true)
		if (q.idle.Load() || q.closed.Load()) && q.n.Load() == 0 && q.ring.CompareAndSwap(r, nil) {
			q.rings.Put(r)
		}
		q.releasing.Store(false)
	}
	signal(&q.roomWait, &q.room)
	return true, false
}

func (q *queue[R]) close() {
	q.closed.Store(true)
	signal(&q.readyWait, &q.ready)
}

// signal wakes the loop waiting on *ch, if it said it waits.
func signal(waiting *atomic.Bool, ch *chan struct{}) {
	if waiting.Load() && waiting.Swap(false) {
		select {
		case *ch <- struct{}{}:
		default:
		}
	}
}

// wake interrupts the reply loop's wait on the backend. The flag is set
// before the deadline is, and the reply loop checks it after it says it
// waits: one sees the other.
func (c *conn[R]) wake() {
	c.q.woken.Store(true)
	if c.q.parked.Load() {
		c.backend.SetReadDeadline(aLongTimeAgo)
	}
}
