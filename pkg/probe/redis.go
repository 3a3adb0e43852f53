package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	Register(Spec{
		Name: "redis",
		Doc: "Opens a connection, sends one Redis command (PING by default) and reads the reply. " +
			"It fails on a connection error, a timeout or an error reply; a nil reply is a success.",
		Options: chaos.Options{
			{Name: "address", Kind: chaos.String, Default: "", Doc: "The host:port of the Redis server (or of a vaurien route in front of it); required."},
			{Name: "command", Kind: chaos.Strings, Default: []string{"PING"}, Doc: `The command and its arguments, as in ["GET", "user:1"].`},
			{Name: "password", Kind: chaos.String, Default: "", Doc: "The password sent with AUTH, if any."},
			{Name: "db", Kind: chaos.Int, Default: int64(0), Min: ptr(0.0), Doc: "The database number."},
			timeoutOption(time.Second),
		},
		Example: `probe "cache" {
  redis {
    address = "127.0.0.1:6380"
    command = ["GET", "greeting"]
  }
  interval = "200ms"
}`,
		New: newRedis,
	})
}

// redisProbe speaks just enough RESP2 to send commands and read their
// replies: a full client library would double the size of the binary for
// one probe kind. Each sample opens a connection of its own, so that on a
// tcp route every sample meets the route's per-connection draw.
type redisProbe struct {
	addr    string
	timeout time.Duration
	request []byte // AUTH and SELECT when set, then the command
	replies int
}

func newRedis(v chaos.Values) (Prober, error) {
	addr, err := hostPort(v.String("address"))
	if err != nil {
		return nil, err
	}
	cmd := v.Strings("command")
	if len(cmd) == 0 {
		return nil, errors.New(`the command option needs at least the command's name, as in ["PING"]`)
	}
	p := &redisProbe{addr: addr, timeout: v.Duration("timeout")}
	if pw := v.String("password"); pw != "" {
		p.add("AUTH", pw)
	}
	if db := v.Int("db"); db != 0 {
		p.add("SELECT", strconv.FormatInt(db, 10))
	}
	p.add(cmd...)
	return p, nil
}

func (p *redisProbe) add(args ...string) {
	p.request = fmt.Appendf(p.request, "*%d\r\n", len(args))
	for _, a := range args {
		p.request = fmt.Appendf(p.request, "$%d\r\n%s\r\n", len(a), a)
	}
	p.replies++
}

func (p *redisProbe) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if deadline, ok := ctx.Deadline(); ok {
		c.SetDeadline(deadline)
	}
	if _, err := c.Write(p.request); err != nil {
		return err
	}
	r := bufio.NewReader(c)
	for range p.replies {
		if err := readReply(r, 0); err != nil {
			return err
		}
	}
	return nil
}

// Close has nothing to release: every sample closes its connection.
func (p *redisProbe) Close() error { return nil }

// maxReplyDepth bounds the nesting of arrays a reply may have.
const maxReplyDepth = 64

// readReply reads one RESP2 reply and returns an error for an error reply
// at its top level; a nil reply is no error.
func readReply(r *bufio.Reader, depth int) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return errors.New("redis reply: empty line")
	}
	switch line[0] {
	case '+', ':':
		return nil
	case '-':
		if depth > 0 {
			return nil // an error inside an array, such as EXEC's, is data
		}
		return errors.New("redis error reply: " + line[1:])
	case '$':
		n, err := strconv.ParseInt(line[1:], 10, 64)
		if err != nil || n < -1 {
			return fmt.Errorf("redis reply: bad bulk length %q", line)
		}
		if n == -1 {
			return nil
		}
		_, err = io.CopyN(io.Discard, r, n+2)
		return err
	case '*':
		n, err := strconv.ParseInt(line[1:], 10, 64)
		if err != nil || n < -1 {
			return fmt.Errorf("redis reply: bad array length %q", line)
		}
		if depth >= maxReplyDepth {
			return errors.New("redis reply: arrays nested too deep")
		}
		for ; n > 0; n-- {
			if err := readReply(r, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("redis reply: unexpected type %q", line[0])
}
