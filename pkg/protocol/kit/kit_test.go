package kit_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(testenv.WithSkipSummary(m))
}

// words is a line protocol whose first word says how a request is framed:
// "own" is answered by the proxy, "close" ends the connection after its
// answer, "stop" turns out malformed once sent, "early N" is followed by N
// bytes that the client sends only once it has the answer.
type words struct {
	inTurn bool
}

func (p words) Serve(ctx context.Context, s chaos.Session) error {
	return kit.Serve(ctx, s, &wordFraming{}, kit.Options{ReplyDelayInTurn: p.inTurn})
}

type wordFraming struct{}

type wordReq struct {
	line int
	body int64
	stop bool
}

func (f *wordFraming) Request(in *kit.Reader, x *kit.Exchange[wordReq]) error {
	line, err := in.PeekSlice('\n')
	if err != nil {
		return err
	}
	x.Req = &chaos.Request{Command: "LINE"}
	x.R.line = len(line)
	word, arg, _ := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
	switch string(word) {
	case "own":
		x.Req, x.Reply, x.Then = nil, kit.ReplyOwn, kit.Close
	case "close":
		x.Then = kit.Close
	case "stop":
		x.R.stop = true
	case "early":
		x.R.body, _ = strconv.ParseInt(string(arg), 10, 64)
		x.Early = true
	}
	return nil
}

func (f *wordFraming) Send(in *kit.Reader, out io.Writer, x *kit.Exchange[wordReq]) error {
	if x.Reply == kit.ReplyOwn {
		in.Discard(x.R.line)
		return nil
	}
	if _, err := in.CopyN(out, int64(x.R.line)+x.R.body); err != nil {
		return err
	}
	if x.R.stop {
		return kit.ErrStop
	}
	return nil
}

func (f *wordFraming) Reply(in *kit.Reader, out io.Writer, x *kit.Exchange[wordReq]) error {
	if x.Reply == kit.ReplyOwn {
		_, err := io.WriteString(out, "proxy\n")
		return err
	}
	line, err := in.PeekSlice('\n')
	if err != nil {
		return err
	}
	out.Write(line)
	in.Discard(len(line))
	return nil
}

func (f *wordFraming) Error(*kit.Exchange[wordReq], *chaos.ErrorSpec) []byte {
	return []byte("error\n")
}

// lineBackend answers each line with the line, and reports what it read
// once the proxy ends its stream.
func lineBackend(t *testing.T, got chan<- string) *testenv.Backend {
	return testenv.Serve(t, func(c net.Conn) {
		var all bytes.Buffer
		br := bufio.NewReader(io.TeeReader(c, &all))
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				break
			}
			c.Write(line)
		}
		got <- all.String()
	})
}

func dial(t *testing.T, addr, send string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, send)
	return c, bufio.NewReader(c)
}

func start(t *testing.T, backend string, p words, entries ...chaos.Entry) *protocoltest.Proxy {
	return protocoltest.Start(t, protocoltest.Config{Protocol: p, Backend: backend, Mix: protocoltest.Mix(t, entries...)})
}

// TestCloseAndOwnAnswer: a Close request's answer is the last the client
// gets, then the end of the stream, and nothing after it is forwarded; a
// ReplyOwn request is answered by the proxy in its turn, without the
// backend.
func TestCloseAndOwnAnswer(t *testing.T) {
	for _, tc := range []struct {
		send, answers, backend string
	}{
		{"a\nclose\nb\n", "a\nclose\n", "a\nclose\n"},
		{"a\nown\nb\n", "a\nproxy\n", "a\n"},
	} {
		got := make(chan string, 1)
		b := lineBackend(t, got)
		p := start(t, b.Addr, words{})
		_, br := dial(t, p.Addr, tc.send)
		if answers, err := io.ReadAll(br); err != nil || string(answers) != tc.answers {
			t.Errorf("%q: the client read %q, %v; want %q and the end", tc.send, answers, err, tc.answers)
		}
		if forwarded := <-got; forwarded != tc.backend {
			t.Errorf("%q: the backend read %q, want %q", tc.send, forwarded, tc.backend)
		}
		if errs := p.Errors(); len(errs) > 0 {
			t.Errorf("Serve: %v", errs)
		}
	}
}

// TestStop: a request whose Send reports ErrStop is the last the backend
// gets, then the end of its stream; the answers due still reach the client.
func TestStop(t *testing.T) {
	got := make(chan string, 1)
	b := lineBackend(t, got)
	p := start(t, b.Addr, words{})
	_, br := dial(t, p.Addr, "a\nstop\nb\n")
	if forwarded := <-got; forwarded != "a\nstop\n" {
		t.Errorf("the backend read %q, want what came up to the stop", forwarded)
	}
	if answers, err := io.ReadAll(br); err != nil || string(answers) != "a\nstop\n" {
		t.Errorf("the client read %q, %v", answers, err)
	}
}

// TestEarly: an Early request is answered while its body has not come yet.
func TestEarly(t *testing.T) {
	got := make(chan string, 1)
	b := lineBackend(t, got)
	p := start(t, b.Addr, words{})
	c, br := dial(t, p.Addr, "early 2\n")
	if line, err := br.ReadString('\n'); err != nil || line != "early 2\n" {
		t.Fatalf("read %q, %v; want the answer before the body is sent", line, err)
	}
	io.WriteString(c, "x\n")
	c.(*net.TCPConn).CloseWrite()
	if forwarded := <-got; forwarded != "early 2\nx\n" {
		t.Errorf("the backend read %q, want the request and its body", forwarded)
	}
}

// TestReplyDelayInTurn: with ReplyDelayInTurn the reply delays of a
// pipeline add up (they would overlap, run from the requests' arrival).
func TestReplyDelayInTurn(t *testing.T) {
	const d = 150 * time.Millisecond
	delay := chaos.Entry{Name: "delay", Percent: 100, Behavior: &protocoltest.Fixed{E: chaos.Effect{ResponseDelay: d}}}
	got := make(chan string, 1)
	b := lineBackend(t, got)
	p := start(t, b.Addr, words{inTurn: true}, delay)
	begin := time.Now()
	_, br := dial(t, p.Addr, "a\nb\nc\n")
	for range 3 {
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(begin); took < 3*d {
		t.Errorf("three delayed answers took %v, want at least %v", took, 3*d)
	}
}
