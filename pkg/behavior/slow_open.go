package behavior

import (
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "slow_open",
		Doc: "Makes the backend slow to accept: the exchange starts only after delay. On a " +
			"tcp route, where the unit is the connection, the backend is dialed after delay, " +
			"so the client's first bytes wait that long before they move. On protocol-aware " +
			"routes, where the unit is one request, the drawn request waits delay before it " +
			"is forwarded.",
		Options: chaos.Options{
			{Name: "delay", Kind: chaos.Duration, Default: time.Second, Min: minOf(0), Max: chaos.Range(chaos.MaxDuration.Seconds()),
				Doc: "how long the opening is held (a duration such as \"2s\", or seconds)"},
		},
		Example: `behavior "slow_open" {
  percent = 50
  delay   = "2s"
}`,
		New: func(v chaos.Values) (chaos.Behavior, error) {
			return fixed{chaos.Effect{Delay: v.Duration("delay")}}, nil
		},
	})
}
