package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// OrdinaryEnd reports the ends of a connection that are events in a chaos
// proxy, not failures: the end of a stream, closes, resets, broken pipes,
// a filter that closes on purpose, a route that stops. Every protocol
// decides with it what its Serve reports.
func OrdinaryEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, chaos.ErrClose) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.ErrClosedPipe)
}

// Counter is a writer that reports what goes through it as relayed in one
// direction: what a filter writes, or a protocol's buffered output.
type Counter struct {
	W      io.Writer
	Events chaos.Events
	Dir    chaos.Direction
	// Before, when set, runs before each write: a protocol hands over there
	// what must be known before the bytes reach the peer.
	Before func()
	failed atomic.Bool
}

func (c *Counter) Write(p []byte) (int, error) {
	if c.Before != nil {
		c.Before()
	}
	n, err := c.W.Write(p)
	if n > 0 {
		c.Events.Relayed(c.Dir, int64(n))
	}
	if err != nil {
		c.failed.Store(true)
	}
	return n, err
}

// Failed reports whether a write failed: the peer stopped reading.
func (c *Counter) Failed() bool { return c.failed.Load() }

// ErrNotReady is what ReadReady returns when nothing has arrived yet.
var ErrNotReady = errors.New("nothing to read yet")

// ReadReady reads into p what fd has already received, for the callback of
// a syscall.RawConn's Read (which holds the descriptor): a read that never
// waits and costs the one read(2) a blocking read would make. It returns
// io.EOF at the end of the stream and ErrNotReady when nothing has come:
// the callback then returns false, and the goroutine parks in the poller
// (protocols hand their buffers back first, so that a silent connection
// holds none).
func ReadReady(fd uintptr, p []byte) (int, error) {
	n, e := readNow(fd, p)
	switch e {
	case 0:
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	case unix.EAGAIN:
		return 0, ErrNotReady
	}
	return 0, os.NewSyscallError("read", e)
}
