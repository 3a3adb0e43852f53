package logging_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/vaurien-go/vaurien/internal/testenv"
	"github.com/vaurien-go/vaurien/pkg/chaos"
	"github.com/vaurien-go/vaurien/pkg/logging"
	_ "github.com/vaurien-go/vaurien/pkg/plugins/standard"
	"github.com/vaurien-go/vaurien/pkg/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// logBuffer collects log lines written from many goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// events parses every line as a JSON object, failing the test on any other.
func (b *logBuffer) events(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, ev)
	}
	return out
}

// backend answers every connection with echo until the test ends.
func backend(t *testing.T) string {
	return testenv.Echo(t).Addr
}

func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// only is a mix giving every draw to one behavior.
func only(t *testing.T, name string) *chaos.Mix {
	t.Helper()
	b, vals, err := chaos.NewBehavior(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := chaos.NewMix([]chaos.Entry{{Name: name, Percent: 100, Options: vals, Behavior: b}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// run serves routes with the logging observer, lets traffic go to each
// route's address, then shuts the server down.
func run(t *testing.T, log zerolog.Logger, traffic func(addrs map[string]string), routes ...proxy.RouteConfig) {
	t.Helper()
	s := proxy.New(logging.Observer{Log: log}, time.Second)
	for i := range routes {
		routes[i].Listen, routes[i].Protocol = "127.0.0.1:0", "tcp"
	}
	if err := s.Apply(routes); err != nil {
		t.Fatal(err)
	}
	addrs := map[string]string{}
	for _, r := range s.Routes() {
		addrs[r.Name()] = r.Addr()
	}
	traffic(addrs)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Shutdown(ctx)
}

// knock opens a connection, says hello and reads until the proxy ends it
// (an error page, a reset, a close): what a client in a fault storm sees.
func knock(t *testing.T, addr string) {
	c, err := net.Dial("tcp", addr)
	if errors.Is(err, syscall.ECONNRESET) {
		return // an immediate reset can beat the end of the client's connect
	}
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello\n"))
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
}

// TestFaultStormAtInfo sends hundreds of connections into routes where every
// connection is reset or gets an error: at info level that is a handful of
// lines, all JSON with the documented fields, none at warn or error.
func TestFaultStormAtInfo(t *testing.T) {
	var buf logBuffer
	log, err := logging.New(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	const storm, clients = 300, 8
	run(t, log, func(addrs map[string]string) {
		var wg sync.WaitGroup
		for range clients {
			for _, addr := range addrs {
				wg.Go(func() {
					for range storm / clients {
						knock(t, addr)
					}
				})
			}
		}
		wg.Wait()
	},
		proxy.RouteConfig{Name: "resets", Backend: backend(t), Mix: only(t, "reset_peer")},
		proxy.RouteConfig{Name: "errors", Backend: backend(t), Mix: only(t, "error")},
	)
	events := buf.events(t)
	// "mix set" at start and "route stopped" at shutdown, per route.
	if len(events) > 4 {
		t.Errorf("%d faults wrote %d lines at info level, want at most 4", 2*(storm/clients)*clients, len(events))
	}
	for _, ev := range events {
		for _, f := range []string{"level", "time", "message", logging.FieldRoute, logging.FieldProtocol} {
			if _, ok := ev[f]; !ok {
				t.Errorf("event %v lacks field %q", ev, f)
			}
		}
		if ev["level"] != "info" {
			t.Errorf("a fault storm logged at %v: %v", ev["level"], ev)
		}
		if _, err := time.Parse(time.RFC3339Nano, ev["time"].(string)); err != nil {
			t.Errorf("time %v: %v", ev["time"], err)
		}
	}
}

// TestDialFailuresSampled: a dead backend under load warns a few times, not
// once per connection.
func TestDialFailuresSampled(t *testing.T) {
	var buf logBuffer
	log, err := logging.New(&buf, "info", "json")
	if err != nil {
		t.Fatal(err)
	}
	run(t, log, func(addrs map[string]string) {
		for range 100 {
			knock(t, addrs["dead"])
		}
	}, proxy.RouteConfig{Name: "dead", Backend: deadAddr(t)})
	warns := 0
	for _, ev := range buf.events(t) {
		if ev["level"] == "warn" {
			warns++
			if ev["message"] != "backend dial failed" || ev[logging.FieldBackend] == nil || ev["error"] == nil {
				t.Errorf("dial failure event %v", ev)
			}
		}
	}
	if warns == 0 || warns > 5 {
		t.Errorf("100 failed dials gave %d warnings, want 1 to 5", warns)
	}
}

// TestConnectionEventsAtDebug: at debug, every connection is one accepted
// and one closed event carrying route, client and duration, with constant
// messages; faults are debug events naming the behavior.
func TestConnectionEventsAtDebug(t *testing.T) {
	var buf logBuffer
	log, err := logging.New(&buf, "debug", "json")
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]bool{}
	run(t, log, func(addrs map[string]string) {
		for range 3 {
			c, err := net.Dial("tcp", addrs["plain"])
			if err != nil {
				t.Fatal(err)
			}
			clients[c.LocalAddr().String()] = true
			c.Write([]byte("ping"))
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
			c.Close()
		}
		knock(t, addrs["resets"])
	},
		proxy.RouteConfig{Name: "plain", Backend: backend(t)},
		proxy.RouteConfig{Name: "resets", Backend: backend(t), Mix: only(t, "reset_peer")},
	)
	accepted, closed := map[string]bool{}, map[string]bool{}
	faults := 0
	for _, ev := range buf.events(t) {
		switch ev["message"] {
		case "connection accepted", "connection closed":
			if ev["level"] != "debug" {
				t.Errorf("connection event at %v", ev["level"])
			}
			client, _ := ev[logging.FieldClient].(string)
			if ev[logging.FieldRoute] != "plain" || !clients[client] {
				if ev[logging.FieldRoute] == "resets" {
					continue
				}
				t.Errorf("event %v: want route plain and one of the clients %v", ev, clients)
			}
			if ev["message"] == "connection accepted" {
				accepted[client] = true
				continue
			}
			closed[client] = true
			if d, err := time.ParseDuration(fmt.Sprint(ev[logging.FieldDuration])); err != nil || d < 0 {
				t.Errorf("closed event %v: want a duration with its unit", ev)
			}
		case "fault injected":
			faults++
			if ev["level"] != "debug" || ev[logging.FieldBehavior] != "reset_peer" || ev[logging.FieldRoute] != "resets" {
				t.Errorf("fault event %v", ev)
			}
		}
	}
	if len(accepted) != 3 || len(closed) != 3 {
		t.Errorf("accepted %d, closed %d of 3 connections", len(accepted), len(closed))
	}
	if faults != 1 {
		t.Errorf("%d fault events, want 1", faults)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		level, format string
		ok            bool
		json          bool
	}{
		{"info", "json", true, true},
		{"debug", "", true, true},
		{"WARN", "json", true, true},
		{"error", "console", true, false},
		{"", "json", false, false},
		{"trace", "json", false, false},
		{"verbose", "json", false, false},
		{"info", "xml", false, false},
	} {
		var buf bytes.Buffer
		log, err := logging.New(&buf, tc.level, tc.format)
		if (err == nil) != tc.ok {
			t.Errorf("New(%q, %q): error %v, want ok=%v", tc.level, tc.format, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		log.Error().Str(logging.FieldRoute, "r").Msg("route stopped")
		var ev map[string]any
		isJSON := json.Unmarshal(buf.Bytes(), &ev) == nil
		if isJSON != tc.json || !strings.Contains(buf.String(), "route stopped") {
			t.Errorf("New(%q, %q) wrote %q", tc.level, tc.format, buf.String())
		}
	}
}

// TestDurationsCarryTheirUnit: a duration field reads "10s", never a bare
// number whose unit the reader has to guess.
func TestDurationsCarryTheirUnit(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{10 * time.Second, `"drain":"10s"`},
		{1500 * time.Microsecond, `"drain":"1.5ms"`},
		{0, `"drain":"0s"`},
	} {
		var buf bytes.Buffer
		log, err := logging.New(&buf, "info", "json")
		if err != nil {
			t.Fatal(err)
		}
		log.Info().Dur(logging.FieldDrain, tc.d).Msg("shutting down")
		if !strings.Contains(buf.String(), tc.want) {
			t.Errorf("%v logged as %s, want %s", tc.d, strings.TrimSpace(buf.String()), tc.want)
		}
	}
}

// TestConsoleColoursOnlyATerminal: the console format colours a terminal,
// and writes plain text into files, pipes and buffers.
func TestConsoleColoursOnlyATerminal(t *testing.T) {
	const escape = "\x1b["
	write := func(out io.Writer) {
		t.Helper()
		log, err := logging.New(out, "info", "console")
		if err != nil {
			t.Fatal(err)
		}
		log.Warn().Str(logging.FieldRoute, "web").Msg("backend dial failed")
	}

	var buf bytes.Buffer
	write(&buf)
	if strings.Contains(buf.String(), escape) || !strings.Contains(buf.String(), "backend dial failed") {
		t.Errorf("console into a buffer wrote %q, want plain text", buf.String())
	}

	f, err := os.Create(t.TempDir() + "/vaurien.log")
	if err != nil {
		t.Fatal(err)
	}
	write(f)
	f.Close()
	if b, _ := os.ReadFile(f.Name()); strings.Contains(string(b), escape) || len(b) == 0 {
		t.Errorf("console into a file wrote %q, want plain text", b)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	write(w)
	w.Close()
	b, _ := io.ReadAll(r)
	r.Close()
	if strings.Contains(string(b), escape) || len(b) == 0 {
		t.Errorf("console into a pipe wrote %q, want plain text", b)
	}

	master, slave := openPTY(t)
	write(slave)
	got := make([]byte, 4096)
	n, err := master.Read(got)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got[:n]), escape) {
		t.Errorf("console on a terminal wrote %q, want colours", got[:n])
	}
}

// openPTY opens a pseudo-terminal pair, as a terminal emulator does.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal on this machine: %v", err)
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}
