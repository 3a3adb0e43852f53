package redis

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

// debugRedis starts a redis-server that allows DEBUG, whose DEBUG PROTOCOL
// makes the server send every RESP3 type, attributes and pushes included.
func debugRedis(t testing.TB) *testenv.Server {
	return testenv.Start(t, "redis-server", "--port", "{port}", "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--enable-debug-command", "yes")
}

func newClient(t testing.TB, addr string, protocol int) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{
		Addr:            addr,
		Protocol:        protocol,
		DisableIdentity: true,
		MaxRetries:      -1,
		PoolSize:        4,
		ReadTimeout:     20 * time.Second,
		WriteTimeout:    20 * time.Second,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// script is a pipeline exercising every reply type redis sends, in RESP2
// and RESP3, inline commands and CLIENT REPLY included.
func script() string {
	var b strings.Builder
	b.WriteString(command("FLUSHALL"))
	b.WriteString("PING\r\n")                  // inline
	b.WriteString("SET inline \"quoted\"\r\n") // inline with quotes
	b.WriteString(command("SET", "bin", "a\r\nb\x00c"))
	b.WriteString(command("GET", "bin"))
	b.WriteString(command("GET", "missing")) // $-1
	b.WriteString(command("INCR", "n"))
	b.WriteString(command("RPUSH", "l", "1", "2", "3"))
	b.WriteString(command("LRANGE", "l", "0", "-1"))
	b.WriteString(command("BLPOP", "empty", "0.01")) // *-1 in RESP2
	b.WriteString(command("EVAL", "return {1, {2, {3, {'deep', {}}}}, 'x', redis.status_reply('S'), redis.error_reply('E')}", "0"))
	b.WriteString(command("EVAL", "return redis.error_reply('MYERR custom')", "0"))
	b.WriteString(command("NOSUCHCOMMAND"))
	b.WriteString(command("CLIENT", "REPLY", "OFF"))
	b.WriteString(command("SET", "quiet", "1"))
	b.WriteString(command("CLIENT", "REPLY", "ON"))
	b.WriteString(command("CLIENT", "REPLY", "SKIP"))
	b.WriteString(command("GET", "quiet"))
	b.WriteString(command("GET", "quiet"))
	b.WriteString("*0\r\n\r\n")
	b.WriteString(command("HSET", "h", "f1", "v1", "f2", "v2"))
	b.WriteString(command("SADD", "s", "m1", "m2"))
	b.WriteString(command("ZADD", "z", "1.5", "m"))
	for _, proto := range []string{"2", "3"} {
		b.WriteString(command("HELLO", proto))
		b.WriteString(command("HGETALL", "h"))
		b.WriteString(command("SMEMBERS", "s"))
		b.WriteString(command("ZSCORE", "z", "m"))
		b.WriteString(command("BLPOP", "empty", "0.01"))
		for _, typ := range []string{"string", "integer", "double", "bignum", "null", "array", "set", "map", "attrib", "push", "verbatim", "true", "false"} {
			b.WriteString(command("DEBUG", "PROTOCOL", typ))
		}
	}
	b.WriteString(command("ECHO", "finish"))
	return b.String()
}

// exchange sends the script and reads until the final echo.
func exchange(t *testing.T, addr string) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, script()); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(got, []byte("$6\r\nfinish\r\n")) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read after %q: %v", got, err)
		}
	}
	return got
}

