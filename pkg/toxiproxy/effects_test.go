package toxiproxy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
	"github.com/redis/go-redis/v9"

	"github.com/vaurien-go/vaurien/internal/testenv"
	_ "github.com/vaurien-go/vaurien/pkg/protocol/redis"
)

func TestLatencyDelaysEachDirection(t *testing.T) {
	e := start(t, "", false)
	p := e.proxy("p", echo(t))
	base := roundTrip(t, dial(t, p.Listen), "warm")

	e.toxic(p, "latency", "downstream", 1, toxiclient.Attributes{"latency": 200})
	if took := roundTrip(t, dial(t, p.Listen), "down"); took < 200*time.Millisecond || took > base+2*time.Second {
		t.Errorf("downstream latency 200ms: round trip took %v", took)
	}
	// Toxics stack: a second latency adds up with the first.
	e.toxic(p, "latency", "upstream", 1, toxiclient.Attributes{"latency": 150})
	if took := roundTrip(t, dial(t, p.Listen), "both"); took < 350*time.Millisecond || took > base+2*time.Second {
		t.Errorf("200ms down + 150ms up: round trip took %v", took)
	}
	// An update applies.
	if _, err := p.UpdateToxic("latency_upstream", 1, toxiclient.Attributes{"latency": 400}); err != nil {
		t.Fatal(err)
	}
	if took := roundTrip(t, dial(t, p.Listen), "updated"); took < 600*time.Millisecond {
		t.Errorf("200ms down + 400ms up: round trip took %v", took)
	}
}

// Every chunk is delayed, not only the first: each of several round trips
// on one connection pays the latency.
func TestLatencyIsPerChunk(t *testing.T) {
	e := start(t, "", false)
	p := e.proxy("p", echo(t))
	e.toxic(p, "latency", "downstream", 1, toxiclient.Attributes{"latency": 100})
	c := dial(t, p.Listen)
	for i := range 3 {
		if took := roundTrip(t, c, "again"); took < 100*time.Millisecond {
			t.Errorf("round trip %d took %v", i, took)
		}
	}
}

// As in Testcontainers' tests: a toxic added while a connection is open
// applies to that connection, and removing it restores it.
func TestToxicsReachLiveConnections(t *testing.T) {
	e := start(t, "", false)
	p := e.proxy("p", echo(t))
	c := dial(t, p.Listen)
	base := roundTrip(t, c, "before")
	e.toxic(p, "latency", "downstream", 1, toxiclient.Attributes{"latency": 300, "jitter": 20})
	if took := roundTrip(t, c, "during"); took < 280*time.Millisecond || took > base+2*time.Second {
		t.Errorf("latency 300±20ms on a live connection: took %v", took)
	}
	if err := p.RemoveToxic("latency_downstream"); err != nil {
		t.Fatal(err)
	}
	if took := roundTrip(t, c, "after"); took > base+250*time.Millisecond {
		t.Errorf("after the toxic was removed: took %v (before: %v)", took, base)
	}
}

// Testcontainers cuts a connection with bandwidth 0 both ways: no data
// passes, the connection stays open, and once the toxics go, the held data
// flows on the same connection.
func TestBandwidthZeroCutsTheConnection(t *testing.T) {
	e := start(t, "", false)
	p := e.proxy("p", echo(t))
	c := dial(t, p.Listen)
	roundTrip(t, c, "before")
	e.toxic(p, "bandwidth", "downstream", 1, toxiclient.Attributes{"rate": 0})
	e.toxic(p, "bandwidth", "upstream", 1, toxiclient.Attributes{"rate": 0})
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	n, err := c.Read(make([]byte, 10))
	if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("with the connection cut: read %d bytes, %v; want nothing and the connection open", n, err)
	}
	// A new connection is cut too.
	c2 := dial(t, p.Listen)
	c2.Write([]byte("x"))
	c2.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c2.Read(make([]byte, 10)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("new connection: read %d bytes, %v", n, err)
	}
	if err := p.RemoveToxic("bandwidth_downstream"); err != nil {
		t.Fatal(err)
	}
	if err := p.RemoveToxic("bandwidth_upstream"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
		t.Fatalf("after the cut: %q, %v", buf, err)
	}
	roundTrip(t, c, "after")
}

