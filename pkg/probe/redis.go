package probe

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vaurien-go/vaurien/pkg/chaos"
)

func init() {
	Register(Spec{
		Name: "redis",
		Doc: "Sends one Redis command (PING by default) and reads the reply. It fails on a " +
			"connection error, a timeout or an error reply; a nil reply is a success.",
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

type redisProbe struct {
	client *redis.Client
	args   []any
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
	timeout := v.Duration("timeout")
	args := make([]any, len(cmd))
	for i, a := range cmd {
		args[i] = a
	}
	return &redisProbe{args: args, client: redis.NewClient(&redis.Options{
		Addr: addr, Password: v.String("password"), DB: int(v.Int("db")),
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout,
		MaxRetries: -1, // one attempt is one sample
		Protocol:   2,
		// No client name or library info: the probe sends only its command.
		DisableIdentity: true,
	})}, nil
}

func (p *redisProbe) Probe(ctx context.Context) error {
	err := p.client.Do(ctx, p.args...).Err()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}

// Close closes the probe's connections.
func (p *redisProbe) Close() error { return p.client.Close() }
