package redis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

func errorEffect(msg string) chaos.Effect {
	return chaos.Effect{Fault: chaos.FaultError, Error: chaos.ErrorSpec{Message: msg}}
}

const loading = "LOADING Redis is loading the dataset in memory"

// runMix makes n GET/SET calls on one connection and returns the indexes
// of those that failed with the injected error.
func runMix(t *testing.T, addr string, protocol, n int) []int {
	t.Helper()
	rdb := goredis.NewClient(&goredis.Options{Addr: addr, Protocol: protocol, DisableIdentity: true,
		MaxRetries: -1, PoolSize: 1})
	defer rdb.Close()
	ctx := context.Background()
	var failed []int
	for i := range n {
		var err error
		if i%2 == 0 {
			err = rdb.Set(ctx, fmt.Sprint("mix", i), i, 0).Err()
		} else {
			var v int
			v, err = rdb.Get(ctx, fmt.Sprint("mix", i-1)).Int()
			if err == nil && v != i-1 {
				t.Fatalf("GET %d = %d", i-1, v)
			}
			if errors.Is(err, goredis.Nil) {
				err = nil // its SET failed
			}
		}
		if err == nil {
			continue
		}
		var rerr goredis.Error
		if !errors.As(err, &rerr) {
			t.Fatalf("call %d: %v is not a redis error", i, err)
		}
		if err.Error() != loading {
			t.Fatalf("call %d: error %q, want %q", i, err, loading)
		}
		failed = append(failed, i)
	}
	return failed
}

// A 10% error mix fails about 10% of the commands with the configured RESP
// error, which go-redis reads as a redis error; a seed repeats the run.
func TestErrorMix(t *testing.T) {
	srv := testenv.Redis(t)
	for _, protocol := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", protocol), func(t *testing.T) {
			const n = 2000
			var runs [2][]int
			for r := range runs {
				fail := &protocoltest.Fixed{E: errorEffect(loading)}
				p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(10, fail, "GET", "SET")), seed: 42})
				runs[r] = runMix(t, p.Addr, protocol, n)
				if got := int64(len(runs[r])); got != fail.Calls() {
					t.Fatalf("%d commands failed, the behavior was drawn %d times", got, fail.Calls())
				}
				if got := len(runs[r]); got < n*7/100 || got > n*13/100 {
					t.Fatalf("%d of %d commands failed, want about 10%%", got, n)
				}
				protocoltest.WaitFor(t, 5*time.Second, "every exchange to be counted", func() bool {
					return p.Count("GET")+p.Count("SET") == n
				})
			}
			if fmt.Sprint(runs[0]) != fmt.Sprint(runs[1]) {
				t.Fatalf("two runs with the same seed failed different commands")
			}
		})
	}
}

// The route's error_message is the default message.
func TestErrorMessageOption(t *testing.T) {
	srv := testenv.Redis(t)
	proto, _, err := chaos.NewProtocol("redis", map[string]any{"error_message": "-READONLY You can't write against a read only replica.\r\n"})
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: errorEffect("")}, "SET")), proto: proto.(*Protocol)})
	rc := dialRaw(t, p.Addr)
	rc.write(command("SET", "k", "v") + command("GET", "k"))
	rc.expect("-READONLY You can't write against a read only replica.\r\n")
	rc.expect("$-1\r\n")
}