func TestBandwidthLimitsThroughput(t *testing.T) {
	e := start(t, "", false)
	data := bytes.Repeat([]byte("0123456789"), 40_000) // 400 KB
	p := e.proxy("p", source(t, data))
	e.toxic(p, "bandwidth", "downstream", 1, toxiclient.Attributes{"rate": 200}) // KB/s
	c := dial(t, p.Listen)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	got, err := io.ReadAll(c)
	took := time.Since(start)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	// 400 KB at 200 KB/s is 2s.
	if took < 1500*time.Millisecond || took > 5*time.Second {
		t.Errorf("400 KB at 200 KB/s took %v", took)
	}
}

func TestResetPeer(t *testing.T) {
	e := start(t, "", false)
	p := e.proxy("p", echo(t))
	e.toxic(p, "reset_peer", "downstream", 1, toxiclient.Attributes{"timeout": 0})
	// The reset may come before the dial returns, or on the first read.
	c, err := net.DialTimeout("tcp", p.Listen, 2*time.Second)
	if err == nil {
		c.Write([]byte("hello"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 10))
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("reset_peer at once: %v, want ECONNRESET", err)
	}

	if _, err := p.UpdateToxic("reset_peer_downstream", 1, toxiclient.Attributes{"timeout": 300}); err != nil {
		t.Fatal(err)
	}
	// The timeout runs from the proxy's accept, which comes before the
	// dial returns: time from before the dial.
	start := time.Now()
	c = dial(t, p.Listen)
	roundTrip(t, c, "works until the timeout")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 10))
	if !errors.Is(err, syscall.ECONNRESET) || time.Since(start) < 300*time.Millisecond {
		t.Errorf("reset_peer after 300ms: %v after %v", err, time.Since(start))
	}
}

func TestLimitDataCutsAtNBytes(t *testing.T) {
	e := start(t, "", false)
	data := bytes.Repeat([]byte("x"), 5000)
	p := e.proxy("p", source(t, data))
	e.toxic(p, "limit_data", "downstream", 1, toxiclient.Attributes{"bytes": 1000})
	c := dial(t, p.Listen)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if len(got) != 1000 || err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("limit_data 1000: read %d bytes, %v", len(got), err)
	}
}

func TestTimeoutStopsDataThenCloses(t *testing.T) {
	e := start(t, "", false)
	p := e.proxy("p", echo(t))
	e.toxic(p, "timeout", "downstream", 1, toxiclient.Attributes{"timeout": 300})
	// The timeout starts when vaurien accepts, which can come before the
	// dial returns here: measure from before the dial.
	start := time.Now()
	c := dial(t, p.Listen)
	c.Write([]byte("lost"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(make([]byte, 10))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) < 300*time.Millisecond {
		t.Errorf("timeout 300ms: read %d bytes, %v after %v; want nothing, then the connection closed", n, err, time.Since(start))
	}
}

func TestSlowCloseHoldsTheClose(t *testing.T) {
	e := start(t, "", false)
	p := e.proxy("p", source(t, []byte("hello")))
	e.toxic(p, "slow_close", "downstream", 1, toxiclient.Attributes{"delay": 300})
	// The hold starts when vaurien accepts, which can come before the dial
	// returns here: measure from before the dial.
	start := time.Now()
	c := dial(t, p.Listen)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	if string(got) != "hello" || err != nil || time.Since(start) < 300*time.Millisecond {
		t.Errorf("slow_close 300ms: %q, %v after %v", got, err, time.Since(start))
	}
}

func TestSlicerCutsTheStream(t *testing.T) {
	e := start(t, "", false)
	data := bytes.Repeat([]byte("abcdefghij"), 30)
	p := e.proxy("p", source(t, data))
	e.toxic(p, "slicer", "downstream", 1, toxiclient.Attributes{"average_size": 10, "size_variation": 0, "delay": 5000})
	c := dial(t, p.Listen)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	reads := 0
	buf := make([]byte, 1024)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			reads++
			got = append(got, buf[:n]...)
		}
		if err != nil {
			break
		}
	}
	if !bytes.Equal(got, data) || reads < 10 {
		t.Errorf("slicer 10 bytes every 5ms: %d bytes in %d reads", len(got), reads)
	}
}

