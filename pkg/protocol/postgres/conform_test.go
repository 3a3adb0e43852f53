package postgres

import (
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

// TestConformance: for each fault and option, a client that connects to a
// real PostgreSQL through the route and runs "select 1" sees what the table
// says. Both its StartupMessage and its Query draw the row's effect.
func TestConformance(t *testing.T) {
	pg := testenv.Postgres(t)
	p, err := New(tlsDisable, DefaultErrorCode, "")
	if err != nil {
		t.Fatal(err)
	}
	protocoltest.Conform(t, protocoltest.Client{Protocol: p, Backend: pg.Addr,
		Exchange: func(c net.Conn) (protocoltest.Answer, error) {
			fe := pgproto3.NewFrontend(c, c)
			fe.Send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
				Parameters: map[string]string{"user": "postgres", "database": "postgres"}})
			if err := fe.Flush(); err != nil {
				return 0, err
			}
			query := false
			for {
				m, err := fe.Receive()
				if err != nil {
					return 0, err
				}
				switch m.(type) {
				case *pgproto3.ErrorResponse:
					return protocoltest.ErrorReply, nil
				case *pgproto3.ReadyForQuery:
					if query {
						return protocoltest.Answered, nil
					}
					query = true
					fe.Send(&pgproto3.Query{String: "select 1"})
					if err := fe.Flush(); err != nil {
						return 0, err
					}
				case *pgproto3.AuthenticationCleartextPassword, *pgproto3.AuthenticationSASL, *pgproto3.AuthenticationMD5Password:
					return 0, io.ErrUnexpectedEOF // the test server trusts
				}
			}
		}})
}
