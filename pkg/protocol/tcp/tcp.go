// Package tcp owns the raw-stream protocols: tcp, and smtp, which the
// original Vaurien served as TCP with keep-alive forced on. On these
// routes the mix is drawn once per connection and the whole connection is
// the unit a behavior acts on; a dummy connection's bulk data is spliced by
// the kernel. When the route's mix changes, open connections draw again
// and carry the new draw out from their next read (package relay).
package tcp

import (
	"context"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

func init() {
	chaos.RegisterProtocol(chaos.ProtocolSpec{
		Name: "tcp",
		Doc: "Raw TCP relay, the default. One draw per connection: the drawn behavior " +
			"acts on the connection's byte streams. Connections that draw dummy (or a " +
			"behavior with no effect) are relayed at full speed, bulk data with the " +
			"kernel's zero-copy splice. When the route's mix changes, every open " +
			"connection draws again and carries the new draw out from its next read.",
		Options: chaos.OriginalProtocolOptions(
			"the relay sizes its own buffers, and splices when it can",
			"a connection stays open until the client or the backend closes it, with TCP keep-alive probes on both sockets"),
		Example: "route \"db\" {\n  listen   = \"127.0.0.1:3307\"\n  backend  = \"127.0.0.1:3306\"\n  protocol = \"tcp\"\n}",
		New:     newStream,
	})
	chaos.RegisterProtocol(chaos.ProtocolSpec{
		Name: "smtp",
		Doc: "The original Vaurien's smtp protocol: a raw TCP relay with " +
			"keep-alive forced on, drawn once per connection like tcp, and again " +
			"at each change of the route's mix.",
		// The original forced keep_alive on for smtp and dropped the
		// setting; it is accepted the same way.
		Options: chaos.OriginalProtocolOptions(
			"the relay sizes its own buffers, and splices when it can",
			"the original forced it on for this protocol; here a connection stays open until the client or the backend closes it"),
		Example: "route \"smtp\" {\n  listen   = \"127.0.0.1:9000\"\n  backend  = \"127.0.0.1:9001\"\n  protocol = \"smtp\"\n}",
		New:     newStream,
	})
}

type stream struct{}

func newStream(chaos.Values) (chaos.Protocol, error) { return stream{}, nil }

func (stream) Serve(ctx context.Context, s chaos.Session) error {
	return relay.Serve(ctx, s)
}

// RelaysBare tells the engine that the relay takes a client accepted
// bare, without a net.Conn: its poller relays most connections as they
// are.
func (stream) RelaysBare() bool { return true }
