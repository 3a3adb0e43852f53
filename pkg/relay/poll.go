package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// A connection that carries out no behavior (a dummy draw, the common
// case) and has no idle timeout is relayed by a poller instead of two
// goroutines: an epoll instance of the package's own, watched by one
// goroutine that moves whatever has arrived, in either direction of any
// connection, as it arrives. A connection waiting for data then holds its
// two sockets and its pair, and no goroutine stack, buffer or pipe: idle
// connections are what a proxy holds most of, and two stacks were most of
// what each cost. A connection is handed back to goroutines (see
// pair.handOver) when the route's mix changes, since the new draw may delay,
// hold or filter.
//
// The poller owns the connection while it relays it: it alone reads,
// writes and closes its sockets, so that a descriptor number is never used
// after another goroutine closed it and the kernel gave it to a new
// connection. Others ask it to close the connection (closeAll) through a
// wake-up.
//
// The pollers also watch the idle connections of the protocol engine, which
// park there without a goroutine until either socket is readable (Watch).

// closer is a session that lets the relay close its connection itself: the
// engine calls close instead of closing the client under the poller.
type closer interface {
	CloseWith(c io.Closer)
}

// Close closes the connection, for the engine (see closer): a pair passed
// as an io.Closer costs no allocation, as a method value would.
func (p *pair) Close() error {
	p.closeAll()
	return nil
}

// A poller's goroutine exits when it relays no connection, and the next
// connection starts it again: an idle process holds none.
type poller struct {
	epfd, wake int
	// The epoll descriptor as Go's poller sees it: the goroutine waits for
	// events there, parked like any goroutine waiting on a socket, rather
	// than in a blocking epoll_wait that would hold a thread and wake it
	// apart from the runtime's own.
	wait    syscall.RawConn
	events  [128]unix.EpollEvent
	mu      sync.Mutex
	running bool
	live    int        // connections registered
	slots   []pollSlot // registered connections by slot, which the events carry
	free    []int32
	poked   []*pair         // connections to close or hand over, for the goroutine
	taken   []*pair         // poked, as the goroutine took them; its alone
	again   []*pair         // connections that used up their budget; the goroutine's alone
	due     []*pair         // again, as the goroutine took it; its alone
	ctl     unix.EpollEvent // add's, kept here so that it does not escape each time
	mod     unix.EpollEvent // evWatch's, the goroutine's alone
	run     func()          // loop, as a value made once: starting it allocates nothing
	// turn, as a value made once
	work func(fd uintptr) bool
	// Connections to backends are bounded by one timer per poller, not one
	// per connection: it fires at dialAt (zero: not armed), at or before
	// the earliest deadline of a connection in progress, and sets expire
	// for the goroutine, which ends the connections past their deadline
	// and arms it again for the others. Both are guarded by mu.
	dialTimer *time.Timer
	dialAt    time.Time
	expire    bool
	expired   []*pair // the goroutine's alone
}

// pollSlot is a registered connection. gen tells its events from those of
// a previous connection of the slot still in the batch being handled.
type pollSlot struct {
	p   *pair
	w   *Watching
	gen uint32
}

// takeSlot returns a free slot; q.mu is held.
func (q *poller) takeSlot() int32 {
	if n := len(q.free); n > 0 {
		slot := q.free[n-1]
		q.free = q.free[:n-1]
		return slot
	}
	q.slots = append(q.slots, pollSlot{})
	return int32(len(q.slots) - 1)
}

// evDir is one direction of a polled connection: what it still has to
// write (part of a message, or a pipe's content) when the destination was
// full, and where it is.
type evDir struct {
	buf      *[]byte
	off, n   int
	pipe     *pipe
	bulk     bool // splice, as a read filled the message buffer
	done     bool // the source ended and the destination was half-closed
	draining bool // the backend has gone: what the client sends is read and dropped
	more     bool // stopped on its budget: the goroutine's next turn goes on
	// The destination was full: the source's bytes wake the poller no
	// more, since it could not move them, until the source has been read
	// to its last byte once the destination took what was held.
	full bool
}

