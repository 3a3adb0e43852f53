package behavior

import (
	"context"
	"io"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "limit_data",
		Doc: "Closes the connection once bytes bytes have gone through in the chosen " +
			"direction, like a link that dies in the middle of a transfer: exactly bytes " +
			"bytes are relayed, the rest never is. 0 closes the connection before any byte " +
			"moves. On a tcp route, where the unit is the connection, the count covers the " +
			"whole stream. On protocol-aware routes, where the unit is one request, it " +
			"covers the drawn request (to_backend) or its response (to_client), so a large " +
			"response is cut short.",
		Options: chaos.Options{
			{Name: "bytes", Kind: chaos.Int, Default: int64(0), Min: minOf(0), Max: chaos.Range(chaos.MaxInt),
				Doc: "how many bytes are relayed before the connection is closed"},
			directionOption("which data is counted: to_client (the answers), to_backend (the requests) or both, each on its own"),
		},
		Example: `behavior "limit_data" {
  percent   = 10
  bytes     = 4096
  direction = "to_client"
}`,
		New: func(v chaos.Values) (chaos.Behavior, error) {
			d, err := chaos.ParseDirection(v.String("direction"))
			if err != nil {
				return nil, err
			}
			// The filter keeps no state between calls, so one serves every draw.
			f := limitFilter{limit: v.Int("bytes")}
			return fixed{withFilters(d, func() chaos.Filter { return f })}, nil
		},
	})
}

// limitFilter relays up to limit bytes, then ends the connection.
type limitFilter struct{ limit int64 }

func (f limitFilter) Relay(_ context.Context, dst io.Writer, src io.Reader) error {
	if f.limit <= 0 {
		return chaos.ErrClose
	}
	bp := getBuf()
	defer putBuf(bp)
	// The limit is enforced on reads, so no byte past it leaves src; and
	// between two *net.TCPConn an io.LimitedReader still splices.
	lr := io.LimitedReader{R: src, N: f.limit}
	if err := copyRest(dst, &lr, *bp); err != nil {
		return err
	}
	if lr.N == 0 {
		return chaos.ErrClose
	}
	return nil
}