// An error drawn inside MULTI fails the transaction as redis would:
// EXEC answers EXECABORT and nothing of it runs.
func TestErrorInsideMulti(t *testing.T) {
	srv := testenv.Redis(t)
	ctx := context.Background()
	for _, protocol := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", protocol), func(t *testing.T) {
			p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: errorEffect("")}, "INCR"))})
			rdb := newClient(t, p.Addr, protocol)
			key := fmt.Sprint("tx", protocol)
			cmds, err := rdb.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
				pipe.Set(ctx, key, 1, 0)
				pipe.Incr(ctx, key)
				return nil
			})
			if err == nil || !strings.HasPrefix(err.Error(), "EXECABORT") {
				t.Fatalf("transaction error %v, want EXECABORT", err)
			}
			if e := cmds[1].Err(); e == nil || e.Error() != DefaultErrorMessage {
				t.Fatalf("INCR error %v, want the injected one", e)
			}
			if err := rdb.Get(ctx, key).Err(); !errors.Is(err, goredis.Nil) {
				t.Fatalf("GET after the failed transaction: %v, want nil: nothing ran", err)
			}
			// The connection left MULTI: plain commands answer at once.
			rc := dialRaw(t, p.Addr)
			rc.write(command("MULTI") + command("SET", key, "2") + command("INCR", key) + command("EXEC") + command("GET", key))
			rc.expect("+OK\r\n")
			rc.expect("+QUEUED\r\n")
			rc.expect("-" + DefaultErrorMessage + "\r\n")
			rc.expect("-" + execAbort + "\r\n")
			rc.expect("$-1\r\n")
		})
	}
	// EXEC itself drawing the error ends the transaction with DISCARD.
	p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: errorEffect("")}, "EXEC"))})
	rc := dialRaw(t, p.Addr)
	rc.write(command("MULTI") + command("SET", "tx-exec", "1") + command("EXEC") + command("GET", "tx-exec") + command("EXEC"))
	rc.expect("+OK\r\n")
	rc.expect("+QUEUED\r\n")
	rc.expect("-" + DefaultErrorMessage + "\r\n")
	rc.expect("$-1\r\n")
	rc.expect("-" + DefaultErrorMessage + "\r\n") // outside MULTI, not forwarded
}

func TestDelay(t *testing.T) {
	srv := testenv.Redis(t)
	const d = 150 * time.Millisecond
	for name, e := range map[string]chaos.Effect{
		"before": {Delay: d},
		"after":  {ResponseDelay: d},
	} {
		t.Run(name, func(t *testing.T) {
			p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: e}, "GET"))})
			rc := dialRaw(t, p.Addr)
			rc.send("SET", "d", "1")
			rc.expect("+OK\r\n")
			start := time.Now()
			rc.write(command("GET", "d") + command("PING"))
			rc.expect("$1\r\n1\r\n")
			if took := time.Since(start); took < d {
				t.Fatalf("the delayed GET took %v, want at least %v", took, d)
			}
			rc.expect("+PONG\r\n")
		})
	}
}

// Replies already due are not held by a later request's response delay.
func TestResponseDelayIsPerRequest(t *testing.T) {
	srv := testenv.Redis(t)
	const d = time.Second // long: the bound on the PING must hold on a loaded machine
	p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: chaos.Effect{ResponseDelay: d}}, "GET"))})
	rc := dialRaw(t, p.Addr)
	start := time.Now()
	rc.write(command("PING") + command("GET", "x"))
	rc.expect("+PONG\r\n")
	if took := time.Since(start); took >= d {
		t.Fatalf("PING's reply waited %v behind the delayed GET", took)
	}
	rc.expect("$-1\r\n")
	if took := time.Since(start); took < d {
		t.Fatalf("the GET took %v, want at least %v", took, d)
	}
}

func TestHang(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: chaos.Effect{Fault: chaos.FaultHang}}, "GET"))})
	rc := dialRaw(t, p.Addr)
	rc.write(command("SET", "h", "1") + command("GET", "h") + command("SET", "h", "2"))
	rc.expect("+OK\r\n")
	rc.expectSilence(300 * time.Millisecond)
	rc.send("PING")
	rc.expectSilence(100 * time.Millisecond)
	// Nothing after the hang reached redis.
	direct := dialRaw(t, srv.Addr)
	direct.send("GET", "h")
	direct.expect("$1\r\n1\r\n")
	if got := p.Count("GET"); got != 0 {
		t.Fatalf("the hung GET was counted as an exchange")
	}
}

func TestTimeout(t *testing.T) {
	srv := testenv.Redis(t)
	const after = 200 * time.Millisecond
	p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: chaos.Effect{Fault: chaos.FaultTimeout, After: after}}, "GET"))})
	rc := dialRaw(t, p.Addr)
	start := time.Now()
	rc.write(command("SET", "t", "1") + command("GET", "t"))
	rc.expect("+OK\r\n")
	rc.expectClosed()
	if took := time.Since(start); took < after {
		t.Fatalf("closed after %v, want at least %v", took, after)
	}
}

