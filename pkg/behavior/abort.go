package behavior

import "github.com/vaurien-go/vaurien/pkg/chaos"

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "abort",
		Doc: "Lets the request reach the backend, then drops the connection before any " +
			"answer comes back, so the client cannot tell whether its request was carried " +
			"out. On a tcp route, where the unit is the connection, the client's first bytes " +
			"are forwarded and the connection is torn down. On protocol-aware routes, where " +
			"the unit is one request, the request is forwarded whole and the client's " +
			"connection is closed instead of receiving the response.",
		Example: `behavior "abort" {
  percent = 5
}`,
		New: func(chaos.Values) (chaos.Behavior, error) {
			return fixed{chaos.Effect{Fault: chaos.FaultAbort}}, nil
		},
	})
}
