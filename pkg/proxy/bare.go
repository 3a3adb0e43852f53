package proxy

import (
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A connection that a tcp route's poller will relay as it is needs no
// net.Conn: Go's Accept would make one for each, at the cost of six
// allocations, a getsockname, a TCP_NODELAY (which an accepted socket takes
// from the listening one anyway) and the socket's registration with Go's
// poller, added and removed, none of which the poller uses. Such
// connections are accepted bare instead, with accept4 straight from the
// kernel, on a duplicate of the listening socket that Go's poller watches
// for the acceptor. The relay takes the bare socket (relay's bareClient);
// a protocol, or goroutines of the relay, that need a net.Conn get one
// made of it (session.Client).

// bareRelay is a protocol that relays its connections' sockets as they
// are, most of them by the relay's poller: it takes bare clients. Its
// Serve returns at once, or calls Client before anything that may block:
// the goroutine that accepts serves a bare client, and goes on accepting
// once Serve returns.
type bareRelay interface {
	RelaysBare() bool
}

// relaysBare reports whether the route may accept bare sockets at all: a
// protocol that relays them, without TLS on either side.
func (r *Route) relaysBare() bool {
	b, ok := r.plan.Load().protocol.(bareRelay)
	return ok && b.RelaysBare() && r.tlsIn == nil && r.tlsOut == nil
}

// derive sets what the plan's connections would otherwise work out each:
// the backend's address, and whether they are accepted bare: the relay's
// poller can relay them (no idle timeout, a backend it connects to
// itself), and most draw nothing to carry out, since one that does makes a
// net.Conn of its socket, which costs more than Go's Accept.
func (p *plan) derive() {
	p.dialTo, _ = netip.ParseAddrPort(p.backend)
	faulty := 0.0
	for _, e := range p.mix.Entries() {
		if e.Match == nil { // a tcp connection matches no request
			faulty += e.Percent
		}
	}
	p.bare = p.cfg.IdleTimeout <= 0 && p.dialTo.IsValid() && faulty < 50
}

// bareAcceptor accepts bare sockets on its duplicate of the listening
// socket. One goroutine of an acceptor accepts at a time, and copies the
// results out before it starts the next.
type bareAcceptor struct {
	rc    syscall.RawConn // of the duplicate; nil when there is none
	local netip.AddrPort  // the listening address; unspecified: each socket's own is asked
	take  func(fd uintptr) bool
	// take's results.
	fd    int
	errno syscall.Errno
	sa    unix.RawSockaddrAny
}

// open readies b on a duplicate of ln's socket, which it returns for the
// route to close with ln.
func (b *bareAcceptor) open(ln *net.TCPListener) (*os.File, error) {
	f, err := ln.File()
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	b.rc = rc
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		b.local = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	b.take = b.accept4
	return f, nil
}

// accept4 is rc.Read's callback: it accepts one socket, or asks to wait
// for one.
func (b *bareAcceptor) accept4(fd uintptr) bool {
	for {
		n := uint32(unix.SizeofSockaddrAny)
		// A raw system call, as the relay's are: it never blocks.
		r, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, fd, uintptr(unsafe.Pointer(&b.sa)), uintptr(unsafe.Pointer(&n)), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
		switch e {
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case unix.EAGAIN:
			return false
		}
		b.fd, b.errno = int(r), e
		return true
	}
}

// next waits for a socket and returns its session, and the connection's
// local end for the self-loop check.
func (b *bareAcceptor) next(r *Route) (*session, netip.AddrPort, error) {
	if err := b.rc.Read(b.take); err != nil {
		// The duplicate was closed with the listener: nothing else stops
		// a wait.
		return nil, netip.AddrPort{}, net.ErrClosed
	}
	if b.errno != 0 {
		return nil, netip.AddrPort{}, os.NewSyscallError("accept4", b.errno)
	}
	local := b.local
	if local.Addr().IsUnspecified() {
		local = localOf(b.fd)
	}
	s := &session{route: r, bare: int32(b.fd)}
	s.peer = peerAddr(addrPortOf(&b.sa))
	return s, local, nil
}

// localOf is the local end of socket fd; the zero AddrPort when it cannot
// be had. unix.Getsockname would allocate the address.
func localOf(fd int) netip.AddrPort {
	var sa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	if _, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n))); e != 0 {
		return netip.AddrPort{}
	}
	return addrPortOf(&sa)
}

// addrPortOf reads an address as the kernel gives it.
func addrPortOf(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), ntohs(in.Port))
	case unix.AF_INET6:
		in := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(in.Addr).Unmap(), ntohs(in.Port))
	}
	return netip.AddrPort{}
}

// ntohs reads a port as the kernel stores it, in network byte order.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// peerAddr is a bare client's address as observers see it: a net.Addr
// held in the session, which costs no allocation of its own.
type peerAddr netip.AddrPort

func (a *peerAddr) Network() string { return "tcp" }
func (a *peerAddr) String() string  { return netip.AddrPort(*a).String() }

// BareClient implements the relay's bareClient: the client's socket while
// it is bare, else -1.
func (s *session) BareClient() int { return int(s.bare) }

// TakeClient implements the relay's bareClient: the relay closes the bare
// socket from then on, and the connection with c.
func (s *session) TakeClient(c io.Closer) {
	s.route.mu.Lock()
	s.bare, s.closer = -1, c
	s.route.mu.Unlock()
}

// materialize makes a net.Conn of a bare client, on a duplicate of its
// socket: a connection that failed to become one fails its first read.
func (s *session) materialize() {
	if a := s.acceptor; a != nil {
		// Whatever serves the client now may block: another goroutine
		// accepts meanwhile.
		s.acceptor = nil
		a.handOn()
	}
	r := s.route
	r.mu.Lock()
	defer r.mu.Unlock()
	f := os.NewFile(uintptr(s.bare), "client")
	c, err := net.FileConn(f)
	f.Close()
	s.bare = -1
	if err != nil {
		c = &brokenConn{err: err, peer: &s.peer}
	}
	s.client = c
}

// brokenConn is a bare client that could not become a net.Conn.
type brokenConn struct {
	err  error
	peer net.Addr
}

func (c *brokenConn) Read([]byte) (int, error)         { return 0, c.err }
func (c *brokenConn) Write([]byte) (int, error)        { return 0, c.err }
func (c *brokenConn) Close() error                     { return nil }
func (c *brokenConn) LocalAddr() net.Addr              { return c.peer }
func (c *brokenConn) RemoteAddr() net.Addr             { return c.peer }
func (c *brokenConn) SetDeadline(time.Time) error      { return c.err }
func (c *brokenConn) SetReadDeadline(time.Time) error  { return c.err }
func (c *brokenConn) SetWriteDeadline(time.Time) error { return c.err }
