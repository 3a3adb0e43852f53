package behavior

import (
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "slow_close",
		Doc: "Holds the close: when the backend has finished its answer and closes, the close " +
			"reaches the client only after delay, so a client that waits for the end of the " +
			"stream waits that much longer. On a tcp route, where the unit is the connection, " +
			"the backend's close (FIN) is held. On protocol-aware routes, where the unit is " +
			"one request, the close that follows the drawn request's answer is held.",
		Options: chaos.Options{
			{Name: "delay", Kind: chaos.Duration, Default: time.Second, Min: minOf(0), Max: chaos.Range(chaos.MaxDuration.Seconds()),
				Doc: "how long the close is held (a duration such as \"500ms\", or seconds)"},
		},
		Example: `behavior "slow_close" {
  percent = 20
  delay   = "3s"
}`,
		New: func(v chaos.Values) (chaos.Behavior, error) {
			return fixed{chaos.Effect{CloseDelay: v.Duration("delay")}}, nil
		},
	})
}
