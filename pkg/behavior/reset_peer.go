package behavior

import (
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "reset_peer",
		Doc: "Resets the connection: after timeout the client's connection is closed with a " +
			"TCP RST instead of a FIN, so the client sees \"connection reset by peer\". Until " +
			"then traffic is relayed as usual. On a tcp route, where the unit is the " +
			"connection, timeout counts from the start of the connection, and 0 resets at " +
			"once, before the backend is dialed. On protocol-aware routes, where the unit is " +
			"one request, the connection that carries the drawn request is reset timeout " +
			"after the request arrives.",
		Options: chaos.Options{
			{Name: "timeout", Kind: chaos.Duration, Default: time.Duration(0), Min: minOf(0), Max: chaos.Range(chaos.MaxDuration.Seconds()),
				Doc: "when the reset strikes (a duration such as \"2s\", or seconds); 0 is at once"},
		},
		Example: `behavior "reset_peer" {
  percent = 5
  timeout = "2s"
}`,
		New: func(v chaos.Values) (chaos.Behavior, error) {
			return fixed{chaos.Effect{Fault: chaos.FaultReset, After: v.Duration("timeout")}}, nil
		},
	})
}
