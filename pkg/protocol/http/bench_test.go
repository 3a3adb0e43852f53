package httpproto

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

const benchRequest = "GET /api/v1/items/12345?expand=owner&limit=20 HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=0123456789abcdef; theme=dark\r\n\r\n"

const benchResponse = "HTTP/1.1 200 OK\r\n" +
	"Date: Mon, 02 Jan 2026 15:04:05 GMT\r\n" +
	"Content-Type: application/json; charset=utf-8\r\n" +
	"Content-Length: 1024\r\n" +
	"Cache-Control: no-cache\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"X-Request-Id: 4bf92f3577b34da6a3ce929d0e0e4736\r\n\r\n"

// BenchmarkParseRequest reads and parses a request head: in place, as a
// connection does when its buffer holds the head whole, and gathered line
// by line, as when the head comes in pieces.
func BenchmarkParseRequest(b *testing.B) {
	data := []byte(benchRequest)
	src := bytes.NewReader(nil)
	r := newReader(src, bufSize)
	var head []byte
	var rq request
	b.Run("in-place", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			src.Reset(data)
			rewind(r)
			r.Peek(1)
			n := peekRequest(r, &rq)
			if n != len(data) {
				b.Fatalf("peekRequest: %d", n)
			}
			r.Discard(n)
		}
	})
	b.Run("gathered", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			src.Reset(data)
			rewind(r)
			var err error
			if head, err = readHead(r, head, true); err != nil {
				b.Fatal(err)
			}
			if err := parseRequest(head, &rq); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkParseResponse does the same for a response head.
func BenchmarkParseResponse(b *testing.B) {
	data := []byte(benchResponse)
	src := bytes.NewReader(nil)
	r := newReader(src, bufSize)
	var head []byte
	var rs response
	b.Run("in-place", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			src.Reset(data)
			rewind(r)
			r.Peek(1)
			if err := parseResponse(r.Bytes(), &rs); err != nil || rs.end != len(data) {
				b.Fatalf("parseResponse: %d, %v", rs.end, err)
			}
		}
	})
	b.Run("gathered", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			src.Reset(data)
			rewind(r)
			var err error
			if head, err = readHead(r, head, false); err != nil {
				b.Fatal(err)
			}
			if err := parseResponse(head, &rs); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkChunkedBody(b *testing.B) {
	var in strings.Builder
	chunk := strings.Repeat("x", 4000)
	for i := 0; i < 16; i++ {
		in.WriteString("fa0\r\n" + chunk + "\r\n")
	}
	in.WriteString("0\r\n\r\n")
	data := []byte(in.String())
	src := bytes.NewReader(nil)
	r := newReader(src, bufSize)
	var bd body
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(data)
		rewind(r)
		bd.reset(r, bodyChunked, 0, false)
		if _, err := bd.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// copyProxy is the baseline: a minimal proxy that relays each connection
// with two io.Copy calls.
func copyProxy(tb testing.TB, backend string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			bc, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			open = append(open, c, bc)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(bc, c); bc.(*net.TCPConn).CloseWrite() }()
			go func() { defer wg.Done(); io.Copy(c, bc); c.(*net.TCPConn).CloseWrite() }()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// BenchmarkPassThrough compares keep-alive GETs of 1 KiB from a net/http
// client: straight to the backend, through a minimal io.Copy proxy, and
// through the http protocol with a dummy mix.
func BenchmarkPassThrough(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 1024)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	srv := &http.Server{Handler: mux}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	backend := ln.Addr().String()

	targets := []struct {
		name string
		addr func(b *testing.B) string
	}{
		{"direct", func(*testing.B) string { return backend }},
		{"iocopy", func(b *testing.B) string { return copyProxy(b, backend) }},
		{"http", func(b *testing.B) string { return startProxy(b, backend, proxyConfig{}).Addr }},
	}
	for _, tg := range targets {
		for _, parallel := range []bool{false, true} {
			name := tg.name
			if parallel {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				url := "http://" + tg.addr(b) + "/"
				tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr}
				do := func() {
					resp, err := c.Get(url)
					if err != nil {
						b.Fatal(err)
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if n != 1024 {
						b.Fatalf("got %d bytes", n)
					}
				}
				b.ReportAllocs()
				cpu0 := cpuTime()
				start := time.Now()
				if parallel {
					b.SetParallelism(4)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							do()
						}
					})
				} else {
					for b.Loop() {
						do()
					}
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
				// CPU time per request (client, backend and proxy together) is
				// steadier than req/s on a loaded machine: the difference
				// between targets is the proxy's cost.
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "cpu-µs/req")
			})
		}
	}
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLargeBody compares 10 MB downloads and uploads with a length:
// through a minimal io.Copy proxy (which splices) and through the http
// protocol.
func BenchmarkLargeBody(b *testing.B) {
	const size = 10 << 20
	data := payload(1, size)
	mux := http.NewServeMux()
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) { w.Write(data) })
	mux.HandleFunc("/up", func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) })
	srv := &http.Server{Handler: mux}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	backend := ln.Addr().String()
	for _, tg := range []struct {
		name string
		addr func(b *testing.B) string
	}{
		{"iocopy", func(b *testing.B) string { return copyProxy(b, backend) }},
		{"http", func(b *testing.B) string { return startProxy(b, backend, proxyConfig{}).Addr }},
	} {
		for _, dir := range []string{"down", "up"} {
			b.Run(tg.name+"/"+dir, func(b *testing.B) {
				url := "http://" + tg.addr(b) + "/" + dir
				tr := &http.Transport{DisableCompression: true, WriteBufferSize: 64 << 10, ReadBufferSize: 64 << 10}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr}
				b.SetBytes(size)
				for b.Loop() {
					var resp *http.Response
					var err error
					if dir == "down" {
						resp, err = c.Get(url)
					} else {
						resp, err = c.Post(url, "x", bytes.NewReader(data))
					}
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
	}
}

// cannedBackend answers every request head it reads with resp, as fast as
// a backend can: what it costs is small beside the proxy's share.
func cannedBackend(tb testing.TB, resp []byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Go(func() {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) > 2 {
						continue
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			})
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// BenchmarkExchange runs keep-alive exchanges of a short request and a
// 1 KiB response over 16 connections at once, from raw clients to a canned
// backend, through a minimal io.Copy proxy and through the http protocol
// (plain, with an idle timeout, and with 10% of the requests delayed 1 ms),
// and reports the CPU time of the whole process per exchange: the
// difference between targets is what the proxy costs, less noisy than
// req/s on a loaded machine.
func BenchmarkExchange(b *testing.B) {
	const conns = 16
	req := []byte("GET /1k HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n\r\n")
	resp := []byte("HTTP/1.1 200 OK\r\nServer: canned\r\nDate: Mon, 02 Jan 2026 15:04:05 GMT\r\n" +
		"Content-Type: application/octet-stream\r\nContent-Length: 1024\r\nConnection: keep-alive\r\n\r\n" +
		strings.Repeat("x", 1024))
	backend := cannedBackend(b, resp)
	delay := chaos.Effect{Delay: time.Millisecond}
	for _, tg := range []struct {
		name string
		addr func(b *testing.B) string
	}{
		{"iocopy", func(b *testing.B) string { return copyProxy(b, backend) }},
		{"http", func(b *testing.B) string { return startProxy(b, backend, proxyConfig{}).Addr }},
		{"http-idle", func(b *testing.B) string { return startProxy(b, backend, proxyConfig{idle: time.Minute}).Addr }},
		{"http-delay10", func(b *testing.B) string {
			return startProxy(b, backend, proxyConfig{entries: []chaos.Entry{{Name: "delay", Percent: 10, Behavior: &protocoltest.Fixed{E: delay}}}}).Addr
		}},
	} {
		b.Run(tg.name, func(b *testing.B) {
			addr := tg.addr(b)
			cs := make([]net.Conn, conns)
			for i := range cs {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				cs[i] = c
			}
			var next atomic.Int64
			work := func(c net.Conn) error {
				buf := make([]byte, len(resp))
				for next.Add(1) <= int64(b.N) {
					if _, err := c.Write(req); err != nil {
						return err
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						return err
					}
				}
				return nil
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			for _, c := range cs {
				wg.Go(func() { errs <- work(c) })
			}
			wg.Wait()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N)/1e3, "cpu-µs/req")
			close(errs)
			for err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
