package vaurientest_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/client"
	"github.com/vaurien-go/vaurien/pkg/vaurientest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(testenv.WithSkipSummary(m)) }

var validReply = regexp.MustCompile(`^(\$-1|\$[0-9]+|\+[ -~]*)\r\n$`)

// redisGet sends GET key on a new connection and reads one reply line
// (enough for nil and short values): what a small cache client does.
func redisGet(addr, key string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n", len(key), key); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return line, err
	}
	if !validReply.MatchString(line) {
		return line, fmt.Errorf("not a RESP bulk or simple reply: %q", line)
	}
	return line, nil
}

// The test the package documentation and the README show, against a real
// Redis.
func TestPackageDocExample(t *testing.T) {
	srv := testenv.Redis(t)
	p := vaurientest.Start(t, `
		route "cache" {
		  listen  = "127.0.0.1:0"
		  backend = "`+srv.Addr+`"
		}`)
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr("cache")}) // through vaurien
	defer rdb.Close()
	ctx := t.Context()
	if err := rdb.Set(ctx, "key", "value", 0).Err(); err != nil { // opens a pooled connection
		t.Fatal(err)
	}
	err := p.Client.WithBehavior(ctx, "cache", client.Behavior{Name: "error"}, func() error {
		// redis.Nil is Redis's answer for a missing key, not the fault.
		if _, err := rdb.Get(ctx, "key").Result(); err == nil || errors.Is(err, redis.Nil) {
			return fmt.Errorf("the injected error did not reach the caller: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The error behavior is off again here, for the same pool.
	if v, err := rdb.Get(ctx, "key").Result(); err != nil || v != "value" {
		t.Fatalf("after WithBehavior: %q, %v", v, err)
	}
}

func TestStartRoutesFromGoValues(t *testing.T) {
	redis := testenv.Redis(t)
	p := vaurientest.StartRoutes(t, []vaurientest.Route{
		{Name: "cache", Backend: redis.Addr, Behaviors: []client.Behavior{
			{Name: "delay", Percent: 100, Options: map[string]any{"sleep": "200ms"}},
		}},
		{Name: "raw", Backend: redis.Addr},
	}, vaurientest.WithSeed(1))
	start := time.Now()
	if got, err := redisGet(p.Addr("cache"), "k"); err != nil || got != "$-1\r\n" {
		t.Fatalf("through cache: %q %v", got, err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("the delay behavior did not apply: %s", took)
	}
	if got, err := redisGet(p.Addr("raw"), "k"); err != nil || got != "$-1\r\n" {
		t.Fatalf("through raw: %q %v", got, err)
	}
	if r, err := p.Client.Route(t.Context(), "raw"); err != nil || len(r.Mix) != 0 {
		t.Fatalf("raw's mix: %+v %v", r, err)
	}
	r, err := p.Client.Route(t.Context(), "cache")
	if err != nil || len(r.ConfiguredMix) != 1 || r.ConfiguredMix[0].Options["sleep"] != "200ms" {
		t.Fatalf("the route as the API shows it: %+v %v", r, err)
	}
}

func TestInvalidRoutesFailTheTest(t *testing.T) {
	cases := []struct {
		name string
		run  func(tb testing.TB)
		want string
	}{
		{"bad HCL", func(tb testing.TB) { vaurientest.Start(tb, `route "x" {`) }, "invalid configuration"},
		{"unknown behavior", func(tb testing.TB) {
			vaurientest.StartRoutes(tb, []vaurientest.Route{{Name: "x", Backend: "127.0.0.1:9", Behaviors: []client.Behavior{{Name: "nope"}}}})
		}, "unknown behavior"},
		{"no backend", func(tb testing.TB) { vaurientest.StartRoutes(tb, []vaurientest.Route{{Name: "x"}}) }, "needs a backend"},
	}
	for _, c := range cases {
		ft := &fatalTB{TB: t}
		done := make(chan struct{})
		go func() { // Fatalf ends the goroutine as in a real test
			defer close(done)
			c.run(ft)
		}()
		<-done
		if !strings.Contains(ft.msg, c.want) {
			t.Errorf("%s: the test failed with %q, want %q", c.name, ft.msg, c.want)
		}
	}
}

// fatalTB records the first Fatalf and stops the goroutine, like a test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// The proxy is gone once the test ends: its ports refuse connections.
func TestCleanupStopsTheProxy(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	var route, admin string
	t.Run("inner", func(t *testing.T) {
		p := vaurientest.Start(t, `
			route "r" {
			  listen  = "127.0.0.1:0"
			  backend = "`+backend.Addr().String()+`"
			}`)
		route, admin = p.Addr("r"), p.AdminAddr()
		if err := p.Client.Health(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	for _, a := range []string{route, admin} {
		c, err := net.Dial("tcp", a)
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
			t.Fatalf("%s still listens after the test", a)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v", a, err)
		}
	}
}