// The proxy is byte-exact: a pipeline of every reply type reads the same
// through it as from redis itself.
func TestPassThroughByteExact(t *testing.T) {
	srv := debugRedis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	direct := exchange(t, srv.Addr)
	proxied := exchange(t, p.Addr)
	// HELLO names the connection's id, the one thing that differs.
	id := regexp.MustCompile(`\$2\r\nid\r\n:\d+\r\n`)
	if !bytes.Equal(id.ReplaceAll(direct, nil), id.ReplaceAll(proxied, nil)) {
		t.Fatalf("proxied replies differ from direct ones\ndirect:  %q\nproxied: %q", direct, proxied)
	}
	for _, want := range []string{">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n", "|1\r\n", "(", "=", "~2\r\n", "%2\r\n", ",1.5\r\n", "*-1\r\n", "$-1\r\n", "_\r\n", "#t\r\n", "-MYERR custom\r\n"} {
		if !bytes.Contains(proxied, []byte(want)) {
			t.Errorf("the script's replies lack %q: the test does not cover it", want)
		}
	}
	protocoltest.WaitFor(t, 5*time.Second, "the exchange to be counted", func() bool { return p.Count("ECHO") == 1 })
	if got, want := p.ToBackend.Load(), int64(len(script())); got != want {
		t.Errorf("relayed %d bytes to the backend, want %d", got, want)
	}
	if got, want := p.ToClient.Load(), int64(len(proxied)); got != want {
		t.Errorf("relayed %d bytes to the client, want %d", got, want)
	}
	// Every request but the two empty ones is one exchange, those whose
	// reply CLIENT REPLY suppresses included.
	if got, want := p.Exchanges.Load(), int64(59); got != want {
		t.Errorf("%d exchanges, want %d", got, want)
	}
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("Serve returned %v", errs)
	}
}

func TestPipeline(t *testing.T) {
	srv := testenv.Redis(t)
	for _, protocol := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", protocol), func(t *testing.T) {
			p := startProxy(t, srv.Addr, proxyConfig{})
			rdb := newClient(t, p.Addr, protocol)
			ctx := context.Background()
			const n = 1000
			cmds, err := rdb.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
				for i := range n {
					pipe.Set(ctx, fmt.Sprintf("p%d:%d", protocol, i), i, 0)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(cmds) != n {
				t.Fatalf("%d replies, want %d", len(cmds), n)
			}
			gets, err := rdb.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
				for i := range n {
					pipe.Get(ctx, fmt.Sprintf("p%d:%d", protocol, i))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range gets {
				if got := c.(*goredis.StringCmd).Val(); got != strconv.Itoa(i) {
					t.Fatalf("GET %d = %q", i, got)
				}
			}
			protocoltest.WaitFor(t, 5*time.Second, "every exchange to be counted", func() bool {
				return p.Count("SET") == n && p.Count("GET") == n
			})
		})
	}
}

func TestMultiExec(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	for _, protocol := range []int{2, 3} {
		rdb := newClient(t, p.Addr, protocol)
		ctx := context.Background()
		key := fmt.Sprintf("counter%d", protocol)
		cmds, err := rdb.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
			for range 10 {
				pipe.Incr(ctx, key)
			}
			pipe.Get(ctx, key)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := cmds[10].(*goredis.StringCmd).Val(); got != "10" {
			t.Fatalf("resp%d: GET in the transaction = %q, want 10", protocol, got)
		}
		// WATCH and an optimistic transaction.
		err = rdb.Watch(ctx, func(tx *goredis.Tx) error {
			v, err := tx.Get(ctx, key).Int()
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(pipe goredis.Pipeliner) error {
				pipe.Set(ctx, key, v*2, 0)
				return nil
			})
			return err
		}, key)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := rdb.Get(ctx, key).Int(); v != 20 {
			t.Fatalf("resp%d: after WATCH/MULTI/EXEC the counter is %d, want 20", protocol, v)
		}
	}
}

func TestEval(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	for _, protocol := range []int{2, 3} {
		rdb := newClient(t, p.Addr, protocol)
		ctx := context.Background()
		v, err := rdb.Eval(ctx, "return {KEYS[1], ARGV[1], {1, {2, {3, 'deep'}}}, redis.call('INCRBY', KEYS[1], 5)}", []string{"evalkey"}, "arg").Result()
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(v)
		want := fmt.Sprintf("[evalkey arg [1 [2 [3 deep]]] %d]", 5*protocol-5) // 5, then 10
		if got != want {
			t.Fatalf("resp%d: EVAL = %s, want %s", protocol, got, want)
		}
		if _, err := rdb.Eval(ctx, "return redis.error_reply('BUSY script error')", nil).Result(); err == nil || err.Error() != "BUSY script error" {
			t.Fatalf("resp%d: EVAL error = %v", protocol, err)
		}
	}
}

