package relay

import (
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Watching is a watch of two connections by a poller (see Watch). The
// poller owns it from Watch until it fires or is stopped, under its mu.
type Watching struct {
	q     *poller
	slot  int32
	gen   uint32
	fds   [2]int
	fn    func()
	armed bool
}

// Watch calls fn once, from a poller's goroutine, when a or b has bytes to
// read, has ended or failed: a protocol engine whose connection is idle
// leaves its goroutines and hands the wait to the poller. fn must return
// quickly. Watch returns nil when the connections cannot be watched (not
// TCP, or no poller): the caller goes on waiting itself.
//
// Until fn is called or Stop returns true, a and b are the poller's: the
// caller neither closes them nor reads them, since a closed descriptor's
// number may be given to a new connection while the poller still watches
// it.
func Watch(a, b net.Conn, fn func()) *Watching {
	fa, ok1 := fdOf(a)
	fb, ok2 := fdOf(b)
	q := getPoller()
	if !ok1 || !ok2 || q == nil {
		return nil
	}
	w := &Watching{q: q, fds: [2]int{fa, fb}, fn: fn}
	if !q.addWatch(w) {
		return nil
	}
	return w
}

// Stop ends the watch, and reports whether it did: false when fn has been
// called or is about to be. Either way the poller has let go of both
// descriptors when Stop returns.
func (w *Watching) Stop() bool {
	q := w.q
	q.mu.Lock()
	if !w.armed {
		q.mu.Unlock()
		return false
	}
	q.unwatch(w)
	idle := q.live == 0
	q.mu.Unlock()
	if idle {
		// The goroutine looks again, and ends with nothing to watch.
		one := uint64(1)
		unix.Write(q.wake, (*[8]byte)(unsafe.Pointer(&one))[:])
	}
	return true
}

// addWatch registers w's descriptors for readability and hang-ups, and
// starts the goroutine if it was not running.
func (q *poller) addWatch(w *Watching) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	slot := q.takeSlot()
	s := &q.slots[slot]
	s.gen++
	s.w = w
	w.slot, w.gen = slot, s.gen
	for k, fd := range w.fds {
		q.ctl = unix.EpollEvent{
			Events: unix.EPOLLIN | unix.EPOLLRDHUP,
			Fd:     slot, Pad: int32(s.gen<<1 | uint32(k)),
		}
		if epollCtlNow(q.epfd, unix.EPOLL_CTL_ADD, fd, &q.ctl) != 0 {
			if k == 1 {
				epollCtlNow(q.epfd, unix.EPOLL_CTL_DEL, w.fds[0], nil)
			}
			s.w = nil
			q.free = append(q.free, slot)
			return false
		}
	}
	w.armed = true
	q.live++
	if !q.running {
		q.running = true
		go q.loop()
	}
	return true
}

// unwatch deregisters w; q.mu is held.
func (q *poller) unwatch(w *Watching) {
	w.armed = false
	for _, fd := range w.fds {
		epollCtlNow(q.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	q.slots[w.slot].w = nil
	q.free = append(q.free, w.slot)
	q.live--
}

// fire calls w's fn for an event of generation gen, unless it was stopped
// or fired already.
func (q *poller) fire(w *Watching, gen uint32) {
	q.mu.Lock()
	if !w.armed || w.gen&(1<<31-1) != gen {
		q.mu.Unlock()
		return
	}
	q.unwatch(w)
	q.mu.Unlock()
	w.fn()
}
