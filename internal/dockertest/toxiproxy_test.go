package dockertest_test

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tctoxiproxy "github.com/testcontainers/testcontainers-go/modules/toxiproxy"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/vaurien-go/vaurien/internal/dockertest"
)

// TestToxiproxyModuleDropIn gives testcontainers-go's Toxiproxy module
// vaurien's image in place of Toxiproxy's, the one-line swap the README
// shows, and drives a Redis behind it with Toxiproxy's own Go client: once
// with the proxies handed to the module (which starts the image with
// toxiproxy-server's flags), once with the image's default configuration
// and a proxy created through the API.
func TestToxiproxyModuleDropIn(t *testing.T) {
	dockertest.Require(t)
	// Ryuk, the module's reaper, is an image that would be pulled, and no
	// registry may be reachable: the test removes its containers itself.
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	// Inside a container (/.dockerenv) the module reaches published ports
	// through a network gateway; the engine the tests use runs on this
	// machine and publishes on its loopback interface too.
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" && (os.Getenv("DOCKER_HOST") == "" || strings.HasPrefix(os.Getenv("DOCKER_HOST"), "unix://")) {
		t.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
	}
	image := dockertest.VaurienImage(t, "vaurien-go/vaurien:latest", dockertest.TestVersion)
	redisImage := dockertest.Redis()
	dockertest.BuildStandIn(t, redisImage)

	ctx := context.Background()
	logger := testcontainers.WithLogger(tclog.TestLogger(t))
	nw, err := network.New(ctx)
	if err != nil {
		t.Fatalf("create a network: %v", err)
	}
	t.Cleanup(func() {
		if err := nw.Remove(context.Background()); err != nil {
			t.Errorf("remove network %s: %v", nw.Name, err)
		}
	})
	backend, err := testcontainers.Run(ctx, redisImage.Tag, logger,
		network.WithNetwork([]string{"redis"}, nw),
		testcontainers.WithWaitStrategy(wait.ForLog("Ready to accept connections")))
	testcontainers.CleanupContainer(t, backend)
	if err != nil {
		t.Fatalf("start redis: %v", err)
	}

	t.Run("proxies given to the module", func(t *testing.T) {
		c, err := tctoxiproxy.Run(ctx, image, logger,
			tctoxiproxy.WithProxy("redis", "redis:6379"),
			network.WithNetwork(nil, nw))
		testcontainers.CleanupContainer(t, c)
		if err != nil {
			t.Fatalf("tctoxiproxy.Run with %s: %v", image, err)
		}
		host, port, err := c.ProxiedEndpoint(8666)
		if err != nil {
			t.Fatal(err)
		}
		client := toxiproxyClient(ctx, t, c)
		proxy, err := client.Proxy("redis")
		if err != nil {
			t.Fatalf("the module's proxy: %v", err)
		}
		checkProxy(t, client, proxy, net.JoinHostPort(host, port))
	})

	t.Run("default configuration", func(t *testing.T) {
		c, err := tctoxiproxy.Run(ctx, image, logger,
			testcontainers.WithExposedPorts("8666/tcp"),
			network.WithNetwork(nil, nw))
		testcontainers.CleanupContainer(t, c)
		if err != nil {
			t.Fatalf("tctoxiproxy.Run with %s: %v", image, err)
		}
		client := toxiproxyClient(ctx, t, c)
		proxy, err := client.CreateProxy("redis", "0.0.0.0:8666", "redis:6379")
		if err != nil {
			t.Fatalf("create a proxy: %v", err)
		}
		endpoint, err := c.PortEndpoint(ctx, "8666/tcp", "")
		if err != nil {
			t.Fatal(err)
		}
		checkProxy(t, client, proxy, endpoint)
	})
}

func toxiproxyClient(ctx context.Context, t *testing.T, c *tctoxiproxy.Container) *toxiclient.Client {
	t.Helper()
	uri, err := c.URI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := toxiclient.NewClient(uri)
	v, err := client.Version()
	if err != nil {
		t.Fatalf("GET /version: %v", err)
	}
	t.Logf("the module's container answers at %s: %s", uri, v)
	return client
}

// checkProxy drives a proxy to Redis as Toxiproxy's users do: traffic
// through it, a latency toxic that slows every reply and then goes,
// the proxy disabled and enabled, and a reset.
func checkProxy(t *testing.T, client *toxiclient.Client, proxy *toxiclient.Proxy, addr string) {
	t.Helper()
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, PoolSize: 1,
		DialTimeout: 10 * time.Second, ReadTimeout: 20 * time.Second, WriteTimeout: 20 * time.Second})
	defer rdb.Close()
	ping := func() (time.Duration, error) {
		start := time.Now()
		err := rdb.Ping(ctx).Err()
		return time.Since(start), err
	}

	// The published port accepts before the proxy listens: poll.
	var err error
	if !dockertest.Eventually(30*time.Second, 200*time.Millisecond, func() bool {
		_, err = ping()
		return err == nil
	}) {
		t.Fatalf("PING through the proxy at %s: %v", addr, err)
	}
	if err := rdb.Set(ctx, "k", "through vaurien", 0).Err(); err != nil {
		t.Fatalf("SET through the proxy: %v", err)
	}
	if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "through vaurien" {
		t.Fatalf("GET through the proxy: %q, %v", v, err)
	}

	const latency = 2 * time.Second
	if _, err := proxy.AddToxic("slow", "latency", "downstream", 1, toxiclient.Attributes{"latency": latency.Milliseconds()}); err != nil {
		t.Fatalf("add a latency toxic: %v", err)
	}
	toxics, err := proxy.Toxics()
	if err != nil || len(toxics) != 1 || toxics[0].Name != "slow" || toxics[0].Type != "latency" {
		t.Fatalf("the proxy's toxics: %+v, %v; want the latency toxic", toxics, err)
	}
	took, err := ping()
	t.Logf("PING with a %v latency toxic: %v", latency, took)
	if err != nil || took < latency*9/10 {
		t.Errorf("PING with a %v latency toxic took %v (%v), want at least %v", latency, took, err, latency*9/10)
	}
	if err := proxy.RemoveToxic("slow"); err != nil {
		t.Fatalf("remove the toxic: %v", err)
	}
	took, err = ping()
	t.Logf("PING without the toxic: %v", took)
	if err != nil || took >= latency*3/4 {
		t.Errorf("PING after the toxic went took %v (%v), want under %v", took, err, latency*3/4)
	}

	if err := proxy.Disable(); err != nil {
		t.Fatalf("disable the proxy: %v", err)
	}
	if _, err := ping(); err == nil {
		t.Error("PING through a disabled proxy succeeded")
	}
	if err := proxy.Enable(); err != nil {
		t.Fatalf("enable the proxy: %v", err)
	}
	if !dockertest.Eventually(10*time.Second, 100*time.Millisecond, func() bool {
		_, err = ping()
		return err == nil
	}) {
		t.Errorf("PING through the proxy enabled again: %v", err)
	}

	if _, err := proxy.AddToxic("", "latency", "upstream", 1, toxiclient.Attributes{"latency": latency.Milliseconds()}); err != nil {
		t.Fatalf("add a latency toxic: %v", err)
	}
	if err := client.ResetState(); err != nil {
		t.Fatalf("POST /reset: %v", err)
	}
	if toxics, err := proxy.Toxics(); err != nil || len(toxics) != 0 {
		t.Errorf("toxics after POST /reset: %+v, %v; want none", toxics, err)
	}
}