// evState is a pair's part while a poller relays it.
type evState struct {
	q    *poller
	ctx  context.Context
	slot int32
	gen  uint32
	fds  [2]int
	dirs [2]evDir
	// A backend the poller connected to itself: a bare socket (fds[1])
	// that no net.Conn holds, until the connection is handed over.
	raw        bool
	connecting bool
	deadline   time.Time // of the connection to the backend
	heard      uint32    // the client's input events while connecting
	to         netip.AddrPort
	rd         rawDialer
}

var (
	pollersOnce sync.Once
	pollers     []*poller
	pollerNext  atomic.Uint32
)

// getPoller returns one of the pollers, one per CPU, in turn; nil when
// none could be made.
func getPoller() *poller {
	pollersOnce.Do(func() {
		for range runtime.GOMAXPROCS(0) {
			q, err := newPoller()
			if err != nil {
				break
			}
			pollers = append(pollers, q)
		}
	})
	if len(pollers) == 0 {
		return nil
	}
	return pollers[int(pollerNext.Add(1))%len(pollers)]
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	// Never closed: the pollers live as long as the process.
	rc, err := os.NewFile(uintptr(epfd), "relay-epoll").SyscallConn()
	if err != nil {
		unix.Close(wake)
		return nil, err
	}
	q := &poller{epfd: epfd, wake: wake, wait: rc}
	q.run, q.work = q.loop, q.turn
	return q, nil
}

// fdOf returns the descriptor of a TCP connection.
func fdOf(c net.Conn) (int, bool) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	fd := -1
	if rc.Control(func(f uintptr) { fd = int(f) }) != nil || fd < 0 {
		return 0, false
	}
	return fd, true
}

// poll hands the connection to a poller, when it can be relayed that way:
// nothing to carry out (e), no idle timeout, TCP sockets on both sides and
// a session that lets the relay close the connection. It reports false
// when the caller must relay with goroutines.
func (p *pair) poll(ctx context.Context, s chaos.Session, e *chaos.Effect, d chaos.Detacher) bool {
	cl, ok := s.(closer)
	if !ok || p.idle > 0 || !e.IsZero() {
		return false
	}
	cfd, ok1 := fdOf(p.conns[0])
	bfd, ok2 := fdOf(p.conns[1])
	q := getPoller()
	if !ok1 || !ok2 || q == nil {
		return false
	}
	p.polled = evState{q: q, ctx: ctx, fds: [2]int{cfd, bfd}}
	p.pl = &p.polled
	p.detached = d
	cl.CloseWith(p)
	p.live.mu.Lock()
	p.live.poller = q
	p.live.mu.Unlock()
	if !q.add(p) {
		p.live.mu.Lock()
		p.live.poller = nil
		p.live.mu.Unlock()
		p.pl = nil
		return false
	}
	return true
}

// add registers both sockets of p, and starts the goroutine if it was not
// running.
func (q *poller) add(p *pair) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	slot := q.takeSlot()
	s := &q.slots[slot]
	s.gen++
	s.p = p
	p.pl.slot, p.pl.gen = slot, s.gen
	for k, fd := range p.pl.fds {
		q.ctl = unix.EpollEvent{
			Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET,
			Fd:     slot, Pad: int32(s.gen<<1 | uint32(k)),
		}
		if epollCtlNow(q.epfd, unix.EPOLL_CTL_ADD, fd, &q.ctl) != 0 {
			if k == 1 {
				epollCtlNow(q.epfd, unix.EPOLL_CTL_DEL, p.pl.fds[0], nil)
			}
			s.p = nil
			q.free = append(q.free, slot)
			return false
		}
	}
	q.live++
	if p.pl.connecting {
		q.watchDial(p.pl.deadline)
	}
	if !q.running {
		q.running = true
		go q.run()
	}
	return true
}

// watchDial makes the dial timer fire by at; the caller holds mu.
func (q *poller) watchDial(at time.Time) {
	if !q.dialAt.IsZero() && !at.Before(q.dialAt) {
		return
	}
	q.dialAt = at
	if q.dialTimer == nil {
		q.dialTimer = time.AfterFunc(time.Until(at), q.dialsDue)
	} else {
		q.dialTimer.Reset(time.Until(at))
	}
}

// dialsDue is the dial timer's: the goroutine looks for connections past
// their deadline.
func (q *poller) dialsDue() {
	q.mu.Lock()
	q.dialAt = time.Time{}
	q.expire = true
	q.mu.Unlock()
	q.wakeUp()
}

