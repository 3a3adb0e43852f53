package behavior

import (
	"slices"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "transient",
		Doc: "Fails for a while, then recovers: after the warmup draws it acts as error for " +
			"the next agitate draws, then lets every draw through untouched. On a tcp route " +
			"the unit is the connection, so the first agitate connections get error's " +
			"random-bytes answer; on protocol-aware routes the unit is one request, so the " +
			"first agitate requests get the protocol's error reply. It takes all of error's " +
			"options, and its count starts again whenever the route's mix is set.",
		Options: slices.Concat(chaos.Options{
			{Name: "agitate", Kind: chaos.Int, Default: int64(1), Min: minOf(0), Max: chaos.Range(chaos.MaxInt),
				Doc: "number of draws that fail before the behavior recovers"},
		}, errorOptions),
		Example: `behavior "transient" {
  percent = 100
  agitate = 3
  status  = [503]
}`,
		New: func(v chaos.Values) (chaos.Behavior, error) {
			return newFailing(v, v.Int("agitate"))
		},
	})
}
