package behavior

import (
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/tlsroute"
)

func init() {
	chaos.RegisterBehavior(chaos.BehaviorSpec{
		Name: "tls_bad_cert",
		Doc: "Serves a faulty certificate in the TLS handshake of a route that terminates TLS, " +
			"so that the client's verification is put to the test: expired, not_yet_valid, " +
			"wrong_host (made for " + tlsroute.WrongHost + ") or self_signed. The certificate is " +
			"made on first use from the route's CA (the generated one, or the tls block's ca_cert), " +
			"for the names the route serves, so that a client that trusts that CA fails on the " +
			"very fault. Drawn once per connection, when it is accepted; the protocol's own " +
			"draws count it as dummy.",
		Options: chaos.Options{
			{Name: "cert", Kind: chaos.String, Default: "expired", Choices: tlsroute.BadCerts,
				Doc: "which faulty certificate is served"},
		},
		Example: "behavior \"tls_bad_cert\" {\n  percent = 5\n  cert    = \"wrong_host\"\n}",
		New: func(v chaos.Values) (chaos.Behavior, error) {
			return fixed{chaos.Effect{Handshake: chaos.Handshake{Cert: v.String("cert")}}}, nil
		},
		Handshake: true,
	})
}