// expireDials ends the connections to backends past their deadline, and
// arms the dial timer for the earliest of the others.
func (q *poller) expireDials() {
	now := time.Now()
	q.mu.Lock()
	var next time.Time
	for _, s := range q.slots {
		p := s.p
		if p == nil || p.pl == nil || !p.pl.connecting {
			continue
		}
		switch d := p.pl.deadline; {
		case !now.Before(d):
			q.expired = append(q.expired, p)
		case next.IsZero() || d.Before(next):
			next = d
		}
	}
	if !next.IsZero() {
		q.watchDial(next)
	}
	q.mu.Unlock()
	for i, p := range q.expired {
		if p.pl != nil && p.pl.connecting {
			p.evDialFail(os.ErrDeadlineExceeded)
		}
		q.expired[i] = nil
	}
	q.expired = q.expired[:0]
}

// remove forgets p; its sockets are deregistered by their close, or by
// the caller.
func (q *poller) remove(p *pair) {
	q.mu.Lock()
	q.slots[p.pl.slot].p = nil
	q.free = append(q.free, p.pl.slot)
	q.live--
	q.mu.Unlock()
}

// poke makes the goroutine look at p (to close it) soon.
func (q *poller) poke(p *pair) {
	q.mu.Lock()
	q.poked = append(q.poked, p)
	q.mu.Unlock()
	q.wakeUp()
}

// wakeUp makes the goroutine look at what it was asked to do.
func (q *poller) wakeUp() {
	one := uint64(1)
	unix.Write(q.wake, (*[8]byte)(unsafe.Pointer(&one))[:])
}

// pollBudget bounds what one direction moves before the others get their
// turn.
const pollBudget = 4 * chunk

func (q *poller) loop() {
	if err := q.wait.Read(q.work); err != nil {
		panic("relay: waiting for epoll events: " + err.Error()) // the descriptor is never closed
	}
}

// turn is the goroutine's loop, run as the callback of its one wait for
// the epoll descriptor to be readable: it returns false to wait, and the
// runtime calls it again once the descriptor is readable, or true to
// exit. A wake-up costs one epoll_wait: events that come while the
// goroutine handles a batch make the descriptor readable anew, and the
// wait ends at once. A wait of its own for each batch would cost two, as
// the wait drops the readiness that events of the batch just handled
// left, and so must look for events before it sleeps.
func (q *poller) turn(fd uintptr) bool {
	all := false // the last epoll_wait returned every event there was
	for {
		q.mu.Lock()
		poked := q.poked
		q.poked, q.taken = q.taken[:0], poked
		expire := q.expire
		q.expire = false
		if q.live == 0 && len(poked) == 0 {
			q.running = false
			q.mu.Unlock()
			return true
		}
		q.mu.Unlock()
		for i, p := range poked {
			switch {
			case p.pl == nil:
				if p.closeWanted.Load() {
					p.closeNow() // handed over to goroutines meanwhile
				}
			case p.closeWanted.Load():
				p.evClose()
			}
			poked[i] = nil
		}
		if expire {
			q.expireDials()
		}
		if len(poked) > 0 || expire {
			continue // the connections closed may have been the last
		}
		if all && len(q.again) == 0 {
			return false
		}
		n, err := epollNow(int(fd), q.events[:])
		if err != nil {
			panic("relay: epoll_wait: " + err.Error()) // a broken descriptor: a programming error
		}
		all = n < len(q.events)
		// Connections that used up their budget go first, then the events.
		due := q.again
		q.again = q.due[:0]
		for _, p := range due {
			// Only the directions that used up their budget: the other
			// has an event when it has something to move.
			more := false
			for i := range 2 {
				if p.pl != nil && p.pl.dirs[i].more {
					more = p.evStep(i, false) || more
				}
			}
			if more {
				q.again = append(q.again, p)
			}
			p.evCheck()
		}
		clear(due)
		q.due = due[:0]
		for _, ev := range q.events[:n] {
			if ev.Fd < 0 {
				var buf [8]byte
				readNow(uintptr(q.wake), buf[:])
				continue
			}
			q.mu.Lock()
			s := q.slots[ev.Fd]
			q.mu.Unlock()
			k, gen := int(ev.Pad&1), uint32(ev.Pad)>>1
			if s.w != nil {
				q.fire(s.w, gen)
				continue
			}
			p := s.p
			if p == nil || s.gen&(1<<31-1) != gen || p.pl == nil {
				continue // a connection that ended in this batch
			}
			if p.pl.connecting {
				// The client's bytes wait until the backend answers.
				if k == 0 {
					p.pl.heard |= ev.Events & inputEvents
				} else {
					p.evConnected(ev.Events)
					p.evCheck()
				}
				continue
			}
			more := false
			if ev.Events&inputEvents != 0 {
				more = p.evStep(k, ev.Events&endEvents == 0)
			}
			if p.pl != nil && ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 && p.pl.dirs[1-k].pending() {
				more = p.evStep(1-k, false) || more
			}
			if more {
				q.again = append(q.again, p)
			}
			p.evCheck()
		}
	}
}

