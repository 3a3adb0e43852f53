package behavior

import "github.com/vaurien-go/vaurien/pkg/chaos"

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "dummy",
		Doc: "Does nothing: traffic passes through untouched. It is what the share of a " +
			"mix that no behavior claims falls to. On a tcp route a dummy connection is " +
			"relayed at full speed: bulk data by the kernel's zero-copy splice.",
		Example: "behavior \"dummy\" {\n  percent = 100\n}",
		New:     func(chaos.Values) (chaos.Behavior, error) { return dummy{}, nil },
	})
}

type dummy struct{}

func (dummy) Effect(*chaos.Unit) chaos.Effect { return chaos.Effect{} }
