package relay

import (
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// side moves one direction's bytes between two sockets with the poller's
// callbacks: it waits until the source has data or is at end of stream,
// reads small messages into a pooled buffer, and splices bulk data through
// a pooled pipe. Its one callback is bound before the relay's goroutines
// start, and nothing it does on the way allocates, because whatever a
// waiting goroutine's stack grows to, it keeps for as long as the
// connection lives (and idle connections are what a proxy holds most of).
type side struct {
	in, out syscall.RawConn
	call    func(fd uintptr) bool
	op      sideOp
	buf     *[]byte // message read by opRead
	n       int     // bytes read (opRead), queued (opPoll) or asked for (opDrain)
	err     error
	peek    [1]byte
	p       *pipe
}

type sideOp uint8

const (
	opRead  sideOp = iota // read a message from in
	opPoll                // learn how much in has queued
	opDrain               // splice what in has queued into the pipe
	opPump                // splice the pipe into out
)

// bind readies s for the sockets in and out; out may be nil (not a
// socket), and then bulk data is copied by the caller.
func (s *side) bind(in, out syscall.RawConn) {
	s.in, s.out = in, out
	s.call = s.step
}

func (s *side) step(fd uintptr) bool {
	switch s.op {
	case opRead:
		return s.readFD(fd)
	case opPoll:
		return s.pollFD(fd)
	case opDrain:
		return s.drainFD(fd)
	default:
		return s.pumpFD(fd)
	}
}

// read waits for data and reads what has arrived into a pooled buffer,
// which the caller puts back. n is 0 at end of stream.
func (s *side) read() (buf *[]byte, n int, err error) {
	s.op, s.n, s.err = opRead, 0, nil
	if err := s.in.Read(s.call); err != nil {
		return nil, 0, err
	}
	buf, s.buf = s.buf, nil
	if s.err != nil {
		bufs.Put(buf)
		return nil, 0, s.err
	}
	return buf, s.n, nil
}

// readFD takes a buffer only for the read itself: a connection waiting for
// data holds none.
func (s *side) readFD(fd uintptr) bool {
	s.buf = bufs.Get().(*[]byte)
	n, e := readNow(fd, *s.buf)
	switch e {
	case 0:
		s.n = n
	case unix.EAGAIN:
		bufs.Put(s.buf)
		s.buf = nil
		return false
	default:
		s.err = e
	}
	return true
}

// queued waits until in has data or is at end of stream and returns how
// many bytes it has queued; 0 means end of stream.
func (s *side) queued() (int64, error) {
	s.op, s.n, s.err = opPoll, 0, nil
	if err := s.in.Read(s.call); err != nil {
		return 0, err
	}
	return int64(s.n), s.err
}

func (s *side) pollFD(fd uintptr) bool {
	var avail int32
	if _, _, e := unix.RawSyscall(unix.SYS_IOCTL, fd, unix.SIOCINQ, uintptr(unsafe.Pointer(&avail))); e != 0 {
		s.err = e
		return true
	}
	if avail > 0 {
		s.n = int(avail)
		return true
	}
	// Nothing queued: either end of stream (readable, zero bytes), nothing
	// yet, or bytes that arrived since the ioctl.
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&s.peek[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0:
		s.n = int(n)
	case unix.EAGAIN:
		return false
	default:
		s.err = e
	}
	return true
}

// splice moves up to n bytes, which the caller knows in has queued, to
// out through a pipe, and returns how many went out; 0 and no error is
// end of stream. A failure to write to out is a *writeError. ok is false
// when no pipe could be had: the caller copies instead.
func (s *side) splice(n int) (moved int, ok bool, err error) {
	p, _ := pipes.Get().(*pipe)
	if p == nil {
		return 0, false, nil
	}
	s.p, s.n, s.err = p, min(n, p.size), nil
	s.op = opDrain
	if err = s.in.Read(s.call); err == nil && s.err == nil && p.data > 0 {
		queued := p.data
		s.op = opPump
		err = s.out.Write(s.call)
		moved = queued - p.data
		if err == nil {
			err = s.err
		}
		if err != nil {
			err = &writeError{err}
		}
	}
	if err == nil {
		err = s.err
	}
	putPipe(p)
	s.p = nil
	return moved, true, err
}

func (s *side) drainFD(fd uintptr) bool {
	for {
		n, e := splice(int(fd), s.p.fds.w, s.n)
		switch e {
		case 0:
			s.p.data += n
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			// The pipe is empty, so the socket has nothing after all.
			return false
		}
		s.err = e
		return true
	}
}

func (s *side) pumpFD(fd uintptr) bool {
	for s.p.data > 0 {
		n, e := splice(s.p.fds.r, int(fd), s.p.data)
		switch e {
		case 0:
			s.p.data -= n
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			s.err = e
			return true
		}
	}
	return true
}

// readNow reads into p what fd has already received, without blocking and
// without the runtime's bookkeeping, for a poller callback (which holds
// the descriptor): n is 0 at end of stream, and errno is EAGAIN when
// nothing has come.
func readNow(fd uintptr, p []byte) (n int, errno syscall.Errno) {
	for {
		r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == 0 {
			return int(r), 0
		}
		if e != unix.EINTR {
			return 0, e
		}
	}
}

// splice moves up to n bytes from in to out without blocking.
func splice(in, out, n int) (int, syscall.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n),
		unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	return int(r), e
}

// pipeSize is what a pooled pipe is asked to hold: a splice moves at most
// that much at once.
const pipeSize = 1 << 20

// pipe is a kernel pipe that bulk data crosses from one socket to another
// without entering user space. Pipes are pooled (an idle connection holds
// none) and closed when the pool drops them.
type pipe struct {
	fds     pipeFDs
	size    int // what the kernel granted
	data    int // bytes in the pipe
	cleanup runtime.Cleanup
}

type pipeFDs struct{ r, w int }

func (f pipeFDs) close() {
	unix.Close(f.r)
	unix.Close(f.w)
}

var pipes = sync.Pool{New: func() any {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil
	}
	p := &pipe{fds: pipeFDs{r: fds[0], w: fds[1]}, size: 64 << 10}
	// A smaller pipe works too, with more calls.
	if n, err := unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, pipeSize); err == nil {
		p.size = n
	} else if n, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETPIPE_SZ, 0); err == nil {
		p.size = n
	}
	p.cleanup = runtime.AddCleanup(p, pipeFDs.close, p.fds)
	return p
}}

func putPipe(p *pipe) {
	if p.data != 0 {
		// What a failed write left behind must not reach another
		// connection.
		p.cleanup.Stop()
		p.fds.close()
		return
	}
	pipes.Put(p)
}
