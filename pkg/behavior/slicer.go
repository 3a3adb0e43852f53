package behavior

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "slicer",
		Doc: "Cuts the data into small pieces written one by one, optionally with delay " +
			"between them, so peers see short reads and TCP segments: the test for parsers " +
			"that assume a message arrives in one read. Piece sizes are drawn between " +
			"average_size - size_variation and average_size + size_variation. On a tcp " +
			"route, where the unit is the connection, the whole stream is sliced. On " +
			"protocol-aware routes, where the unit is one request, the drawn request " +
			"(to_backend) and its response (to_client) are sliced.",
		Options: chaos.Options{
			{Name: "average_size", Kind: chaos.Int, Default: int64(64), Min: minOf(1), Max: minOf(bufSize),
				Doc: "average size of a piece, in bytes"},
			{Name: "size_variation", Kind: chaos.Int, Default: int64(0), Min: minOf(0), Max: minOf(bufSize),
				Doc: "how far a piece's size may stray from average_size, in bytes; less than average_size"},
			{Name: "delay", Kind: chaos.Duration, Default: time.Duration(0), Min: minOf(0), Max: chaos.Range(chaos.MaxDuration.Seconds()),
				Doc: "pause between two pieces of the same chunk (a duration such as \"10ms\", or seconds)"},
			directionOption("which data is sliced: to_client (the answers), to_backend (the requests) or both"),
		},
		Example: `behavior "slicer" {
  percent        = 100
  average_size   = 16
  size_variation = 8
  delay          = "5ms"
  direction      = "both"
}`,
		New: newSlicer,
	})
}

func newSlicer(v chaos.Values) (chaos.Behavior, error) {
	d, err := chaos.ParseDirection(v.String("direction"))
	if err != nil {
		return nil, err
	}
	s := &slicer{
		dir:   d,
		avg:   v.Int("average_size"),
		vary:  v.Int("size_variation"),
		delay: v.Duration("delay"),
	}
	if s.vary < 0 || s.vary >= s.avg {
		return nil, fmt.Errorf("option \"size_variation\": %d must be at least 0 and less than average_size (%d)", s.vary, s.avg)
	}
	return s, nil
}

type slicer struct {
	dir       chaos.Direction
	avg, vary int64
	delay     time.Duration
}

func (s *slicer) Effect(u *chaos.Unit) chaos.Effect {
	return withFilters(s.dir, func() chaos.Filter {
		return &slicerFilter{cfg: s, rnd: filterRand(u)}
	})
}

// slicerFilter relays one direction in pieces; it is used once.
type slicerFilter struct {
	cfg *slicer
	rnd *rand.Rand
}

func (f *slicerFilter) Relay(ctx context.Context, dst io.Writer, src io.Reader) error {
	bp := getBuf()
	defer putBuf(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		for off := 0; off < n; {
			if off > 0 {
				if err := wait(ctx, f.cfg.delay); err != nil {
					// Cut short (the mix changed): the rest of the chunk
					// goes on whole, not lost.
					if werr := write(dst, buf[off:n]); werr != nil {
						return werr
					}
					return err
				}
			}
			size := f.cfg.avg
			if f.cfg.vary > 0 {
				size += f.rnd.Int64N(2*f.cfg.vary+1) - f.cfg.vary
			}
			end := off + int(min(size, int64(n-off)))
			if err := write(dst, buf[off:end]); err != nil {
				return err
			}
			off = end
		}
		if err != nil {
			return endOf(err)
		}
	}
}