// A toxic at toxicity 0 has no effect at all (Toxiproxy's issue 603).
func TestToxicityZeroNeverApplies(t *testing.T) {
	e := start(t, "", false)
	p := e.proxy("p", echo(t))
	e.toxic(p, "latency", "downstream", 0, toxiclient.Attributes{"latency": 2000})
	e.toxic(p, "reset_peer", "upstream", 0, toxiclient.Attributes{"timeout": 0})
	for i := range 200 {
		c, err := net.DialTimeout("tcp", p.Listen, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if took := roundTrip(t, c, "fast"); took > time.Second {
			t.Fatalf("connection %d took %v: a toxic at toxicity 0 applied", i, took)
		}
		c.Close()
	}
}

// On a protocol-aware route each request draws the toxics in force.
func TestToxicsOnARedisRoute(t *testing.T) {
	srv := testenv.Redis(t)
	e := start(t, `
route "cache" {
  listen   = "127.0.0.1:0"
  backend  = "`+srv.Addr+`"
  protocol = "redis"
}`, false)
	px, err := e.client.Proxy("cache")
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: px.Listen, MaxRetries: -1})
	defer rdb.Close()
	ctx := t.Context()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	e.toxic(px, "latency", "downstream", 1, toxiclient.Attributes{"latency": 200})
	start := time.Now()
	if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET through latency: %q %v", v, err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("GET with 200ms latency took %v", took)
	}
	if err := px.RemoveToxic("latency_downstream"); err != nil {
		t.Fatal(err)
	}
	e.toxic(px, "timeout", "downstream", 1, toxiclient.Attributes{"timeout": 100})
	if err := rdb.Get(ctx, "k").Err(); err == nil {
		t.Error("GET through a timeout toxic succeeded")
	}
}

// A timeout toxic removed before it strikes lets the held data through.
func TestTimeoutRemovedInTime(t *testing.T) {
	e := start(t, "", false)
	p := e.proxy("p", echo(t))
	c := dial(t, p.Listen)
	roundTrip(t, c, "before")
	e.toxic(p, "timeout", "downstream", 1, toxiclient.Attributes{"timeout": 0})
	c.Write([]byte("held"))
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 4)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("under timeout 0: read %d, %v", n, err)
	}
	// A change to the other stream leaves it in force.
	e.toxic(p, "latency", "upstream", 1, toxiclient.Attributes{"latency": 1})
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 4)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after an upstream change: read %d, %v", n, err)
	}
	if err := p.RemoveToxic("timeout_downstream"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "held" {
		t.Fatalf("after removal: %q %v", buf, err)
	}
	roundTrip(t, c, "after")
}

// A route of the file, with a connection opened before any toxic: the
// first toxic reaches that connection, and a reset through the API gives
// it back its full speed, with the bytes the toxic held delivered.
func TestToxicsReachConnectionsOpenedBeforeTheFirstToxic(t *testing.T) {
	upstream := echo(t)
	e := start(t, `route "file" {
  listen  = "127.0.0.1:0"
  backend = "`+upstream+`"
}`, false)
	rt, err := e.app.Route("file")
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, rt.Addr())
	base := roundTrip(t, c, "before")
	p, err := e.client.Proxy("file")
	if err != nil {
		t.Fatal(err)
	}
	e.toxic(p, "latency", "downstream", 1, toxiclient.Attributes{"latency": 300})
	if took := roundTrip(t, c, "during"); took < 300*time.Millisecond || took > base+2*time.Second {
		t.Errorf("latency 300ms on a connection opened before the toxic: took %v", took)
	}
	e.toxic(p, "bandwidth", "downstream", 1, toxiclient.Attributes{"rate": 0})
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	if err := e.client.ResetState(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "held" {
		t.Fatalf("after the reset: %q, %v; want the held bytes", got, err)
	}
	if took := roundTrip(t, c, "after"); took > base+250*time.Millisecond {
		t.Errorf("after the reset: took %v (before: %v)", took, base)
	}
}