// randomValue returns n bytes of a seeded pseudo-random stream.
func randomValue(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestLargeValues(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	rdb := newClient(t, p.Addr, 3)
	ctx := context.Background()
	for i, size := range []int{0, 1, 16<<10 - 2, 32<<10 - 2, 32 << 10, 64<<10 + 7, 1 << 20, 10 << 20} {
		val := randomValue(size, uint64(i+1))
		key := fmt.Sprintf("big%d", i)
		if err := rdb.Set(ctx, key, val, 0).Err(); err != nil {
			t.Fatalf("SET %d bytes: %v", size, err)
		}
		got, err := rdb.Get(ctx, key).Bytes()
		if err != nil {
			t.Fatalf("GET %d bytes: %v", size, err)
		}
		if sha256.Sum256(got) != sha256.Sum256(val) {
			t.Fatalf("the %d-byte value came back changed", size)
		}
	}
	// A pipeline mixing large and small values stays in order.
	cmds, err := rdb.Pipelined(ctx, func(pipe goredis.Pipeliner) error {
		for i := range 20 {
			pipe.Get(ctx, fmt.Sprintf("big%d", i%8))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cmds {
		if got := len(c.(*goredis.StringCmd).Val()); got != []int{0, 1, 16<<10 - 2, 32<<10 - 2, 32 << 10, 64<<10 + 7, 1 << 20, 10 << 20}[i%8] {
			t.Fatalf("pipelined GET %d has %d bytes", i, got)
		}
	}
}

// A 10 MB value is streamed through the proxy, never held whole: the
// process allocates far less than the value while it crosses both ways.
func TestLargeValueStreams(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	const size = 10 << 20
	rc := dialRaw(t, p.Addr)
	rc.send("PING")
	rc.expect("+PONG\r\n")

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	gen := rand.New(rand.NewPCG(7, 7))
	sum := sha256.New()
	chunk := make([]byte, 32<<10)
	rc.write(fmt.Sprintf("*3\r\n$3\r\nSET\r\n$5\r\nhuge1\r\n$%d\r\n", size))
	for left := size; left > 0; {
		n := min(left, len(chunk))
		for i := range chunk[:n] {
			chunk[i] = byte(gen.Uint32())
		}
		sum.Write(chunk[:n])
		if _, err := rc.c.Write(chunk[:n]); err != nil {
			t.Fatal(err)
		}
		left -= n
	}
	rc.write("\r\n")
	rc.expect("+OK\r\n")
	want := sum.Sum(nil)

	rc.send("GET", "huge1")
	rc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := rc.r.ReadString('\n')
	if err != nil || line != fmt.Sprintf("$%d\r\n", size) {
		t.Fatalf("GET header %q, %v", line, err)
	}
	sum.Reset()
	if _, err := io.CopyBuffer(sum, io.LimitReader(rc.r, size), chunk); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sum.Sum(nil), want) {
		t.Fatal("the 10 MB value came back changed")
	}
	rc.r.Discard(2)
	runtime.ReadMemStats(&after)
	// Both the test and the proxy run in this process: together they must
	// stay far below the value's size.
	if grown := after.TotalAlloc - before.TotalAlloc; grown > size/4 {
		t.Fatalf("allocated %d bytes while 10 MB crossed the proxy twice", grown)
	}
}

func TestPubSub(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	ctx := context.Background()
	for _, protocol := range []int{2, 3} {
		sub := newClient(t, p.Addr, protocol)
		pub := newClient(t, p.Addr, protocol)
		ps := sub.Subscribe(ctx, "news")
		if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
			t.Fatal(err)
		}
		pps := sub.PSubscribe(ctx, "sport.*")
		if _, err := pps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		const n = 200
		for i := range n {
			if err := pub.Publish(ctx, "news", strconv.Itoa(i)).Err(); err != nil {
				t.Fatal(err)
			}
			if err := pub.Publish(ctx, "sport.tennis", strconv.Itoa(i)).Err(); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			m, err := ps.ReceiveMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Payload != strconv.Itoa(i) || m.Channel != "news" {
				t.Fatalf("resp%d: message %d = %+v", protocol, i, m)
			}
			m, err = pps.ReceiveMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Payload != strconv.Itoa(i) || m.Pattern != "sport.*" {
				t.Fatalf("resp%d: pattern message %d = %+v", protocol, i, m)
			}
		}
		ps.Close()
		pps.Close()
	}
	if p.Count("SUBSCRIBE") != 2 || p.Count("PSUBSCRIBE") != 2 {
		t.Errorf("SUBSCRIBE counted %d times, PSUBSCRIBE %d, want 2 each", p.Count("SUBSCRIBE"), p.Count("PSUBSCRIBE"))
	}
}

// Earlier replies are delivered before the switch to a raw relay, and what
// the client pipelined after SUBSCRIBE goes raw.
func TestSubscribeSwitchesToRaw(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	rc := dialRaw(t, p.Addr)
	rc.write(command("SET", "a", "1") + command("GET", "a") + command("SUBSCRIBE", "ch") + command("PING"))
	rc.expect("+OK\r\n")
	rc.expect("$1\r\n1\r\n")
	rc.expect("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n")
	rc.expect("*2\r\n$4\r\npong\r\n$0\r\n\r\n") // PING in subscribed mode
	pub := dialRaw(t, srv.Addr)
	pub.send("PUBLISH", "ch", "hello")
	pub.expect(":1\r\n")
	rc.expect("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n")

	// MONITOR, pipelined behind a command.
	mon := dialRaw(t, p.Addr)
	mon.write(command("PING") + command("MONITOR"))
	mon.expect("+PONG\r\n")
	mon.expect("+OK\r\n")
	pub.send("SET", "watched", "x")
	pub.expect("+OK\r\n")
	mon.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := mon.r.ReadString('\n')
	if err != nil || !strings.Contains(line, `"SET" "watched" "x"`) {
		t.Fatalf("MONITOR line %q, %v", line, err)
	}
}

func TestRESP3Types(t *testing.T) {
	srv := debugRedis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	rdb := newClient(t, p.Addr, 3)
	ctx := context.Background()
	rdb.HSet(ctx, "h3", "a", "1", "b", "2")
	m, err := rdb.HGetAll(ctx, "h3").Result()
	if err != nil || len(m) != 2 || m["a"] != "1" {
		t.Fatalf("HGETALL = %v, %v", m, err)
	}
	rdb.SAdd(ctx, "s3", "x", "y")
	if s, err := rdb.SMembers(ctx, "s3").Result(); err != nil || len(s) != 2 {
		t.Fatalf("SMEMBERS = %v, %v", s, err)
	}
	rdb.ZAdd(ctx, "z3", goredis.Z{Score: 2.5, Member: "m"})
	if f, err := rdb.ZScore(ctx, "z3", "m").Result(); err != nil || f != 2.5 {
		t.Fatalf("ZSCORE = %v, %v", f, err)
	}
	for typ, want := range map[string]string{
		"bignum":   "1234567999999999999999999999999999999",
		"double":   "3.141",
		"true":     "true",
		"false":    "false",
		"verbatim": "This is a verbatim\nstring",
		"attrib":   "Some real reply following the attribute",
		"push":     "Some real reply following the push reply",
		"map":      "map[0:false 1:true 2:false]",
		"set":      "[0 1 2]",
	} {
		v, err := rdb.Do(ctx, "DEBUG", "PROTOCOL", typ).Result()
		if err != nil {
			t.Fatalf("DEBUG PROTOCOL %s: %v", typ, err)
		}
		if got := fmt.Sprint(v); got != want {
			t.Errorf("DEBUG PROTOCOL %s = %q, want %q", typ, got, want)
		}
	}
	if err := rdb.Do(ctx, "DEBUG", "PROTOCOL", "null").Err(); err != goredis.Nil {
		t.Errorf("DEBUG PROTOCOL null: %v, want redis.Nil", err)
	}
}

// A push that arrives while no request waits is relayed at once, and is
// not taken for the reply of the next request.
func TestPushWhileIdle(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	rc := dialRaw(t, p.Addr)
	rc.send("HELLO", "3")
	rc.read()
	rc.send("CLIENT", "TRACKING", "ON")
	rc.expect("+OK\r\n")
	rc.send("GET", "tracked")
	rc.expect("_\r\n")
	other := dialRaw(t, srv.Addr)
	other.send("SET", "tracked", "1")
	other.expect("+OK\r\n")
	rc.expect(">2\r\n$10\r\ninvalidate\r\n*1\r\n$7\r\ntracked\r\n")
	rc.send("GET", "tracked")
	rc.expect("$1\r\n1\r\n")
	// A push between a request and its reply is relayed before the reply.
	// A push among replies is relayed where it comes, and not counted as one.
	rc.write(command("SET", "tracked", "2") + command("GET", "tracked"))
	var replies []string
	pushes := 0
	for len(replies) < 2 {
		if v := rc.read(); strings.HasPrefix(v, ">") {
			pushes++
		} else {
			replies = append(replies, v)
		}
	}
	if pushes != 1 || replies[0] != "+OK\r\n" || replies[1] != "$1\r\n2\r\n" {
		t.Fatalf("got %d pushes and replies %q", pushes, replies)
	}
	protocoltest.WaitFor(t, 5*time.Second, "the exchanges to be counted", func() bool { return p.Count("GET") == 3 })
}

func TestClientReply(t *testing.T) {
	srv := testenv.Redis(t)
	// Every SET draws an error: a SET whose reply is suppressed must still
	// reach redis, or the client would read a reply it does not expect.
	fail := &protocoltest.Fixed{E: errorEffect("")}
	p := startProxy(t, srv.Addr, proxyConfig{mix: protocoltest.Mix(t, protocoltest.Entry(100, fail, "SET"))})
	rc := dialRaw(t, p.Addr)
	rc.write(command("CLIENT", "REPLY", "OFF") + command("SET", "k", "1") + command("INCR", "k") +
		command("client", "reply", "on") + command("GET", "k"))
	rc.expect("+OK\r\n")
	rc.expect("$1\r\n2\r\n")
	rc.write(command("CLIENT", "REPLY", "SKIP") + command("SET", "k", "5") + command("GET", "k") + "PING\r\n")
	rc.expect("$1\r\n5\r\n")
	rc.expect("+PONG\r\n")
	rc.write(command("CLIENT", "REPLY", "SKIP") + command("CLIENT", "REPLY", "SKIP") + command("INCR", "k") + command("GET", "k"))
	rc.expect("$1\r\n6\r\n")
	rc.write(command("CLIENT", "REPLY", "SKIP") + "*0\r\n" + command("GET", "k"))
	rc.expect("$1\r\n6\r\n")
	rc.write(command("CLIENT", "REPLY", "OFF") + command("RESET") + command("SET", "k", "7"))
	rc.expect("+RESET\r\n")
	rc.expect("-" + DefaultErrorMessage + "\r\n")
	rc.send("GET", "k")
	rc.expect("$1\r\n6\r\n")
	if got := fail.Calls(); got != 3 {
		t.Errorf("the error behavior was drawn %d times, want 3", got)
	}
}

func TestInline(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	rc := dialRaw(t, p.Addr)
	rc.write("PING\r\nSET  k   v\r\n\r\nget k\nMGET k nokey\r\n")
	rc.expect("+PONG\r\n")
	rc.expect("+OK\r\n")
	rc.expect("$1\r\nv\r\n")
	rc.expect("*2\r\n$1\r\nv\r\n$-1\r\n")
	protocoltest.WaitFor(t, 5*time.Second, "the exchanges to be counted", func() bool {
		return p.Count("PING") == 1 && p.Count("SET") == 1 && p.Count("GET") == 1 && p.Count("MGET") == 1
	})
}

// A client that half-closes after a pipeline still reads every reply.
func TestHalfClose(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	c, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var req strings.Builder
	for i := range 500 {
		req.WriteString(command("SET", fmt.Sprint("hc", i), strings.Repeat("v", 1000)))
	}
	req.WriteString(command("ECHO", "done"))
	io.WriteString(c, req.String())
	c.(*net.TCPConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("+OK\r\n", 500) + "$4\r\ndone\r\n"; string(got) != want {
		t.Fatalf("got %d bytes of replies, want %d", len(got), len(want))
	}
}

// readUntil reads until the connection ends or the data ends with suffix.
func readUntil(t *testing.T, c net.Conn, suffix string) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(got, []byte(suffix)) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("read after %q: %v", got, err)
		}
	}
	return got
}

