package httpproto

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

// TestConformance: for each fault and option, net/http's client side,
// getting /hello from a Go server through the route, sees what the table
// says.
func TestConformance(t *testing.T) {
	b := startGoBackend(t)
	proto, _, err := chaos.NewProtocol("http", nil)
	if err != nil {
		t.Fatal(err)
	}
	protocoltest.Conform(t, protocoltest.Client{Protocol: proto, Backend: b.Addr(),
		Exchange: func(c net.Conn) (protocoltest.Answer, error) {
			req, _ := http.NewRequest("GET", "http://"+b.Addr()+"/hello", nil)
			if err := req.Write(c); err != nil {
				return 0, err
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), req)
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			if _, err := io.ReadAll(resp.Body); err != nil {
				return 0, err
			}
			if resp.StatusCode >= 500 {
				return protocoltest.ErrorReply, nil
			}
			return protocoltest.Answered, nil
		}})
}
