package memcache

import (
	"bytes"
	"context"
	"io"
	"math"
	"net"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

// FuzzParseRequest checks that any command line classifies without a
// panic, within memcached's bounds, and without allocating what it claims.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"set k 0 0 5\r\n", "cas k 0 0 5 1 noreply\r\n", "get a b c\r\n", "ms k 5 q T0\r\n",
		"mg k v q k O1\r\n", "set k 0 0 4294967301\r\n", "delete k 0 noreply\r\n", "\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r := parseRequest(line)
		if r.cmd == nil || r.cmd.req == nil {
			t.Fatal("no command")
		}
		if r.data < -1 || r.data > math.MaxInt32-2 {
			t.Fatalf("data length %d out of memcached's range", r.data)
		}
		if len(r.cmd.req.Command) > maxUnknownName && commands[r.cmd.req.Command] == nil {
			t.Fatalf("command name of %d bytes", len(r.cmd.req.Command))
		}
		if r.kind > kindStream {
			t.Fatalf("kind %d", r.kind)
		}
		if r.data >= 0 && r.cmd.class != classStorage && r.cmd.class != classCas && r.cmd.req.Command != "ms" {
			t.Fatalf("%q reads a data block", r.cmd.req.Command)
		}
	})
}

// FuzzRelayResponse frames arbitrary backend bytes: no panic, and what is
// relayed without inject is exactly a prefix of the input.
func FuzzRelayResponse(f *testing.F) {
	for _, s := range []string{
		"VALUE a 0 3\r\nabc\r\nEND\r\n", "VA 2 f1\r\nhi\r\n", "STAT pid 1\r\nEND\r\n", "HD\r\nMN\r\n",
		"VALUE a 0 99999999999\r\n", "STORED\r\n", "VA 5\r\nab", "PREFIX a\r\nEND\r\n",
	} {
		for mode := range byte(6) {
			f.Add([]byte(s), mode)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte, mode byte) {
		u := unit{run: mode&1 != 0, swallow: mode&2 != 0, corrupt: mode&4 != 0, reply: []byte("SERVER_ERROR x\r\n")}
		src := bytes.NewReader(in)
		br := kit.NewReader(src, 16)
		f := framer{br: br}
		var out bytes.Buffer
		err := f.relay(&out, u)
		if f.n != int64(out.Len()) {
			t.Fatalf("counted %d bytes, relayed %d", f.n, out.Len())
		}
		if u.corrupt {
			if out.Len() > len(in)+len(u.reply) {
				t.Fatalf("relayed %d bytes from %d", out.Len(), len(in))
			}
			return
		}
		if !bytes.HasPrefix(in, out.Bytes()) {
			t.Fatalf("relayed %q, not a prefix of %q", out.Bytes(), in)
		}
		if err == nil && !u.swallow {
			if consumed := len(in) - src.Len() - br.Buffered(); out.Len() != consumed {
				t.Fatalf("relayed %d bytes, consumed %d", out.Len(), consumed)
			}
		}
	})
}

// FuzzServe runs whole connections: client bytes and backend bytes from
// the input, a fault chosen by the input for some commands. Serve must end
// once both peers have said everything and closed, and never panic.
func FuzzServe(f *testing.F) {
	f.Add([]byte("set a 0 0 1\r\nx\r\nget a\r\nmg a v q\r\n"), []byte("STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\nVA 1\r\nx\r\nMN\r\n"), byte(0))
	f.Add([]byte("get a b\r\nmn\r\nset b 0 0 2 noreply\r\nhi\r\n"), []byte("END\r\nMN\r\n"), byte(1))
	f.Add([]byte("ms k 2 q\r\nhi\r\nmg k q\r\nversion\r\n"), []byte("HD\r\nMN\r\nVERSION 1\r\n"), byte(2))
	f.Add([]byte("stats\r\nget x\r\n"), []byte("STAT a 1\r\nEND\r\nEND\r\n"), byte(3))
	f.Add([]byte("get a\r\n"), []byte("VALUE a 0 5\r\nab"), byte(4))
	f.Add([]byte("\x80\x0b\x00\x00"), []byte("\x81\x0b"), byte(0))
	effects := []chaos.Effect{
		{},
		{Fault: chaos.FaultError},
		{Fault: chaos.FaultError, Error: chaos.ErrorSpec{Inject: true}},
		{Fault: chaos.FaultAbort},
		{Fault: chaos.FaultClose},
		{ResponseDelay: time.Millisecond, Delay: time.Millisecond},
		{ToClient: limit(5)},
		{Fault: chaos.FaultReset},
	}
	f.Fuzz(func(t *testing.T, client, backend []byte, fault byte) {
		e := effects[int(fault)%len(effects)]
		r := rules{"get": e, "mg": e, "set": e, "ms": e, "version": e}
		bl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer bl.Close()
		backendDone := make(chan struct{})
		go func() {
			defer close(backendDone)
			c, err := bl.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			c.Write(backend)
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
		}()
		p := startProxy(t, bl.Addr().String(), r)
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			c.Write(client)
			c.(*net.TCPConn).CloseWrite()
		}()
		if _, err := io.Copy(io.Discard, c); err != nil && !relay.OrdinaryEnd(err) {
			t.Fatalf("client: %v", err)
		}
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for p.Active.Load() > 0 {
			select {
			case <-ctx.Done():
				t.Fatal("Serve did not return")
			case <-time.After(time.Millisecond):
			}
		}
		bl.Close()
		<-backendDone
		p.Stop()
	})
}
