package behavior

import (
	"context"
	"io"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "bandwidth",
		Doc: "Limits throughput to rate bytes per second in each chosen direction, like a " +
			"slow link. Only what can be sent next is read, so a fast sender is held back by " +
			"TCP flow control instead of filling memory. A rate of 0 lets no data through at " +
			"all while the connection stays open. On a tcp route, where the unit is the " +
			"connection, the whole stream is limited. On protocol-aware routes, where the " +
			"unit is one request, the drawn request (to_backend) and its response " +
			"(to_client) are limited.",
		Options: chaos.Options{
			{Name: "rate", Kind: chaos.Int, Default: int64(1 << 20), Min: minOf(0), Max: chaos.Range(chaos.MaxInt),
				Doc: "bytes per second; 0 stops all data"},
			directionOption("which data is limited: to_client (the answers), to_backend (the requests) or both, each at rate"),
		},
		Example: `behavior "bandwidth" {
  percent   = 100
  rate      = 1048576
  direction = "to_client"
}`,
		New: func(v chaos.Values) (chaos.Behavior, error) {
			d, err := chaos.ParseDirection(v.String("direction"))
			if err != nil {
				return nil, err
			}
			// The filter keeps no state between calls, so one serves every draw.
			f := bandwidthFilter{rate: v.Int("rate")}
			return fixed{withFilters(d, func() chaos.Filter { return f })}, nil
		},
	})
}

// bandwidthFilter paces a stream: after each chunk it waits the time that
// chunk takes at rate before reading the next, so the average never exceeds
// rate and at most one chunk is held.
type bandwidthFilter struct{ rate int64 }

// burst is the longest stretch of traffic one write may carry; it keeps
// slow rates smooth instead of one 32 KiB burst per many seconds.
const burst = 100 * time.Millisecond

func (f bandwidthFilter) Relay(ctx context.Context, dst io.Writer, src io.Reader) error {
	if f.rate <= 0 {
		// Reading nothing keeps the sender blocked by TCP flow control,
		// which is what a dead link looks like.
		<-ctx.Done()
		return ctx.Err()
	}
	bp := getBuf()
	defer putBuf(bp)
	chunk := min(max(f.rate/int64(time.Second/burst), 1), bufSize)
	buf := (*bp)[:chunk]
	var next time.Time // when the bytes sent so far will have taken their time at rate
	for {
		if d := time.Until(next); d > 0 {
			if err := wait(ctx, d); err != nil {
				return err
			}
		}
		n, err := src.Read(buf)
		if n > 0 {
			// Idle time earns at most one burst of credit, like a token
			// bucket: a link does not save up capacity, yet a wait that
			// ended late does not slow the average down.
			next = later(next, time.Now().Add(-burst)).Add(time.Duration(int64(n) * int64(time.Second) / f.rate))
			if err := write(dst, buf[:n]); err != nil {
				return err
			}
		}
		if err != nil {
			return endOf(err)
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
