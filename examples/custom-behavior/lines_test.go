package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/protocol/protocoltest"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

// lineBackend answers every line with "you said: <line>".
func lineBackend(t *testing.T) string {
	return testenv.Serve(t, func(c net.Conn) {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			fmt.Fprintf(c, "you said: %s\n", sc.Text())
		}
	}).Addr
}

// The custom protocol draws per request: with error limited to PING
// requests, PINGs get the protocol's error line and the rest reach the
// backend, on one connection.
func TestLinesProtocolFaultsPerRequest(t *testing.T) {
	e, err := chaos.NewEntry("error", 100, nil, chaos.MatchSpec{Commands: []string{"ping"}})
	if err != nil {
		t.Fatal(err)
	}
	mix, err := chaos.NewMix([]chaos.Entry{e})
	if err != nil {
		t.Fatal(err)
	}
	s := proxy.New(nil, time.Second)
	if err := s.Apply([]proxy.RouteConfig{{Name: "lines", Listen: "127.0.0.1:0", Backend: lineBackend(t), Protocol: "lines", Mix: mix}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	c, err := net.Dial("tcp", s.Route("lines").Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, tc := range []struct{ send, want string }{
		{"hello", "you said: hello\n"},
		{"ping", "ERROR vaurien injected fault\n"},
		{"get key", "you said: get key\n"},
		{"PING again", "ERROR vaurien injected fault\n"},
	} {
		fmt.Fprintf(c, "%s\n", tc.send)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := r.ReadString('\n')
		if err != nil || got != tc.want {
			t.Fatalf("sent %q: got %q, %v; want %q", tc.send, got, err, strings.TrimSpace(tc.want))
		}
	}
	if st := s.Route("lines").Stats(); st.Requests != 4 || st.Faults != 2 {
		t.Fatalf("%d requests and %d faults counted, want 4 and 2", st.Requests, st.Faults)
	}
}

// TestLinesConformance: the lines protocol carries out every fault and
// option as vaurien's own protocols do.
func TestLinesConformance(t *testing.T) {
	protocoltest.Conform(t, protocoltest.Client{Protocol: lines{errorLine: "ERROR injected\n"}, Backend: lineBackend(t),
		Exchange: func(c net.Conn) (protocoltest.Answer, error) {
			if _, err := io.WriteString(c, "PING\n"); err != nil {
				return 0, err
			}
			line, err := bufio.NewReader(c).ReadString('\n')
			switch {
			case err != nil:
				return 0, err
			case line == "you said: PING\n":
				return protocoltest.Answered, nil
			case strings.HasPrefix(line, "ERROR "):
				return protocoltest.ErrorReply, nil
			}
			return 0, io.ErrUnexpectedEOF
		}})
}