// Bytes that are not RESP go raw to redis, which answers them as it would
// without the proxy (usually with its protocol error and a close), and
// the replies before them are delivered first.
func TestClientProtocolErrorFallsBack(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	for _, bad := range []string{
		"*2\r\n$3\r\nGET\r\n:1\r\n",                  // not a bulk string
		"*1\r\n$9999999999\r\n",                      // a bulk longer than 512 MB
		"*1\r\n$3\r\nGETxx\r\n",                      // payload not ended by CRLF
		"*" + strings.Repeat("9", 40) + "\r\n",       // a count line too long
		"*1\r\n$" + strings.Repeat("1", 40) + "\r\n", // a length line too long
		strings.Repeat("x", 70<<10) + "\r\n",         // an inline request over 64 KiB
	} {
		req := command("PING") + bad + command("ECHO", "end")
		var replies [2][]byte
		for i, addr := range []string{srv.Addr, p.Addr} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			go io.WriteString(c, req)
			replies[i] = readUntil(t, c, "$3\r\nend\r\n")
			c.Close()
		}
		// Redis judges an inline request over 64 KiB by how much of it
		// each of its reads brought, so its error text depends on how the
		// bytes were split on the way: only the error itself must match.
		if strings.HasPrefix(bad, "xxx") {
			replies[0], replies[1] = replies[0][:len("+PONG\r\n-ERR")], replies[1][:min(len(replies[1]), len("+PONG\r\n-ERR"))]
		}
		if !bytes.Equal(replies[0], replies[1]) {
			t.Errorf("after %.40q: redis answered %q, through the proxy %q", bad, replies[0], replies[1])
		}
		if !bytes.HasPrefix(replies[1], []byte("+PONG\r\n-ERR")) {
			t.Errorf("after %.40q: got %q, want PONG then redis' error", bad, replies[1])
		}
	}
	if got := p.Count("PING"); got != 6 {
		t.Errorf("PING counted %d times, want 6", got)
	}
}

