package kit

import (
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"net"
	"sync/atomic"
	"time"
)

// queueLen bounds the requests forwarded and not yet answered: a deeper
// pipeline waits for answers to drain (back-pressure, never unbounded
// memory).
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

// queue carries Exchanges from the request loop to the reply loop. With
// nothing queued the reply loop waits on the backend rather than on the
// queue: the answer to the next request then wakes it directly, one
// wake-up per answer as in a plain copy, and a backend that closes an
// idle connection is seen at once. An Exchange that needs no backend bytes
// interrupts that wait (wake).
type queue[R any] struct {
	ch      chan Exchange[R]
	backend net.Conn
	parked  atomic.Bool // the reply loop waits on the backend
	// sending says that a request is on its way to the backend and not
	// queued yet: bytes that come meanwhile may answer it, so they are
	// not taken for unsolicited ones.
	sending atomic.Bool
	woken   atomic.Bool   // the request loop interrupted that wait
	done    chan struct{} // closed when the reply loop has returned
	barrier chan struct{} // an opBarrier has been reached
	verdict chan bool     // for RawIfReply: whether the answer went raw
}

// aLongTimeAgo is a read deadline that has passed: setting it interrupts a
// blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

func (q *queue[R]) init(backend net.Conn) {
	q.ch = make(chan Exchange[R], queueLen)
	q.backend = backend
	q.done = make(chan struct{})
}

// needsWake reports whether the reply loop can handle x without bytes from
// the backend, so that its wait must be interrupted.
func needsWake[R any](x *Exchange[R]) bool {
	return x.op != opRelay || x.Reply != ReplyOne
}

// wake interrupts the reply loop's wait on the backend. The flag is set
// before the deadline, and the waiting loop checks it after it says it
// parks: one of them sees the other.
func (q *queue[R]) wake() {
	q.woken.Store(true)
	if q.parked.Load() {
		q.backend.SetReadDeadline(aLongTimeAgo)
	}
}

// consumeWake reports, once, that the request loop woke the reply loop,
// and clears the deadline it set.
func (q *queue[R]) consumeWake() bool {
	if q.woken.Load() && q.woken.CompareAndSwap(true, false) {
		q.backend.SetReadDeadline(time.Time{})
		return true
	}
	return false
}