func (d *evDir) pending() bool { return d.buf != nil || d.pipe != nil }

// The events that call for reading a socket, and those among them that
// may tell of its end.
const (
	inputEvents = unix.EPOLLIN | endEvents
	endEvents   = unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
)

// epollNow returns the events epfd has, without waiting. Like the relay's
// reads and splices, it is a raw system call, since it never blocks: the
// runtime's bookkeeping of a call that may block wakes its monitor thread
// when all Ps were idle (the poller had parked), and the monitor then
// polls every 20 µs for a while. With a stream relayed, that was a futex
// wake-up and one to three nanosleeps per MB, which made the poller cost
// more CPU per MB than io.Copy's splice.
func epollNow(epfd int, events []unix.EpollEvent) (int, error) {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		switch e {
		case 0:
			return int(r), nil
		case unix.EINTR:
			// Waiting now could miss the events this call was to return.
		default:
			return 0, e
		}
	}
}

// evStep moves what direction i can move now, and reports whether it
// stopped on its budget rather than on a source or destination that must
// wait. shortEnds lets a read that did not fill the buffer end the step
// without a read that finds nothing: the source had no more when it was
// read, and bytes that come later make an event of their own. Only the
// event of a source whose end has not come may pass it, since the end
// that came with the bytes read makes no other event.
func (p *pair) evStep(i int, shortEnds bool) (more bool) {
	ev := p.pl
	if ev == nil || ev.connecting {
		return false
	}
	d := &ev.dirs[i]
	dir := chaos.ToBackend
	if i == 1 {
		dir = chaos.ToClient
	}
	src := ev.fds[i]
	moved := 0
	short := false
	d.more = false
	for !d.done {
		if d.pending() {
			// A source that is not watched is read until it has no more,
			// short read or not: its next bytes would make no event.
			if !p.evFlush(i, dir) || short && !d.full {
				return false
			}
			continue
		}
		if moved >= pollBudget {
			d.more = true
			return true
		}
		if d.bulk && !d.draining {
			pp, _ := pipes.Get().(*pipe)
			if pp == nil {
				d.bulk = false
				continue
			}
			n, e := splice(src, pp.fds.w, pp.size)
			switch {
			case e == unix.EINTR:
				putPipe(pp)
				continue
			case e == unix.EAGAIN:
				// All moved: the next bytes are spliced as well, until a
				// splice moves no more than a message.
				putPipe(pp)
				p.watchInput(i)
				return false
			case e != 0:
				putPipe(pp)
				p.evFail(i, dir, e, false)
				return false
			case n == 0:
				putPipe(pp)
				p.evEnd(i, dir)
				return false
			}
			if p.changes.Load() > p.known[i] {
				pp.data = n
				d.pipe = pp
				p.evHandOver()
				return false
			}
			pp.data = n
			d.pipe = pp
			d.bulk = n >= smallMessage
			moved += n
			p.active(dir)
			continue
		}
		buf := bufs.Get().(*[]byte)
		n, e := readNow(uintptr(src), *buf)
		switch {
		case e == unix.EAGAIN:
			bufs.Put(buf)
			p.watchInput(i)
			return false
		case e != 0:
			bufs.Put(buf)
			p.evFail(i, dir, e, false)
			return false
		case n == 0:
			bufs.Put(buf)
			p.evEnd(i, dir)
			return false
		}
		p.active(dir)
		if d.draining {
			bufs.Put(buf)
			continue
		}
		if p.changes.Load() > p.known[i] {
			// The mix changed: the next draw relays these bytes.
			p.pend[i] = append(p.pend[i], (*buf)[:n]...)
			bufs.Put(buf)
			p.evHandOver()
			return false
		}
		d.buf, d.off, d.n = buf, 0, n
		d.bulk = n == smallMessage
		short = shortEnds && n < smallMessage
		moved += n
	}
	return false
}

