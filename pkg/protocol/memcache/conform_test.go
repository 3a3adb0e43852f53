package memcache

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

// TestConformance: for each fault and option, a text-protocol client
// asking a real memcached for its version through the route sees what the
// table says.
func TestConformance(t *testing.T) {
	mc := testenv.Memcached(t)
	protocoltest.Conform(t, protocoltest.Client{Protocol: New(), Backend: mc.Addr,
		Exchange: func(c net.Conn) (protocoltest.Answer, error) {
			if _, err := io.WriteString(c, "version\r\n"); err != nil {
				return 0, err
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			switch {
			case err != nil:
				return 0, err
			case strings.HasPrefix(line, "VERSION "):
				return protocoltest.Answered, nil
			case strings.HasPrefix(line, "SERVER_ERROR") || strings.HasPrefix(line, "ERROR"):
				return protocoltest.ErrorReply, nil
			}
			return 0, io.ErrUnexpectedEOF
		}})
}