func TestAbort(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: chaos.Effect{Fault: chaos.FaultAbort}}, "GET"))})
	rc := dialRaw(t, p.Addr)
	rc.write(command("SET", "a", "1") + command("PING") + command("GET", "a"))
	rc.expect("+OK\r\n")
	rc.expect("+PONG\r\n")
	if err := rc.expectClosed(); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the connection ended with %v", err)
	}
}

func TestCloseAndRefuse(t *testing.T) {
	srv := testenv.Redis(t)
	for name, f := range map[string]chaos.Fault{"blackout": chaos.FaultClose, "down": chaos.FaultRefuse} {
		t.Run(name, func(t *testing.T) {
			p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: chaos.Effect{Fault: f}}, "GET"))})
			rc := dialRaw(t, p.Addr)
			rc.send("SET", "c", "1")
			rc.expect("+OK\r\n")
			rc.send("GET", "c")
			if err := rc.expectClosed(); err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("the connection ended with %v", err)
			}
			want := int64(0)
			if f == chaos.FaultRefuse {
				want = 1
			}
			if got := p.Refusals.Load(); got != want {
				t.Fatalf("refused %d times, want %d", got, want)
			}
		})
	}
}

func TestReset(t *testing.T) {
	srv := testenv.Redis(t)
	t.Run("now", func(t *testing.T) {
		p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: chaos.Effect{Fault: chaos.FaultReset}}, "GET"))})
		rc := dialRaw(t, p.Addr)
		rc.send("GET", "r")
		if err := rc.expectClosed(); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the connection ended with %v, want a reset", err)
		}
	})
	t.Run("after", func(t *testing.T) {
		const after = 200 * time.Millisecond
		p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: chaos.Effect{Fault: chaos.FaultReset, After: after}}, "GET"))})
		rc := dialRaw(t, p.Addr)
		start := time.Now()
		rc.send("GET", "r")
		rc.expect("$-1\r\n") // served until the reset strikes
		rc.send("PING")
		rc.expect("+PONG\r\n")
		if err := rc.expectClosed(); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("the connection ended with %v, want a reset", err)
		}
		if took := time.Since(start); took < after {
			t.Fatalf("reset after %v, want at least %v", took, after)
		}
	})
}

// Inject corrupts the reply in place: same lengths, different bytes, and
// the client stays in sync.
func TestInject(t *testing.T) {
	srv := testenv.Redis(t)
	inject := chaos.Effect{Fault: chaos.FaultError, Error: chaos.ErrorSpec{Inject: true}}
	p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: inject}, "GET", "INCRBY", "PING", "HGETALL"))})
	rdb := newClient(t, srv.Addr, 3)
	ctx := context.Background()
	small := "hello, world of values"
	large := string(randomValue(1<<20, 3))
	rdb.Set(ctx, "small", small, 0)
	rdb.Set(ctx, "large", large, 0)
	rdb.HSet(ctx, "hash", "field", "value")
	rc := dialRaw(t, p.Addr)
	for key, want := range map[string]string{"small": small, "large": large} {
		rc.send("GET", key)
		got := rc.read()
		header := fmt.Sprintf("$%d\r\n", len(want))
		if !strings.HasPrefix(got, header) || len(got) != len(header)+len(want)+2 {
			t.Fatalf("GET %s: the corrupted reply changed its framing", key)
		}
		value := got[len(header) : len(got)-2]
		diff := 0
		for i := range value {
			if value[i] != want[i] {
				diff++
			}
		}
		if diff == 0 || diff > injectMax {
			t.Fatalf("GET %s: %d bytes differ, want 1 to %d", key, diff, injectMax)
		}
	}
	rc.send("INCRBY", "n", "12345")
	if got := rc.read(); got == ":12345\r\n" || len(got) != len(":12345\r\n") || got[0] != ':' {
		t.Fatalf("INCRBY's corrupted reply %q", got)
	}
	rc.send("PING")
	if got := rc.read(); got == "+PONG\r\n" || len(got) != 7 || got[0] != '+' {
		t.Fatalf("PING's corrupted reply %q", got)
	}
	rc.send("HELLO", "3")
	rc.read()
	rc.send("HGETALL", "hash")
	if got := rc.read(); got == "%1\r\n$5\r\nfield\r\n$5\r\nvalue\r\n" || len(got) != len("%1\r\n$5\r\nfield\r\n$5\r\nvalue\r\n") {
		t.Fatalf("HGETALL's corrupted reply %q", got)
	}
	rc.send("SET", "after", "1")
	rc.expect("+OK\r\n")
}