// evFlush writes what direction i holds; false when the destination is
// full (or the direction failed).
func (p *pair) evFlush(i int, dir chaos.Direction) bool {
	ev := p.pl
	d := &ev.dirs[i]
	dst := ev.fds[1-i]
	if d.buf != nil {
		for d.off < d.n {
			n, e := writeNow(uintptr(dst), (*d.buf)[d.off:d.n])
			switch e {
			case 0:
				d.off += n
				p.ev.Relayed(dir, int64(n))
			case unix.EAGAIN:
				p.unwatchInput(i)
				return false
			default:
				bufs.Put(d.buf)
				d.buf = nil
				p.evFail(i, dir, e, true)
				return false
			}
		}
		bufs.Put(d.buf)
		d.buf = nil
		return true
	}
	pp := d.pipe
	for pp.data > 0 {
		n, e := splice(pp.fds.r, dst, pp.data)
		switch e {
		case 0:
			pp.data -= n
			p.ev.Relayed(dir, int64(n))
		case unix.EINTR:
		case unix.EAGAIN:
			p.unwatchInput(i)
			return false
		default:
			d.pipe = nil
			putPipe(pp)
			p.evFail(i, dir, e, true)
			return false
		}
	}
	d.pipe = nil
	putPipe(pp)
	return true
}

// unwatchInput stops the events of direction i's source that say bytes
// came, while its destination is full: a source that goes on sending would
// wake the poller for every packet, to find the destination still full.
// The destination's EPOLLOUT resumes the direction (evStep), which reads
// the source until it has no more and only then watches it again.
func (p *pair) unwatchInput(i int) {
	if !p.pl.dirs[i].full {
		p.pl.dirs[i].full = true
		p.evWatch(i, 0)
	}
}

// watchInput watches direction i's source again after unwatchInput. A
// source that received bytes since it was last read has an event at once.
func (p *pair) watchInput(i int) {
	if p.pl.dirs[i].full {
		p.pl.dirs[i].full = false
		p.evWatch(i, unix.EPOLLIN)
	}
}

// evWatch sets the events the poller waits for on socket i: its input
// ones (in) and, as the destination of the other direction, EPOLLOUT.
// Hang-ups and errors come whatever the mask.
func (p *pair) evWatch(i int, in uint32) {
	ev := p.pl
	q := ev.q
	q.mod = unix.EpollEvent{
		Events: in | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET,
		Fd:     ev.slot, Pad: int32(ev.gen<<1 | uint32(i)),
	}
	epollCtlNow(q.epfd, unix.EPOLL_CTL_MOD, ev.fds[i], &q.mod)
}

// evEnd ends direction i at its source's end of stream, as pump does: the
// destination is half-closed, and the client's end of the backend's
// stream may start the lingering close.
func (p *pair) evEnd(i int, dir chaos.Direction) {
	d := &p.pl.dirs[i]
	d.done = true
	p.waiting[i].Store(true)
	if !p.pl.dirs[1-i].done {
		// Else the destination is about to be closed, which sends the
		// end of the stream as well.
		shutdownNow(p.pl.fds[1-i], unix.SHUT_WR)
	}
	if dir == chaos.ToClient {
		p.startLinger(sentAll)
	}
}

// evFail is pump's handling of an error of direction i: a failed write to
// the backend lingers, draining the client; a reset from the backend ends
// the client's stream as a close would; anything else closes the
// connection.
func (p *pair) evFail(i int, dir chaos.Direction, e syscall.Errno, wrote bool) {
	d := &p.pl.dirs[i]
	switch {
	case dir == chaos.ToBackend && wrote:
		p.startLinger(backendGone)
		d.draining = true
		p.watchInput(i)
		return
	case dir == chaos.ToClient && !wrote && e == unix.ECONNRESET:
		p.ended.Or(backendGone)
		p.evEnd(i, dir)
		return
	}
	d.done = true
	p.waiting[i].Store(true)
	var err error = e
	if wrote {
		err = &writeError{e}
	}
	if !OrdinaryEnd(err) {
		p.errs[i] = err
	}
	p.evClose()
}

