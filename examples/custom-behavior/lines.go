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
// behavior for it, and carries out the drawn effect in the protocol's terms.
func (p lines) Serve(ctx context.Context, s chaos.Session) error {
	backend, err := s.Dial(ctx)
	if err != nil {
		return err
	}
	defer backend.Close()
	client := s.Client()
	fromClient, fromBackend := bufio.NewReader(client), bufio.NewReader(backend)
	for {
		line, err := fromClient.ReadString('\n')
		if err != nil {
			return nil // the client left
		}
		began := time.Now()
		req := &chaos.Request{Command: strings.ToUpper(firstWord(line))}
		e := s.Draw(req).Effect
		if err := relay.Wait(ctx, e.Delay); err != nil {
			return err
		}
		switch e.Fault {
		case chaos.FaultError:
			if _, err := io.WriteString(client, p.errorLine); err != nil {
				return err
			}
			s.Exchanged(req, time.Since(began))
			continue
		case chaos.FaultClose, chaos.FaultRefuse, chaos.FaultAbort, chaos.FaultReset:
			return nil // the engine closes the client
		case chaos.FaultHang, chaos.FaultTimeout:
			io.Copy(io.Discard, fromClient)
			return nil
		}
		if _, err := io.WriteString(backend, line); err != nil {
			return err
		}
		s.Relayed(chaos.ToBackend, int64(len(line)))
		answer, err := fromBackend.ReadString('\n')
		if err != nil {
			return err
		}
		if err := relay.Wait(ctx, e.ResponseDelay); err != nil {
			return err
		}
		if _, err := io.WriteString(client, answer); err != nil {
			return err
		}
		s.Relayed(chaos.ToClient, int64(len(answer)))
		s.Exchanged(req, time.Since(began))
	}
}

func firstWord(line string) string {
	if f := strings.Fields(line); len(f) > 0 {
		return f[0]
	}
	return ""
}
