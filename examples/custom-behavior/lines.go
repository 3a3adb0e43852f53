package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/kit"
)

// init registers a custom protocol the same way as the behavior: one call,
// its options declared once.
func init() {
	chaos.RegisterProtocol(chaos.ProtocolSpec{
		Name: "lines",
		Doc: "A line protocol: every line the client sends is a request and the " +
			"backend answers each with one line. The mix is drawn per request; an " +
			"error fault answers \"ERROR <message>\" without reaching the backend. " +
			"Requests are pipelined and every fault acts as on vaurien's own protocols.",
		Options: chaos.Options{
			{Name: "error_message", Kind: chaos.String, Default: "vaurien injected fault",
				Doc: "the text of the error line a fault answers"},
		},
		Example: "route \"lines\" {\n  listen   = \"127.0.0.1:7000\"\n  backend  = \"127.0.0.1:7001\"\n  protocol = \"lines\"\n}",
		New: func(v chaos.Values) (chaos.Protocol, error) {
			return lines{errorLine: "ERROR " + v.String("error_message") + "\n"}, nil
		},
	})
}

type lines struct{ errorLine string }

// Serve hands the connection to the protocol kit, which dials, draws per
// request, carries out every drawn effect, pipelines and relays raw when
// asked. The protocol only says where requests and answers end.
func (p lines) Serve(ctx context.Context, s chaos.Session) error {
	return kit.Serve(ctx, s, &lineFraming{errorLine: []byte(p.errorLine)}, kit.Options{})
}

// lineFraming is the whole of the protocol: its framing. Its own state of
// a request (the R of kit.Exchange) is the length of the request's line.
type lineFraming struct{ errorLine []byte }

// Request frames the next line. It looks at it and leaves it for Send; a
// line longer than the kit's buffer is not framed: the connection goes raw.
func (f *lineFraming) Request(in *kit.Reader, x *kit.Exchange[int]) error {
	line, err := in.PeekSlice('\n')
	if err == bufio.ErrBufferFull {
		x.Then = kit.RawNow
		return nil
	}
	if err != nil {
		return err
	}
	x.Req = &chaos.Request{Command: strings.ToUpper(firstWord(line))}
	x.R = len(line)
	return nil
}

// Send writes the line to out: the backend, a filter, or nowhere when the
// proxy answers in place of the backend.
func (f *lineFraming) Send(in *kit.Reader, out io.Writer, x *kit.Exchange[int]) error {
	line, _ := in.Peek(x.R)
	if _, err := out.Write(line); err != nil {
		return err
	}
	_, err := in.Discard(x.R)
	return err
}

// Reply relays the backend's answer line, however long. An error that
// asks to corrupt the answer replaces it: a line has no inside to corrupt.
func (f *lineFraming) Reply(in *kit.Reader, out io.Writer, x *kit.Exchange[int]) error {
	if x.Inject {
		if _, err := out.Write(x.ErrorReply()); err != nil {
			return err
		}
		out = io.Discard
	}
	for {
		line, err := in.ReadSlice('\n')
		if _, werr := out.Write(line); werr != nil {
			return werr
		}
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}

// Error is how an error looks in this protocol.
func (f *lineFraming) Error(*kit.Exchange[int], *chaos.ErrorSpec) []byte { return f.errorLine }

func firstWord(line []byte) string {
	if f := bytes.Fields(line); len(f) > 0 {
		return string(f[0])
	}
	return ""
}
