package proxy_test

import (
	"net"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// rawEcho is an echo backend on raw blocking sockets, one thread per
// connection: it allocates nothing on the Go heap, so that what a benchmark
// counts in this process is the proxy's.
func rawEcho(b testing.TB) *unix.SockaddrInet4 {
	b.Helper()
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := unix.Bind(lfd, sa); err != nil {
		b.Fatal(err)
	}
	if err := unix.Listen(lfd, 1024); err != nil {
		b.Fatal(err)
	}
	got, err := unix.Getsockname(lfd)
	if err != nil {
		b.Fatal(err)
	}
	sa.Port = got.(*unix.SockaddrInet4).Port
	var wg sync.WaitGroup
	b.Cleanup(func() {
		unix.Shutdown(lfd, unix.SHUT_RDWR)
		wg.Wait()
		unix.Close(lfd)
	})
	wg.Go(func() {
		buf := make([]byte, 4096)
		for {
			// accept4 straight from the kernel: unix.Accept allocates the
			// peer's address.
			fd, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0, unix.SOCK_CLOEXEC, 0, 0)
			if e != 0 {
				if e == unix.EINTR || e == unix.ECONNABORTED {
					continue
				}
				return
			}
			for {
				n, err := unix.Read(int(fd), buf)
				if n <= 0 || err != nil {
					break
				}
				if _, err := unix.Write(int(fd), buf[:n]); err != nil {
					break
				}
			}
			unix.Close(int(fd))
		}
	})
	return sa
}

// churnOnce is one short-lived client on a raw socket: connect, send a
// byte, read its echo, close.
func churnOnce(b testing.TB, to *unix.SockaddrInet4, buf []byte) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, to); err != nil {
		b.Fatal(err)
	}
	if _, err := unix.Write(fd, buf[:1]); err != nil {
		b.Fatal(err)
	}
	if n, err := unix.Read(fd, buf); n != 1 || err != nil {
		b.Fatalf("echo through the proxy: %d bytes, %v", n, err)
	}
}

func sockaddr(b testing.TB, addr string) *unix.SockaddrInet4 {
	a, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		b.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: a.Port}
	copy(sa.Addr[:], a.IP.To4())
	return sa
}

// BenchmarkConnectionChurn is what a tcp route spends on a connection that
// lives for one exchange: accept, dial the backend, relay a byte each way,
// close both. Client and backend are raw sockets that allocate nothing, so
// allocs/op are the engine's per accepted-and-closed connection.
func BenchmarkConnectionChurn(b *testing.B) {
	backend := rawEcho(b)
	srv := startServer(b, tcpRoute("churn", net.JoinHostPort("127.0.0.1", itoa(backend.Port))))
	to := sockaddr(b, srv.Route("churn").Addr())
	buf := make([]byte, 64)
	churnOnce(b, to, buf) // the pools and the first goroutines
	b.ReportAllocs()
	for b.Loop() {
		churnOnce(b, to, buf)
	}
}

func itoa(n int) string {
	var b [8]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
