package memcache

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// bufSize is memcached's own read buffer size, and the kit's.
const bufSize = kit.BufSize

func BenchmarkParseRequest(b *testing.B) {
	for _, line := range []string{
		"get user:1234\r\n",
		"set user:1234 0 3600 100\r\n",
		"set user:1234 0 3600 100 noreply\r\n",
		"gets a b c d e f g h i j\r\n",
		"mg user:1234 v f t q k O1\r\n",
		"ms user:1234 100 T3600 F0 q\r\n",
	} {
		b.Run(strings.Fields(line)[0]+fmt.Sprint(len(line)), func(b *testing.B) {
			l := []byte(line)
			b.ReportAllocs()
			for b.Loop() {
				parseRequest(l)
			}
		})
	}
}

func BenchmarkRelayResponse(b *testing.B) {
	value := strings.Repeat("v", 100)
	for _, tc := range []struct{ name, resp string }{
		{"stored", "STORED\r\n"},
		{"value100", "VALUE user:1234 0 100\r\n" + value + "\r\nEND\r\n"},
		{"multi10", strings.Repeat("VALUE k 0 100\r\n"+value+"\r\n", 10) + "END\r\n"},
		{"va100", "VA 100 f0 t-1\r\n" + value + "\r\n"},
		{"stats", strings.Repeat("STAT some_counter 123456\r\n", 60) + "END\r\n"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			src := strings.NewReader(tc.resp)
			f := framer{br: kit.NewReader(src, bufSize)}
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.resp)))
			for b.Loop() {
				src.Reset(tc.resp) // the Reader, emptied by the last relay, reads it anew
				if err := f.relay(io.Discard, unit{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// copyProxy is the baseline: a minimal io.Copy TCP proxy.
func copyProxy(b *testing.B, backend string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				u, err := net.Dial("tcp", backend)
				if err != nil {
					return
				}
				defer u.Close()
				go func() {
					io.Copy(u, c)
					u.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(c, u)
			})
		}
	})
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// BenchmarkPassThrough compares request/response and pipelined gets of a
// 100-byte value: memcached directly, through an io.Copy proxy, and through
// the memcache protocol with an empty mix.
func BenchmarkPassThrough(b *testing.B) {
	mc := testenv.Memcached(b)
	setup := newLineReader(b, dial(b, mc.Addr))
	value := strings.Repeat("v", 100)
	setup.send("set k 0 0 100\r\n" + value + "\r\n")
	setup.expect("STORED")
	p := startProxy(b, mc.Addr, nil, countOnly)
	targets := []struct{ name, addr string }{
		{"direct", mc.Addr},
		{"iocopy", copyProxy(b, mc.Addr)},
		{"memcache", p.Addr},
	}
	big := strings.Repeat("b", 1<<20)
	setup.send("set big 0 0 1048576\r\n" + big + "\r\n")
	setup.expect("STORED")
	for _, tc := range []struct {
		name   string
		key    string
		answer string
		depth  int
	}{
		{"depth1", "k", "VALUE k 0 100\r\n" + value + "\r\nEND\r\n", 1},
		{"depth32", "k", "VALUE k 0 100\r\n" + value + "\r\nEND\r\n", 32},
		{"1MiB", "big", "VALUE big 0 1048576\r\n" + big + "\r\nEND\r\n", 1},
	} {
		req := strings.Repeat("get "+tc.key+"\r\n", tc.depth)
		want := strings.Repeat(tc.answer, tc.depth)
		depth := tc.depth
		for _, tg := range targets {
			b.Run(tg.name+"/"+tc.name, func(b *testing.B) {
				b.SetBytes(int64(len(want)))
				c := dial(b, tg.addr)
				buf := make([]byte, len(want))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := io.WriteString(c, req); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						b.Fatal(err)
					}
				}
				if !bytes.Equal(buf, []byte(want)) {
					b.Fatalf("answer %q", buf)
				}
				b.ReportMetric(float64(b.N*depth)/b.Elapsed().Seconds(), "req/s")
			})
		}
	}
}
