package behavior

import (
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "timeout",
		Doc: "Stops all data and closes the connection after timeout, or never when timeout " +
			"is 0 (the connection then lasts until a side leaves). On a tcp route, where the " +
			"unit is the connection, nothing is relayed either way: what each side sends is " +
			"read and dropped. On protocol-aware routes, where the unit is one request, the " +
			"drawn request gets no answer and its connection is closed after timeout.",
		Options: chaos.Options{
			{Name: "timeout", Kind: chaos.Duration, Default: time.Duration(0), Min: minOf(0), Max: chaos.Range(chaos.MaxDuration.Seconds()),
				Doc: "when the connection is closed (a duration such as \"10s\", or seconds); 0 never closes it"},
		},
		Example: `behavior "timeout" {
  percent = 10
  timeout = "10s"
}`,
		New: func(v chaos.Values) (chaos.Behavior, error) {
			return fixed{chaos.Effect{Fault: chaos.FaultTimeout, After: v.Duration("timeout")}}, nil
		},
	})
}