// oneByte is a slicer: it relays one byte per write.
var oneByte = chaos.FilterFunc(func(ctx context.Context, dst io.Writer, src io.Reader) error {
	buf := make([]byte, 1)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
})

// limit ends the connection after n bytes, as limit_data does.
func limit(n int64) chaos.Filter {
	return chaos.FilterFunc(func(ctx context.Context, dst io.Writer, src io.Reader) error {
		if _, err := io.CopyN(dst, src, n); err != nil {
			return err
		}
		return chaos.ErrClose
	})
}

func TestFilters(t *testing.T) {
	srv := testenv.Redis(t)
	value := string(randomValue(200<<10, 9))
	for name, e := range map[string]chaos.Effect{
		"to_backend": {ToBackend: oneByte},
		"to_client":  {ToClient: oneByte},
	} {
		t.Run(name, func(t *testing.T) {
			p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: e}, "SET", "GET"))})
			rdb := newClient(t, p.Addr, 2)
			ctx := context.Background()
			key := "filtered-" + name
			if err := rdb.Set(ctx, key, value, 0).Err(); err != nil {
				t.Fatal(err)
			}
			got, err := rdb.Get(ctx, key).Result()
			if err != nil || got != value {
				t.Fatalf("GET through a slicer: %d bytes, %v", len(got), err)
			}
			if err := rdb.Ping(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("limit", func(t *testing.T) {
		p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: chaos.Effect{ToClient: limit(3)}}, "GET"))})
		rc := dialRaw(t, p.Addr)
		rc.send("SET", "lim", "abcdef")
		rc.expect("+OK\r\n")
		rc.send("GET", "lim")
		rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, _ := io.ReadAll(rc.r)
		if !bytes.Equal(got, []byte("$6\r")) {
			t.Fatalf("got %q, want the first 3 bytes and the close", got)
		}
	})
}

func TestIdleTimeout(t *testing.T) {
	srv := testenv.Redis(t)
	const idle = 200 * time.Millisecond
	p := startProxy(t, srv.Addr, proxyConfig{idle: idle})
	rc := dialRaw(t, p.Addr)
	// The proxy's last read (PONG from redis) comes after start.
	start := time.Now()
	rc.send("PING")
	rc.expect("+PONG\r\n")
	rc.expectClosed()
	if took := time.Since(start); took < idle {
		t.Fatalf("closed %v after the last exchange began, want at least %v", took, idle)
	}
}

// A connection whose backend cannot be dialed returns the dial error.
func TestDialFailure(t *testing.T) {
	port := testenv.FreePort(t)
	p := startProxy(t, fmt.Sprintf("127.0.0.1:%d", port), proxyConfig{})
	rc := dialRaw(t, p.Addr)
	rc.expectClosed()
	protocoltest.WaitFor(t, 5*time.Second, "Serve to return the dial error", func() bool { return len(p.Errors()) == 1 })
}

// slow_close holds the client's end when the backend closes.
func TestCloseDelay(t *testing.T) {
	srv := testenv.Redis(t)
	const hold = 200 * time.Millisecond
	p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, &protocoltest.Fixed{E: chaos.Effect{CloseDelay: hold}}, "PING"))})
	rc := dialRaw(t, p.Addr)
	rc.send("PING")
	rc.expect("+PONG\r\n")
	start := time.Now()
	rc.send("QUIT")
	rc.expect("+OK\r\n")
	if err := rc.expectClosed(); err != nil {
		t.Fatalf("the connection ended with %v, want EOF", err)
	}
	if took := time.Since(start); took < hold {
		t.Fatalf("closed %v after QUIT, want at least %v", took, hold)
	}
}