// fakeBackend serves each connection with fn.
func fakeBackend(t *testing.T, fn func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fn(c)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// A backend reply that is not RESP closes the connection cleanly after the
// replies before it; a huge claimed length is refused, not allocated.
func TestBackendProtocolErrorCloses(t *testing.T) {
	for name, reply := range map[string]string{
		"huge bulk":      "$2147483648\r\n",
		"over max":       "$536870913\r\n",
		"unknown type":   "?what\r\n",
		"bad integer":    ":12x\r\n",
		"no crlf":        "$3\r\nabcde",
		"negative count": "*-2\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			backend := fakeBackend(t, func(c net.Conn) {
				r := bufio.NewReader(c)
				readValue(r)
				io.WriteString(c, "+OK\r\n")
				readValue(r)
				io.WriteString(c, reply+strings.Repeat("x", 100))
				io.Copy(io.Discard, r)
			})
			p := startProxy(t, backend, proxyConfig{})
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			rc := dialRaw(t, p.Addr)
			rc.send("SET", "a", "b")
			rc.expect("+OK\r\n")
			rc.send("GET", "a")
			rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.ReadAll(rc.r) // whatever was written before the bad bytes, then the close
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grown := after.TotalAlloc - before.TotalAlloc; grown > 50<<20 {
				t.Fatalf("allocated %d bytes for a claimed length", grown)
			}
			protocoltest.WaitFor(t, 5*time.Second, "Serve to report the protocol error", func() bool {
				errs := p.Errors()
				return len(errs) == 1 && isProtocolError(errs[0])
			})
		})
	}
}

// The backend's unsolicited error (maxclients) reaches the client.
func TestUnsolicitedReply(t *testing.T) {
	backend := fakeBackend(t, func(c net.Conn) {
		io.WriteString(c, "-ERR max number of clients reached\r\n")
	})
	p := startProxy(t, backend, proxyConfig{})
	rc := dialRaw(t, p.Addr)
	rc.expect("-ERR max number of clients reached\r\n")
	if err := rc.expectClosed(); err != nil {
		t.Fatalf("the connection ended with %v, want EOF", err)
	}
}

// QUIT: redis answers and closes; the client gets the answer and the end.
func TestQuit(t *testing.T) {
	srv := testenv.Redis(t)
	p := startProxy(t, srv.Addr, proxyConfig{})
	rc := dialRaw(t, p.Addr)
	rc.write(command("SET", "q", "1") + command("QUIT"))
	rc.expect("+OK\r\n")
	rc.expect("+OK\r\n")
	if err := rc.expectClosed(); err != nil {
		t.Fatalf("the connection ended with %v, want EOF", err)
	}
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("Serve returned %v", errs)
	}
}
