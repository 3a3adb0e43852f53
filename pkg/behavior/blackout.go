package behavior

import "github.com/vaurien-go/vaurien/pkg/chaos"

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "blackout",
		Doc: "Closes the client's connection at once; the backend is never reached. On a tcp " +
			"route, where the unit is the connection, the client sees its new connection " +
			"closed before any byte moves. On protocol-aware routes, where the unit is one " +
			"request, the request is not forwarded and the client's connection is closed " +
			"instead of answered.",
		Example: `behavior "blackout" {
  percent = 10
}`,
		New: func(chaos.Values) (chaos.Behavior, error) {
			return fixed{chaos.Effect{Fault: chaos.FaultClose}}, nil
		},
	})
}

// fixed is a behavior whose effect never varies, so a draw costs nothing.
type fixed struct{ e chaos.Effect }

func (f fixed) Effect(*chaos.Unit) chaos.Effect { return f.e }