// evCheck finishes the connection once both directions have ended.
func (p *pair) evCheck() {
	ev := p.pl
	if ev == nil {
		return
	}
	if ev.dirs[0].done && ev.dirs[1].done {
		p.evFinish()
	}
}

// evClose closes both connections, as closeAll does, and finishes.
func (p *pair) evClose() {
	if p.pl == nil {
		return
	}
	l := &p.live
	l.mu.Lock()
	l.closed = true
	l.wakeAll(errClosed)
	client := p.conns[0]
	l.mu.Unlock()
	if client != nil {
		client.Close()
	} // else bare, or already closed: evFinish closes it
	p.evFinish()
}

// evFinish releases what the directions hold, closes the backend and
// reports the result: the relay has ended.
func (p *pair) evFinish() {
	ev := p.pl
	for i := range ev.dirs {
		d := &ev.dirs[i]
		if d.buf != nil {
			bufs.Put(d.buf)
			d.buf = nil
		}
		if d.pipe != nil {
			putPipe(d.pipe)
			d.pipe = nil
		}
	}
	ev.q.remove(p)
	p.pl = nil
	p.finish()
	p.closeBare()
	p.stopLinger()
	if ev.raw {
		if ev.fds[1] >= 0 {
			closeNow(ev.fds[1])
		}
	} else {
		p.conns[1].Close()
	}
	p.detached.End(p.result())
}

// evHandOver gives the connection back to goroutines, which carry out the
// new draw: what a direction had yet to write goes first, kept as the
// bytes the next draw relays.
func (p *pair) evHandOver() {
	ev := p.pl
	q := ev.q
	for _, fd := range ev.fds {
		epollCtlNow(q.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	if p.bare {
		// Goroutines need net.Conns: for the client as for a raw
		// backend, one on a duplicate of the socket, whose original is
		// closed. The pair closes it, as it closed the bare socket.
		// Under the lock: a reset_peer's strike sets the linger of the
		// bare socket.
		p.live.mu.Lock()
		c, err := fileConn(ev.fds[0], "client")
		p.bare = false
		if err == nil {
			p.conns[0], p.ownClient = c, true
		}
		p.live.mu.Unlock()
		if err != nil {
			p.errs[dirIndex(chaos.ToBackend)] = err
			p.evClose()
			return
		}
	}
	var backend net.Conn
	if ev.raw {
		c, err := fileConn(ev.fds[1], "backend")
		if err != nil {
			ev.fds[1] = -1 // closed by fileConn
			p.errs[dirIndex(chaos.ToClient)] = err
			p.evClose()
			return
		}
		backend = c
	}
	// From now on closeAll closes the sockets itself.
	p.live.mu.Lock()
	p.live.poller = nil
	if backend != nil {
		p.conns[1] = backend
	}
	p.live.mu.Unlock()
	left := int32(0)
	for i := range ev.dirs {
		d := &ev.dirs[i]
		var held []byte
		switch {
		case d.buf != nil:
			held = append(held, (*d.buf)[d.off:d.n]...)
			bufs.Put(d.buf)
			d.buf = nil
		case d.pipe != nil:
			held = make([]byte, d.pipe.data)
			k := 0
			for k < len(held) {
				n, err := unix.Read(d.pipe.fds.r, held[k:])
				if n <= 0 || err != nil {
					break
				}
				k += n
			}
			held = held[:k]
			d.pipe.data -= k
			putPipe(d.pipe)
			d.pipe = nil
		}
		if len(held) > 0 {
			p.pend[i] = append(held, p.pend[i]...)
		}
		if !d.done {
			left++
		}
	}
	ev.q.remove(p)
	p.pl = nil
	ctx := ev.ctx
	p.bindSides()
	p.left.Store(left)
	if left == 0 {
		p.finish()
		p.stopLinger()
		p.conns[1].Close()
		if p.ownClient {
			p.conns[0].Close()
		}
		p.detached.End(p.result())
		return
	}
	for i := range ev.dirs {
		if !ev.dirs[i].done {
			dir := chaos.ToBackend
			if i == 1 {
				dir = chaos.ToClient
			}
			go p.half(ctx, dir)
		}
	}
}

// fileConn makes a net.Conn of a bare socket: one on a duplicate, as
// net.FileConn makes. The original is closed, whatever the outcome.
func fileConn(fd int, name string) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), name)
	c, err := net.FileConn(f)
	f.Close()
	return c, err
}

