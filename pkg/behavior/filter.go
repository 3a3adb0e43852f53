package behavior

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

// bufSize is the most a filter holds at once: one read of one chunk.
const bufSize = 32 << 10

// bufPool lends each running filter its one buffer, so that connections
// reuse buffers instead of allocating one per draw.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, bufSize)
	return &b
}}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { bufPool.Put(b) }

// minOf makes the pointer an Option's Min wants.
func minOf(f float64) *float64 { return &f }

// directionOption declares the direction option shared by the stream
// behaviors.
func directionOption(doc string) chaos.Option {
	return chaos.Option{
		Name: "direction", Kind: chaos.String, Default: "to_client",
		Choices: chaos.DirectionChoices, Doc: doc,
	}
}

// filterRand gives a filter its own random source, derived from the draw's,
// so that seeded runs repeat and the two directions of a connection, which
// run concurrently, never share a *rand.Rand.
func filterRand(u *chaos.Unit) *rand.Rand {
	r := u.Rand()
	return rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))
}

// withFilters returns an effect with a filter made by mk on each direction
// in d; each direction gets its own instance.
func withFilters(d chaos.Direction, mk func() chaos.Filter) chaos.Effect {
	var e chaos.Effect
	if d.Has(chaos.ToBackend) {
		e.ToBackend = mk()
	}
	if d.Has(chaos.ToClient) {
		e.ToClient = mk()
	}
	return e
}

// wait waits d or until ctx ends, whichever comes first.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// write writes all of b, turning a silent short write into an error as
// io.Copy does.
func write(dst io.Writer, b []byte) error {
	n, err := dst.Write(b)
	if err != nil {
		return err
	}
	if n != len(b) {
		return io.ErrShortWrite
	}
	return nil
}

// endOf maps the end of src to a filter's result: EOF is a normal end.
func endOf(err error) error {
	if err == io.EOF {
		return nil
	}
	return err
}

// copyRest relays what is left of src untouched. io.CopyBuffer lets two
// *net.TCPConn splice, and otherwise reuses buf.
func copyRest(dst io.Writer, src io.Reader, buf []byte) error {
	_, err := io.CopyBuffer(dst, src, buf)
	return err
}

// fillRandom fills b with bytes from r.
func fillRandom(r *rand.Rand, b []byte) {
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, r.Uint64())
		b = b[8:]
	}
	if len(b) > 0 {
		var tail [8]byte
		binary.LittleEndian.PutUint64(tail[:], r.Uint64())
		copy(b, tail[:])
	}
}
