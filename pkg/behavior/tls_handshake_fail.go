package behavior

import (
	"fmt"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/tlsroute"
)

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "tls_handshake_fail",
		Doc: "Fails the TLS handshake of a route that terminates TLS: the client's hello is " +
			"answered with the fatal alert chosen, and the connection closed, so that the client " +
			"reports that alert (curl: \"tlsv1 alert unknown ca\", Go: \"remote error: tls: unknown " +
			"certificate authority\"). Drawn once per connection, when it is accepted; the " +
			"protocol's own draws count it as dummy.",
		Options: chaos.Options{
			{Name: "alert", Kind: chaos.String, Default: "handshake_failure", Choices: tlsroute.AlertNames(),
				Doc: "the TLS alert sent, by its name in RFC 8446"},
		},
		Example: "behavior \"tls_handshake_fail\" {\n  percent = 5\n  alert   = \"unknown_ca\"\n}",
		New: func(v chaos.Values) (chaos.Behavior, error) {
			code, ok := tlsroute.AlertCode(v.String("alert"))
			if !ok {
				return nil, fmt.Errorf("unknown alert %q", v.String("alert"))
			}
			return fixed{chaos.Effect{Handshake: chaos.Handshake{Alert: code}}}, nil
		},
		Handshake: true,
	})
}
