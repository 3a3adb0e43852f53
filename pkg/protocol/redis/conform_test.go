package redis

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

// TestConformance: for each fault and option, a RESP client sending PING
// to a real redis-server through the route sees what the table says.
func TestConformance(t *testing.T) {
	srv := testenv.Redis(t)
	protocoltest.Conform(t, protocoltest.Client{Protocol: New("", 0), Backend: srv.Addr,
		Exchange: func(c net.Conn) (protocoltest.Answer, error) {
			if _, err := io.WriteString(c, "*1\r\n$4\r\nPING\r\n"); err != nil {
				return 0, err
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			switch {
			case err != nil:
				return 0, err
			case line == "+PONG\r\n":
				return protocoltest.Answered, nil
			case strings.HasPrefix(line, "-"):
				return protocoltest.ErrorReply, nil
			}
			return 0, io.ErrUnexpectedEOF
		}})
}
