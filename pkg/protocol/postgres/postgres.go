// Package postgres owns vaurien's postgres protocol: PostgreSQL's
// frontend/backend protocol 3.0, framed on the protocol kit, with faults
// drawn per statement and answered as the server answers.
//
// # Opening
//
// An SSLRequest or GSSENCRequest is answered 'N' by the proxy (tls =
// "disable", the default), so the client goes on in plain text, as clients
// with sslmode=prefer do; with tls = "passthrough" it is relayed to the
// server, and when the server answers 'S' (or 'G') the connection is
// relayed raw from there. A route with a tls block answers an SSLRequest
// 'S' and terminates TLS itself (sslmode=require and verify-full work
// against its certificate), and a route with a backend_tls block sends
// the server an SSLRequest before anything else and speaks TLS to it; with
// either block, the tls option's passthrough does not apply. A CancelRequest is relayed raw: it is all its
// connection carries, and its key came from the server through the proxy.
// The StartupMessage is a unit of its own, with Command STARTUP and the
// database and user it names; its answer, and every password, SASL or GSS
// message of the client and the server's answers, are relayed untouched up
// to the first ReadyForQuery, so trust, password, md5 and SCRAM-SHA-256
// all work. A replication session (replication in the StartupMessage) is
// relayed raw once its authentication begins.
//
// # Framing
//
// A unit is one simple Query, or one extended batch: every message up to
// and including Sync (Parse, Bind, Describe, Execute, Close...), also in a
// pipeline of many batches. Its answer ends at ReadyForQuery. Command is
// the first keyword of the statement, upper case, from the keywords of
// PostgreSQL's commands (OTHER for anything else, EMPTY for an empty query
// or a lone Sync, FUNCTION for a FunctionCall); SQL is its text, up to the
// first 16 KiB; Database and User come from the StartupMessage. A batch
// that binds or executes a prepared statement is drawn with that
// statement's keyword and text. Notifications (LISTEN/NOTIFY), notices and
// parameter changes are relayed whenever they come. COPY FROM STDIN's data
// (CopyData up to CopyDone or CopyFail) is relayed as it comes, with no
// draw; COPY TO STDOUT's is part of its answer; both are streamed. A Flush
// in the middle of a batch (libpq's PQsendFlushRequest, pgx's
// SendFlushRequest) means the client waits for answers before it ends the
// batch: the connection is relayed raw from there. A message the proxy
// cannot frame is left to the server, relayed raw.
//
// # Faults
//
//   - error: the client gets an ErrorResponse with the behavior's code or
//     the route's error_code (a preset, or any SQLSTATE), the behavior's
//     message or the preset's, then ReadyForQuery. The request is not
//     forwarded; the server gets in its place a statement that fails
//     (DO ... RAISE EXCEPTION 'vaurien injected fault'), so that a
//     transaction the client is told failed fails on the server too, and
//     ReadyForQuery carries the server's own status: 'E' inside a
//     transaction, whose ROLLBACK (or COMMIT, which the server turns into
//     one) then reaches the server; outside one nothing ran. With inject,
//     the request is forwarded and runs, then the failing statement, and
//     the client gets the same error in place of the answer: a statement
//     that ran outside a transaction stays done although the client was
//     told it failed (as when a commit's answer is lost). A FATAL code
//     (admin_shutdown, too_many_connections, classes 08 and 28) ends the
//     session after the error, both connections closed, like a failover:
//     the server rolls back what was open. On the StartupMessage the error
//     is always FATAL, and a statement's failure there becomes
//     too_many_connections: the server is not asked.
//   - delay, hang, timeout, abort, blackout, reset_peer, warmup/transient,
//     filters and slow_close act on one unit, as on every protocol route
//     (package kit).
package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// TLS modes.
const (
	tlsDisable     = "disable"
	tlsPassthrough = "passthrough"
)

