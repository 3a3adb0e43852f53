package behavior

import (
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

var zero = 0.0

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "delay",
		Doc: "Adds latency. With before = true (the default) it waits before the backend " +
			"is called: on a tcp route before the backend is dialed, on protocol-aware " +
			"routes before the request is forwarded. With before = false the answer is " +
			"held instead: the first bytes back to the client on tcp, the response on " +
			"protocol-aware routes. jitter spreads each wait uniformly over " +
			"sleep ± jitter (never below zero).",
		Options: chaos.Options{
			{Name: "sleep", Kind: chaos.Duration, Default: time.Second, Min: &zero, Max: chaos.Range(chaos.MaxDuration.Seconds()),
				Doc: "how long to wait (a duration such as \"500ms\", or seconds)"},
			{Name: "before", Kind: chaos.Bool, Default: true,
				Doc: "wait before the request reaches the backend (true) or before the answer reaches the client (false)"},
			{Name: "jitter", Kind: chaos.Duration, Default: time.Duration(0), Min: &zero, Max: chaos.Range(chaos.MaxDuration.Seconds()),
				Doc: "random spread added to or taken from sleep on each draw"},
		},
		Example: "behavior \"delay\" {\n  percent = 20\n  sleep   = \"500ms\"\n  jitter  = \"100ms\"\n  before  = true\n}",
		New: func(v chaos.Values) (chaos.Behavior, error) {
			return delay{sleep: v.Duration("sleep"), jitter: v.Duration("jitter"), before: v.Bool("before")}, nil
		},
	})
}

type delay struct {
	sleep, jitter time.Duration
	before        bool
}

func (d delay) Effect(u *chaos.Unit) chaos.Effect {
	wait := d.sleep
	if d.jitter > 0 {
		wait += time.Duration(u.Rand().Int64N(int64(2*d.jitter)+1)) - d.jitter
		wait = max(wait, 0)
	}
	if d.before {
		return chaos.Effect{Delay: wait}
	}
	return chaos.Effect{ResponseDelay: wait}
}
