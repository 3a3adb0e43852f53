package behavior

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "corrupt",
		Doc: "Flips bytes: each byte in the chosen direction is replaced, with the given " +
			"probability, by a different random byte, like a faulty link or a bad disk " +
			"that no checksum catches. The stream keeps its length and timing. On a tcp " +
			"route, where the unit is the connection, the whole stream is exposed. On " +
			"protocol-aware routes, where the unit is one request, the drawn request " +
			"(to_backend) or its response (to_client) is.",
		Options: chaos.Options{
			{Name: "probability", Kind: chaos.Float, Default: 0.01, Min: minOf(0), Max: minOf(1),
				Doc: "chance that each byte is changed, from 0 to 1"},
			directionOption("which data is corrupted: to_client (the answers), to_backend (the requests) or both"),
		},
		Example: `behavior "corrupt" {
  percent     = 5
  probability = 0.001
  direction   = "to_client"
}`,
		New: func(v chaos.Values) (chaos.Behavior, error) {
			d, err := chaos.ParseDirection(v.String("direction"))
			if err != nil {
				return nil, err
			}
			p := v.Float("probability")
			if !(p >= 0 && p <= 1) {
				return nil, fmt.Errorf("option \"probability\": %v is outside 0..1", p)
			}
			if p == 0 {
				// Nothing to flip: leave the stream to the zero-copy path.
				return fixed{}, nil
			}
			return &corrupt{dir: d, p: p, logq: math.Log1p(-p)}, nil
		},
	})
}

type corrupt struct {
	dir  chaos.Direction
	p    float64
	logq float64 // log(1-p), for drawing gaps
}

func (c *corrupt) Effect(u *chaos.Unit) chaos.Effect {
	return withFilters(c.dir, func() chaos.Filter {
		return &corruptFilter{cfg: c, rnd: filterRand(u)}
	})
}

// corruptFilter relays one direction with bytes flipped; it is used once.
type corruptFilter struct {
	cfg *corrupt
	rnd *rand.Rand
}

// maxGap stands for "no flip in sight" when p is tiny.
const maxGap = math.MaxInt64 / 2

// gap draws how many bytes pass untouched before the next flip. Drawing the
// gaps (geometric with parameter p) instead of a coin per byte gives the
// same distribution at a cost per flipped byte, not per byte.
func (f *corruptFilter) gap() int64 {
	if f.cfg.p >= 1 {
		return 0
	}
	g := math.Floor(math.Log1p(-f.rnd.Float64()) / f.cfg.logq)
	if !(g < maxGap) {
		return maxGap
	}
	return int64(g)
}

func (f *corruptFilter) Relay(_ context.Context, dst io.Writer, src io.Reader) error {
	bp := getBuf()
	defer putBuf(bp)
	buf := *bp
	next := f.gap()
	for {
		n, err := src.Read(buf)
		if n > 0 {
			b := buf[:n]
			for next < int64(len(b)) {
				// XOR with a nonzero byte always changes the byte.
				b[next] ^= byte(1 + f.rnd.IntN(255))
				b = b[next+1:]
				next = f.gap()
			}
			next -= int64(len(b))
			if err := write(dst, buf[:n]); err != nil {
				return err
			}
		}
		if err != nil {
			return endOf(err)
		}
	}
}