var options = chaos.Options{
	{Name: "tls", Kind: chaos.String, Default: tlsDisable, Choices: []string{tlsDisable, tlsPassthrough},
		Doc: "what an SSLRequest or GSSENCRequest gets: disable answers 'N', so the client goes on in plain text (sslmode=prefer does); passthrough relays the server's answer and, when it accepts, relays the encrypted connection raw"},
	{Name: "error_code", Kind: chaos.String, Default: DefaultErrorCode,
		Doc: "the error an error fault answers when its behavior sets no code: a preset (" + strings.Join(presetNames(), ", ") + ") or a SQLSTATE such as 40P01"},
	{Name: "error_message", Kind: chaos.String, Default: "",
		Doc: "the error's message when its behavior sets none; empty takes the preset's, the server's own words"},
}

func init() {
	chaos.RegisterProtocol(chaos.ProtocolSpec{
		Name: "postgres",
		Doc: "PostgreSQL's protocol 3.0. Startup and authentication pass through (trust, password, md5, " +
			"SCRAM-SHA-256); then one draw per statement: a simple Query, or an extended batch up to Sync, " +
			"pipelines included. Behaviors can be limited to statement keywords (command = [\"UPDATE\"]), " +
			"SQL text globs (sql), and the database and user of the session. An error fault answers a real " +
			"ErrorResponse (serialization_failure 40001 unless set) and makes the transaction fail on the " +
			"server too, so client and server agree; presets name deadlock, serialization, admin_shutdown " +
			"(FATAL, then the session closes), too_many_connections (at startup), read_only, query_canceled " +
			"and lock_wait_timeout. COPY, LISTEN/NOTIFY and cancel requests work; replication sessions " +
			"and TLS (passthrough) are relayed raw. A route with a tls block answers SSLRequest 'S' and terminates TLS; " +
			"with a backend_tls block it speaks TLS to the server.",
		Options: options,
		Example: "route \"db\" {\n  listen   = \"127.0.0.1:6432\"\n  backend  = \"127.0.0.1:5432\"\n  protocol = \"postgres\"\n" +
			"  protocol_options {\n    error_code = \"deadlock\"\n  }\n\n" +
			"  behavior \"error\" {\n    percent = 10\n    match {\n      command = [\"UPDATE\", \"DELETE\"]\n    }\n  }\n}",
		New: func(v chaos.Values) (chaos.Protocol, error) {
			return New(v.String("tls"), v.String("error_code"), v.String("error_message"))
		},
		Commands:     commands(),
		OtherCommand: CommandOther,
		InnerTLS:     true,
		CheckErrorCode: func(code string) error {
			_, err := resolve(code)
			return err
		},
	})
}

// protocol is the postgres chaos.Protocol: the route's options.
type protocol struct {
	passthrough bool
	failure     failure // error_code and error_message resolved
}

var _ chaos.Protocol = (*protocol)(nil)

// New returns the postgres protocol with a TLS mode, the code of its
// errors (a preset or a SQLSTATE) and their message ("" for the preset's).
func New(tls, code, message string) (chaos.Protocol, error) {
	if tls != tlsDisable && tls != tlsPassthrough {
		return nil, fmt.Errorf("option \"tls\": %q is not %q or %q", tls, tlsDisable, tlsPassthrough)
	}
	fl, err := resolve(code)
	if err != nil {
		return nil, fmt.Errorf("option \"error_code\": %w", err)
	}
	if strings.ContainsRune(message, 0) {
		return nil, fmt.Errorf("option \"error_message\": a message cannot hold a NUL byte")
	}
	if message != "" {
		fl.message, fl.literal = message, true
	}
	return &protocol{passthrough: tls == tlsPassthrough, failure: fl}, nil
}

// Serve frames one client connection on the kit; see the package
// documentation.
func (p *protocol) Serve(ctx context.Context, s chaos.Session) error {
	return kit.Serve(ctx, s, &framing{p: p}, kit.Options{})
}
