package behavior

import (
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "tls_handshake_delay",
		Doc: "Holds the TLS handshake of a route that terminates TLS: the client's hello waits " +
			"delay before the handshake goes on, as with an overloaded TLS terminator. Drawn once " +
			"per connection, when it is accepted; the protocol's own draws count it as dummy.",
		Options: chaos.Options{
			{Name: "delay", Kind: chaos.Duration, Default: time.Second, Min: minOf(0), Max: chaos.Range(chaos.MaxDuration.Seconds()),
				Doc: "how long the handshake is held (a duration such as \"2s\", or seconds)"},
		},
		Example: "behavior \"tls_handshake_delay\" {\n  percent = 10\n  delay   = \"3s\"\n}",
		New: func(v chaos.Values) (chaos.Behavior, error) {
			return fixed{chaos.Effect{Handshake: chaos.Handshake{Delay: v.Duration("delay")}}}, nil
		},
		Handshake: true,
	})
}
