// Package selfloop keeps vaurien from proxying to itself. A route whose
// backend is one of the process's own listeners dials itself without end:
// every accepted connection opens another one until the process runs out
// of file descriptors. Find refuses such a backend before it is used, by
// address; the dial registry catches the loops that no check of the
// configuration shows (a name that comes to resolve to the process, a
// route reached through another route) at the first connection that
// arrives from the process's own dialer.
//
// It imports only the standard library, so that the data path can use it.
package selfloop

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// resolveTimeout bounds the name lookup of a backend whose port matches a
// listener's; a name that does not resolve in time is not a loop.
const resolveTimeout = 2 * time.Second

// Find returns the index of the first of listeners (host:port addresses
// the process listens on, or is about to) that a dial to backend
// (host:port) would reach, or -1. A listener on all interfaces is reached
// through any address of the machine. The backend's host is resolved only
// when its port is a listener's, so that most checks do no lookup.
func Find(backend string, listeners []string) int {
	host, port, ok := split(backend)
	if !ok || port == 0 {
		return -1
	}
	var ips []netip.Addr
	resolved := false
	for i, l := range listeners {
		lh, lp, ok := split(l)
		if !ok || lp != port {
			continue
		}
		if !resolved {
			ips, resolved = resolve(host), true
		}
		if reaches(ips, lh) {
			return i
		}
	}
	return -1
}

func split(addr string) (string, uint16, bool) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, false
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, false
	}
	return host, uint16(n), true
}

// resolve returns the addresses a dial to host tries: the address itself,
// or what the name resolves to. An empty host dials the local machine.
func resolve(host string) []netip.Addr {
	if host == "" {
		return []netip.Addr{netip.IPv4Unspecified()}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	return ips
}

// reaches reports whether a dial to one of ips reaches a listener bound
// to host.
func reaches(ips []netip.Addr, host string) bool {
	switch host {
	case "", "::":
		return anyLocal(ips, false)
	case "0.0.0.0":
		return anyLocal(ips, true)
	}
	for _, l := range resolve(host) {
		for _, ip := range ips {
			if ip == l || ip.IsUnspecified() && (l.IsLoopback() || local(l)) {
				return true
			}
		}
	}
	return false
}

// anyLocal reports whether one of ips is an address of this machine (the
// unspecified address dials the machine too); only IPv4 ones when v4only.
func anyLocal(ips []netip.Addr, v4only bool) bool {
	for _, ip := range ips {
		if v4only && !ip.Is4() {
			continue
		}
		if ip.IsLoopback() || ip.IsUnspecified() || local(ip) {
			return true
		}
	}
	return false
}

// local reports whether ip is assigned to one of the machine's interfaces.
func local(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if x, ok := netip.AddrFromSlice(n.IP); ok && x.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// The two ends of the process's live connections between two of its own
// addresses, as dialed and as accepted. A connection the process dials to
// itself shows up in both with the same pair. Each side records its end,
// then looks for the other: whichever comes second sees the first, so the
// loop is caught whether the accept runs before the dial returns or after.
// Both ends count: the kernel may give an outgoing connection the local
// port of another one to elsewhere, so a port alone would mistake a client
// for the process.
//
// One lock over both makes "record, then look" atomic; plain maps, unlike
// a sync.Map, allocate nothing per connection once grown.
var live = struct {
	mu               sync.Mutex
	dialed, accepted map[Pair]struct{}
}{dialed: map[Pair]struct{}{}, accepted: map[Pair]struct{}{}}

// Pair is the two ends of a connection, as the side that dialed sees
// them, in the fewest bytes that tell internal connections apart: both
// maps hold one per live connection, and a session one per socket, for as
// long as it lives, idle or not. An IPv4 pair takes both addresses; an
// IPv6 one takes one address, since it is internal only when its remote
// end is ::1 (the other address tells it apart) or both ends share one.
// The zero Pair is none.
type Pair struct {
	hi, lo uint64 // the addresses, as pairOf packs them
	ports  uint32 // local<<16 | remote
	kind   uint8  // pairV4, pairV6Loopback, pairV6Same; 0: no pair
}

const (
	pairV4 = 1 + iota
	pairV6Loopback
	pairV6Same
)

// pairOf packs the ends of a connection from local to remote when it is
// internal: over loopback, or from one of the machine's addresses to
// itself. Only those are recorded, so that the registry costs nothing for
// clients and backends elsewhere.
func pairOf(local, remote netip.AddrPort) Pair {
	if !local.IsValid() || !remote.IsValid() {
		return Pair{}
	}
	l, r := local.Addr().Unmap(), remote.Addr().Unmap()
	if !r.IsLoopback() && l != r {
		return Pair{}
	}
	p := Pair{ports: uint32(local.Port())<<16 | uint32(remote.Port())}
	switch {
	case l.Is4() && r.Is4():
		l4, r4 := l.As4(), r.As4()
		p.hi = uint64(binary.BigEndian.Uint32(l4[:]))<<32 | uint64(binary.BigEndian.Uint32(r4[:]))
		p.kind = pairV4
		return p
	case l.Is6() && r.Is6():
		p.kind = pairV6Same
		if r == netip.IPv6Loopback() {
			p.kind = pairV6Loopback
		}
		// Either way l tells the pair apart: r is ::1, or is l.
		b := l.As16()
		p.hi, p.lo = binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
		return p
	}
	return Pair{}
}

// Dialed records a backend connection the process opened, and reports
// whether the process accepted it too: the backend leads back here. Pass
// the pair to ForgetDialed once the connection is over.
func Dialed(c net.Conn) (Pair, bool) {
	return DialedAddrs(key(c.LocalAddr()), key(c.RemoteAddr()))
}

// DialedAddrs is Dialed for a connection known by its ends, from local to
// remote.
func DialedAddrs(local, remote netip.AddrPort) (Pair, bool) {
	p := pairOf(local, remote)
	if p.kind == 0 {
		return Pair{}, false
	}
	live.mu.Lock()
	defer live.mu.Unlock()
	live.dialed[p] = struct{}{}
	_, loop := live.accepted[p]
	return p, loop
}

// Accepted records a connection the process accepted, and reports whether
// the process dialed it: it is the process calling itself. Pass the pair
// to ForgetAccepted once the connection is over.
func Accepted(c net.Conn) (Pair, bool) {
	return AcceptedAddrs(key(c.RemoteAddr()), key(c.LocalAddr()))
}

// AcceptedAddrs is Accepted for a connection known by its ends, from
// remote to local.
func AcceptedAddrs(remote, local netip.AddrPort) (Pair, bool) {
	p := pairOf(remote, local)
	if p.kind == 0 {
		return Pair{}, false
	}
	live.mu.Lock()
	defer live.mu.Unlock()
	live.accepted[p] = struct{}{}
	_, loop := live.dialed[p]
	return p, loop
}

// IsZero reports whether p is no pair: a connection that is not internal.
func (p Pair) IsZero() bool { return p.kind == 0 }

// ForgetDialed drops a pair that Dialed returned.
func ForgetDialed(p Pair) {
	if p.kind != 0 {
		live.mu.Lock()
		delete(live.dialed, p)
		live.mu.Unlock()
	}
}

// ForgetAccepted drops a pair that Accepted returned.
func ForgetAccepted(p Pair) {
	if p.kind != 0 {
		live.mu.Lock()
		delete(live.accepted, p)
		live.mu.Unlock()
	}
}

func key(a net.Addr) netip.AddrPort {
	t, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	return t.AddrPort()
}
