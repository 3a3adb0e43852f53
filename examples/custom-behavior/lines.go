package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"time"

	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/relay"
)

// init registers a custom protocol the same way as the behavior: one call,
// its options declared once.
func init() {
	chaos.RegisterProtocol(chaos.ProtocolSpec{
		Name: "lines",
		Doc: "A line protocol: every line the client sends is a request and the " +
			"backend answers each with one line. The mix is drawn per request; an " +
			"error fault answers \"ERROR <message>\" without reaching the backend. " +
			"This example relays one request at a time; vaurien's own protocols " +
			"pipeline.",
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

// Serve relays one client connection: it reads a request line, draws a
// behavior for it, and carries out the drawn effect step by step, in the
// order chaos lays it out, in the protocol's terms.
func (p lines) Serve(ctx context.Context, s chaos.Session) error {
	backend, err := s.Dial(ctx)
	if err != nil {
		return err
	}
	defer backend.Close()
	client := s.Client()
	// The route's end closes both, which ends every read below.
	stop := context.AfterFunc(ctx, func() { client.Close(); backend.Close() })
	defer stop()
	fromClient, fromBackend := bufio.NewReader(client), bufio.NewReader(backend)
	var closeDelay time.Duration // the longest drawn: held when the backend closes
	var strike *time.Timer       // a pending reset_peer
	defer func() {
		if strike != nil {
			strike.Stop()
		}
	}()
	for {
		line, err := fromClient.ReadString('\n')
		if err != nil {
			return nil // the client left
		}
		began := time.Now()
		req := &chaos.Request{Command: strings.ToUpper(firstWord(line))}
		e := s.Draw(req).Effect
		var fail, abort bool
		var replyDelay time.Duration
		steps := e.Steps()
		for _, st := range steps.List() {
			switch st.Kind {
			case chaos.StepRefuse:
				s.Refused("down")
				return nil // the engine closes the client
			case chaos.StepClose:
				return relay.Wait(ctx, st.D)
			case chaos.StepWait:
				if err := relay.Wait(ctx, st.D); err != nil {
					return err
				}
			case chaos.StepHang, chaos.StepTimeout:
				if st.D > 0 {
					t := time.AfterFunc(st.D, func() { client.Close() })
					defer t.Stop()
				}
				io.Copy(io.Discard, fromClient) // swallow everything until the client leaves
				return nil
			case chaos.StepReset:
				if st.D <= 0 {
					relay.Reset(client)
					return nil
				}
				if strike == nil {
					strike = time.AfterFunc(st.D, func() { relay.Reset(client) })
				}
			case chaos.StepError:
				fail = true
			case chaos.StepAbort:
				abort = true
			case chaos.StepReplyDelay:
				replyDelay = st.D
			case chaos.StepCloseDelay:
				closeDelay = max(closeDelay, st.D)
			}
		}
		// An error answers in place of the backend, in the protocol's
		// terms: the stream filter the error behavior draws for raw
		// routes (random bytes) is not for it.
		answer, toClient := p.errorLine, chaos.Filter(nil)
		if !fail {
			toClient = e.ToClient
			if err := send(ctx, s, chaos.ToBackend, e.ToBackend, backend, line); err != nil {
				return err
			}
			if abort {
				return nil // the answer never reaches the client
			}
			if answer, err = fromBackend.ReadString('\n'); err != nil {
				return relay.Wait(ctx, closeDelay) // the backend left: slow_close holds the close
			}
		}
		if err := relay.Wait(ctx, replyDelay); err != nil {
			return err
		}
		if err := send(ctx, s, chaos.ToClient, toClient, client, answer); err != nil {
			return err
		}
		s.Exchanged(req, time.Since(began))
	}
}

// send writes data to dst, through the behavior's filter for that
// direction when it drew one, and reports what went out.
func send(ctx context.Context, s chaos.Session, dir chaos.Direction, f chaos.Filter, dst io.Writer, data string) error {
	w := &relay.Counter{W: dst, Events: s, Dir: dir}
	if f == nil {
		_, err := io.WriteString(w, data)
		return err
	}
	return f.Relay(ctx, w, strings.NewReader(data))
}

func firstWord(line string) string {
	if f := strings.Fields(line); len(f) > 0 {
		return f[0]
	}
	return ""
}
