package behavior

import "github.com/vaurien-go/vaurien/pkg/chaos"

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "down",
		Doc: "Makes the service look down: while it is drawn, new connections are refused " +
			"(closed as soon as they are accepted, before the backend is dialed) and counted " +
			"as refused. Connections already open are left alone. On a tcp route, where the " +
			"unit is the connection, percent is the share of new connections refused; set " +
			"it to 100 to take the route down. On protocol-aware routes, where the unit is " +
			"one request, a drawn request is not forwarded and its connection is closed, as " +
			"a backend that just went away would do.",
		Example: `behavior "down" {
  percent = 100
}`,
		New: func(chaos.Values) (chaos.Behavior, error) {
			return fixed{chaos.Effect{Fault: chaos.FaultRefuse}}, nil
		},
	})
}