// writeNow writes p to fd without blocking.
func writeNow(fd uintptr, p []byte) (n int, errno syscall.Errno) {
	for {
		r, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == 0 {
			return int(r), 0
		}
		if e != unix.EINTR {
			return 0, e
		}
	}
}

// rawDialer is a session that lets the relay connect to the backend
// itself: the poller waits for the connection, so that a connection costs
// no goroutine blocked in a dial, nor Go's dialer.
type rawDialer interface {
	// DialAddr is the backend's address when it can be dialed that way,
	// and how long a connection may take.
	DialAddr() (to netip.AddrPort, timeout time.Duration, ok bool)
	// Connected records the connection being made, from local to the
	// backend, as soon as it has its local address; an error ends the
	// connection (it leads back to vaurien).
	Connected(local, remote netip.AddrPort) error
	// DialFailed counts a failure to connect and returns the error the
	// connection ends with.
	DialFailed(to netip.AddrPort, err error) error
}

// bareClient is a session that may hold its client as a bare socket,
// accepted without Go's net package: the poller relays it as it is, and
// Client makes a net.Conn of it for goroutines, which a connection the
// poller relays never needs.
type bareClient interface {
	// BareClient is the client's socket while it is bare, else -1.
	BareClient() int
	// TakeClient gives the bare socket to the relay, which closes it from
	// then on, and closes the connection with c (as closer's CloseWith).
	TakeClient(c io.Closer)
}

// pollDial connects to the backend from the poller, for a connection that
// carries out nothing (see poll); handled is false when the caller must
// dial and relay as usual. An error is a connection that failed at once.
// bare is the client's bare socket (see bareClient), or -1.
func (p *pair) pollDial(ctx context.Context, s chaos.Session, bare int) (handled bool, err error) {
	rd, ok1 := s.(rawDialer)
	cl, ok2 := s.(closer)
	dt, ok3 := s.(chaos.Detacher)
	if !ok1 || !ok2 || !ok3 || p.idle > 0 {
		return false, nil
	}
	to, timeout, ok := rd.DialAddr()
	if !ok {
		return false, nil
	}
	cfd, ok := bare, bare >= 0
	if !ok {
		cfd, ok = fdOf(p.conns[0])
	}
	q := getPoller()
	if !ok || q == nil {
		return false, nil
	}
	fd, err := connectNow(to)
	if fd < 0 {
		if err == nil {
			return false, nil // no socket: Go's dialer says why
		}
		p.finish()
		return true, rd.DialFailed(to, os.NewSyscallError("connect", err))
	}
	// Recorded before the backend can have accepted it, most likely: a
	// backend that leads back to vaurien then finds it when it accepts,
	// and refuses it before it dials again.
	if err := rd.Connected(localAddr(fd), to); err != nil {
		closeNow(fd)
		p.finish()
		return true, err
	}
	p.polled = evState{q: q, ctx: ctx, fds: [2]int{cfd, fd}, raw: true, connecting: true, deadline: time.Now().Add(timeout), to: to, rd: rd}
	p.pl = &p.polled
	dt.Detach()
	p.detached = dt
	l := &p.live
	if bare >= 0 {
		l.mu.Lock()
		p.bare, p.bareFD = true, bare
		l.mu.Unlock()
		s.(bareClient).TakeClient(p)
	} else {
		cl.CloseWith(p)
	}
	l.mu.Lock()
	l.poller = q
	l.mu.Unlock()
	if !q.add(p) {
		l.mu.Lock()
		l.poller = nil
		l.mu.Unlock()
		p.pl = nil
		closeNow(fd)
		p.finish()
		p.closeBare()
		dt.End(rd.DialFailed(to, errors.New("the relay's poller refused the socket")))
	}
	return true, nil
}

