package behavior

import "github.com/vaurien-go/vaurien/pkg/chaos"

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "hang",
		Doc: "Reads what the client sends and never answers, keeping the connection open " +
			"until the client gives up or the route shuts down. On a tcp route, where the " +
			"unit is the connection, the backend is never dialed and everything the client " +
			"sends is read and dropped. On protocol-aware routes, where the unit is one " +
			"request, the request is not forwarded and its answer never comes.",
		Example: `behavior "hang" {
  percent = 5
}`,
		New: func(chaos.Values) (chaos.Behavior, error) {
			return fixed{chaos.Effect{Fault: chaos.FaultHang}}, nil
		},
	})
}
