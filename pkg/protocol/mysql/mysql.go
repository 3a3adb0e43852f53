package mysql

import (
	"context"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// TLS modes of the tls option.
const (
	tlsDisable     = "disable"
	tlsPassthrough = "passthrough"
)

var options = append(chaos.Options{
	{Name: "error_code", Kind: chaos.String, Default: "deadlock",
		Doc: "the error an error fault answers when its behavior names no code: a preset (deadlock 1213/40001, lock_wait_timeout 1205, too_many_connections 1040 at the handshake, read_only 1290, gone_away: the connection closes) or a MySQL error number"},
	{Name: "sqlstate", Kind: chaos.String, Default: "",
		Doc: "the SQLSTATE of error_code's ERR packet; empty takes the preset's, or HY000 for a number"},
	{Name: "error_message", Kind: chaos.String, Default: "",
		Doc: "the message of error_code's ERR packet when the behavior sets none; empty takes the preset's (the server's own text)"},
	{Name: "tls", Kind: chaos.String, Default: tlsDisable, Choices: []string{tlsDisable, tlsPassthrough},
		Doc: "disable takes CLIENT_SSL out of the server's greeting, so that clients that prefer TLS go on in plain text and their statements are framed; passthrough leaves it, and a client that asks for TLS is relayed raw (drawn for nothing)"},
}, chaos.OriginalProtocolOptions(
	"packets are framed and streamed whatever their size",
	"a client connection keeps its backend connection for as long as it lives")...)

func init() {
	chaos.RegisterProtocol(chaos.ProtocolSpec{
		Name: "mysql",
		Doc: "MySQL and MariaDB's client/server protocol. The handshake and authentication " +
			"pass through (mysql_native_password, caching_sha2_password with its full " +
			"authentication, ed25519...); then one draw per command, matched on the " +
			"statement's first keyword (SELECT, UPDATE, BEGIN...; PING, INIT_DB, STMT_PREPARE " +
			"for the commands that carry none) and its text. An error fault answers a real ERR " +
			"packet, by default a deadlock (1213, SQLSTATE 40001), after which the server's " +
			"transaction is rolled back as a real deadlock's is. Text and binary protocols, " +
			"multi-results, LOAD DATA LOCAL and packets over 16 MiB are framed. A route with tls and " +
			"backend_tls keeps CLIENT_SSL in the greeting and speaks TLS with the client and the server.",
		Options: options,
		Example: "route \"db\" {\n  listen   = \"127.0.0.1:3307\"\n  backend  = \"127.0.0.1:3306\"\n" +
			"  protocol = \"mysql\"\n\n  behavior \"error\" {\n    percent = 10\n    match {\n      command = [\"UPDATE\"]\n    }\n  }\n}",
		New: func(v chaos.Values) (chaos.Protocol, error) {
			return New(v.String("error_code"), v.String("sqlstate"), v.String("error_message"), v.String("tls"))
		},
		Commands:       commands(),
		OtherCommand:   other,
		InnerTLS:       true,
		TLSBoth:        "the client's packets are numbered from the server's greeting, so TLS on one side only would renumber the whole authentication",
		CheckErrorCode: checkCode,
	})
}

// protocol is the mysql chaos.Protocol.
type protocol struct {
	fail           failure // the route's error
	passthroughTLS bool
}

var _ chaos.Protocol = (*protocol)(nil)

// New returns the mysql protocol answering error faults with errorCode (a
// preset or a MySQL error number), sqlstate and message ("" for the
// preset's), and relaying TLS raw when tls is "passthrough".
func New(errorCode, sqlstate, message, tls string) (chaos.Protocol, error) {
	f, err := newFailure(errorCode, sqlstate, message)
	if err != nil {
		return nil, err
	}
	return &protocol{fail: f, passthroughTLS: tls == tlsPassthrough}, nil
}

// Serve frames one client connection; see the package documentation.
func (p *protocol) Serve(ctx context.Context, s chaos.Session) error {
	return kit.Serve(ctx, s, &framing{p: p}, kit.Options{})
}

// failure is the error a fault answers: the behavior's code and message
// over the route's. A code that is no MySQL error (a postgres SQLSTATE,
// say) answers ER_UNKNOWN_ERROR saying so, rather than a wrong error.
func (p *protocol) failure(spec *chaos.ErrorSpec) failure {
	f := p.fail
	if spec.Code != "" && spec.Code != f.preset {
		var ok bool
		if f, ok = lookupCode(spec.Code); !ok {
			f = failure{code: 1105, state: "HY000", message: "vaurien: error code " + spec.Code + " is not a MySQL error: name a preset or an error number"}
		}
	}
	if spec.Message != "" {
		f.message = spec.Message
	}
	return f
}