// closeBare closes the client's bare socket, once the connection has
// ended (finish): the strike of a reset_peer sets its linger until then.
func (p *pair) closeBare() {
	l := &p.live
	l.mu.Lock()
	if p.bare {
		p.bare = false
		closeNow(p.bareFD)
	}
	l.mu.Unlock()
}

// connectNow starts a connection to to on a new non-blocking socket. fd is
// -1 when there is none: err then says why the connection failed, or is
// nil when no socket could be made.
func connectNow(to netip.AddrPort) (fd int, err error) {
	// The address as the kernel reads it, built here: unix.Connect would
	// allocate it.
	var rsa unix.RawSockaddrAny
	var size uintptr
	family := unix.AF_INET
	port := (*[2]byte)(unsafe.Pointer(&rsa.Addr.Data[0]))
	port[0], port[1] = byte(to.Port()>>8), byte(to.Port())
	if a := to.Addr().Unmap(); a.Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		sa.Family, sa.Addr, size = unix.AF_INET, a.As4(), unix.SizeofSockaddrInet4
	} else {
		family = unix.AF_INET6
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		sa.Family, sa.Addr, size = unix.AF_INET6, a.As16(), unix.SizeofSockaddrInet6
		if z := a.Zone(); z != "" {
			if ifi, err := net.InterfaceByName(z); err == nil {
				sa.Scope_id = uint32(ifi.Index)
			}
		}
	}
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return -1, nil
	}
	fd = int(r)
	// As Go's dialer and the route's listener do: no Nagle delay, and
	// keep-alive probes at the system's timings.
	setsockoptNow(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	setsockoptNow(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	for {
		// Non-blocking: it returns once the SYN is sent.
		_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), size)
		switch e {
		case unix.EINTR:
			continue
		case 0, unix.EINPROGRESS:
			return fd, nil
		}
		closeNow(fd)
		return -1, e
	}
}

// evConnected finishes the connection to the backend once its socket
// says how it went, in events.
func (p *pair) evConnected(events uint32) {
	ev := p.pl
	// A socket still connecting is never writable: writable without an
	// error or a hang-up, it is connected, which spares two system calls
	// per connection.
	if (events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 || events&unix.EPOLLOUT == 0) && !p.evConnectDone() {
		return
	}
	ev.connecting = false
	// What either side sent meanwhile moves now: what an event said came,
	// since bytes that come later make events of their own.
	up := ev.heard != 0 && p.evStep(0, ev.heard&endEvents == 0)
	down := events&inputEvents != 0 && p.evStep(1, events&endEvents == 0)
	if up || down {
		ev.q.again = append(ev.q.again, p)
	}
}

// evConnectDone asks the backend's socket whether its connection is
// made: false when it is not yet, or when it failed, which ends the
// connection.
func (p *pair) evConnectDone() bool {
	fd := p.pl.fds[1]
	v, errno := getsockoptNow(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if errno == 0 {
		errno = syscall.Errno(v)
	}
	switch errno {
	case 0:
		// An event can come before the connection is made (Go's dialer
		// checks the same way): only a peer says it is.
		var rsa unix.RawSockaddrAny
		n := uint32(unix.SizeofSockaddrAny)
		if _, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n))); e == unix.ENOTCONN {
			return false
		}
	case unix.EISCONN:
	case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
		return false // not yet
	default:
		p.evDialFail(os.NewSyscallError("connect", errno))
		return false
	}
	return true
}

// localAddr is the local end of socket fd; the zero AddrPort when it
// cannot be had. unix.Getsockname would allocate the address.
func localAddr(fd int) netip.AddrPort {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	if _, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n))); e != 0 {
		return netip.AddrPort{}
	}
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), ntohs(sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), ntohs(sa.Port))
	}
	return netip.AddrPort{}
}

// ntohs reads a port as the kernel stores it, in network byte order.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// evDialFail ends a connection whose backend could not be reached.
func (p *pair) evDialFail(err error) {
	ev := p.pl
	p.errs[dirIndex(chaos.ToClient)] = ev.rd.DialFailed(ev.to, err)
	p.evClose()
}
