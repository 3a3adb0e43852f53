package probe

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	Register(Spec{
		Name: "tcp",
		Doc:  "Opens a TCP connection and closes it. It fails when the connection is refused or not established within the timeout.",
		Options: chaos.Options{
			{Name: "address", Kind: chaos.String, Default: "", Doc: "The host:port to connect to; required."},
			timeoutOption(time.Second),
		},
		Example: `probe "db-port" {
  tcp {
    address = "127.0.0.1:5432"
  }
}`,
		New: func(v chaos.Values) (Prober, error) {
			addr, err := hostPort(v.String("address"))
			if err != nil {
				return nil, err
			}
			return &tcpProbe{addr: addr, dialer: net.Dialer{Timeout: v.Duration("timeout")}}, nil
		},
	})
}

type tcpProbe struct {
	addr   string
	dialer net.Dialer
}

func (p *tcpProbe) Probe(ctx context.Context) error {
	c, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// hostPort checks the address option of the tcp and redis kinds.
func hostPort(addr string) (string, error) {
	if addr == "" {
		return "", errors.New(`the address option is required, as in address = "127.0.0.1:6379"`)
	}
	if host, port, err := net.SplitHostPort(addr); err != nil || host == "" || port == "" {
		return "", errors.New("address " + `"` + addr + `"` + " is not host:port")
	}
	return addr, nil
}
